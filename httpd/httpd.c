/*
 * httpd: serves the REST API on the socket the supervisor bound, after
 * dropping privileges into a chroot.  It holds no GitHub secret and
 * cannot reach docker.sock; it asks the other processes over the wire.
 */
#include <sys/queue.h>

#include <sys/socket.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "json.h"
#include "json_write.h"
#include "log.h"
#include "runner.h"
#include "supervisor.h"
#include "util.h"

#define HEALTH_TIMEOUT_MS	2500
#define HTTPD_IDLE_TIMEOUT_S	30	/* evhttp's read and write timeout */
#define HTTPD_MAX_HEADERS	(16 * 1024)
/*
 * evhttp answers 413 on its own, without the envelope, past this size;
 * between HTTPD_MAX_BODY and this, httpd answers with the envelope.
 */
#define HTTPD_MAX_READ_BODY	(256 * 1024)
#define HTTPD_RATE_CLIENTS	10000
#define CORS_MAX_AGE		"600"

/* One /api/v1/health request waiting for the other processes. */
struct health_query {
	struct evhttp_request	*hq_req;
	int			 hq_pending;
	char			*hq_parts[ROLE_COUNT];	/* JSON objects */
	const char		*hq_errors[ROLE_COUNT];
};

static struct evhttp	*httpd_http;
static struct ratelimit	 httpd_limit;
static struct netmask	*httpd_proxies;
static size_t		 httpd_nproxies;

void
httpd_send_envelope(struct evhttp_request *req, int code, const char *status,
    const char *data, const char *message)
{
	struct evbuffer		*out;
	struct json_writer	 jw;
	struct buf		 body;
	char			 ts[32];

	buf_init(&body);
	jw_init(&jw, &body);
	jw_object_begin(&jw);
	jw_kv_str(&jw, "status", status);
	jw_key(&jw, "data");
	if (data != NULL)
		jw_raw(&jw, data, strlen(data));
	else
		jw_null(&jw);
	jw_kv_str(&jw, "message", message);
	iso8601_utc(time(NULL), ts, sizeof(ts));
	jw_kv_str(&jw, "timestamp", ts);
	jw_object_end(&jw);
	buf_add_char(&body, '\n');

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	if ((out = evbuffer_new()) == NULL)
		fatalx("evbuffer_new failed");
	evbuffer_add(out, body.b_data, body.b_len);
	evhttp_send_reply(req, code, NULL, out);
	evbuffer_free(out);
	buf_free(&body);
}

void
httpd_send_error(struct evhttp_request *req, int code, const char *message)
{
	httpd_send_envelope(req, code, "error", NULL, message);
}

static void
httpd_handle_health(struct evhttp_request *req, const char *param)
{
	struct json_writer	 jw;
	struct buf		 data;

	(void)param;
	buf_init(&data);
	jw_init(&jw, &data);
	child_status_json(&jw);
	httpd_send_envelope(req, HTTP_OK, "success", buf_cstr(&data),
	    "httpd is alive");
	buf_free(&data);
}

/* A part counts as healthy if it says status "ok" and not healthy false. */
static int
health_part_ok(const char *json)
{
	struct json_doc	 doc;
	const char	*why;
	int		 tok, ok, healthy = 1;

	if (json == NULL || json_parse(&doc, json, strlen(json), &why) == -1)
		return 0;
	tok = json_object_get(&doc, 0, "status");
	ok = tok != -1 && json_streq(&doc, tok, "ok");
	tok = json_object_get(&doc, 0, "healthy");
	if (tok != -1 && json_get_bool(&doc, tok, &healthy) == -1)
		healthy = 0;
	json_free(&doc);
	return ok && healthy;
}

