/*
 * httpd: serves the REST API on the socket the supervisor bound, after
 * dropping privileges into a chroot.  It holds no GitHub secret and
 * cannot reach docker.sock; it asks the other processes over the wire.
 */
#include <sys/queue.h>

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
#define HTTPD_MAX_BODY		(64 * 1024)
#define HTTPD_TIMEOUT_S		30

/* One /api/v1/health request waiting for the other processes. */
struct health_query {
	struct evhttp_request	*hq_req;
	int			 hq_pending;
	char			*hq_parts[ROLE_COUNT];	/* JSON objects */
	const char		*hq_errors[ROLE_COUNT];
};

static struct evhttp	*httpd_http;

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

static void
httpd_send_error(struct evhttp_request *req, int code, const char *message)
{
	httpd_send_envelope(req, code, "error", NULL, message);
}

static void
httpd_handle_health(struct evhttp_request *req)
{
	struct json_writer	 jw;
	struct buf		 data;

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
		evhttp_connection_set_closecb(
		    evhttp_request_get_connection(hq->hq_req), NULL, NULL);
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
health_on_client_close(struct evhttp_connection *conn, void *arg)
{
	struct health_query	*hq = arg;

	(void)conn;
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
httpd_handle_api_health(struct evhttp_request *req)
{
	struct health_query	*hq;
	struct json_writer	 jw;
	struct buf		 self;

	hq = xcalloc(1, sizeof(*hq));
	hq->hq_req = req;
	buf_init(&self);
	jw_init(&jw, &self);
	child_status_json(&jw);
	hq->hq_parts[ROLE_HTTPD] = xstrdup(buf_cstr(&self));
	buf_free(&self);

	/* Held while asking, so that no answer can finish it early. */
	hq->hq_pending = 1;
	evhttp_connection_set_closecb(evhttp_request_get_connection(req),
	    health_on_client_close, hq);
	health_ask(hq, ROLE_SUPERVISOR, child.cs_parent, MSG_STATUS_REQ);
	health_ask(hq, ROLE_POLLER, child.cs_peers[ROLE_POLLER],
	    MSG_HEALTH_REQ);
	health_ask(hq, ROLE_DOCKER, child.cs_peers[ROLE_DOCKER],
	    MSG_HEALTH_REQ);
	if (--hq->hq_pending == 0)
		health_query_finish(hq);
}

typedef void (*httpd_handler_fn)(struct evhttp_request *);
typedef void (*httpd_runner_fn)(struct evhttp_request *, const char *);

/* Fixed paths, with one handler per method they take. */
struct httpd_route {
	const char	*rt_path;
	httpd_handler_fn rt_get;
	httpd_handler_fn rt_post;
};

static const struct httpd_route httpd_routes[] = {
	{ "/health",		httpd_handle_health,	NULL },
	{ "/healthz",		httpd_handle_health,	NULL },
	{ "/api/v1/health",	httpd_handle_api_health, NULL },
	{ "/api/v1/runners",	httpd_runners_list,	httpd_runners_create },
	{ "/api/v1/runners/cleanup", NULL,		httpd_runners_cleanup },
};

static void
httpd_send_bad_method(struct evhttp_request *req, const char *allow)
{
	char	 msg[96];

	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	    allow);
	snprintf(msg, sizeof(msg), "method not allowed; this endpoint takes "
	    "%s", allow);
	httpd_send_error(req, HTTP_BADMETHOD, msg);
}

static int
httpd_dispatch_fixed(struct evhttp_request *req, const char *path,
    enum evhttp_cmd_type cmd)
{
	const struct httpd_route *rt;
	size_t			 i;

	for (i = 0; i < nitems(httpd_routes); i++) {
		rt = &httpd_routes[i];
		if (strcmp(path, rt->rt_path) != 0)
			continue;
		if ((cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD) &&
		    rt->rt_get != NULL)
			rt->rt_get(req);
		else if (cmd == EVHTTP_REQ_POST && rt->rt_post != NULL)
			rt->rt_post(req);
		else
			httpd_send_bad_method(req, rt->rt_get == NULL ? "POST" :
			    rt->rt_post == NULL ? "GET, HEAD" :
			    "GET, HEAD, POST");
		return 1;
	}
	return 0;
}

/* /api/v1/runners/{id} and /api/v1/runners/{id}/logs. */
static int
httpd_dispatch_runner(struct evhttp_request *req, const char *path,
    enum evhttp_cmd_type cmd)
{
	static const char prefix[] = "/api/v1/runners/";
	const char	*id = path + sizeof(prefix) - 1, *slash;
	char		 name[RUNNER_NAME_MAX + 1], msg[128];
	size_t		 len;

	if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	slash = strchr(id, '/');
	len = slash != NULL ? (size_t)(slash - id) : strlen(id);
	if (slash != NULL && strcmp(slash, "/logs") != 0)
		return 0;
	if (len == 0 || len > RUNNER_NAME_MAX)
		return 0;
	memcpy(name, id, len);
	name[len] = '\0';
	if (!runner_name_valid(name)) {
		snprintf(msg, sizeof(msg), "malformed runner id '%.64s'", name);
		httpd_send_error(req, HTTP_BADREQUEST, msg);
		return 1;
	}

	if (slash != NULL) {
		if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
			httpd_runners_logs(req, name);
		else
			httpd_send_bad_method(req, "GET, HEAD");
	} else if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
		httpd_runners_show(req, name);
	else if (cmd == EVHTTP_REQ_DELETE)
		httpd_runners_delete(req, name);
	else
		httpd_send_bad_method(req, "GET, HEAD, DELETE");
	return 1;
}

static void
httpd_dispatch(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path = evhttp_uri_get_path(uri);
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	char			 msg[128];

	(void)arg;
	if (path == NULL || path[0] == '\0')
		path = "/";
	if (httpd_dispatch_fixed(req, path, cmd) ||
	    httpd_dispatch_runner(req, path, cmd))
		return;
	snprintf(msg, sizeof(msg), "no such endpoint: %.80s", path);
	httpd_send_error(req, HTTP_NOTFOUND, msg);
}

static int
httpd_configure(struct config *conf, int first, char *err, size_t errlen)
{
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
	evhttp_set_max_body_size(httpd_http, HTTPD_MAX_BODY);
	evhttp_set_timeout(httpd_http, HTTPD_TIMEOUT_S);
	evhttp_set_allowed_methods(httpd_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(httpd_http, httpd_dispatch, NULL);
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
	httpd_runners_free();
}

static const struct ipc_dispatch httpd_poller_table[] = {
	{ MSG_HEALTH_REPLY,		NULL },
	{ MSG_RUNNER_CREATE_REPLY,	NULL },
	{ MSG_NONE,			NULL }
};

static const struct ipc_dispatch httpd_docker_table[] = {
	{ MSG_HEALTH_REPLY,		NULL },
	{ MSG_RUNNER_TABLE,		httpd_runners_on_table },
	{ MSG_RUNNER_REMOVE_REPLY,	NULL },
	{ MSG_RUNNER_LOGS_REPLY,	NULL },
	{ MSG_RUNNER_CLEANUP_REPLY,	NULL },
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
