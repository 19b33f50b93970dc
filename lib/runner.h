/*
 * A runner as every process sees it: one container ephemerd started, and
 * the GitHub runner registered for it.  The docker worker owns the table
 * and pushes it to httpd and the poller; the wire form is strict.
 */
#ifndef EPHEMERD_RUNNER_H
#define EPHEMERD_RUNNER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "config.h"

struct ipc_reader;
struct json_writer;

enum runner_status {
	RUNNER_STARTING = 0,	/* container up, not yet online on GitHub */
	RUNNER_IDLE,		/* online, waiting for a job */
	RUNNER_BUSY,		/* running a job */
	RUNNER_EXITED,		/* container ended; kept until removed */
	RUNNER_REMOVING,	/* being stopped and removed */
	RUNNER_STATUS_COUNT
};

/* Container labels that mark a container as ephemerd's. */
#define LABEL_MANAGED		"io.ephemerd.managed"
#define LABEL_INSTANCE		"io.ephemerd.instance"
#define LABEL_POOL		"io.ephemerd.pool"
#define LABEL_RUNNER		"io.ephemerd.runner"
#define LABEL_SCOPE		"io.ephemerd.scope"
#define LABEL_SCOPE_NAME	"io.ephemerd.scope-name"
#define LABEL_GITHUB_ID		"io.ephemerd.github-runner-id"
#define LABEL_ORIGIN		"io.ephemerd.origin"
#define LABEL_RUNNER_LABELS	"io.ephemerd.runner-labels"

#define RUNNER_NAME_MAX		64	/* GitHub allows 64 characters */

struct runner {
	char			*rn_name;	/* the API's runner_id */
	char			*rn_container_id;
	char			*rn_pool;
	char			*rn_image;
	char			*rn_scope;	/* "repo" or "org" */
	char			*rn_scope_name;	/* owner/repo or org */
	char			*rn_origin;	/* "api" or "auto" */
	uint64_t		 rn_github_id;	/* 0 until known */
	struct strlist		 rn_labels;	/* the runner's labels */
	enum runner_status	 rn_status;
	int64_t			 rn_created;	/* Unix time */
	int32_t			 rn_exit_code;	/* -1 while running */
	char			*rn_job;	/* job name, "" if none */
};

const char *runner_status_name(enum runner_status);
void	 runner_free(struct runner *);
void	 runner_copy(struct runner *, const struct runner *);

/* A runner name: [A-Za-z0-9_.-], 1 to RUNNER_NAME_MAX characters. */
int	 runner_name_valid(const char *);

void	 runner_encode(const struct runner *, struct buf *);
/* Returns 0, or -1 with the reader's error set. */
int	 runner_decode(struct ipc_reader *, struct runner *);

/* A table: count (u32, at most RUNNER_TABLE_MAX) then each runner. */
#define RUNNER_TABLE_MAX	4096
void	 runner_table_encode(const struct runner *, size_t, struct buf *);
int	 runner_table_decode(const void *, size_t, struct runner **, size_t *,
	    const char **);
void	 runner_table_free(struct runner *, size_t);

/* The runner as GET /api/v1/runners shows it. */
void	 runner_write_json(const struct runner *, struct json_writer *);

#endif