static void
health_query_finish(struct health_query *hq)
{
	struct json_writer	 jw;
	struct buf		 data;
	int			 i, healthy = 1;

	buf_init(&data);
	jw_init(&jw, &data);
	jw_object_begin(&jw);
	jw_key(&jw, "processes");
	jw_object_begin(&jw);
	for (i = 0; i < ROLE_COUNT; i++) {
		jw_key(&jw, ipc_role_name(i));
		if (hq->hq_parts[i] != NULL) {
			jw_raw(&jw, hq->hq_parts[i], strlen(hq->hq_parts[i]));
			healthy &= health_part_ok(hq->hq_parts[i]);
			continue;
		}
		healthy = 0;
		jw_object_begin(&jw);
		jw_kv_str(&jw, "status", "unreachable");
		jw_kv_str(&jw, "error", hq->hq_errors[i] != NULL ?
		    hq->hq_errors[i] : "no answer");
		jw_object_end(&jw);
	}
	jw_object_end(&jw);
	jw_kv_bool(&jw, "healthy", healthy);
	jw_object_end(&jw);

	if (hq->hq_req != NULL) {
		httpd_conn_watch(hq->hq_req, NULL, NULL);
		httpd_send_envelope(hq->hq_req, healthy ? HTTP_OK : 503,
		    healthy ? "success" : "error", buf_cstr(&data),
		    healthy ? "all processes healthy" :
		    "some processes or dependencies are unhealthy");
	}
	buf_free(&data);
	for (i = 0; i < ROLE_COUNT; i++)
		free(hq->hq_parts[i]);
	free(hq);
}

struct health_wait {
	struct health_query	*hw_query;
	enum ipc_role		 hw_role;
};

/* Keeps a part only if it is a JSON object: peers are not trusted. */
static void
health_on_reply(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct health_wait	*hw = arg;
	struct health_query	*hq = hw->hw_query;
	struct ipc_reader	 r;
	struct json_doc		 doc;
	const uint8_t		*blob;
	const char		*why;
	size_t			 len;

	(void)ch;
	if (msg == NULL)
		hq->hq_errors[hw->hw_role] = "no answer in time";
	else {
		ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
		blob = ipc_get_blob(&r, &len);
		if (ipc_reader_done(&r) == 0 && json_parse(&doc,
		    (const char *)blob, len, &why) == 0) {
			if (json_type(&doc, 0) == JSON_OBJECT)
				hq->hq_parts[hw->hw_role] =
				    xstrndup((const char *)blob, len);
			json_free(&doc);
		}
		if (hq->hq_parts[hw->hw_role] == NULL)
			hq->hq_errors[hw->hw_role] = "malformed answer";
	}
	free(hw);
	if (--hq->hq_pending == 0)
		health_query_finish(hq);
}

static void
health_on_client_close(void *arg)
{
	struct health_query	*hq = arg;

	hq->hq_req = NULL;
}

static void
health_ask(struct health_query *hq, enum ipc_role role,
    struct ipc_channel *ch, uint16_t type)
{
	struct health_wait	*hw;

	if (ch == NULL) {
		hq->hq_errors[role] = "not connected";
		return;
	}
	hw = xcalloc(1, sizeof(*hw));
	hw->hw_query = hq;
	hw->hw_role = role;
	hq->hq_pending++;
	if (ipc_request(ch, type, NULL, 0, HEALTH_TIMEOUT_MS,
	    health_on_reply, hw) == -1) {
		hq->hq_pending--;
		hq->hq_errors[role] = "channel closed";
		free(hw);
	}
}

static void
httpd_handle_api_health(struct evhttp_request *req, const char *param)
{
	struct health_query	*hq;
	struct json_writer	 jw;
	struct buf		 self;

	(void)param;
	hq = xcalloc(1, sizeof(*hq));
	hq->hq_req = req;
	buf_init(&self);
	jw_init(&jw, &self);
	child_status_json(&jw);
	hq->hq_parts[ROLE_HTTPD] = xstrdup(buf_cstr(&self));
	buf_free(&self);

	/* Held while asking, so that no answer can finish it early. */
	hq->hq_pending = 1;
	httpd_conn_watch(req, health_on_client_close, hq);
	health_ask(hq, ROLE_SUPERVISOR, child.cs_parent, MSG_STATUS_REQ);
	health_ask(hq, ROLE_POLLER, child.cs_peers[ROLE_POLLER],
	    MSG_HEALTH_REQ);
	health_ask(hq, ROLE_DOCKER, child.cs_peers[ROLE_DOCKER],
	    MSG_HEALTH_REQ);
	if (--hq->hq_pending == 0)
		health_query_finish(hq);
}

typedef void (*httpd_handler_fn)(struct evhttp_request *, const char *);

