/*
 * Automatic mode: the poller finds the repositories its credentials
 * reach, reads their workflow files to learn which of them may queue jobs
 * for self-hosted runners, watches those for queued jobs (polling every
 * discovery.interval, and at once on a webhook delivery) and starts the
 * runners the demand calls for.
 */
#ifndef EPHEMERD_POLLER_AUTO_H
#define EPHEMERD_POLLER_AUTO_H

#include "config.h"
#include "github.h"
#include "webhook.h"

struct json_writer;

void	 poller_auto_init(struct github *);
/* Applies a (new) configuration: starts or stops the cycles. */
void	 poller_auto_configure(const struct config *);
void	 poller_auto_stop(void);
void	 poller_auto_free(void);

/*
 * A workflow_job delivery whose signature was checked.  A queued job is
 * scheduled at once; in_progress and completed ones leave the queue.
 */
void	 poller_auto_on_job(const struct webhook_delivery *);
/* The docker worker's runner table changed: keep min_idle. */
void	 poller_auto_runners_changed(void);

/*
 * The scopes where ephemerd's runners may be registered: every
 * repository it watches ("repo", "owner/name") and, in organization
 * mode, the organization ("org", "name").  Appended to the two lists,
 * which stay parallel.
 */
void	 poller_auto_scopes(struct strlist *, struct strlist *);

void	 poller_auto_status(struct json_writer *);
void	 poller_auto_metrics(struct buf *);

#endif
