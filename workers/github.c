/*
 * GitHub requests for runners and the pure functions around them.  The
 * parsers are strict about the fields they need and ignore the rest, as
 * GitHub adds fields over time.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "counters.h"
#include "github.h"
#include "github_app.h"
#include "json.h"
#include "log.h"
#include "poller.h"
#include "runner.h"
#include "util.h"


#define GITHUB_CACHE_BUCKETS	1024

/* The last 200 of a GET, with what makes the next one conditional. */
struct github_cached {
	TAILQ_ENTRY(github_cached)	 gk_lru;	/* most recent first */
	struct github_cached		*gk_next;	/* in its bucket */
	char				*gk_url;
	char				*gk_etag;	/* or NULL */
	char				*gk_modified;	/* when no ETag */
	char				*gk_link;	/* or NULL */
	struct buf			 gk_body;
	size_t				 gk_size;
};

enum github_pause_kind {
	PAUSE_NONE,
	PAUSE_RESERVE,		/* the budget is down to the reserve */
	PAUSE_LIMITED,		/* a rate limit answered */
	PAUSE_BACKOFF		/* 5xx or no answer */
};

struct github_call {
	TAILQ_ENTRY(github_call) gc_entry;
	struct github		*gc_gh;		/* NULL after github_free */
	http_done_fn		 gc_done;
	void			*gc_arg;
	char			*gc_cache_url;	/* a GET made from the cache */
	int			 gc_refused;	/* held back by a pause */
	int64_t			 gc_sent;	/* epoch ms */
	char			 gc_endpoint[GITHUB_ENDPOINT_MAX];

	/* App mode: a request waits for its installation's token. */
	int			 gc_waiting;
	long			 gc_wait_id;	/* what github_request gave */
	uint64_t		 gc_installation;	/* 0: no token of one */
	uint64_t		 gc_want_install;	/* asked for, or 0 */
	char			*gc_method;
	char			*gc_url;
	char			*gc_body;
	char			*gc_etag;
	long			 gc_timeout_ms;

	int			 gc_spaced;	/* waits for its turn */
	int			 gc_mutation;	/* the one mutation out */
};

/* A walk along the pages of a list. */
struct github_pages {
	TAILQ_ENTRY(github_pages) gp_entry;
	struct github		*gp_gh;
	long			 gp_id;
	long			 gp_http_id;
	char			*gp_url;
	int			 gp_pages;
	int			 gp_max;
	int			 gp_changed;
	int			 gp_cancelled;
	github_page_fn		 gp_page;
	github_pages_done_fn	 gp_done;
	void			*gp_arg;
};

struct github {
	struct http_client	*gh_http;
	const struct config	*gh_conf;
	int64_t			(*gh_clock)(void);

	struct github_cached	*gh_buckets[GITHUB_CACHE_BUCKETS];
	TAILQ_HEAD(github_cached_lru, github_cached) gh_lru;
	size_t			 gh_cache_count;
	size_t			 gh_cache_bytes;

	struct github_stats	 gh_stats;
	enum github_pause_kind	 gh_pause;
	int64_t			 gh_pause_until;	/* epoch ms */
	char			 gh_pause_why[160];
	int			 gh_failures;	/* 5xx or no answer in a row */
	int64_t			 gh_failed_at;	/* epoch ms of the last one */
	int			 gh_secondary;	/* secondary limits in a row */

	TAILQ_HEAD(, github_call) gh_calls;
	TAILQ_HEAD(, github_pages) gh_walks;
	long			 gh_next_walk;

	struct github_app	*gh_app;
	long			 gh_next_wait_id;	/* above http ids */

	/* Mutations go one at a time, c_mutation_interval_ms apart. */
	struct event		*gh_spacing_ev;
	int			 gh_mutating;
	uint64_t		 gh_mutated_ms;	/* monotonic: the last sent */
};

/* The x-ratelimit-* headers of one answer; -1 where absent. */
struct github_limits {
	int64_t			 gl_remaining;
	int64_t			 gl_limit;
	int64_t			 gl_reset;
	int			 gl_core;	/* the primary (core) budget */
};

static void	 github_spacing_arm(struct github *);
static void	 github_spacing_fire(evutil_socket_t, short, void *);
static void	 github_call_fail(struct github_call *, const char *);
static long	 github_dispatch(struct github *, struct github_call *,
		    const char *, const char *, const char *, const char *,
		    long);

static int
github_owner_valid(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > GITHUB_OWNER_MAX || s[0] == '-')
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

static int
github_repo_valid(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > GITHUB_REPO_MAX)
		return 0;
	if ((len == 1 && s[0] == '.') || (len == 2 && strncmp(s, "..", 2) == 0))
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_' && s[i] != '.')
			return 0;
	return 1;
}

int
github_scope_check(const char *scope, const char *name, char *err,
    size_t errlen)
{
	const char	*slash;

	if (strcmp(scope, "org") == 0) {
		if (github_owner_valid(name, strlen(name)))
			return 0;
		snprintf(err, errlen, "scope_name must be an organization name "
		    "(1 to %d letters, digits or '-')", GITHUB_OWNER_MAX);
		return -1;
	}
	if (strcmp(scope, "repo") != 0) {
		snprintf(err, errlen, "scope must be \"repo\" or \"org\"");
		return -1;
	}
	slash = strchr(name, '/');
	if (slash != NULL && github_owner_valid(name, slash - name) &&
	    github_repo_valid(slash + 1, strlen(slash + 1)))
		return 0;
	snprintf(err, errlen, "scope_name must be owner/repo with GitHub's "
	    "name characters");
	return -1;
}

int
github_label_check(const char *label, char *err, size_t errlen)
{
	size_t	 i, len = strlen(label);

	if (len == 0 || len > GITHUB_LABEL_MAX) {
		snprintf(err, errlen, "a label must have 1 to %d characters",
		    GITHUB_LABEL_MAX);
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)label[i];

		if (c <= ' ' || c == 0x7f || c == ',') {
			snprintf(err, errlen, "a label may not contain "
			    "spaces, commas or control characters");
			return -1;
		}
	}
	return 0;
}

static int
github_strlist_has(const struct strlist *sl, const char *s)
{
	size_t	 i;

	for (i = 0; i < sl->sl_count; i++)
		if (strcasecmp(sl->sl_items[i], s) == 0)
			return 1;
	return 0;
}

int
github_pool_covers(const struct pool *pl, const struct strlist *want)
{
	size_t	 i;

	for (i = 0; i < want->sl_count; i++)
		if (!github_strlist_has(&pl->pl_labels, want->sl_items[i]))
			return 0;
	return 1;
}

/* Names the labels that no pool has, for the error message. */
static void
github_pool_missing(struct pool *pools, size_t npools,
    const struct strlist *want, char *err, size_t errlen)
{
	struct buf	 b;
	size_t		 i, j;
	int		 found, n = 0;

	buf_init(&b);
	for (i = 0; i < want->sl_count; i++) {
		for (found = 0, j = 0; j < npools && !found; j++)
			found = github_strlist_has(&pools[j].pl_labels,
			    want->sl_items[i]);
		if (!found)
			buf_printf(&b, "%s%s", n++ > 0 ? ", " : "",
			    want->sl_items[i]);
	}
	if (n > 0)
		snprintf(err, errlen, "no pool serves the label%s %s",
		    n > 1 ? "s" : "", buf_cstr(&b));
	else
		snprintf(err, errlen, "no single pool serves all of the "
		    "labels asked for");
	buf_free(&b);
}