/* The handler of each route and method, in the order of enum route_id. */
static const struct httpd_handlers {
	httpd_handler_fn	 hh_get;
	httpd_handler_fn	 hh_post;
	httpd_handler_fn	 hh_delete;
} httpd_handlers[ROUTE_COUNT] = {
	[ROUTE_HEALTH] = { httpd_handle_health, NULL, NULL },
	[ROUTE_HEALTHZ] = { httpd_handle_health, NULL, NULL },
	[ROUTE_API_HEALTH] = { httpd_handle_api_health, NULL, NULL },
	[ROUTE_RUNNERS] = { httpd_runners_list, httpd_runners_create, NULL },
	[ROUTE_RUNNERS_CLEANUP] = { NULL, httpd_runners_cleanup, NULL },
	[ROUTE_RUNNERS_CLEANUP_GITHUB] = { NULL, httpd_runners_cleanup_github,
	    NULL },
	[ROUTE_RUNNERS_GITHUB_STATUS] = { httpd_runners_github_status, NULL,
	    NULL },
	[ROUTE_RUNNER] = { httpd_runners_show, NULL, httpd_runners_delete },
	[ROUTE_RUNNER_LOGS] = { httpd_runners_logs, NULL, NULL },
	[ROUTE_WEBHOOK] = { NULL, httpd_webhook_receive, NULL },
	[ROUTE_METRICS] = { httpd_metrics_serve, NULL, NULL },
	[ROUTE_OPENAPI] = { httpd_docs_openapi, NULL, NULL },
	[ROUTE_DOCS] = { httpd_docs_swagger, NULL, NULL },
	[ROUTE_REDOC] = { httpd_docs_redoc, NULL, NULL },
	[ROUTE_ASSET] = { httpd_docs_asset, NULL, NULL },
};

static void
httpd_send_bad_method(struct evhttp_request *req, int methods)
{
	char	 msg[96];

	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	    httpd_route_allow(methods));
	snprintf(msg, sizeof(msg), "method not allowed; this endpoint takes "
	    "%s", httpd_route_allow(methods));
	httpd_send_error(req, HTTP_BADMETHOD, msg);
}

static int
httpd_method_bit(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
	case EVHTTP_REQ_HEAD:
		return RM_GET;
	case EVHTTP_REQ_POST:
		return RM_POST;
	case EVHTTP_REQ_DELETE:
		return RM_DELETE;
	default:
		return 0;
	}
}

static const char *
httpd_method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "OTHER";
	}
}

/* The path for a log line: no query, nothing unprintable. */
static void
httpd_log_path(const char *path, char *out, size_t outlen)
{
	size_t	 i;

	for (i = 0; path[i] != '\0' && i + 1 < outlen; i++)
		out[i] = isprint((unsigned char)path[i]) ? path[i] : '?';
	out[i] = '\0';
}

/* The peer, or the client behind a trusted proxy. */
static void
httpd_request_client(struct evhttp_request *req, char *out, size_t outlen)
{
	struct evkeyvalq	*in = evhttp_request_get_input_headers(req);
	struct evkeyval		*kv;
	struct buf		 xff;
	char			*peer = NULL;
	ev_uint16_t		 port;

	evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer,
	    &port);
	if (peer == NULL)
		peer = "unknown";
	if (httpd_nproxies == 0) {
		strlcpy(out, peer, outlen);
		return;
	}
	buf_init(&xff);
	TAILQ_FOREACH(kv, in, next)
		if (strcasecmp(kv->key, "X-Forwarded-For") == 0) {
			if (xff.b_len > 0)
				buf_add_char(&xff, ',');
			buf_add_str(&xff, kv->value);
		}
	httpd_client_addr(httpd_proxies, httpd_nproxies, peer,
	    xff.b_len > 0 ? buf_cstr(&xff) : NULL, out, outlen);
	buf_free(&xff);
}

static void
httpd_on_complete(struct evhttp_request *req, void *arg)
{
	struct httpd_conn	*hc = arg;
	int			 code = evhttp_request_get_response_code(req);

	httpd_metrics_count(hc->hc_route, code);
	if (hc->hc_log)
		log_info(LC_RESPONSE, "%d %s %s %s %llu ms", code,
		    hc->hc_method, hc->hc_path, hc->hc_client,
		    (unsigned long long)(monotonic_ms() - hc->hc_start_ms));
	httpd_conn_end(hc);
}

