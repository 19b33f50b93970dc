/*
 * Unit tests for the GitHub client of the poller: conditional GETs from
 * the cache, pagination, rate-limit pauses and backoff, JSON checks.
 * github.c talks to an evhttp server in the same event base that answers
 * like GitHub from a table of resources and a queue of forced answers.
 * The client's clock is a fake one, so pauses are checked without waiting.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "buf.h"
#include "config.h"
#include "github.h"
#include "http_client.h"
#include "json.h"
#include "util.h"

#define RESOURCES_MAX	8
#define FORCED_MAX	8
#define SEEN_MAX	64
#define WAIT_MS		5000

/* 2023-11-14T22:13:20Z, a whole second. */
#define CLOCK_START_MS	1700000000000LL

struct resource {
	char		*rs_path;
	char		*rs_etag;	/* or NULL */
	char		*rs_modified;	/* or NULL */
	char		*rs_link;	/* or NULL */
	char		*rs_body;
};

struct forced {
	char		*fo_path;	/* NULL for any */
	int		 fo_status;
	char		*fo_header;	/* "Name: value" or NULL */
	char		*fo_body;
};

/* What the server saw of one request. */
struct seen {
	char		 se_method[8];
	char		 se_uri[256];
	char		 se_inm[128];	/* If-None-Match */
	char		 se_ims[128];	/* If-Modified-Since */
	char		 se_auth[128];
	int		 se_port;	/* the client's, one per connection */
	uint64_t	 se_ms;		/* monotonic, when it came */
};

struct server {
	struct evhttp	*sv_http;
	int		 sv_port;
	struct resource	 sv_res[RESOURCES_MAX];
	int		 sv_nres;
	struct forced	 sv_forced[FORCED_MAX];
	int		 sv_nforced;
	struct seen	 sv_seen[SEEN_MAX];
	int		 sv_nseen;
	long long	 sv_limit;	/* 0: no x-ratelimit-* headers */
	long long	 sv_remaining;
	long long	 sv_reset;
};

struct fixture {
	struct event_base	*fx_base;
	struct server		 fx_srv;
	struct http_client	*fx_http;
	struct github		*fx_gh;
	struct config		 fx_conf;
};

/* One answer as the caller of github_request got it. */
struct answer {
	int		 an_done;
	long		 an_status;
	int		 an_cached;
	char		*an_error;
	char		*an_body;
	char		*an_remaining;
	char		*an_etag;
};

struct walk {
	int		 wk_pages;
	int		 wk_cached;
	int		 wk_done;
	int		 wk_ok;
	int		 wk_changed;
	char		*wk_err;
	struct buf	 wk_bodies;
};

static int64_t	 fake_now = CLOCK_START_MS;

static int64_t
fake_clock(void)
{
	return fake_now;
}

static time_t
fake_seconds(void)
{
	return (time_t)(fake_now / 1000);
}

/* ---- the server -------------------------------------------------------- */

static void
srv_add_resource(struct server *sv, const char *path, const char *etag,
    const char *modified, const char *link, const char *body)
{
	struct resource	*rs = &sv->sv_res[sv->sv_nres++];

	assert_true(sv->sv_nres <= RESOURCES_MAX);
	rs->rs_path = xstrdup(path);
	rs->rs_etag = etag != NULL ? xstrdup(etag) : NULL;
	rs->rs_modified = modified != NULL ? xstrdup(modified) : NULL;
	rs->rs_link = link != NULL ? xstrdup(link) : NULL;
	rs->rs_body = xstrdup(body);
}

static struct resource *
srv_find(struct server *sv, const char *path)
{
	int	 i;

	for (i = 0; i < sv->sv_nres; i++)
		if (strcmp(sv->sv_res[i].rs_path, path) == 0)
			return &sv->sv_res[i];
	return NULL;
}

static void
srv_set_etag(struct server *sv, const char *path, const char *etag,
    const char *body)
{
	struct resource	*rs = srv_find(sv, path);

	assert_non_null(rs);
	free(rs->rs_etag);
	rs->rs_etag = etag != NULL ? xstrdup(etag) : NULL;
	free(rs->rs_body);
	rs->rs_body = xstrdup(body);
}

/* The next request for path (NULL: any) gets this answer. */
static void
srv_force_at(struct server *sv, const char *path, int status,
    const char *header, const char *body)
{
	struct forced	*fo = &sv->sv_forced[sv->sv_nforced++];

	assert_true(sv->sv_nforced <= FORCED_MAX);
	fo->fo_path = path != NULL ? xstrdup(path) : NULL;
	fo->fo_status = status;
	fo->fo_header = header != NULL ? xstrdup(header) : NULL;
	fo->fo_body = xstrdup(body != NULL ? body : "");
}

static void
srv_force(struct server *sv, int status, const char *header,
    const char *body)
{
	srv_force_at(sv, NULL, status, header, body);
}

static int
srv_forced_for(struct server *sv, const char *uri)
{
	int	 i;

	for (i = 0; i < sv->sv_nforced; i++)
		if (sv->sv_forced[i].fo_path == NULL ||
		    strcmp(sv->sv_forced[i].fo_path, uri) == 0)
			return i;
	return -1;
}

