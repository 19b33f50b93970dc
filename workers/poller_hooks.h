/*
 * The poller's answers to httpd for webhook deliveries (MSG_WEBHOOK:
 * signature check, parsing, duplicates) and for cleaning up GitHub
 * (MSG_GITHUB_CLEANUP: offline runners ephemerd made, with no container).
 */
#ifndef EPHEMERD_POLLER_HOOKS_H
#define EPHEMERD_POLLER_HOOKS_H

#include "ipc.h"

struct buf;
struct config;
struct github;

/* Deliveries remembered by X-GitHub-Delivery, to ignore redeliveries. */
#define HOOKS_DELIVERIES_KEPT	1024

/* The u8 of MSG_GITHUB_CLEANUP: what to do with GitHub's runner lists. */
enum github_cleanup_mode {
	CLEANUP_DELETE = 0,	/* delete the stale registrations */
	CLEANUP_DRY_RUN,	/* say which would go */
	CLEANUP_REPORT,		/* list this instance's runners as they are */
	CLEANUP_MODE_COUNT
};

int	 poller_on_webhook(struct ipc_channel *, struct ipc_msg *, void *);
int	 poller_on_github_cleanup(struct ipc_channel *, struct ipc_msg *,
	    void *);
void	 poller_hooks_init(struct github *);
/* Stops new work before the HTTP client goes. */
void	 poller_hooks_stop(void);
/* Applies a (new) configuration: the periodic GitHub cleanup. */
void	 poller_hooks_configure(const struct config *);
void	 poller_hooks_metrics(struct buf *);
void	 poller_hooks_free(void);

#endif