/* Adds the CORS headers an allowed origin gets; returns 1 if allowed. */
static int
httpd_cors(struct evhttp_request *req)
{
	struct evkeyvalq	*out = evhttp_request_get_output_headers(req);
	const char		*origin, *allow;

	origin = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Origin");
	allow = httpd_cors_origin(&child.cs_config.c_cors_origins, origin);
	if (allow == NULL)
		return 0;
	evhttp_add_header(out, "Access-Control-Allow-Origin", allow);
	if (strcmp(allow, "*") != 0)
		evhttp_add_header(out, "Vary", "Origin");
	evhttp_add_header(out, "Access-Control-Expose-Headers",
	    "Retry-After, WWW-Authenticate");
	return 1;
}

static void
httpd_preflight(struct evhttp_request *req, const struct httpd_route *rt,
    int allowed)
{
	struct evkeyvalq	*out = evhttp_request_get_output_headers(req);
	char			 methods[64];

	snprintf(methods, sizeof(methods), "%s, OPTIONS",
	    httpd_route_allow(rt->rt_methods));
	evhttp_add_header(out, "Allow", methods);
	if (allowed) {
		evhttp_add_header(out, "Access-Control-Allow-Methods",
		    methods);
		evhttp_add_header(out, "Access-Control-Allow-Headers",
		    "Authorization, Content-Type");
		evhttp_add_header(out, "Access-Control-Max-Age", CORS_MAX_AGE);
	}
	evhttp_send_reply(req, HTTP_NOCONTENT, "No Content", NULL);
}

static int
httpd_check_limit(struct evhttp_request *req, const struct httpd_route *rt,
    const char *client)
{
	unsigned int	 wait;
	char		 value[16], msg[96];

	if (rt != NULL && (rt->rt_flags & RF_NOLIMIT))
		return 0;
	if (ratelimit_take(&httpd_limit, client, monotonic_ms(), &wait) == 0)
		return 0;
	snprintf(value, sizeof(value), "%u", wait);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Retry-After", value);
	snprintf(msg, sizeof(msg), "too many requests; try again in %u s",
	    wait);
	httpd_send_error(req, 429, msg);
	return -1;
}

static int
httpd_check_auth(struct evhttp_request *req, const struct httpd_route *rt)
{
	const struct strlist	*tokens = &child.cs_config.c_api_tokens;
	const char		*auth;

	if (!(rt->rt_flags & RF_AUTH) || tokens->sl_count == 0)
		return 0;
	auth = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	if (httpd_token_ok(tokens, auth))
		return 0;
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "WWW-Authenticate", "Bearer realm=\"ephemerd\"");
	httpd_send_error(req, 401, auth == NULL ?
	    "authentication required: send Authorization: Bearer <token>" :
	    "invalid API token");
	return -1;
}

static void
httpd_route_call(struct evhttp_request *req, const struct httpd_route *rt,
    enum evhttp_cmd_type cmd, const char *param)
{
	const struct httpd_handlers *hh = &httpd_handlers[rt->rt_id];
	char			 msg[128];

	if ((rt->rt_id == ROUTE_RUNNER || rt->rt_id == ROUTE_RUNNER_LOGS) &&
	    !runner_name_valid(param)) {
		snprintf(msg, sizeof(msg), "malformed runner id '%.64s'",
		    param);
		httpd_send_error(req, HTTP_BADREQUEST, msg);
		return;
	}
	switch (httpd_method_bit(cmd) & rt->rt_methods) {
	case RM_GET:
		hh->hh_get(req, param);
		break;
	case RM_POST:
		hh->hh_post(req, param);
		break;
	case RM_DELETE:
		hh->hh_delete(req, param);
		break;
	default:
		httpd_send_bad_method(req, rt->rt_methods);
	}
}