struct pool *
github_pool_select(struct pool *pools, size_t npools,
    const struct strlist *want, char *err, size_t errlen)
{
	struct pool	*best = NULL;
	size_t		 i;

	if (npools == 0) {
		snprintf(err, errlen, "no pool is configured");
		return NULL;
	}
	if (want->sl_count == 0) {
		for (i = 0; i < npools; i++)
			if (strcmp(pools[i].pl_name, "default") == 0)
				return &pools[i];
		return &pools[0];
	}

	for (i = 0; i < npools; i++) {
		if (!github_pool_covers(&pools[i], want))
			continue;
		if (best == NULL ||
		    pools[i].pl_labels.sl_count < best->pl_labels.sl_count)
			best = &pools[i];
	}
	if (best == NULL)
		github_pool_missing(pools, npools, want, err, errlen);
	return best;
}

int
github_runner_name(const char *instance, const char *pool, uint32_t rnd,
    char *out, size_t outlen)
{
	char	 clean[RUNNER_NAME_MAX + 1];
	size_t	 i, n = 0, room;
	int	 len;

	/* "eph-" + instance + "-" + pool + "-" + 8 hex digits. */
	len = snprintf(NULL, 0, "eph-%s--%08x", instance, (unsigned int)rnd);
	if (len < 0 || len >= RUNNER_NAME_MAX)
		return -1;
	room = RUNNER_NAME_MAX - (size_t)len;
	for (i = 0; pool[i] != '\0' && n < room; i++) {
		char c = (char)tolower((unsigned char)pool[i]);

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			clean[n++] = c;
		else if (n > 0 && clean[n - 1] != '-')
			clean[n++] = '-';
	}
	while (n > 0 && clean[n - 1] == '-')
		n--;
	clean[n] = '\0';
	if (n == 0)
		strlcpy(clean, "pool", sizeof(clean));

	len = snprintf(out, outlen, "eph-%s-%s-%08x", instance, clean,
	    (unsigned int)rnd);
	if (len < 0 || (size_t)len >= outlen || !runner_name_valid(out))
		return -1;
	return 0;
}

char *
github_scope_url(const char *api, const char *scope, const char *name,
    const char *suffix)
{
	char	*url;

	xasprintf(&url, "%s/%s/%s/actions/%s", api,
	    strcmp(scope, "org") == 0 ? "orgs" : "repos", name, suffix);
	return url;
}

static int
github_parse_object(struct json_doc *doc, const char *body, size_t len,
    const char **why)
{
	if (json_parse(doc, body, len, why) == -1)
		return -1;
	if (json_type(doc, 0) != JSON_OBJECT) {
		json_free(doc);
		*why = "the answer is not a JSON object";
		return -1;
	}
	return 0;
}

static int
github_get_id(const struct json_doc *doc, int obj, uint64_t *id)
{
	int64_t	 v;

	if (obj == -1 || json_member_i64(doc, obj, "id", &v) == -1 || v <= 0)
		return -1;
	*id = (uint64_t)v;
	return 0;
}

int
github_parse_jit(const char *body, size_t len, uint64_t *id, char **jit,
    const char **why)
{
	struct json_doc	 doc;
	int		 runner;

	*jit = NULL;
	if (github_parse_object(&doc, body, len, why) == -1)
		return -1;
	runner = json_object_get(&doc, 0, "runner");
	if (runner == -1 || json_type(&doc, runner) != JSON_OBJECT ||
	    github_get_id(&doc, runner, id) == -1) {
		*why = "no runner.id in the answer";
		goto fail;
	}
	*jit = json_member_str(&doc, 0, "encoded_jit_config");
	if (*jit == NULL || (*jit)[0] == '\0') {
		*why = "no encoded_jit_config in the answer";
		goto fail;
	}
	json_free(&doc);
	return 0;

fail:
	if (*jit != NULL)
		freezero_str(*jit);
	*jit = NULL;
	json_free(&doc);
	return -1;
}

int
github_parse_time(const char *s, time_t *out)
{
	struct tm	 tm;
	int		 n = 0, oh, om;
	long		 off = 0;
	time_t		 t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19)
		return -1;
	s += n;
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++)
			;
	}
	if (*s == 'Z')
		s++;
	else if ((*s == '+' || *s == '-') && isdigit((unsigned char)s[1]) &&
	    isdigit((unsigned char)s[2]) && s[3] == ':' &&
	    isdigit((unsigned char)s[4]) && isdigit((unsigned char)s[5])) {
		oh = (s[1] - '0') * 10 + (s[2] - '0');
		om = (s[4] - '0') * 10 + (s[5] - '0');
		off = (oh * 60L + om) * 60L * (*s == '-' ? -1 : 1);
		s += 6;
	} else
		return -1;
	if (*s != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*out = t - off;
	return 0;
}

int
github_parse_token(const char *body, size_t len, char **token,
    time_t *expires, const char **why)
{
	struct json_doc	 doc;
	char		*when;
	int		 rc;

	*token = NULL;
	if (github_parse_object(&doc, body, len, why) == -1)
		return -1;
	when = json_member_str(&doc, 0, "expires_at");
	rc = when != NULL ? github_parse_time(when, expires) : -1;
	free(when);
	if (rc == -1) {
		*why = "no valid expires_at in the answer";
		json_free(&doc);
		return -1;
	}
	*token = json_member_str(&doc, 0, "token");
	json_free(&doc);
	if (*token == NULL || (*token)[0] == '\0') {
		free(*token);
		*token = NULL;
		*why = "no token in the answer";
		return -1;
	}
	return 0;
}

static int
github_parse_runner(const struct json_doc *doc, int obj,
    struct github_runner *gr)
{
	int	 st, busy;

	memset(gr, 0, sizeof(*gr));
	if (json_type(doc, obj) != JSON_OBJECT ||
	    github_get_id(doc, obj, &gr->gr_id) == -1)
		return -1;
	st = json_object_get(doc, obj, "status");
	busy = json_object_get(doc, obj, "busy");
	if (st == -1 || json_type(doc, st) != JSON_STRING || busy == -1 ||
	    json_get_bool(doc, busy, &gr->gr_busy) == -1)
		return -1;
	gr->gr_online = json_streq(doc, st, "online");
	if ((gr->gr_name = json_member_str(doc, obj, "name")) == NULL)
		return -1;
	return 0;
}

int
github_parse_runners(const char *body, size_t len,
    struct github_runner_list *rl, const char **why)
{
	struct json_doc		 doc;
	struct github_runner	 gr;
	int			 arr, i, n;

	if (github_parse_object(&doc, body, len, why) == -1)
		return -1;
	arr = json_object_get(&doc, 0, "runners");
	if (arr == -1 || json_type(&doc, arr) != JSON_ARRAY) {
		*why = "no runners array in the answer";
		json_free(&doc);
		return -1;
	}