static void
srv_copy_header(struct evkeyvalq *in, const char *name, char *out,
    size_t len)
{
	const char	*v = evhttp_find_header(in, name);

	snprintf(out, len, "%s", v != NULL ? v : "");
}

static void
srv_record(struct server *sv, struct evhttp_request *req)
{
	struct evkeyvalq	*in = evhttp_request_get_input_headers(req);
	struct seen		*se;
	const char		*m;
	char			*host;
	ev_uint16_t		 port;

	assert_true(sv->sv_nseen < SEEN_MAX);
	se = &sv->sv_seen[sv->sv_nseen++];
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		m = "GET";
		break;
	case EVHTTP_REQ_POST:
		m = "POST";
		break;
	case EVHTTP_REQ_DELETE:
		m = "DELETE";
		break;
	default:
		m = "OTHER";
		break;
	}
	snprintf(se->se_method, sizeof(se->se_method), "%s", m);
	snprintf(se->se_uri, sizeof(se->se_uri), "%s",
	    evhttp_request_get_uri(req));
	srv_copy_header(in, "If-None-Match", se->se_inm, sizeof(se->se_inm));
	srv_copy_header(in, "If-Modified-Since", se->se_ims,
	    sizeof(se->se_ims));
	srv_copy_header(in, "Authorization", se->se_auth, sizeof(se->se_auth));
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &host,
	    &port);
	se->se_port = port;
	se->se_ms = monotonic_ms();
}

static void
srv_rate_headers(struct server *sv, struct evkeyvalq *out)
{
	char	 v[32];

	if (sv->sv_limit == 0)
		return;
	snprintf(v, sizeof(v), "%lld", sv->sv_limit);
	evhttp_add_header(out, "X-RateLimit-Limit", v);
	snprintf(v, sizeof(v), "%lld", sv->sv_remaining);
	evhttp_add_header(out, "X-RateLimit-Remaining", v);
	snprintf(v, sizeof(v), "%lld", sv->sv_reset);
	evhttp_add_header(out, "X-RateLimit-Reset", v);
	evhttp_add_header(out, "X-RateLimit-Resource", "core");
}

static void
srv_reply(struct evhttp_request *req, int status, const char *body)
{
	struct evbuffer	*b = evbuffer_new();

	evbuffer_add(b, body, strlen(body));
	evhttp_send_reply(req, status, status == 200 ? "OK" : "Status", b);
	evbuffer_free(b);
}

static void
srv_reply_forced(struct server *sv, struct evhttp_request *req, int i)
{
	struct evkeyvalq	*out = evhttp_request_get_output_headers(req);
	struct forced		 fo = sv->sv_forced[i];
	char			*colon;

	memmove(&sv->sv_forced[i], &sv->sv_forced[i + 1],
	    (--sv->sv_nforced - i) * sizeof(sv->sv_forced[0]));
	if (fo.fo_header != NULL) {
		colon = strchr(fo.fo_header, ':');
		*colon = '\0';
		evhttp_add_header(out, fo.fo_header, colon + 2);
	}
	srv_reply(req, fo.fo_status, fo.fo_body);
	free(fo.fo_path);
	free(fo.fo_header);
	free(fo.fo_body);
}

/* /n/N is a resource whose ETag is "N", for filling the cache. */
static void
srv_reply_numbered(struct evhttp_request *req, const struct seen *se)
{
	char	 etag[64];

	snprintf(etag, sizeof(etag), "\"%s\"", se->se_uri + 3);
	if (strcmp(se->se_inm, etag) == 0) {
		evhttp_send_reply(req, 304, "Not Modified", NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "ETag",
	    etag);
	srv_reply(req, 200, etag);
}

/* Answers as GitHub does: 304 on a matching validator, free of charge. */
static void
srv_handle(struct evhttp_request *req, void *arg)
{
	struct server		*sv = arg;
	struct evkeyvalq	*out = evhttp_request_get_output_headers(req);
	struct seen		*se;
	struct resource		*rs;
	int			 forced;

	srv_record(sv, req);
	se = &sv->sv_seen[sv->sv_nseen - 1];
	if (strncmp(se->se_uri, "/n/", 3) == 0) {
		srv_reply_numbered(req, se);
		return;
	}
	if (strcmp(se->se_uri, "/rate_limit") != 0 &&
	    (rs = srv_find(sv, se->se_uri)) != NULL &&
	    ((rs->rs_etag != NULL && strcmp(se->se_inm, rs->rs_etag) == 0) ||
	    (rs->rs_modified != NULL &&
	    strcmp(se->se_ims, rs->rs_modified) == 0))) {
		srv_rate_headers(sv, out);
		evhttp_send_reply(req, 304, "Not Modified", NULL);
		return;
	}
	if (strcmp(se->se_uri, "/rate_limit") != 0 && sv->sv_remaining > 0)
		sv->sv_remaining--;
	srv_rate_headers(sv, out);
	if ((forced = srv_forced_for(sv, se->se_uri)) != -1) {
		srv_reply_forced(sv, req, forced);
		return;
	}
	if (strcmp(se->se_uri, "/rate_limit") == 0) {
		srv_reply(req, 200, "{\"resources\":{}}");
		return;
	}
	if ((rs = srv_find(sv, se->se_uri)) == NULL) {
		srv_reply(req, 404, "{\"message\":\"Not Found\"}");
		return;
	}
	if (rs->rs_etag != NULL)
		evhttp_add_header(out, "ETag", rs->rs_etag);
	if (rs->rs_modified != NULL)
		evhttp_add_header(out, "Last-Modified", rs->rs_modified);
	if (rs->rs_link != NULL)
		evhttp_add_header(out, "Link", rs->rs_link);
	srv_reply(req, 200, rs->rs_body);
}

static void
srv_start(struct server *sv, struct event_base *base)
{
	struct evhttp_bound_socket	*bs;
	struct sockaddr_in		 sin;
	socklen_t			 len = sizeof(sin);

	memset(sv, 0, sizeof(*sv));
	assert_non_null(sv->sv_http = evhttp_new(base));
	evhttp_set_allowed_methods(sv->sv_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
	evhttp_set_gencb(sv->sv_http, srv_handle, sv);
	bs = evhttp_bind_socket_with_handle(sv->sv_http, "127.0.0.1", 0);
	assert_non_null(bs);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs),
	    (struct sockaddr *)&sin, &len), 0);
	sv->sv_port = ntohs(sin.sin_port);
}