/* Checks, in order: capacity, CORS, rate, route, method, size, token. */
static void
httpd_serve(struct evhttp_request *req, struct httpd_conn *hc,
    const struct httpd_route *rt, const char *path, const char *param)
{
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	size_t			 len;
	char			 msg[128];
	int			 cors;

	if (hc->hc_over_cap) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		httpd_send_error(req, 503, "too many open connections");
		return;
	}
	cors = httpd_cors(req);
	if (httpd_check_limit(req, rt, hc->hc_client) == -1)
		return;
	if (rt == NULL) {
		snprintf(msg, sizeof(msg), "no such endpoint: %.80s", path);
		httpd_send_error(req, HTTP_NOTFOUND, msg);
		return;
	}
	if (cmd == EVHTTP_REQ_OPTIONS) {
		httpd_preflight(req, rt, cors);
		return;
	}
	if (httpd_method_bit(cmd) == 0 ||
	    !(httpd_method_bit(cmd) & rt->rt_methods)) {
		httpd_send_bad_method(req, rt->rt_methods);
		return;
	}
	len = evbuffer_get_length(evhttp_request_get_input_buffer(req));
	if (len > HTTPD_MAX_BODY) {
		snprintf(msg, sizeof(msg), "request body too large: %zu bytes; "
		    "the limit is %d", len, HTTPD_MAX_BODY);
		httpd_send_error(req, 413, msg);
		return;
	}
	if (httpd_check_auth(req, rt) == -1)
		return;
	httpd_route_call(req, rt, cmd, param);
}

static void
httpd_dispatch(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path = evhttp_uri_get_path(uri);
	const struct httpd_route *rt;
	struct httpd_conn	*hc;
	char			 param[RUNNER_NAME_MAX + 1];

	(void)arg;
	if ((hc = httpd_conn_begin(req)) == NULL) {
		httpd_send_error(req, 500, "untracked connection");
		return;
	}
	if (path == NULL || path[0] == '\0')
		path = "/";
	rt = httpd_route_match(path, param, sizeof(param));
	if (rt == NULL && strncmp(path, "/api/v1/runners/", 16) == 0 &&
	    strlen(path) > 16 + RUNNER_NAME_MAX)
		rt = &httpd_routes[ROUTE_RUNNER];	/* id too long */
	hc->hc_start_ms = monotonic_ms();
	hc->hc_route = rt;
	hc->hc_log = rt == NULL || !(rt->rt_flags & RF_NOLOG);
	strlcpy(hc->hc_method, httpd_method_name(
	    evhttp_request_get_command(req)), sizeof(hc->hc_method));
	httpd_log_path(path, hc->hc_path, sizeof(hc->hc_path));
	httpd_request_client(req, hc->hc_client, sizeof(hc->hc_client));
	evhttp_request_set_on_complete_cb(req, httpd_on_complete, hc);
	if (hc->hc_log)
		log_info(LC_REQUEST, "%s %s from %s", hc->hc_method,
		    hc->hc_path, hc->hc_client);
	httpd_serve(req, hc, rt, path, param);
}

static int
httpd_is_loopback(const char *listen)
{
	char		 host[256];
	const char	*colon = strrchr(listen, ':');
	size_t		 len = colon != NULL ? (size_t)(colon - listen) :
			    strlen(listen);
	uint8_t		 a[16];

	if (len >= sizeof(host))
		return 0;
	memcpy(host, listen, len);
	host[len] = '\0';
	if (host[0] == '[' && len > 2 && host[len - 1] == ']') {
		memmove(host, host + 1, len - 2);
		host[len - 2] = '\0';
	}
	if (strcmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) == 1)
		return memcmp(a, in6addr_loopback.s6_addr, 16) == 0;
	return 0;
}

