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
 *
 * As a GitHub App (github.app_id, see github_app.h) the token is the
 * installation token of the account in the URL: a request waits, out of
 * sight of its caller, until that token is there, or fails with
 * hr_status 0 and the reason in hr_error.  Requests to /app/... carry a
 * JWT instead, and no other request ever does.
 */
struct github;

#define GITHUB_ENDPOINT_MAX	128

/*
 * The endpoint of a URL as a template for metrics:
 * "/repos/{owner}/{repo}/actions/runners/{id}", never the names of users.
 */
void	 github_endpoint_template(const char *, const char *, char *,
	    size_t);
/* Appends the request counters, the rate-limit and the pause gauges. */
void	 github_metrics(struct buf *);
void	 github_metrics_free(void);

/*
 * The answers of GETs kept for conditional requests, by URL; the least
 * recently used go first when either bound is reached.
 */
#define GITHUB_CACHE_ENTRIES	4096
#define GITHUB_CACHE_BYTES	((size_t)64 * 1024 * 1024)

/*
 * Requests wait while the primary budget is down to this reserve: the
 * larger of it and 1% of the limit, but never more than half the limit.
 */
#define GITHUB_RATE_RESERVE	50

/* Pauses after a secondary rate limit: doubled while they repeat. */
#define GITHUB_SECONDARY_PAUSE_MS	(60 * 1000L)
#define GITHUB_SECONDARY_PAUSE_MAX_MS	(15 * 60 * 1000L)
/* Pauses after a 5xx or no answer: doubled per failure in a row. */
#define GITHUB_BACKOFF_MS		1000L
#define GITHUB_BACKOFF_MAX_MS		(60 * 1000L)
/* Retry-After is obeyed within these bounds (seconds). */
#define GITHUB_RETRY_AFTER_MIN	1
#define GITHUB_RETRY_AFTER_MAX	3600

struct github_stats {
	uint64_t	 gs_requests;		/* answers received (any) */
	uint64_t	 gs_not_modified;	/* 304s */
	uint64_t	 gs_charged;		/* 2xx/4xx/5xx except 304 */
	uint64_t	 gs_refused;		/* held back by a pause */
	int64_t		 gs_remaining;		/* -1 until known */
	int64_t		 gs_limit;
	time_t		 gs_reset;		/* epoch, 0 until known */
};

/*
 * github_free() is called after http_client_free(), which finishes every
 * request in flight; answers that come after github_free() reach nobody.
 */
struct github *github_new(struct http_client *, const struct config *);
void	 github_free(struct github *);
/*
 * Answers every request not sent yet (waiting for its turn among the
 * mutations, or for an App token) with hr_status 0: the first step of a
 * shutdown, once the callers start nothing new.
 */
void	 github_drop_waiting(struct github *);
/*
 * Starts a request; body is JSON text or NULL, etag an If-None-Match
 * value or NULL, timeout_ms 0 for GITHUB_TIMEOUT_MS.  Returns the
 * http_client id, or -1.  done is called exactly once, never from inside
 * this call; hr_status 0 means no answer (hr_error says why).
 *
 * A GET without etag is made conditional from the cache: a 304 reaches
 * done as the cached 200 (hr_cached 1) with the cached Link and ETag and
 * the fresh x-ratelimit-* headers.  While a pause is in force nothing is
 * sent but GET /rate_limit: done gets hr_status 0 and hr_error
 * "GitHub requests paused for N s: <reason>".
 */
long	 github_request(struct github *, const char *, const char *,
	    const char *, const char *, long, http_done_fn, void *);
/*
 * The same with an App installation's token chosen by its id instead of
 * by the account in the URL (/installation/... has none); its answers
 * are cached apart.  A token configuration ignores the id.
 */
long	 github_request_as(struct github *, uint64_t, const char *,
	    const char *, const char *, const char *, long, http_done_fn,
	    void *);

void	 github_get_stats(const struct github *, struct github_stats *);
/* 1 while requests are held back; until (epoch s) and why set. */
int	 github_paused(const struct github *, time_t *, const char **);

/* One page's answer; return -1 to stop early (error). */
typedef int (*github_page_fn)(const struct http_response *, void *);
/*
 * ok: all pages came (2xx or cached); changed: some page was not a 304;
 * err: why not ok (static or owned until return).
 */
typedef void (*github_pages_done_fn)(int, int, const char *, void *);
/*
 * Walks the pages of a list from url along rel="next", each page through
 * the conditional cache, at most max_pages of them (then ok is 1).  done
 * is called exactly once, never from inside this call; also with ok 0
 * when http_client_free() or github_cancel_pages() ends the walk.
 * Returns an id for github_cancel_pages(), or -1 (done is then not
 * called).
 */
long	 github_get_pages(struct github *, const char *, int, github_page_fn,
	    github_pages_done_fn, void *);
/* Ends a walk: done is called with ok 0, maybe before this returns. */
void	 github_cancel_pages(struct github *, long);

/*
 * Parses an answer's body, which must be complete, valid JSON.  Returns
 * 0, or -1 with a reason in why (and nothing to free).
 */
struct json_doc;
int	 github_json(struct json_doc *, const struct http_response *,
	    const char **);

/*
 * For tests: the clock pauses are measured by, in epoch milliseconds
 * (NULL for the real one), so that they pass without waiting.
 */
void	 github_set_clock(struct github *, int64_t (*)(void));

#endif