static void
srv_stop(struct server *sv)
{
	int	 i;

	evhttp_free(sv->sv_http);
	for (i = 0; i < sv->sv_nres; i++) {
		free(sv->sv_res[i].rs_path);
		free(sv->sv_res[i].rs_etag);
		free(sv->sv_res[i].rs_modified);
		free(sv->sv_res[i].rs_link);
		free(sv->sv_res[i].rs_body);
	}
	for (i = 0; i < sv->sv_nforced; i++) {
		free(sv->sv_forced[i].fo_path);
		free(sv->sv_forced[i].fo_header);
		free(sv->sv_forced[i].fo_body);
	}
}

/* ---- the client -------------------------------------------------------- */

static int
setup(void **state)
{
	struct fixture	*fx = xcalloc(1, sizeof(*fx));

	assert_non_null(fx->fx_base = event_base_new());
	srv_start(&fx->fx_srv, fx->fx_base);
	config_init(&fx->fx_conf);
	free(fx->fx_conf.c_api_url);
	xasprintf(&fx->fx_conf.c_api_url, "http://127.0.0.1:%d",
	    fx->fx_srv.sv_port);
	fx->fx_conf.c_token = xstrdup("ghp_testtoken");
	assert_non_null(fx->fx_http = http_client_new(fx->fx_base));
	fx->fx_gh = github_new(fx->fx_http, &fx->fx_conf);
	fake_now = CLOCK_START_MS;
	github_set_clock(fx->fx_gh, fake_clock);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	http_client_free(fx->fx_http);
	github_free(fx->fx_gh);
	srv_stop(&fx->fx_srv);
	config_free(&fx->fx_conf);
	event_base_free(fx->fx_base);
	free(fx);
	return 0;
}

static void
wait_for(struct fixture *fx, const int *flag)
{
	uint64_t	 end = monotonic_ms() + WAIT_MS;

	while (!*flag && monotonic_ms() < end)
		event_base_loop(fx->fx_base, EVLOOP_ONCE);
	assert_true(*flag);
}

static char *
header_or_null(const struct http_response *res, const char *name)
{
	return http_header_get(res, name);
}

static void
on_answer(struct http_response *res, void *arg)
{
	struct answer	*an = arg;

	an->an_done++;
	an->an_status = res->hr_status;
	an->an_cached = res->hr_cached;
	an->an_error = res->hr_error != NULL ? xstrdup(res->hr_error) : NULL;
	an->an_body = xstrndup(res->hr_body.b_len > 0 ?
	    (const char *)res->hr_body.b_data : "", res->hr_body.b_len);
	an->an_remaining = header_or_null(res, "x-ratelimit-remaining");
	an->an_etag = header_or_null(res, "ETag");
}

static void
answer_free(struct answer *an)
{
	free(an->an_error);
	free(an->an_body);
	free(an->an_remaining);
	free(an->an_etag);
	memset(an, 0, sizeof(*an));
}

static char *
url_of(struct fixture *fx, const char *path)
{
	char	*url;

	xasprintf(&url, "%s%s", fx->fx_conf.c_api_url, path);
	return url;
}

/* Sends one request and waits for its answer; done never comes early. */
static void
request(struct fixture *fx, const char *method, const char *path,
    const char *etag, struct answer *an)
{
	char	*url = url_of(fx, path);

	memset(an, 0, sizeof(*an));
	assert_true(github_request(fx->fx_gh, method, url,
	    strcmp(method, "POST") == 0 ? "{}" : NULL, etag, 0, on_answer,
	    an) > 0);
	assert_int_equal(an->an_done, 0);
	free(url);
	wait_for(fx, &an->an_done);
	assert_int_equal(an->an_done, 1);
}

/* ---- conditional requests ---------------------------------------------- */

