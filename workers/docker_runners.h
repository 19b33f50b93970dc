/*
 * Runner containers as the docker worker builds and reads them: the start
 * request from the poller, the container's environment with its
 * placeholders resolved, the create call's JSON, and runner records
 * rebuilt from the labels of listed containers.  No I/O here.
 */
#ifndef EPHEMERD_DOCKER_RUNNERS_H
#define EPHEMERD_DOCKER_RUNNERS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "runner.h"

/* The instance label's value until the configuration names one. */
#define DOCKER_INSTANCE_DEFAULT	"default"
#define DOCKER_START_LABELS_MAX	64

/* MSG_RUNNER_START, decoded.  The token and JIT config are secrets. */
struct start_request {
	char		*sr_pool;
	char		*sr_name;
	char		*sr_scope;	/* "repo" or "org" */
	char		*sr_scope_name;
	char		*sr_origin;	/* "api" or "auto" */
	uint64_t	 sr_github_id;
	struct strlist	 sr_labels;
	char		*sr_token;
	char		*sr_jit;
};

/* Strict: every field checked, the payload consumed exactly. */
int	 docker_start_decode(const void *, size_t, struct start_request *,
	    const char **);
void	 docker_start_encode(const struct start_request *, struct buf *);
/* Frees, wiping the secrets first. */
void	 docker_start_free(struct start_request *);

/* What the placeholders of a pool's environment resolve from. */
struct expand_ctx {
	const struct start_request	*ex_req;
	const char			*ex_hostname;
	time_t				 ex_now;
};

/*
 * Appends value with every known placeholder replaced.  Braces around
 * anything else are copied as they are, as the configuration check does.
 */
void	 docker_expand(const char *, const struct expand_ctx *, struct buf *);

/* Everything the create call's body is made of. */
struct create_spec {
	const struct pool		*cs_pool;
	const struct start_request	*cs_req;
	const char			*cs_instance;
	const char			*cs_socket;	/* for DinD's bind */
	const char			*cs_hostname;
	time_t				 cs_now;
};

/*
 * Writes the JSON body of POST /containers/create.  It holds secrets: the
 * caller wipes the buffer (explicit_bzero) once the call is made.
 */
void	 docker_create_body(const struct create_spec *, struct buf *);

/* A labelled container as GET /containers/json lists it. */
struct listed_container {
	char		*lc_id;
	char		*lc_state;	/* "running", "exited", ... */
	int		 lc_exit_code;	/* from "Exited (N) ...", or -1 */
	struct runner	 lc_runner;	/* rebuilt from the labels */
	int		 lc_valid;	/* the labels name a valid runner */
};

/* Returns 0, or -1 with *why set if the body is not a container list. */
int	 docker_list_parse(const char *, size_t, struct listed_container **,
	    size_t *, const char **);
void	 docker_list_free(struct listed_container *, size_t);
/* The exit code in a list's Status "Exited (137) 2 seconds ago", or -1. */
int	 docker_status_exit_code(const char *);

/* Joins a list with commas into b. */
void	 docker_join(const struct strlist *, struct buf *);

#endif