/* Proxies and limits may change on a reload; tokens are read per request. */
static int
httpd_apply_policy(struct config *conf, int first, char *err, size_t errlen)
{
	struct netmask	*nms;
	size_t		 i, n = conf->c_trusted_proxies.sl_count;

	nms = xcalloc(n + 1, sizeof(*nms));
	for (i = 0; i < n; i++)
		if (netmask_parse(conf->c_trusted_proxies.sl_items[i],
		    &nms[i]) == -1) {
			snprintf(err, errlen, "bad trusted proxy '%.64s'",
			    conf->c_trusted_proxies.sl_items[i]);
			free(nms);
			return -1;
		}
	free(httpd_proxies);
	httpd_proxies = nms;
	httpd_nproxies = n;
	if (httpd_limit.rl_buckets == NULL)
		ratelimit_init(&httpd_limit, conf->c_rate, conf->c_burst,
		    HTTPD_RATE_CLIENTS);
	else
		ratelimit_set(&httpd_limit, conf->c_rate, conf->c_burst);
	if (first && conf->c_api_tokens.sl_count == 0 &&
	    !httpd_is_loopback(conf->c_listen))
		log_warnx(LC_WARNING, "no API tokens are configured and httpd "
		    "listens on %s: anyone who reaches it can create and "
		    "destroy runners", conf->c_listen);
	return 0;
}

static int
httpd_configure(struct config *conf, int first, char *err, size_t errlen)
{
	int	 one = 1;

	if (httpd_apply_policy(conf, first, err, errlen) == -1)
		return -1;
	if (!first)
		return 0;
	if (child.cs_listen_fd == -1) {
		snprintf(err, errlen, "no listen socket from the supervisor");
		return -1;
	}
	if (privsep_drop(conf->c_user, conf->c_chroot, (gid_t)-1, err,
	    errlen) == -1)
		return -1;

	if ((httpd_http = evhttp_new(child.cs_base)) == NULL) {
		snprintf(err, errlen, "evhttp_new failed");
		return -1;
	}
	evhttp_set_max_body_size(httpd_http, HTTPD_MAX_READ_BODY);
	evhttp_set_max_headers_size(httpd_http, HTTPD_MAX_HEADERS);
	evhttp_set_timeout(httpd_http, HTTPD_IDLE_TIMEOUT_S);
	evhttp_set_allowed_methods(httpd_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(httpd_http, httpd_dispatch, NULL);
	httpd_conn_setup(httpd_http, child.cs_base);
	/*
	 * Accepted sockets inherit it: without it, an answer larger than a
	 * segment waits for the client's delayed acknowledgement.
	 */
	if (setsockopt(child.cs_listen_fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)) == -1)
		log_debug(LC_START, "cannot set TCP_NODELAY on the listen "
		    "socket");
	if (evhttp_accept_socket(httpd_http, child.cs_listen_fd) == -1) {
		snprintf(err, errlen, "cannot serve on the listen socket");
		return -1;
	}
	child.cs_listen_fd = -1;	/* the listener owns it now */
	log_info(LC_START, "serving HTTP on %s", conf->c_listen);
	return 0;
}

static void
httpd_shutdown(void)
{
	if (httpd_http != NULL) {
		evhttp_free(httpd_http);
		httpd_http = NULL;
	}
	httpd_conn_teardown();
	httpd_runners_free();
	httpd_metrics_free();
	ratelimit_free(&httpd_limit);
	free(httpd_proxies);
	httpd_proxies = NULL;
	httpd_nproxies = 0;
}

static const struct ipc_dispatch httpd_poller_table[] = {
	{ MSG_HEALTH_REPLY,		NULL },
	{ MSG_RUNNER_CREATE_REPLY,	NULL },
	{ MSG_METRICS_REPLY,		NULL },
	{ MSG_WEBHOOK_REPLY,		NULL },
	{ MSG_GITHUB_CLEANUP_REPLY,	NULL },
	{ MSG_NONE,			NULL }
};

static const struct ipc_dispatch httpd_docker_table[] = {
	{ MSG_HEALTH_REPLY,		NULL },
	{ MSG_RUNNER_TABLE,		httpd_runners_on_table },
	{ MSG_RUNNER_REMOVE_REPLY,	NULL },
	{ MSG_RUNNER_LOGS_REPLY,	NULL },
	{ MSG_RUNNER_CLEANUP_REPLY,	NULL },
	{ MSG_METRICS_REPLY,		NULL },
	{ MSG_NONE,			NULL }
};

const struct child_ops httpd_ops = {
	.co_role = ROLE_HTTPD,
	.co_peer_tables = {
		[ROLE_POLLER] = httpd_poller_table,
		[ROLE_DOCKER] = httpd_docker_table,
	},
	.co_configure = httpd_configure,
	.co_shutdown = httpd_shutdown,
};
