/*
 * GitHub requests for runners and the pure functions around them.  The
 * parsers are strict about the fields they need and ignore the rest, as
 * GitHub adds fields over time.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "counters.h"
#include "github.h"
#include "json.h"
#include "poller.h"
#include "runner.h"
#include "util.h"

struct github {
	struct http_client	*gh_http;
	const struct config	*gh_conf;
};

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

struct github *
github_new(struct http_client *http, const struct config *conf)
{
	struct github	*gh = xcalloc(1, sizeof(*gh));

	gh->gh_http = http;
	gh->gh_conf = conf;
	return gh;
}

void
github_free(struct github *gh)
{
	free(gh);
}

/* Every answer is counted, by endpoint and status, for /metrics. */
static struct counter_set	 github_requests;
static int64_t			 github_remaining = -1;

struct github_call {
	http_done_fn	 gc_done;
	void		*gc_arg;
	char		 gc_endpoint[GITHUB_ENDPOINT_MAX];
};

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
			out[n++] = isalnum((unsigned char)p[i]) || p[i] == '-' ||
			    p[i] == '_' || p[i] == '.' ? p[i] : '_';
		out[n < outlen ? n : outlen - 1] = '\0';
		if (name != NULL && n + 1 < outlen)
			n += snprintf(out + n, outlen - n, "%s", name);
		if (n >= outlen)
			n = outlen - 1;
		p = end;
		index++;
	}
}

static void
github_on_done(struct http_response *res, void *arg)
{
	struct github_call	*gc = arg;
	char			 labels[GITHUB_ENDPOINT_MAX + 32], *rem;
	const char		*why;
	uint64_t		 v;

	snprintf(labels, sizeof(labels), "endpoint=\"%s\",code=\"%ld\"",
	    gc->gc_endpoint, res->hr_status);
	counter_add(&github_requests, labels, 1);
	if ((rem = http_header_get(res, "x-ratelimit-remaining")) != NULL &&
	    parse_u64(rem, 0, INT64_MAX, &v, &why) == 0)
		github_remaining = (int64_t)v;
	free(rem);

	gc->gc_done(res, gc->gc_arg);
	free(gc);
}

void
github_metrics(struct buf *out)
{
	counter_write(&github_requests, "ephemerd_github_requests_total",
	    out);
	if (github_remaining >= 0)
		buf_printf(out, "ephemerd_github_rate_limit_remaining %lld\n",
		    (long long)github_remaining);
}

void
github_metrics_free(void)
{
	counter_set_free(&github_requests);
}

long
github_request(struct github *gh, const char *method, const char *url,
    const char *body, const char *etag, long timeout_ms, http_done_fn done,
    void *arg)
{
	const struct config	*conf = gh->gh_conf;
	struct http_request	 rq;
	struct github_call	*gc;
	char			*h[7];
	long			 id;
	int			 i, n = 0;

	h[n++] = xstrdup("Accept: application/vnd.github+json");
	h[n++] = xstrdup("User-Agent: " POLLER_USER_AGENT);
	h[n++] = xstrdup("X-GitHub-Api-Version: " GITHUB_API_VERSION);
	if (conf->c_token != NULL && conf->c_token[0] != '\0')
		xasprintf(&h[n++], "Authorization: Bearer %s", conf->c_token);
	if (body != NULL)
		h[n++] = xstrdup("Content-Type: application/json");
	if (etag != NULL)
		xasprintf(&h[n++], "If-None-Match: %s", etag);
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
	gc = xcalloc(1, sizeof(*gc));
	gc->gc_done = done;
	gc->gc_arg = arg;
	github_endpoint_template(conf->c_api_url, url, gc->gc_endpoint,
	    sizeof(gc->gc_endpoint));
	if ((id = http_request_start(gh->gh_http, &rq, github_on_done,
	    gc)) == -1)
		free(gc);

	for (i = 0; i < n; i++)
		freezero_str(h[i]);
	return id;
}