static void
test_conditional_get(void **state)
{
	struct fixture		*fx = *state;
	struct server		*sv = &fx->fx_srv;
	struct github_stats	 gs;
	struct answer		 an;
	struct buf		 m;
	const char		*path = "/repos/o/r/actions/runners";
	int			 i;

	sv->sv_limit = 5000;
	sv->sv_remaining = 4000;
	sv->sv_reset = fake_seconds() + 3600;
	srv_add_resource(sv, path, "\"v1\"", NULL, NULL, "{\"runners\":[1]}");

	request(fx, "GET", path, NULL, &an);
	assert_int_equal(an.an_status, 200);
	assert_int_equal(an.an_cached, 0);
	assert_string_equal(sv->sv_seen[0].se_inm, "");
	assert_string_equal(sv->sv_seen[0].se_auth, "Bearer ghp_testtoken");
	answer_free(&an);

	/* The second is conditional; its 304 is the cached 200. */
	request(fx, "GET", path, NULL, &an);
	assert_string_equal(sv->sv_seen[1].se_inm, "\"v1\"");
	assert_int_equal(an.an_status, 200);
	assert_int_equal(an.an_cached, 1);
	assert_string_equal(an.an_body, "{\"runners\":[1]}");
	assert_string_equal(an.an_etag, "\"v1\"");
	assert_string_equal(an.an_remaining, "3999");
	answer_free(&an);

	github_get_stats(fx->fx_gh, &gs);
	assert_int_equal(gs.gs_requests, 2);
	assert_int_equal(gs.gs_not_modified, 1);
	assert_int_equal(gs.gs_charged, 1);
	assert_int_equal(gs.gs_remaining, 3999);
	assert_int_equal(gs.gs_limit, 5000);
	assert_int_equal(gs.gs_reset, fake_seconds() + 3600);

	buf_init(&m);
	github_metrics(&m);
	assert_non_null(strstr(buf_cstr(&m), "ephemerd_github_requests_total"
	    "{endpoint=\"/repos/{owner}/{repo}/actions/runners\","
	    "code=\"304\"} 1\n"));
	assert_non_null(strstr(buf_cstr(&m), "ephemerd_github_paused 0\n"));
	buf_free(&m);

	/* A changed resource comes whole, and is what is cached next. */
	srv_set_etag(sv, path, "\"v2\"", "{\"runners\":[2]}");
	request(fx, "GET", path, NULL, &an);
	assert_string_equal(sv->sv_seen[2].se_inm, "\"v1\"");
	assert_int_equal(an.an_cached, 0);
	assert_string_equal(an.an_body, "{\"runners\":[2]}");
	answer_free(&an);
	request(fx, "GET", path, NULL, &an);
	assert_string_equal(sv->sv_seen[3].se_inm, "\"v2\"");
	assert_int_equal(an.an_cached, 1);
	assert_string_equal(an.an_body, "{\"runners\":[2]}");
	answer_free(&an);

	/* The caller's own ETag bypasses the cache: its 304 stays one. */
	request(fx, "GET", path, "\"v2\"", &an);
	assert_string_equal(sv->sv_seen[4].se_inm, "\"v2\"");
	assert_int_equal(an.an_status, 304);
	assert_int_equal(an.an_cached, 0);
	answer_free(&an);

	/* A 200 without a validator forgets the URL. */
	srv_set_etag(sv, path, NULL, "{\"runners\":[3]}");
	request(fx, "GET", path, NULL, &an);
	assert_int_equal(an.an_cached, 0);
	answer_free(&an);
	request(fx, "GET", path, NULL, &an);
	assert_string_equal(sv->sv_seen[6].se_inm, "");
	answer_free(&an);

	/* Keep-alive: every request went over the first connection. */
	for (i = 1; i < sv->sv_nseen; i++)
		assert_int_equal(sv->sv_seen[i].se_port,
		    sv->sv_seen[0].se_port);
}

static void
test_last_modified(void **state)
{
	struct fixture	*fx = *state;
	struct server	*sv = &fx->fx_srv;
	struct answer	 an;
	const char	*when = "Tue, 19 Sep 2017 15:57:54 GMT";

	srv_add_resource(sv, "/repos/o/r", NULL, when, NULL, "{\"id\":1}");
	request(fx, "GET", "/repos/o/r", NULL, &an);
	answer_free(&an);
	request(fx, "GET", "/repos/o/r", NULL, &an);
	assert_string_equal(sv->sv_seen[1].se_inm, "");
	assert_string_equal(sv->sv_seen[1].se_ims, when);
	assert_int_equal(an.an_status, 200);
	assert_int_equal(an.an_cached, 1);
	assert_string_equal(an.an_body, "{\"id\":1}");
	answer_free(&an);

	/* A POST is never conditional. */
	request(fx, "POST", "/repos/o/r", NULL, &an);
	assert_string_equal(sv->sv_seen[2].se_ims, "");
	answer_free(&an);
}

/* Sends GET /n/n and tells whether it was conditional. */
static int
numbered_conditional(struct fixture *fx, int n)
{
	struct server	*sv = &fx->fx_srv;
	struct answer	 an;
	char		 path[32];

	snprintf(path, sizeof(path), "/n/%d", n);
	sv->sv_nseen = 0;
	request(fx, "GET", path, NULL, &an);
	assert_int_equal(an.an_status, 200);
	answer_free(&an);
	return sv->sv_seen[0].se_inm[0] != '\0';
}