	n = json_size(&doc, arr);
	rl->rl_items = xreallocarray(rl->rl_items, rl->rl_count + n + 1,
	    sizeof(*rl->rl_items));
	for (i = 0; i < n; i++) {
		if (github_parse_runner(&doc, json_array_get(&doc, arr, i),
		    &gr) == -1) {
			free(gr.gr_name);
			*why = "a runner without id, name, status or busy";
			json_free(&doc);
			return -1;
		}
		rl->rl_items[rl->rl_count++] = gr;
	}
	json_free(&doc);
	return 0;
}

void
github_runner_list_free(struct github_runner_list *rl)
{
	size_t	 i;

	for (i = 0; i < rl->rl_count; i++)
		free(rl->rl_items[i].gr_name);
	free(rl->rl_items);
	rl->rl_items = NULL;
	rl->rl_count = 0;
}

int
github_parse_group(const char *body, size_t len, const char *name,
    uint64_t *id, const char **why)
{
	struct json_doc	 doc;
	char		*gname;
	int		 arr, i, n, g;

	*id = 0;
	if (github_parse_object(&doc, body, len, why) == -1)
		return -1;
	arr = json_object_get(&doc, 0, "runner_groups");
	if (arr == -1 || json_type(&doc, arr) != JSON_ARRAY) {
		*why = "no runner_groups array in the answer";
		json_free(&doc);
		return -1;
	}
	n = json_size(&doc, arr);
	for (i = 0; i < n && *id == 0; i++) {
		g = json_array_get(&doc, arr, i);
		if (json_type(&doc, g) != JSON_OBJECT ||
		    (gname = json_member_str(&doc, g, "name")) == NULL)
			continue;
		if (strcasecmp(gname, name) == 0 &&
		    github_get_id(&doc, g, id) == -1)
			*id = 0;
		free(gname);
	}
	json_free(&doc);
	return 0;
}

char *
github_link_next(const char *link)
{
	const char	*p = link, *lt, *gt, *end;

	/* Entries are "<url>; rel=\"x\"" separated by commas. */
	while ((lt = strchr(p, '<')) != NULL) {
		if ((gt = strchr(lt, '>')) == NULL)
			return NULL;
		end = strchr(gt, ',');
		if (end == NULL)
			end = gt + strlen(gt);
		if (memmem(gt, end - gt, "rel=\"next\"", 10) != NULL)
			return xstrndup(lt + 1, gt - lt - 1);
		p = end;
	}
	return NULL;
}

char *
github_error_text(const struct http_response *res)
{
	struct json_doc	 doc;
	const char	*why;
	char		*msg = NULL, *out;

	if (res->hr_status == 0) {
		xasprintf(&out, "GitHub could not be reached: %s",
		    res->hr_error != NULL ? res->hr_error : "no answer");
		return out;
	}
	if (res->hr_body.b_len > 0 && json_parse(&doc,
	    (const char *)res->hr_body.b_data, res->hr_body.b_len, &why) == 0) {
		if (json_type(&doc, 0) == JSON_OBJECT)
			msg = json_member_str(&doc, 0, "message");
		json_free(&doc);
	}
	if (msg != NULL && msg[0] != '\0')
		xasprintf(&out, "GitHub answered %ld: %s", res->hr_status, msg);
	else
		xasprintf(&out, "GitHub answered %ld", res->hr_status);
	free(msg);
	return out;
}

/* A segment that is a name or a number of the caller's becomes {name}. */
static const char *
github_segment_name(const char *prev, const char *seg, size_t len,
    int index)
{
	size_t	 i;

	if (index == 1 && strcmp(prev, "repos") == 0)
		return "{owner}";
	if (index == 2 && strcmp(prev, "repos") == 0)
		return "{repo}";
	if (index == 1 && strcmp(prev, "orgs") == 0)
		return "{org}";
	for (i = 0; i < len; i++)
		if (seg[i] < '0' || seg[i] > '9')
			return NULL;
	return len > 0 ? "{id}" : NULL;
}

void
github_endpoint_template(const char *api_url, const char *url, char *out,
    size_t outlen)
{
	const char	*p = url, *end, *name;
	char		 first[16] = "";
	size_t		 len, n = 0, i;
	int		 index = 0;

	if (strncmp(url, api_url, strlen(api_url)) == 0)
		p = url + strlen(api_url);
	out[0] = '\0';
	while (*p == '/' && n + 1 < outlen) {
		p++;
		end = p + strcspn(p, "/?#");
		len = (size_t)(end - p);
		name = github_segment_name(first, p, len, index);

		if (index == 0)
			snprintf(first, sizeof(first), "%.*s", (int)len, p);
		n += snprintf(out + n, outlen - n, "/");
		for (i = 0; name == NULL && i < len && n + 1 < outlen; i++)
			out[n++] = isalnum((unsigned char)p[i]) ||
			    p[i] == '-' || p[i] == '_' || p[i] == '.' ?
			    p[i] : '_';
		out[n < outlen ? n : outlen - 1] = '\0';
		if (name != NULL && n + 1 < outlen)
			n += snprintf(out + n, outlen - n, "%s", name);
		if (n >= outlen)
			n = outlen - 1;
		p = end;
		index++;
	}
}

/* Every answer is counted, by endpoint and status, for /metrics. */
static struct counter_set	 github_requests;
static int64_t			 github_remaining = -1;
/* The process's client, for the pause gauge; there is one per process. */
static const struct github	*github_current;

