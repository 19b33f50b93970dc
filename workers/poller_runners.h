/*
 * The poller's part in runners: registering the runners httpd asks for
 * with GitHub before the docker worker starts them, deregistering the
 * ones that ended, and telling the docker worker how GitHub sees them.
 */
#ifndef EPHEMERD_POLLER_RUNNERS_H
#define EPHEMERD_POLLER_RUNNERS_H

#include "github.h"
#include "ipc.h"

/* Seconds between two looks at GitHub's runner lists. */
#define POLLER_STATUS_INTERVAL		5
/* How long the docker worker may take to start one runner (image pull). */
#define POLLER_START_TIMEOUT_MS		(180 * 1000)
/* A registration token is reused until this long before it expires. */
#define POLLER_TOKEN_MARGIN		300

struct demand_runner;
struct json_writer;
struct pool;

void	 poller_runners_init(struct github *);
/* Stops new work; outstanding requests then fail without side effects. */
void	 poller_runners_stop(void);
/* Frees what is left once the HTTP client is gone. */
void	 poller_runners_free(void);
void	 poller_runners_peer_changed(enum ipc_role, struct ipc_channel *);
void	 poller_runners_status(struct json_writer *);

/* True if a container, or a runner being created, has this name. */
int	 poller_runners_has(const char *);
/*
 * Appends the scopes ("repo" or "org", and the name) of the runners that
 * exist or are being created, each once; the two lists stay parallel.
 */
void	 poller_runners_scopes(struct strlist *, struct strlist *);

/*
 * Automatic mode: registers count runners of a pool for a scope and has
 * them started, labelled as started by automatic mode.  Returns 0 once
 * the work is under way (its outcome is logged), or -1 with a message.
 */
int	 poller_runners_start(const char *, const char *, const char *,
	    unsigned int, char *, size_t);
/*
 * The runners for the scheduler, in a new array: the docker worker's
 * table, plus the runners being registered or just started that it does
 * not show yet, as starting.  The strings point into the poller's own
 * tables: use them before returning to the event loop.
 */
size_t	 poller_runners_demand(struct demand_runner **);
/* True once the docker worker's table has arrived. */
int	 poller_runners_ready(void);
/*
 * The labels a runner of the pool really registers with, appended to the
 * list: the pool's, and for token registration the runner's defaults
 * unless no_default_labels.
 */
void	 poller_runners_pool_labels(const struct pool *, struct strlist *);
/*
 * The pool and container creation time (Unix time) of one of our
 * runners, in the table or gone recently; -1 if unknown.  The pool
 * points into the poller's tables.
 */
int	 poller_runners_started(const char *, const char **, int64_t *);
/*
 * GitHub named this runner as the one that took a job (a webhook, or a
 * job seen in progress): from now on it is busy with a known job.
 */
void	 poller_runners_job_named(const char *);

int	 poller_on_runner_create(struct ipc_channel *, struct ipc_msg *,
	    void *);
int	 poller_on_runner_table(struct ipc_channel *, struct ipc_msg *,
	    void *);
int	 poller_on_runner_gone(struct ipc_channel *, struct ipc_msg *,
	    void *);

#endif