/* The cache keeps GITHUB_CACHE_ENTRIES and drops the least recently used. */
static void
test_cache_bounded(void **state)
{
	struct fixture	*fx = *state;
	int		 i;

	for (i = 0; i < GITHUB_CACHE_ENTRIES; i++)
		assert_false(numbered_conditional(fx, i));
	assert_true(numbered_conditional(fx, 0));
	assert_false(numbered_conditional(fx, GITHUB_CACHE_ENTRIES));

	/* 1 was the oldest once 0 had been used again. */
	assert_false(numbered_conditional(fx, 1));
	assert_true(numbered_conditional(fx, 0));
	assert_true(numbered_conditional(fx, 2 + GITHUB_CACHE_ENTRIES / 2));
	assert_true(numbered_conditional(fx, GITHUB_CACHE_ENTRIES));
}

/* ---- pagination -------------------------------------------------------- */

static int
on_page(const struct http_response *res, void *arg)
{
	struct walk	*wk = arg;

	wk->wk_pages++;
	wk->wk_cached += res->hr_cached;
	buf_add(&wk->wk_bodies, res->hr_body.b_data, res->hr_body.b_len);
	return 0;
}

static int
on_page_refuse(const struct http_response *res, void *arg)
{
	on_page(res, arg);
	return -1;
}

static void
on_pages_done(int ok, int changed, const char *err, void *arg)
{
	struct walk	*wk = arg;

	wk->wk_done++;
	wk->wk_ok = ok;
	wk->wk_changed = changed;
	wk->wk_err = err != NULL ? xstrdup(err) : NULL;
}

static void
walk_run(struct fixture *fx, const char *path, int max, github_page_fn fn,
    struct walk *wk)
{
	char	*url = url_of(fx, path);

	memset(wk, 0, sizeof(*wk));
	buf_init(&wk->wk_bodies);
	assert_true(github_get_pages(fx->fx_gh, url, max, fn, on_pages_done,
	    wk) > 0);
	free(url);
	assert_int_equal(wk->wk_done, 0);
	wait_for(fx, &wk->wk_done);
	assert_int_equal(wk->wk_done, 1);
}

static void
walk_free(struct walk *wk)
{
	free(wk->wk_err);
	buf_free(&wk->wk_bodies);
}

static void
add_pages(struct fixture *fx, int n)
{
	char	 path[64], link[256], body[32], etag[16];
	int	 i;

	for (i = 1; i <= n; i++) {
		snprintf(path, sizeof(path), "/list?page=%d", i);
		snprintf(link, sizeof(link), "<%s/list?page=%d>; rel=\"next\", "
		    "<%s/list?page=%d>; rel=\"last\"", fx->fx_conf.c_api_url,
		    i + 1, fx->fx_conf.c_api_url, n);
		snprintf(body, sizeof(body), "[%d]", i);
		snprintf(etag, sizeof(etag), "\"p%d\"", i);
		srv_add_resource(&fx->fx_srv, path, etag, NULL,
		    i < n ? link : NULL, body);
	}
}

static void
test_pages(void **state)
{
	struct fixture	*fx = *state;
	struct server	*sv = &fx->fx_srv;
	struct walk	 wk;
	int		 i;

	add_pages(fx, 3);
	walk_run(fx, "/list?page=1", 10, on_page, &wk);
	assert_int_equal(wk.wk_ok, 1);
	assert_int_equal(wk.wk_changed, 1);
	assert_null(wk.wk_err);
	assert_int_equal(wk.wk_pages, 3);
	assert_int_equal(wk.wk_cached, 0);
	assert_string_equal(buf_cstr(&wk.wk_bodies), "[1][2][3]");
	walk_free(&wk);

	/* Nothing changed: every page is a 304 and the bodies are the same. */
	walk_run(fx, "/list?page=1", 10, on_page, &wk);
	assert_int_equal(wk.wk_ok, 1);
	assert_int_equal(wk.wk_changed, 0);
	assert_int_equal(wk.wk_pages, 3);
	assert_int_equal(wk.wk_cached, 3);
	assert_string_equal(buf_cstr(&wk.wk_bodies), "[1][2][3]");
	for (i = 3; i < 6; i++)
		assert_true(sv->sv_seen[i].se_inm[0] == '"');
	walk_free(&wk);

	/* One changed page makes the walk changed. */
	srv_set_etag(sv, "/list?page=3", "\"p3b\"", "[33]");
	walk_run(fx, "/list?page=1", 10, on_page, &wk);
	assert_int_equal(wk.wk_ok, 1);
	assert_int_equal(wk.wk_changed, 1);
	assert_int_equal(wk.wk_cached, 2);
	assert_string_equal(buf_cstr(&wk.wk_bodies), "[1][2][33]");
	walk_free(&wk);

	/* max_pages stops early and is not an error. */
	walk_run(fx, "/list?page=1", 2, on_page, &wk);
	assert_int_equal(wk.wk_ok, 1);
	assert_int_equal(wk.wk_pages, 2);
	walk_free(&wk);
}

