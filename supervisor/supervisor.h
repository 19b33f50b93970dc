/*
 * What the processes of the ephemerd binary share: the supervisor's entry
 * points, the common frame of every child process, privilege separation
 * and process titles.
 */
#ifndef EPHEMERD_SUPERVISOR_H
#define EPHEMERD_SUPERVISOR_H

#include <sys/types.h>

#include <stdint.h>

#include "config.h"
#include "ipc.h"

/* The supervisor's end of the channel is always this descriptor. */
#define CHILD_PARENT_FD		3

struct json_writer;

/* main.c */
extern int		 verbose;
extern int		 foreground;
extern const char	*self_exe;

/* children.c: the supervisor proper. */
int	 supervisor_run(struct config *, int);

/*
 * child_common.c: the frame every child runs in.  A child is described
 * by its operations; the frame owns the event loop, the channel to the
 * supervisor and the channels to its peers.
 */
struct child_ops {
	enum ipc_role	 co_role;
	/* Message types each peer may send us; NULL accepts none. */
	const struct ipc_dispatch *co_peer_tables[ROLE_COUNT];
	/*
	 * Applies a configuration.  The first call (first != 0) also drops
	 * privileges and starts the child's work; a failure then is fatal.
	 * A later failure keeps the old configuration.
	 */
	int	(*co_configure)(struct config *, int, char *, size_t);
	/* Adds the child's own fields to its status object. */
	void	(*co_status)(struct json_writer *);
	/* A peer channel came or went (NULL). */
	void	(*co_peer_changed)(enum ipc_role, struct ipc_channel *);
	/* Stops the child's work before the loop ends. */
	void	(*co_shutdown)(void);
	/*
	 * Appends the child's metric samples, Prometheus text lines, for
	 * MSG_METRICS_REQ; NULL answers with none.
	 */
	void	(*co_metrics)(struct buf *);
};

struct child_state {
	const struct child_ops	*cs_ops;
	struct event_base	*cs_base;
	struct ipc_channel	*cs_parent;
	struct ipc_channel	*cs_peers[ROLE_COUNT];
	struct config		 cs_config;
	int			 cs_configured;
	int			 cs_listen_fd;
	uint64_t		 cs_start_ms;
};

extern struct child_state child;

__attribute__((noreturn)) void child_main(enum ipc_role);
int	 child_run(const struct child_ops *);
void	 child_status_json(struct json_writer *);
/* Ends the event loop; the child then exits. */
void	 child_exit(void);

/* httpd/, workers/: each role's operations. */
extern const struct child_ops httpd_ops;
extern const struct child_ops poller_ops;
extern const struct child_ops docker_ops;

/* privsep.c */
int	 privsep_lookup_user(const char *, uid_t *, gid_t *, char *, size_t);
int	 privsep_drop(const char *, const char *, gid_t, char *, size_t);

/* proctitle.c */
void	 proctitle_init(int, char **);
void	 proctitle_set(const char *);

#endif