static int64_t
github_real_clock(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
github_now(const struct github *gh)
{
	return gh->gh_clock != NULL ? gh->gh_clock() : github_real_clock();
}

struct github *
github_new(struct http_client *http, const struct config *conf)
{
	struct github	*gh = xcalloc(1, sizeof(*gh));

	gh->gh_http = http;
	gh->gh_conf = conf;
	gh->gh_stats.gs_remaining = -1;
	gh->gh_stats.gs_limit = -1;
	TAILQ_INIT(&gh->gh_lru);
	TAILQ_INIT(&gh->gh_calls);
	TAILQ_INIT(&gh->gh_walks);
	gh->gh_app = github_app_new(gh, conf);
	gh->gh_next_wait_id = LONG_MAX / 2;
	if ((gh->gh_spacing_ev = evtimer_new(http_client_base(http),
	    github_spacing_fire, gh)) == NULL)
		fatalx("cannot create a timer");
	github_current = gh;
	return gh;
}

void
github_set_clock(struct github *gh, int64_t (*clock)(void))
{
	gh->gh_clock = clock;
}

/* ---- the conditional cache -------------------------------------------- */

static size_t
github_cache_bucket(const char *url)
{
	uint32_t	 h = 2166136261u;

	for (; *url != '\0'; url++)
		h = (h ^ (unsigned char)*url) * 16777619u;
	return h % GITHUB_CACHE_BUCKETS;
}

static struct github_cached *
github_cache_find(struct github *gh, const char *url)
{
	struct github_cached	*gk;

	gk = gh->gh_buckets[github_cache_bucket(url)];
	while (gk != NULL && strcmp(gk->gk_url, url) != 0)
		gk = gk->gk_next;
	return gk;
}

static void
github_cache_remove(struct github *gh, struct github_cached *gk)
{
	struct github_cached	**pp;

	pp = &gh->gh_buckets[github_cache_bucket(gk->gk_url)];
	while (*pp != gk)
		pp = &(*pp)->gk_next;
	*pp = gk->gk_next;
	TAILQ_REMOVE(&gh->gh_lru, gk, gk_lru);
	gh->gh_cache_count--;
	gh->gh_cache_bytes -= gk->gk_size;

	free(gk->gk_url);
	free(gk->gk_etag);
	free(gk->gk_modified);
	free(gk->gk_link);
	buf_free(&gk->gk_body);
	free(gk);
}

static void
github_cache_clear(struct github *gh)
{
	struct github_cached	*gk;

	while ((gk = TAILQ_FIRST(&gh->gh_lru)) != NULL)
		github_cache_remove(gh, gk);
}

static size_t
github_strsize(const char *s)
{
	return s != NULL ? strlen(s) + 1 : 0;
}

/* Keeps a 200 that has a validator; one without forgets the URL. */
static void
github_cache_store(struct github *gh, const char *url,
    const struct http_response *res)
{
	struct github_cached	*gk;
	char			*etag, *modified = NULL;
	size_t			 b;

	if ((gk = github_cache_find(gh, url)) != NULL)
		github_cache_remove(gh, gk);
	if ((etag = http_header_get(res, "ETag")) == NULL &&
	    (modified = http_header_get(res, "Last-Modified")) == NULL)
		return;

	gk = xcalloc(1, sizeof(*gk));
	gk->gk_url = xstrdup(url);
	gk->gk_etag = etag;
	gk->gk_modified = modified;
	gk->gk_link = http_header_get(res, "Link");
	buf_init(&gk->gk_body);
	buf_add(&gk->gk_body, res->hr_body.b_data, res->hr_body.b_len);
	gk->gk_size = sizeof(*gk) + github_strsize(url) +
	    github_strsize(etag) + github_strsize(modified) +
	    github_strsize(gk->gk_link) + res->hr_body.b_len;

	b = github_cache_bucket(url);
	gk->gk_next = gh->gh_buckets[b];
	gh->gh_buckets[b] = gk;
	TAILQ_INSERT_TAIL(&gh->gh_lru, gk, gk_lru);
	gh->gh_cache_count++;
	gh->gh_cache_bytes += gk->gk_size;

	/*
	 * The least recently used are first (TAILQ_LAST's cast does not
	 * survive gcc's optimizer); the newest goes too when it alone is
	 * over the bound.
	 */
	while ((gk = TAILQ_FIRST(&gh->gh_lru)) != NULL &&
	    (gh->gh_cache_count > GITHUB_CACHE_ENTRIES ||
	    gh->gh_cache_bytes > GITHUB_CACHE_BYTES))
		github_cache_remove(gh, gk);
}

/* A 304 reaches the caller as the 200 it confirms. */
static void
github_cache_answer(struct github_call *gc, struct github_cached *gk,
    const struct http_response *res)
{
	struct http_response	 out;

	memset(&out, 0, sizeof(out));
	out.hr_status = 200;
	out.hr_seconds = res->hr_seconds;
	out.hr_cached = 1;
	buf_init(&out.hr_body);
	buf_add(&out.hr_body, gk->gk_body.b_data, gk->gk_body.b_len);
	buf_init(&out.hr_headers);
	if (gk->gk_etag != NULL)
		buf_printf(&out.hr_headers, "ETag: %s\r\n", gk->gk_etag);
	if (gk->gk_modified != NULL)
		buf_printf(&out.hr_headers, "Last-Modified: %s\r\n",
		    gk->gk_modified);
	if (gk->gk_link != NULL)
		buf_printf(&out.hr_headers, "Link: %s\r\n", gk->gk_link);
	/* Later lines win in http_header_get: the fresh ones go last. */
	buf_add(&out.hr_headers, res->hr_headers.b_data,
	    res->hr_headers.b_len);

	TAILQ_REMOVE(&gc->gc_gh->gh_lru, gk, gk_lru);
	TAILQ_INSERT_TAIL(&gc->gc_gh->gh_lru, gk, gk_lru);
	gc->gc_done(&out, gc->gc_arg);
	buf_free(&out.hr_body);
	buf_free(&out.hr_headers);
}

/* ---- rate limits and backoff ------------------------------------------ */

static int64_t
github_header_i64(const struct http_response *res, const char *name)
{
	char		*v;
	const char	*why;
	uint64_t	 n;
	int64_t		 out = -1;

	if ((v = http_header_get(res, name)) != NULL &&
	    parse_u64(v, 0, INT64_MAX / 1000, &n, &why) == 0)
		out = (int64_t)n;
	free(v);
	return out;
}

static void
github_limits_read(const struct http_response *res, struct github_limits *gl)
{
	char	*resource;

	gl->gl_remaining = github_header_i64(res, "x-ratelimit-remaining");
	gl->gl_limit = github_header_i64(res, "x-ratelimit-limit");
	gl->gl_reset = github_header_i64(res, "x-ratelimit-reset");
	resource = http_header_get(res, "x-ratelimit-resource");
	gl->gl_core = resource == NULL || strcmp(resource, "core") == 0;
	free(resource);
}

/* A pause that has run out ends here, and says so once. */
static void
github_pause_expire(struct github *gh, int64_t now)
{
	if (gh->gh_pause == PAUSE_NONE || now < gh->gh_pause_until)
		return;
	log_info(LC_INFO, "GitHub requests resume after a pause: %s",
	    gh->gh_pause_why);
	gh->gh_pause = PAUSE_NONE;
	gh->gh_pause_until = 0;
	gh->gh_pause_why[0] = '\0';
}

static long long
github_seconds_left(int64_t until, int64_t now)
{
	return until > now ? (long long)((until - now + 999) / 1000) : 0;
}

/* Starts a pause, or lengthens the one in force. */
static void
github_pause_start(struct github *gh, enum github_pause_kind kind,
    int64_t until, int64_t now, const char *fmt, ...)
{
	va_list	 ap;
	int	 already;

	github_pause_expire(gh, now);
	if (until <= now || until <= gh->gh_pause_until)
		return;
	already = gh->gh_pause != PAUSE_NONE;
	gh->gh_pause = kind;
	gh->gh_pause_until = until;
	va_start(ap, fmt);
	vsnprintf(gh->gh_pause_why, sizeof(gh->gh_pause_why), fmt, ap);
	va_end(ap);

	if (already)
		log_debug(LC_WARNING, "GitHub requests paused for %lld s "
		    "more: %s", github_seconds_left(until, now),
		    gh->gh_pause_why);
	else
		log_warnx(LC_WARNING, "GitHub requests paused for %lld s: %s",
		    github_seconds_left(until, now), gh->gh_pause_why);
}

/* base doubled per step after the first, at most cap, then +-20%. */
static int64_t
github_backoff_delay(long base, long cap, int step)
{
	int64_t	 d = base;

	while (--step > 0 && d < cap)
		d *= 2;
	if (d > cap)
		d = cap;
	return d * (800 + random() % 401) / 1000;
}

/*
 * Requests already in flight when one failed are the same burst: only a
 * failure of a request sent after the last one makes the pause grow, so
 * a few requests at once do not jump several steps.
 */
static void
github_on_failure(struct github *gh, const struct http_response *res,
    int64_t sent, int64_t now)
{
	int64_t	 delay;

	if (gh->gh_failures > 0 && sent < gh->gh_failed_at)
		return;
	gh->gh_failed_at = now;
	if (gh->gh_failures < 64)
		gh->gh_failures++;
	delay = github_backoff_delay(GITHUB_BACKOFF_MS, GITHUB_BACKOFF_MAX_MS,
	    gh->gh_failures);
	if (res->hr_status != 0)
		github_pause_start(gh, PAUSE_BACKOFF, now + delay, now,
		    "GitHub answered %ld (%d failed in a row)",
		    res->hr_status, gh->gh_failures);
	else
		github_pause_start(gh, PAUSE_BACKOFF, now + delay, now,
		    "GitHub could not be reached: %s (%d failed in a row)",
		    res->hr_error != NULL ? res->hr_error : "no answer",
		    gh->gh_failures);
}

static int
github_says_secondary(const struct http_response *res)
{
	struct json_doc	 doc;
	const char	*why;
	char		*msg = NULL;
	int		 found;

	if (json_parse(&doc, (const char *)res->hr_body.b_data,
	    res->hr_body.b_len, &why) == -1)
		return 0;
	if (json_type(&doc, 0) == JSON_OBJECT)
		msg = json_member_str(&doc, 0, "message");
	json_free(&doc);
	found = msg != NULL && strcasestr(msg, "secondary rate limit") != NULL;
	free(msg);
	return found;
}

/*
 * A 403 or 429 that is a rate limit pauses everything: until Retry-After
 * or the reset, whichever is later, or else for the secondary limit's
 * growing pause.  Returns 1 if it was one.
 */
static int
github_on_limited(struct github *gh, const struct http_response *res,
    const struct github_limits *gl, int64_t now)
{
	int64_t	 retry, until = 0, delay;

	retry = github_header_i64(res, "retry-after");
	if (retry >= 0) {
		if (retry < GITHUB_RETRY_AFTER_MIN)
			retry = GITHUB_RETRY_AFTER_MIN;
		if (retry > GITHUB_RETRY_AFTER_MAX)
			retry = GITHUB_RETRY_AFTER_MAX;
		until = now + retry * 1000;
	}
	if (gl->gl_remaining == 0) {
		if (gl->gl_reset > 0 && gl->gl_reset * 1000 > until)
			until = gl->gl_reset * 1000;
		if (until <= now)
			until = now + GITHUB_SECONDARY_PAUSE_MS;
	}
	if (until > 0) {
		github_pause_start(gh, PAUSE_LIMITED, until, now,
		    "rate limit (GitHub answered %ld%s)", res->hr_status,
		    retry >= 0 ? " with Retry-After" : "");
		return 1;
	}

	if (res->hr_status != 429 && !github_says_secondary(res))
		return 0;
	if (gh->gh_secondary < 64)
		gh->gh_secondary++;
	delay = github_backoff_delay(GITHUB_SECONDARY_PAUSE_MS,
	    GITHUB_SECONDARY_PAUSE_MAX_MS, gh->gh_secondary);
	github_pause_start(gh, PAUSE_LIMITED, now + delay, now,
	    "secondary rate limit (GitHub answered %ld, %d in a row)",
	    res->hr_status, gh->gh_secondary);
	return 1;
}

/* Waits for the reset while the budget is down to the reserve. */
static void
github_check_reserve(struct github *gh, const struct github_limits *gl,
    int64_t now)
{
	int64_t	 reserve = GITHUB_RATE_RESERVE;

	if (!gl->gl_core || gl->gl_remaining < 0 || gl->gl_reset <= 0)
		return;
	if (gl->gl_limit > 0) {
		if (gl->gl_limit / 100 > reserve)
			reserve = gl->gl_limit / 100;
		if (reserve > gl->gl_limit / 2)
			reserve = gl->gl_limit / 2;
	}
	if (gl->gl_remaining > reserve)
		return;
	github_pause_start(gh, PAUSE_RESERVE, (gl->gl_reset + 1) * 1000, now,
	    "%lld requests left, below the reserve of %lld, until the reset",
	    (long long)gl->gl_remaining, (long long)reserve);
}

/* What an answer (or its absence) says about sending the next ones. */
static void
github_pace(struct github *gh, const struct http_response *res,
    const struct github_limits *gl, int64_t sent)
{
	long	 st = res->hr_status;
	int64_t	 now = github_now(gh);

	if (st == 0 || st >= 500) {
		github_on_failure(gh, res, sent, now);
		return;
	}
	if ((st == 403 || st == 429) && github_on_limited(gh, res, gl, now))
		return;
	if ((st >= 200 && st < 300) || st == 304) {
		gh->gh_failures = 0;
		gh->gh_secondary = 0;
		if (gh->gh_pause == PAUSE_BACKOFF) {
			gh->gh_pause_until = now;
			github_pause_expire(gh, now);
		}
	}
	github_check_reserve(gh, gl, now);
}

int
github_paused(const struct github *gh, time_t *until, const char **why)
{
	int64_t	 now = github_now(gh);

	if (gh->gh_pause == PAUSE_NONE || now >= gh->gh_pause_until) {
		if (until != NULL)
			*until = 0;
		if (why != NULL)
			*why = NULL;
		return 0;
	}
	if (until != NULL)
		*until = (time_t)((gh->gh_pause_until + 999) / 1000);
	if (why != NULL)
		*why = gh->gh_pause_why;
	return 1;
}

void
github_get_stats(const struct github *gh, struct github_stats *gs)
{
	*gs = gh->gh_stats;
}

/* ---- requests ---------------------------------------------------------- */

/* ---- mutations, one at a time --------------------------------------- */

/*
 * GitHub asks for POST, PATCH, PUT and DELETE requests to be sent one
 * after the other, a second apart, or its secondary rate limit may stop
 * the integration.  Those that must wait keep their place in line; JIT
 * configurations and tokens go before deregistrations, which no job
 * waits for.  An App's installation token is exempt: the mutation
 * waiting for it would otherwise wait for itself.
 */
static int
github_is_spaced(const struct github *gh, const char *method,
    const char *url)
{
	const struct config	*conf = gh->gh_conf;

	return conf->c_mutation_interval_ms > 0 &&
	    strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    !github_app_url_is_app(conf->c_api_url, url);
}

static struct github_call *
github_spaced_next(struct github *gh)
{
	struct github_call	*gc, *first = NULL;

	TAILQ_FOREACH(gc, &gh->gh_calls, gc_entry) {
		if (!gc->gc_spaced)
			continue;
		if (strcmp(gc->gc_method, "DELETE") != 0)
			return gc;
		if (first == NULL)
			first = gc;
	}
	return first;
}

static int
github_mutation_waits(struct github *gh, const char *method, const char *url)
{
	if (!github_is_spaced(gh, method, url))
		return 0;
	return gh->gh_mutating || github_spaced_next(gh) != NULL ||
	    monotonic_ms() < gh->gh_mutated_ms +
	    gh->gh_conf->c_mutation_interval_ms;
}

static void
github_spacing_arm(struct github *gh)
{
	uint64_t	 now = monotonic_ms(), due;
	struct timeval	 tv = { 0, 0 };

	if (gh->gh_spacing_ev == NULL || gh->gh_mutating ||
	    github_spaced_next(gh) == NULL)
		return;
	due = gh->gh_mutated_ms + gh->gh_conf->c_mutation_interval_ms;
	if (due > now) {
		tv.tv_sec = (time_t)((due - now) / 1000);
		tv.tv_usec = (suseconds_t)((due - now) % 1000 * 1000);
	}
	evtimer_add(gh->gh_spacing_ev, &tv);
}

static void
github_spacing_fire(evutil_socket_t fd, short what, void *arg)
{
	struct github		*gh = arg;
	struct github_call	*gc;
	char			*method, *url, *body, *etag, why[256];
	int64_t			 now = github_now(gh);
	long			 id;

	(void)fd;
	(void)what;
	if (gh->gh_mutating || (gc = github_spaced_next(gh)) == NULL)
		return;
	if (monotonic_ms() < gh->gh_mutated_ms +
	    gh->gh_conf->c_mutation_interval_ms) {
		github_spacing_arm(gh);
		return;
	}
	TAILQ_REMOVE(&gh->gh_calls, gc, gc_entry);
	gc->gc_spaced = gc->gc_waiting = 0;
	method = gc->gc_method;
	url = gc->gc_url;
	body = gc->gc_body;
	etag = gc->gc_etag;
	gc->gc_method = gc->gc_url = gc->gc_body = gc->gc_etag = NULL;

	github_pause_expire(gh, now);
	if (gh->gh_pause != PAUSE_NONE) {
		snprintf(why, sizeof(why), "GitHub requests paused for %lld "
		    "s: %s", github_seconds_left(gh->gh_pause_until, now),
		    gh->gh_pause_why);
		gh->gh_stats.gs_refused++;
		github_call_fail(gc, why);
		github_spacing_arm(gh);
	} else {
		gc->gc_sent = now;
		id = github_dispatch(gh, gc, method, url, body, etag,
		    gc->gc_timeout_ms);
		if (id == -1)
			github_call_fail(gc, "cannot start the request");
	}
	free(method);
	free(url);
	free(body);
	free(etag);
}

static void
github_call_forget_request(struct github_call *gc)
{
	free(gc->gc_method);
	free(gc->gc_url);
	free(gc->gc_body);
	free(gc->gc_etag);
	gc->gc_method = gc->gc_url = gc->gc_body = gc->gc_etag = NULL;
}

/* The mutation out has ended: the next may go once its time comes. */
static void
github_call_free(struct github_call *gc)
{
	if (gc->gc_mutation && gc->gc_gh != NULL) {
		gc->gc_gh->gh_mutating = 0;
		github_spacing_arm(gc->gc_gh);
	}
	github_call_forget_request(gc);
	free(gc->gc_cache_url);
	free(gc);
}

/* Counts an answer and lets it steer the pauses. */
static void
github_account(struct github *gh, struct github_call *gc,
    const struct http_response *res)
{
	struct github_limits	 gl;
	char			 labels[GITHUB_ENDPOINT_MAX + 32];

	/* A request cancelled here was not GitHub's failure. */
	if (res->hr_status == 0 &&
	    res->hr_curl_code == CURLE_ABORTED_BY_CALLBACK)
		return;
	snprintf(labels, sizeof(labels), "endpoint=\"%s\",code=\"%ld\"",
	    gc->gc_endpoint, res->hr_status);
	counter_add(&github_requests, labels, 1);

	github_limits_read(res, &gl);
	if (res->hr_status != 0) {
		gh->gh_stats.gs_requests++;
		if (res->hr_status == 304)
			gh->gh_stats.gs_not_modified++;
		else
			gh->gh_stats.gs_charged++;
	}
	if (gl.gl_core && gl.gl_remaining >= 0) {
		gh->gh_stats.gs_remaining = gl.gl_remaining;
		github_remaining = gl.gl_remaining;
	}
	if (gl.gl_core && gl.gl_limit >= 0)
		gh->gh_stats.gs_limit = gl.gl_limit;
	if (gl.gl_core && gl.gl_reset > 0)
		gh->gh_stats.gs_reset = (time_t)gl.gl_reset;
	github_pace(gh, res, &gl, gc->gc_sent);
}

static void
github_on_done(struct http_response *res, void *arg)
{
	struct github_call	*gc = arg;
	struct github		*gh = gc->gc_gh;
	struct github_cached	*gk = NULL;

	if (gh == NULL) {
		github_call_free(gc);
		return;
	}
	TAILQ_REMOVE(&gh->gh_calls, gc, gc_entry);
	if (!gc->gc_refused)
		github_account(gh, gc, res);
	if (gc->gc_installation != 0 && res->hr_status == 401)
		github_app_forget(gh->gh_app, gc->gc_installation);

	if (gc->gc_cache_url != NULL && res->hr_status == 200)
		github_cache_store(gh, gc->gc_cache_url, res);
	else if (gc->gc_cache_url != NULL && res->hr_status == 304) {
		if ((gk = github_cache_find(gh, gc->gc_cache_url)) != NULL) {
			github_cache_answer(gc, gk, res);
			github_call_free(gc);
			return;
		}
		/* Evicted while the request was out: no body to give. */
		res->hr_status = 0;
		res->hr_error = "GitHub answered 304 for an answer no longer "
		    "cached";
	}
	gc->gc_done(res, gc->gc_arg);
	github_call_free(gc);
}

void
github_metrics(struct buf *out)
{
	counter_write(&github_requests, "ephemerd_github_requests_total",
	    out);
	if (github_remaining >= 0)
		buf_printf(out, "ephemerd_github_rate_limit_remaining %lld\n",
		    (long long)github_remaining);
	if (github_current != NULL)
		buf_printf(out, "ephemerd_github_paused %d\n",
		    github_paused(github_current, NULL, NULL));
}

void
github_metrics_free(void)
{
	counter_set_free(&github_requests);
}

/* GET /rate_limit costs nothing and is how health checks see GitHub. */
static int
github_exempt(const char *method, const struct github_call *gc)
{
	return strcmp(method, "GET") == 0 &&
	    strcmp(gc->gc_endpoint, "/rate_limit") == 0;
}

/* A request that is not sent: done hears why on the next turn. */
static long
github_refuse(struct github *gh, struct github_call *gc, const char *why)
{
	long	 id;

	gc->gc_refused = 1;
	TAILQ_INSERT_TAIL(&gh->gh_calls, gc, gc_entry);
	if ((id = http_request_refuse(gh->gh_http, why, github_on_done,
	    gc)) == -1)
		TAILQ_REMOVE(&gh->gh_calls, gc, gc_entry);
	return id;
}

/* The validator to send: the caller's ETag, or the cache's. */
static char *
github_condition(struct github *gh, struct github_call *gc,
    const char *method, const char *url, const char *etag)
{
	struct github_cached	*gk;
	char			*h = NULL;

	if (etag != NULL) {
		xasprintf(&h, "If-None-Match: %s", etag);
		return h;
	}
	if (strcmp(method, "GET") != 0)
		return NULL;
	/* One URL answers each installation its own way. */
	if (gc->gc_want_install != 0)
		xasprintf(&gc->gc_cache_url, "%s#installation=%" PRIu64, url,
		    gc->gc_want_install);
	else
		gc->gc_cache_url = xstrdup(url);
	if ((gk = github_cache_find(gh, url)) == NULL)
		return NULL;
	if (gk->gk_etag != NULL)
		xasprintf(&h, "If-None-Match: %s", gk->gk_etag);
	else
		xasprintf(&h, "If-Modified-Since: %s", gk->gk_modified);
	return h;
}

/* Sends a request with the token (or JWT) given; -1 leaves gc alone. */
static long
github_send(struct github *gh, struct github_call *gc, const char *method,
    const char *url, const char *body, const char *etag, long timeout_ms,
    const char *token)
{
	const struct config	*conf = gh->gh_conf;
	struct http_request	 rq;
	char			*h[7];
	long			 id;
	int			 i, n = 0;

	h[n++] = xstrdup("Accept: application/vnd.github+json");
	h[n++] = xstrdup("User-Agent: " POLLER_USER_AGENT);
	h[n++] = xstrdup("X-GitHub-Api-Version: " GITHUB_API_VERSION);
	if (token != NULL && token[0] != '\0')
		xasprintf(&h[n++], "Authorization: Bearer %s", token);
	if (body != NULL)
		h[n++] = xstrdup("Content-Type: application/json");
	if ((h[n] = github_condition(gh, gc, method, url, etag)) != NULL)
		n++;
	h[n] = NULL;

	memset(&rq, 0, sizeof(rq));
	rq.hq_method = method;
	rq.hq_url = url;
	rq.hq_headers = (const char **)h;
	rq.hq_body = body;
	rq.hq_body_len = body != NULL ? strlen(body) : 0;
	rq.hq_timeout_ms = timeout_ms > 0 ? timeout_ms : GITHUB_TIMEOUT_MS;
	rq.hq_ca_file = conf->c_ca_file != NULL && conf->c_ca_file[0] != '\0' ?
	    conf->c_ca_file : NULL;
	TAILQ_INSERT_TAIL(&gh->gh_calls, gc, gc_entry);
	if ((id = http_request_start(gh->gh_http, &rq, github_on_done,
	    gc)) == -1)
		TAILQ_REMOVE(&gh->gh_calls, gc, gc_entry);

	for (i = 0; i < n; i++)
		freezero_str(h[i]);
	return id;
}

/* A waiting request that cannot be sent ends here, answered at once. */
static void
github_call_fail(struct github_call *gc, const char *why)
{
	struct http_response	 res;

	memset(&res, 0, sizeof(res));
	res.hr_error = why;
	buf_init(&res.hr_body);
	buf_init(&res.hr_headers);
	gc->gc_done(&res, gc->gc_arg);
	github_call_free(gc);
}

/* The token a request waited for came, or will not. */
static void
github_on_token(const char *token, uint64_t installation, const char *err,
    void *arg)
{
	struct github_call	*gc = arg;
	struct github		*gh = gc->gc_gh;

	TAILQ_REMOVE(&gh->gh_calls, gc, gc_entry);
	gc->gc_waiting = 0;
	if (token == NULL) {
		github_call_fail(gc, err);
		return;
	}
	gc->gc_installation = installation;
	gc->gc_sent = github_now(gh);
	if (github_send(gh, gc, gc->gc_method, gc->gc_url, gc->gc_body,
	    gc->gc_etag, gc->gc_timeout_ms, token) == -1) {
		github_call_fail(gc, "cannot start the request");
		return;
	}
	github_call_forget_request(gc);
}

/* Keeps what a request needs until its installation's token comes. */
static long
github_wait(struct github *gh, struct github_call *gc, const char *method,
    const char *url, const char *body, const char *etag, long timeout_ms)
{
	gc->gc_waiting = 1;
	if (gc->gc_wait_id == 0)
		gc->gc_wait_id = ++gh->gh_next_wait_id;
	gc->gc_method = xstrdup(method);
	gc->gc_url = xstrdup(url);
	gc->gc_body = body != NULL ? xstrdup(body) : NULL;
	gc->gc_etag = etag != NULL ? xstrdup(etag) : NULL;
	gc->gc_timeout_ms = timeout_ms;
	TAILQ_INSERT_TAIL(&gh->gh_calls, gc, gc_entry);
	return gc->gc_wait_id;
}

/*
 * App mode: /app/... takes a JWT made for this one request, anything
 * else its installation's token, which may first have to be asked for.
 */
static long
github_request_app(struct github *gh, struct github_call *gc,
    const char *method, const char *url, const char *body, const char *etag,
    long timeout_ms)
{
	const struct config	*conf = gh->gh_conf;
	const char		*token;
	char			*jwt, err[256];
	uint64_t		 installation;
	long			 id;

	if (github_app_url_is_app(conf->c_api_url, url)) {
		if (github_app_jwt(conf->c_private_key, conf->c_app_id,
		    time(NULL), &jwt, err, sizeof(err)) == -1)
			return github_refuse(gh, gc, err);
		id = github_send(gh, gc, method, url, body, etag, timeout_ms,
		    jwt);
		freezero_str(jwt);
		return id;
	}

	switch (github_app_token(gh->gh_app, url, gc->gc_want_install, &token,
	    &installation, err, sizeof(err), github_on_token, gc)) {
	case 1:
		gc->gc_installation = installation;
		return github_send(gh, gc, method, url, body, etag, timeout_ms,
		    token);
	case -1:
		return github_refuse(gh, gc, err);
	default:
		return github_wait(gh, gc, method, url, body, etag, timeout_ms);
	}
}

/* Sends with the token, or the App's credentials; -1 leaves gc alone. */
static long
github_dispatch(struct github *gh, struct github_call *gc,
    const char *method, const char *url, const char *body, const char *etag,
    long timeout_ms)
{
	const struct config	*conf = gh->gh_conf;

	if (github_is_spaced(gh, method, url)) {
		gc->gc_mutation = 1;
		gh->gh_mutating = 1;
		gh->gh_mutated_ms = monotonic_ms();
	}
	if (github_app_configured(conf))
		return github_request_app(gh, gc, method, url, body, etag,
		    timeout_ms);
	return github_send(gh, gc, method, url, body, etag, timeout_ms,
	    conf->c_token);
}

long
github_request(struct github *gh, const char *method, const char *url,
    const char *body, const char *etag, long timeout_ms, http_done_fn done,
    void *arg)
{
	return github_request_as(gh, 0, method, url, body, etag, timeout_ms,
	    done, arg);
}

long
github_request_as(struct github *gh, uint64_t installation,
    const char *method, const char *url, const char *body, const char *etag,
    long timeout_ms, http_done_fn done, void *arg)
{
	const struct config	*conf = gh->gh_conf;
	struct github_call	*gc;
	char			 why[256];
	long			 id;
	int64_t			 now = github_now(gh);

	gc = xcalloc(1, sizeof(*gc));
	gc->gc_gh = gh;
	gc->gc_want_install = installation;
	gc->gc_sent = now;
	gc->gc_done = done;
	gc->gc_arg = arg;
	github_endpoint_template(conf->c_api_url, url, gc->gc_endpoint,
	    sizeof(gc->gc_endpoint));
	github_pause_expire(gh, now);
	if (gh->gh_pause != PAUSE_NONE && !github_exempt(method, gc)) {
		snprintf(why, sizeof(why), "GitHub requests paused for %lld "
		    "s: %s", github_seconds_left(gh->gh_pause_until, now),
		    gh->gh_pause_why);
		if ((id = github_refuse(gh, gc, why)) == -1)
			github_call_free(gc);
		else
			gh->gh_stats.gs_refused++;
		return id;
	}

	if (github_mutation_waits(gh, method, url)) {
		gc->gc_spaced = 1;
		id = github_wait(gh, gc, method, url, body, etag, timeout_ms);
		github_spacing_arm(gh);
		return id;
	}
	if ((id = github_dispatch(gh, gc, method, url, body, etag,
	    timeout_ms)) == -1)
		github_call_free(gc);
	return id;
}

/* Cancels a request github_request() started, sent or still waiting. */
static void
github_cancel(struct github *gh, long id)
{
	struct github_call	*gc;

	TAILQ_FOREACH(gc, &gh->gh_calls, gc_entry)
		if (gc->gc_waiting && gc->gc_wait_id == id)
			break;
	if (gc == NULL) {
		http_cancel(gh->gh_http, id);
		return;
	}
	TAILQ_REMOVE(&gh->gh_calls, gc, gc_entry);
	if (!gc->gc_spaced && gh->gh_app != NULL)
		github_app_cancel(gh->gh_app, gc);
	github_call_fail(gc, "cancelled");
}

/* ---- pagination -------------------------------------------------------- */

static void	 github_pages_on_page(struct http_response *, void *);

static void
github_pages_finish(struct github_pages *gp, int ok, const char *err)
{
	TAILQ_REMOVE(&gp->gp_gh->gh_walks, gp, gp_entry);
	gp->gp_done(ok, gp->gp_changed, err, gp->gp_arg);
	free(gp->gp_url);
	free(gp);
}

/* The next page, if it is one to follow; the token goes nowhere else. */
static char *
github_pages_next(struct github_pages *gp, const struct http_response *res,
    const char **err)
{
	const char	*api = gp->gp_gh->gh_conf->c_api_url;
	char		*link, *next = NULL;
	size_t		 len = strlen(api);

	*err = NULL;
	if ((link = http_header_get(res, "Link")) != NULL)
		next = github_link_next(link);
	free(link);
	if (next != NULL && (strncmp(next, api, len) != 0 ||
	    next[len] != '/')) {
		free(next);
		*err = "the next page is not under the API URL";
		return NULL;
	}
	return next;
}

static void
github_pages_on_page(struct http_response *res, void *arg)
{
	struct github_pages	*gp = arg;
	const char		*err;
	char			*text, *next;

	gp->gp_http_id = -1;
	if (gp->gp_cancelled) {
		github_pages_finish(gp, 0, "cancelled");
		return;
	}
	if (res->hr_status < 200 || res->hr_status > 299) {
		text = github_error_text(res);
		github_pages_finish(gp, 0, text);
		free(text);
		return;
	}

	if (!res->hr_cached)
		gp->gp_changed = 1;
	if (gp->gp_page(res, gp->gp_arg) == -1 || gp->gp_cancelled) {
		github_pages_finish(gp, 0, gp->gp_cancelled ? "cancelled" :
		    "a page was refused");
		return;
	}
	next = github_pages_next(gp, res, &err);
	if (next == NULL || ++gp->gp_pages >= gp->gp_max) {
		free(next);
		github_pages_finish(gp, err == NULL, err);
		return;
	}

	free(gp->gp_url);
	gp->gp_url = next;
	gp->gp_http_id = github_request(gp->gp_gh, "GET", gp->gp_url, NULL,
	    NULL, 0, github_pages_on_page, gp);
	if (gp->gp_http_id == -1)
		github_pages_finish(gp, 0, "cannot start the request");
}

long
github_get_pages(struct github *gh, const char *url, int max_pages,
    github_page_fn page, github_pages_done_fn done, void *arg)
{
	struct github_pages	*gp;

	if (url == NULL || max_pages < 1 || page == NULL || done == NULL)
		return -1;
	gp = xcalloc(1, sizeof(*gp));
	gp->gp_gh = gh;
	gp->gp_id = ++gh->gh_next_walk;
	gp->gp_url = xstrdup(url);
	gp->gp_max = max_pages;
	gp->gp_page = page;
	gp->gp_done = done;
	gp->gp_arg = arg;
	TAILQ_INSERT_TAIL(&gh->gh_walks, gp, gp_entry);

	gp->gp_http_id = github_request(gh, "GET", gp->gp_url, NULL, NULL, 0,
	    github_pages_on_page, gp);
	if (gp->gp_http_id == -1) {
		TAILQ_REMOVE(&gh->gh_walks, gp, gp_entry);
		free(gp->gp_url);
		free(gp);
		return -1;
	}
	return gp->gp_id;
}

void
github_cancel_pages(struct github *gh, long id)
{
	struct github_pages	*gp;

	TAILQ_FOREACH(gp, &gh->gh_walks, gp_entry)
		if (gp->gp_id == id)
			break;
	if (gp == NULL || gp->gp_cancelled)
		return;
	gp->gp_cancelled = 1;
	if (gp->gp_http_id != -1)
		github_cancel(gh, gp->gp_http_id);
}

int
github_json(struct json_doc *doc, const struct http_response *res,
    const char **why)
{
	if (res->hr_status == 0) {
		*why = "GitHub did not answer";
		return -1;
	}
	if (res->hr_body.b_len == 0) {
		*why = "GitHub's answer has no body";
		return -1;
	}
	return json_parse(doc, (const char *)res->hr_body.b_data,
	    res->hr_body.b_len, why);
}

void
github_drop_waiting(struct github *gh)
{
	struct github_call	*gc;

	if (gh == NULL)
		return;
	for (;;) {
		TAILQ_FOREACH(gc, &gh->gh_calls, gc_entry)
			if (gc->gc_waiting)
				break;
		if (gc == NULL)
			return;
		TAILQ_REMOVE(&gh->gh_calls, gc, gc_entry);
		if (!gc->gc_spaced && gh->gh_app != NULL)
			github_app_cancel(gh->gh_app, gc);
		gc->gc_spaced = gc->gc_waiting = 0;
		github_call_fail(gc, "the GitHub client is stopping");
	}
}

void
github_free(struct github *gh)
{
	struct github_call	*gc;
	struct github_pages	*gp;

	if (gh == NULL)
		return;
	/*
	 * Answers still to come find no client and reach nobody; requests
	 * that waited for a token never had one.
	 */
	event_free(gh->gh_spacing_ev);
	gh->gh_spacing_ev = NULL;
	github_app_free(gh->gh_app);
	while ((gc = TAILQ_FIRST(&gh->gh_calls)) != NULL) {
		TAILQ_REMOVE(&gh->gh_calls, gc, gc_entry);
		if (gc->gc_waiting)
			github_call_free(gc);
		else
			gc->gc_gh = NULL;
	}
	while ((gp = TAILQ_FIRST(&gh->gh_walks)) != NULL) {
		TAILQ_REMOVE(&gh->gh_walks, gp, gp_entry);
		free(gp->gp_url);
		free(gp);
	}
	github_cache_clear(gh);
	if (github_current == gh)
		github_current = NULL;
	free(gh);
}