static void
test_pages_errors(void **state)
{
	struct fixture	*fx = *state;
	struct server	*sv = &fx->fx_srv;
	struct walk	 wk;
	int		 seen;

	add_pages(fx, 3);
	srv_add_resource(sv, "/away", "\"a\"", NULL,
	    "<http://127.0.0.2:1/steal?page=2>; rel=\"next\"", "[]");

	/* A failed page ends the walk with GitHub's message. */
	srv_force_at(sv, "/list?page=2", 404, NULL,
	    "{\"message\":\"Not Found\"}");
	walk_run(fx, "/list?page=1", 10, on_page, &wk);
	assert_int_equal(wk.wk_ok, 0);
	assert_int_equal(wk.wk_pages, 1);
	assert_string_equal(wk.wk_err, "GitHub answered 404: Not Found");
	walk_free(&wk);

	/* The page handler can stop the walk. */
	walk_run(fx, "/list?page=1", 10, on_page_refuse, &wk);
	assert_int_equal(wk.wk_ok, 0);
	assert_int_equal(wk.wk_pages, 1);
	assert_non_null(wk.wk_err);
	walk_free(&wk);

	/* A next page elsewhere would carry the token there: refused. */
	seen = sv->sv_nseen;
	walk_run(fx, "/away", 10, on_page, &wk);
	assert_int_equal(wk.wk_ok, 0);
	assert_string_equal(wk.wk_err,
	    "the next page is not under the API URL");
	assert_int_equal(sv->sv_nseen, seen + 1);
	walk_free(&wk);

	assert_int_equal(github_get_pages(fx->fx_gh, "http://x", 0, on_page,
	    on_pages_done, &wk), -1);
}

static void
test_pages_cancel(void **state)
{
	struct fixture	*fx = *state;
	struct walk	 wk, wk2;
	char		*url;
	long		 id;

	add_pages(fx, 3);
	url = url_of(fx, "/list?page=1");
	memset(&wk, 0, sizeof(wk));
	buf_init(&wk.wk_bodies);
	id = github_get_pages(fx->fx_gh, url, 10, on_page, on_pages_done, &wk);
	assert_true(id > 0);
	github_cancel_pages(fx->fx_gh, id);
	wait_for(fx, &wk.wk_done);
	assert_int_equal(wk.wk_done, 1);
	assert_int_equal(wk.wk_ok, 0);
	assert_int_equal(wk.wk_pages, 0);
	walk_free(&wk);

	/* Freeing the HTTP client ends a walk too, through done. */
	memset(&wk2, 0, sizeof(wk2));
	buf_init(&wk2.wk_bodies);
	assert_true(github_get_pages(fx->fx_gh, url, 10, on_page,
	    on_pages_done, &wk2) > 0);
	free(url);
	http_client_free(fx->fx_http);
	fx->fx_http = NULL;
	assert_int_equal(wk2.wk_done, 1);
	assert_int_equal(wk2.wk_ok, 0);
	walk_free(&wk2);
}

/* ---- rate limits --------------------------------------------------------- */

static void
assert_refused(struct fixture *fx, const char *method, const char *path)
{
	struct answer	 an;
	int		 seen = fx->fx_srv.sv_nseen;

	request(fx, method, path, NULL, &an);
	assert_int_equal(an.an_status, 0);
	assert_non_null(an.an_error);
	assert_true(strncmp(an.an_error, "GitHub requests paused for ",
	    27) == 0);
	assert_int_equal(fx->fx_srv.sv_nseen, seen);
	answer_free(&an);
}

static void
assert_sent(struct fixture *fx, const char *method, const char *path)
{
	struct answer	 an;
	int		 seen = fx->fx_srv.sv_nseen;

	request(fx, method, path, NULL, &an);
	assert_int_not_equal(an.an_status, 0);
	assert_int_equal(fx->fx_srv.sv_nseen, seen + 1);
	answer_free(&an);
}

static void
test_reserve(void **state)
{
	struct fixture		*fx = *state;
	struct server		*sv = &fx->fx_srv;
	struct github_stats	 gs;
	struct answer		 an;
	struct buf		 m;
	const char		*why;
	time_t			 until;

	sv->sv_limit = 5000;
	sv->sv_reset = fake_seconds() + 600;
	sv->sv_remaining = 52;		/* 51 after the request */
	assert_sent(fx, "GET", "/x");
	assert_int_equal(github_paused(fx->fx_gh, &until, &why), 0);

	/* 50 is the reserve of a 5000 budget. */
	assert_sent(fx, "GET", "/x");
	assert_int_equal(github_paused(fx->fx_gh, &until, &why), 1);
	assert_int_equal(until, fake_seconds() + 601);
	assert_non_null(strstr(why, "reserve"));

	/* No POST (a token or JIT request) reaches GitHub. */
	assert_refused(fx, "POST", "/repos/o/r/actions/runners/"
	    "generate-jitconfig");
	assert_refused(fx, "GET", "/x");
	github_get_stats(fx->fx_gh, &gs);
	assert_int_equal(gs.gs_refused, 2);
	assert_int_equal(gs.gs_requests, 2);
	buf_init(&m);
	github_metrics(&m);
	assert_non_null(strstr(buf_cstr(&m), "ephemerd_github_paused 1\n"));
	assert_non_null(strstr(buf_cstr(&m),
	    "ephemerd_github_rate_limit_remaining 50\n"));
	buf_free(&m);

	/* GET /rate_limit costs nothing and still goes out. */
	request(fx, "GET", "/rate_limit", NULL, &an);
	assert_int_equal(an.an_status, 200);
	answer_free(&an);

	/* After the reset, requests flow again. */
	fake_now = (sv->sv_reset + 1) * 1000;
	assert_int_equal(github_paused(fx->fx_gh, NULL, NULL), 0);
	sv->sv_remaining = 5000;
	assert_sent(fx, "POST", "/y");

	/* A bigger budget keeps 1% back. */
	sv->sv_limit = 20000;
	sv->sv_reset = fake_seconds() + 60;
	sv->sv_remaining = 201;
	assert_sent(fx, "GET", "/x");
	assert_int_equal(github_paused(fx->fx_gh, NULL, NULL), 1);
}

