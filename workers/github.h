/*
 * The GitHub side of runners: the requests the poller makes for them and
 * the pure functions around those requests (which pool serves a request,
 * runner names, reading GitHub's answers).  Nothing here logs a secret.
 */
#ifndef EPHEMERD_GITHUB_H
#define EPHEMERD_GITHUB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "http_client.h"

#define GITHUB_TIMEOUT_MS	10000
#define GITHUB_LABELS_MAX	100	/* generate-jitconfig takes 1..100 */
#define GITHUB_LABEL_MAX	100	/* characters in one label */
#define GITHUB_OWNER_MAX	39
#define GITHUB_REPO_MAX		100

/* One entry of GitHub's runner list. */
struct github_runner {
	uint64_t	 gr_id;
	char		*gr_name;
	int		 gr_online;
	int		 gr_busy;
};

struct github_runner_list {
	struct github_runner	*rl_items;
	size_t			 rl_count;
};

/*
 * Checks scope ("repo" or "org") and scope_name (owner/repo or org, with
 * GitHub's name characters).  Returns 0, or -1 with a message in err.
 */
int	 github_scope_check(const char *, const char *, char *, size_t);
/* Checks one label asked for: printable, no comma, 1..100 characters. */
int	 github_label_check(const char *, char *, size_t);

/* True if every label of want is among the pool's (case-insensitive). */
int	 github_pool_covers(const struct pool *, const struct strlist *);
/*
 * The pool for a request: among the pools whose labels cover the ones
 * asked for, the one with the fewest extra labels (the first of equals);
 * with no labels asked for, the pool "default" or else the first.
 * Returns NULL with a message naming the labels no pool serves.
 */
struct pool *github_pool_select(struct pool *, size_t,
	    const struct strlist *, char *, size_t);

/*
 * A generated runner name, "eph-INSTANCE-POOL-HEX" where HEX is the
 * eight hex digits of rnd.  The pool part is made of [a-z0-9-] and cut so
 * that the whole fits RUNNER_NAME_MAX.  Returns 0, or -1 if out is short.
 */
int	 github_runner_name(const char *, const char *, uint32_t, char *,
	    size_t);

/*
 * A URL under a scope: "{api}/repos/{owner}/{repo}/actions/{suffix}" or
 * "{api}/orgs/{org}/actions/{suffix}".  The scope must have been checked.
 */
char	*github_scope_url(const char *, const char *, const char *,
	    const char *);

/* 201 of generate-jitconfig: runner.id and encoded_jit_config (secret). */
int	 github_parse_jit(const char *, size_t, uint64_t *, char **,
	    const char **);
/* 201 of registration-token: token (secret) and expires_at. */
int	 github_parse_token(const char *, size_t, char **, time_t *,
	    const char **);
/* An ISO 8601 time as GitHub writes it, with Z or a +hh:mm offset. */
int	 github_parse_time(const char *, time_t *);
/* Appends the runners of one page of a runner list. */
int	 github_parse_runners(const char *, size_t, struct github_runner_list *,
	    const char **);
void	 github_runner_list_free(struct github_runner_list *);
/*
 * Looks for a runner group by name (case-insensitive) in one page of
 * GET /orgs/{org}/actions/runner-groups.  *id is 0 when it is not there.
 */
int	 github_parse_group(const char *, size_t, const char *, uint64_t *,
	    const char **);
/* The rel="next" URL of a Link header, as a new string, or NULL. */
char	*github_link_next(const char *);
/*
 * What went wrong with a request, for logs and API errors: GitHub's own
 * "message" with the status, or the transport error.  A new string.
 */
char	*github_error_text(const struct http_response *);

/*
 * Requests with the headers every GitHub call carries (Accept,
 * User-Agent, API version, the token), the configured CA file and a
 * 10 s timeout.  The configuration is read at each call, so a reload
 * takes effect at once.
 */
struct github;

#define GITHUB_ENDPOINT_MAX	128

/*
 * The endpoint of a URL as a template for metrics:
 * "/repos/{owner}/{repo}/actions/runners/{id}", never the names of users.
 */
void	 github_endpoint_template(const char *, const char *, char *,
	    size_t);
/* Appends the request counters and the rate-limit gauge. */
void	 github_metrics(struct buf *);
void	 github_metrics_free(void);

struct github *github_new(struct http_client *, const struct config *);
void	 github_free(struct github *);
/*
 * Starts a request; body is JSON text or NULL, etag an If-None-Match
 * value or NULL, timeout_ms 0 for GITHUB_TIMEOUT_MS.  Returns the
 * http_client id, or -1.
 */
long	 github_request(struct github *, const char *, const char *,
	    const char *, const char *, long, http_done_fn, void *);

#endif