static void
test_limited(void **state)
{
	struct fixture	*fx = *state;
	struct server	*sv = &fx->fx_srv;
	time_t		 until;
	const char	*why;
	int64_t		 len;

	/* Retry-After is obeyed to the second. */
	srv_force(sv, 403, "Retry-After: 30", "{\"message\":\"You have "
	    "exceeded a secondary rate limit.\"}");
	assert_sent(fx, "POST", "/y");
	assert_int_equal(github_paused(fx->fx_gh, &until, &why), 1);
	assert_int_equal(until, fake_seconds() + 30);
	assert_refused(fx, "POST", "/y");
	fake_now += 29 * 1000;
	assert_int_equal(github_paused(fx->fx_gh, NULL, NULL), 1);
	fake_now += 1000;
	assert_int_equal(github_paused(fx->fx_gh, NULL, NULL), 0);

	/* The primary limit exhausted: until the reset. */
	sv->sv_limit = 5000;
	sv->sv_remaining = 0;
	sv->sv_reset = fake_seconds() + 100;
	srv_force(sv, 403, NULL, "{\"message\":\"API rate limit exceeded\"}");
	assert_sent(fx, "GET", "/x");
	assert_int_equal(github_paused(fx->fx_gh, &until, NULL), 1);
	assert_int_equal(until, fake_seconds() + 100);
	fake_now = sv->sv_reset * 1000;
	sv->sv_limit = 0;

	/* A 403 that is no limit pauses nothing. */
	srv_force(sv, 403, NULL, "{\"message\":\"Resource not accessible "
	    "by integration\"}");
	assert_sent(fx, "POST", "/y");
	assert_int_equal(github_paused(fx->fx_gh, NULL, NULL), 0);

	/* Secondary limits without Retry-After: 60 s, then 120 s, +-20%. */
	srv_force(sv, 403, NULL, "{\"message\":\"You have exceeded a "
	    "secondary rate limit. Please wait a few minutes.\"}");
	assert_sent(fx, "POST", "/y");
	assert_int_equal(github_paused(fx->fx_gh, &until, NULL), 1);
	len = (int64_t)until - fake_seconds();
	assert_true(len >= 48 && len <= 73);
	fake_now = (int64_t)until * 1000;
	srv_force(sv, 429, NULL, "{}");
	assert_sent(fx, "POST", "/y");
	assert_int_equal(github_paused(fx->fx_gh, &until, NULL), 1);
	len = (int64_t)until - fake_seconds();
	assert_true(len >= 96 && len <= 145);
}

/* Pause lengths after 1..8 failures in a row: 1 s doubling to 60 s. */
static void
test_backoff(void **state)
{
	struct fixture		*fx = *state;
	struct server		*sv = &fx->fx_srv;
	struct answer		 an;
	struct github_stats	 gs;
	time_t			 until;
	int64_t			 left, base;
	int			 k;

	for (k = 1; k <= 8; k++) {
		srv_force(sv, 502, NULL, "{\"message\":\"Server Error\"}");
		assert_sent(fx, "GET", "/x");
		assert_int_equal(github_paused(fx->fx_gh, &until, NULL), 1);
		left = (int64_t)until * 1000 - fake_now;
		base = k <= 6 ? 1000LL << (k - 1) : 60000;
		assert_true(left >= base * 8 / 10 && left < base * 12 / 10 +
		    1000);
		assert_refused(fx, "GET", "/x");
		fake_now = (int64_t)until * 1000;
	}

	/* A 2xx resets the count. */
	srv_add_resource(sv, "/ok", NULL, NULL, NULL, "{}");
	assert_sent(fx, "GET", "/ok");
	srv_force(sv, 500, NULL, "{}");
	assert_sent(fx, "GET", "/x");
	assert_int_equal(github_paused(fx->fx_gh, &until, NULL), 1);
	assert_true((int64_t)until * 1000 - fake_now <= 2000);
	fake_now = (int64_t)until * 1000;

	/* No answer at all backs off as well. */
	free(fx->fx_conf.c_api_url);
	fx->fx_conf.c_api_url = xstrdup("http://127.0.0.1:1");
	memset(&an, 0, sizeof(an));
	assert_true(github_request(fx->fx_gh, "GET", "http://127.0.0.1:1/x",
	    NULL, NULL, 0, on_answer, &an) > 0);
	wait_for(fx, &an.an_done);
	assert_int_equal(an.an_status, 0);
	assert_int_equal(github_paused(fx->fx_gh, NULL, NULL), 1);
	answer_free(&an);
	github_get_stats(fx->fx_gh, &gs);
	assert_int_equal(gs.gs_charged, 10);
}

/* Refusals are answered in order, from the event loop. */
static void
test_refusal_order(void **state)
{
	struct fixture	*fx = *state;
	struct server	*sv = &fx->fx_srv;
	struct answer	 a, b;
	char		*url = url_of(fx, "/y");

	srv_force(sv, 429, "Retry-After: 5", "{}");
	assert_sent(fx, "POST", "/y");

	/* Two refusals come back in order, and neither inside the call. */
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_true(github_request(fx->fx_gh, "POST", url, "{}", NULL, 0,
	    on_answer, &a) > 0);
	assert_true(github_request(fx->fx_gh, "DELETE", url, NULL, NULL, 0,
	    on_answer, &b) > 0);
	assert_int_equal(a.an_done + b.an_done, 0);
	wait_for(fx, &b.an_done);
	assert_int_equal(a.an_done, 1);
	assert_string_equal(a.an_error, "GitHub requests paused for 5 s: "
	    "rate limit (GitHub answered 429 with Retry-After)");
	answer_free(&a);
	answer_free(&b);

	/* Freeing the client answers a pending refusal as cancelled. */
	memset(&a, 0, sizeof(a));
	assert_true(github_request(fx->fx_gh, "POST", url, "{}", NULL, 0,
	    on_answer, &a) > 0);
	http_client_free(fx->fx_http);
	fx->fx_http = NULL;
	assert_int_equal(a.an_done, 1);
	assert_int_equal(a.an_status, 0);
	answer_free(&a);
	free(url);
}

/* ---- mutations ---------------------------------------------------------- */

/*
 * POST and DELETE requests go one at a time, the configured interval
 * apart, and a deregistration waits behind the registrations.
 */
static void
test_mutations_spaced(void **state)
{
	struct fixture	*fx = *state;
	struct server	*sv = &fx->fx_srv;
	struct answer	 an[3];
	const char	*method[3] = { "POST", "DELETE", "POST" };
	const char	*path[3] = { "/jit/1", "/runner/1", "/jit/2" };
	char		*url;
	int		 i;

	fx->fx_conf.c_mutation_interval_ms = 300;
	memset(an, 0, sizeof(an));
	for (i = 0; i < 3; i++) {
		url = url_of(fx, path[i]);
		assert_true(github_request(fx->fx_gh, method[i], url,
		    i == 1 ? NULL : "{}", NULL, 0, on_answer, &an[i]) > 0);
		free(url);
	}
	wait_for(fx, &an[0].an_done);
	wait_for(fx, &an[1].an_done);
	wait_for(fx, &an[2].an_done);

	assert_int_equal(sv->sv_nseen, 3);
	assert_string_equal(sv->sv_seen[0].se_uri, "/jit/1");
	assert_string_equal(sv->sv_seen[1].se_uri, "/jit/2");
	assert_string_equal(sv->sv_seen[2].se_method, "DELETE");
	/* Sent 300 ms apart; the network may shift arrivals a little. */
	for (i = 1; i < 3; i++)
		assert_true(sv->sv_seen[i].se_ms - sv->sv_seen[i - 1].se_ms >=
		    250);
	for (i = 0; i < 3; i++)
		answer_free(&an[i]);
}

/* ---- JSON ---------------------------------------------------------------- */

static void
test_json_checked(void **state)
{
	struct fixture	*fx = *state;
	struct json_doc	 doc;
	struct http_response res;
	struct answer	 an;
	const char	*why;

	srv_add_resource(&fx->fx_srv, "/cut", "\"c\"", NULL, NULL,
	    "{\"runners\":[{\"id\":1,\"name\":\"a");
	srv_add_resource(&fx->fx_srv, "/whole", "\"w\"", NULL, NULL,
	    "{\"runners\":[]}");

	memset(&res, 0, sizeof(res));
	buf_init(&res.hr_body);
	buf_init(&res.hr_headers);

	request(fx, "GET", "/cut", NULL, &an);
	assert_int_equal(an.an_status, 200);
	res.hr_status = an.an_status;
	buf_add_str(&res.hr_body, an.an_body);
	why = NULL;
	assert_int_equal(github_json(&doc, &res, &why), -1);
	assert_non_null(why);
	answer_free(&an);

	request(fx, "GET", "/whole", NULL, &an);
	buf_reset(&res.hr_body);
	buf_add_str(&res.hr_body, an.an_body);
	assert_int_equal(github_json(&doc, &res, &why), 0);
	assert_int_equal(json_type(&doc, 0), JSON_OBJECT);
	json_free(&doc);
	answer_free(&an);

	/* No answer, or an empty one, is no JSON either. */
	buf_reset(&res.hr_body);
	assert_int_equal(github_json(&doc, &res, &why), -1);
	assert_string_equal(why, "GitHub's answer has no body");
	res.hr_status = 0;
	buf_add_str(&res.hr_body, "{}");
	assert_int_equal(github_json(&doc, &res, &why), -1);
	assert_string_equal(why, "GitHub did not answer");
	buf_free(&res.hr_body);
	buf_free(&res.hr_headers);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_conditional_get, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_last_modified, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cache_bounded, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pages_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pages_cancel, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reserve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusal_order, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mutations_spaced, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_json_checked, setup,
		    teardown),
	};
	int	 rc;

	/* The client leaves this to the program, once, at start. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
