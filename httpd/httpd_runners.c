/*
 * The runner endpoints of the REST API.  Reads come from the table the
 * docker worker pushes; writes become messages to the poller (creation,
 * which needs GitHub) or to the docker worker (removal, logs, cleanup).
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd.h"
#include "json.h"
#include "json_write.h"
#include "log.h"
#include "runner.h"
#include "supervisor.h"
#include "util.h"

#define CREATE_TIMEOUT_MS	300000	/* an image pull may take minutes */
#define DOCKER_TIMEOUT_MS	30000
#define LOG_TAIL_DEFAULT	100
#define LOG_TAIL_MAX		10000

static struct runner	*httpd_runners;
static size_t		 httpd_nrunners;
/* The list as JSON, made once per table the docker worker pushes. */
static struct buf	 httpd_list_json;
static int		 httpd_list_valid;

/* A request waiting for another process; the client may leave first. */
struct http_wait {
	struct evhttp_request	*hw_req;
	char			 hw_runner[RUNNER_NAME_MAX + 1];
};

static void
http_wait_on_close(void *arg)
{
	struct http_wait	*hw = arg;

	hw->hw_req = NULL;
}

static struct http_wait *
http_wait_new(struct evhttp_request *req)
{
	struct http_wait	*hw = xcalloc(1, sizeof(*hw));

	hw->hw_req = req;
	httpd_conn_watch(req, http_wait_on_close, hw);
	return hw;
}

/* Returns the request if the client is still there, and detaches. */
static struct evhttp_request *
http_wait_end(struct http_wait *hw)
{
	struct evhttp_request	*req = hw->hw_req;

	if (req != NULL)
		httpd_conn_watch(req, NULL, NULL);
	return req;
}

int
httpd_runners_on_table(struct ipc_channel *ch, struct ipc_msg *msg,
    void *arg)
{
	struct runner	*rns;
	size_t		 n;
	const char	*why;

	(void)ch;
	(void)arg;
	if (runner_table_decode(msg->m_data, msg->m_hdr.ih_len, &rns, &n,
	    &why) == -1) {
		log_warnx(LC_ERROR, "malformed runner table: %s", why);
		return -1;
	}
	runner_table_free(httpd_runners, httpd_nrunners);
	httpd_runners = rns;
	httpd_nrunners = n;
	httpd_list_valid = 0;
	return 0;
}

void
httpd_runners_free(void)
{
	runner_table_free(httpd_runners, httpd_nrunners);
	httpd_runners = NULL;
	httpd_nrunners = 0;
	buf_free(&httpd_list_json);
	httpd_list_valid = 0;
}

static const struct runner *
httpd_find_runner(const char *name)
{
	size_t	 i;

	for (i = 0; i < httpd_nrunners; i++)
		if (strcmp(httpd_runners[i].rn_name, name) == 0)
			return &httpd_runners[i];
	return NULL;
}

void
httpd_runners_list(struct evhttp_request *req, const char *param)
{
	struct json_writer	 jw;
	char			 msg[64];
	size_t			 i;

	(void)param;
	if (!httpd_list_valid) {
		buf_reset(&httpd_list_json);
		jw_init(&jw, &httpd_list_json);
		jw_array_begin(&jw);
		for (i = 0; i < httpd_nrunners; i++)
			runner_write_json(&httpd_runners[i], &jw);
		jw_array_end(&jw);
		httpd_list_valid = 1;
	}
	snprintf(msg, sizeof(msg), "%zu runner%s", httpd_nrunners,
	    httpd_nrunners == 1 ? "" : "s");
	httpd_send_envelope(req, HTTP_OK, "success",
	    buf_cstr(&httpd_list_json), msg);
}

static void
httpd_send_unknown_runner(struct evhttp_request *req, const char *name)
{
	char	 msg[128];

	snprintf(msg, sizeof(msg), "no such runner: %s", name);
	httpd_send_envelope(req, HTTP_NOTFOUND, "error", NULL, msg);
}

void
httpd_runners_show(struct evhttp_request *req, const char *name)
{
	const struct runner	*rn;
	struct json_writer	 jw;
	struct buf		 data;

	if ((rn = httpd_find_runner(name)) == NULL) {
		httpd_send_unknown_runner(req, name);
		return;
	}
	buf_init(&data);
	jw_init(&jw, &data);
	runner_write_json(rn, &jw);
	httpd_send_envelope(req, HTTP_OK, "success", buf_cstr(&data),
	    "runner found");
	buf_free(&data);
}

static uint32_t
httpd_max_count(void)
{
	uint32_t	 max = 0;
	size_t		 i;

	for (i = 0; i < child.cs_config.c_npools; i++)
		if (child.cs_config.c_pools[i].pl_max_runners > max)
			max = child.cs_config.c_pools[i].pl_max_runners;
	return max;
}

static void
create_on_reply(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct http_wait	*hw = arg;
	struct evhttp_request	*req = http_wait_end(hw);
	struct json_writer	 jw;
	struct ipc_reader	 r;
	struct buf		 data;
	char			*message, *name, *rmsg;
	int			 ok, status, rok;
	unsigned int		 i, n;

	(void)ch;
	free(hw);
	if (req == NULL)
		return;
	if (msg == NULL) {
		httpd_send_envelope(req, 504, "error", NULL,
		    "the poller did not answer in time");
		return;
	}

	buf_init(&data);
	jw_init(&jw, &data);
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	ok = ipc_get_bool(&r);
	status = ipc_get_u16(&r);
	message = ipc_get_str(&r);
	n = ipc_get_u16(&r);
	jw_array_begin(&jw);
	for (i = 0; i < n && ipc_reader_error(&r) == NULL; i++) {
		name = ipc_get_str(&r);
		rok = ipc_get_bool(&r);
		rmsg = ipc_get_str(&r);
		jw_object_begin(&jw);
		jw_kv_str(&jw, "runner_id", name);
		jw_kv_str(&jw, "status", rok ? "created" : "failed");
		jw_kv_str(&jw, "message", rmsg);
		jw_object_end(&jw);
		free(name);
		free(rmsg);
	}
	jw_array_end(&jw);

	if (ipc_reader_done(&r) == -1 || status < 200 || status > 599)
		httpd_send_envelope(req, 502, "error", NULL,
		    "malformed answer from the poller");
	else
		httpd_send_envelope(req, ok ? 201 : status,
		    ok ? "success" : "error", buf_cstr(&data), message);
	free(message);
	buf_free(&data);
}

static void
create_encode(const struct create_request *cr, struct buf *b)
{
	size_t	 i;

	ipc_put_str(b, cr->cr_scope);
	ipc_put_str(b, cr->cr_scope_name);
	ipc_put_u16(b, (uint16_t)cr->cr_count);
	ipc_put_str(b, cr->cr_runner_name);
	ipc_put_str(b, cr->cr_runner_group);
	ipc_put_u16(b, (uint16_t)cr->cr_labels.sl_count);
	for (i = 0; i < cr->cr_labels.sl_count; i++)
		ipc_put_str(b, cr->cr_labels.sl_items[i]);
}

/* Sends a request on behalf of an HTTP client, or answers 503 at once. */
static void
httpd_ask(struct evhttp_request *req, struct ipc_channel *ch, uint16_t type,
    const struct buf *payload, unsigned int timeout_ms, ipc_reply_fn fn,
    const char *runner)
{
	struct http_wait	*hw;

	if (ch == NULL) {
		httpd_send_envelope(req, 503, "error", NULL, type ==
		    MSG_RUNNER_CREATE || type == MSG_GITHUB_CLEANUP ?
		    "the poller is restarting; try again" :
		    "the docker worker is restarting; try again");
		return;
	}
	hw = http_wait_new(req);
	if (runner != NULL)
		strlcpy(hw->hw_runner, runner, sizeof(hw->hw_runner));
	if (ipc_request(ch, type, payload->b_data, payload->b_len, timeout_ms,
	    fn, hw) == -1) {
		http_wait_end(hw);
		free(hw);
		httpd_send_envelope(req, 503, "error", NULL,
		    "internal channel unavailable; try again");
	}
}

static int
httpd_body(struct evhttp_request *req, const char **body, size_t *len,
    char *err, size_t errlen)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	const char	*ctype;

	ctype = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");
	if (ctype == NULL || strncasecmp(ctype, "application/json", 16) != 0 ||
	    (ctype[16] != '\0' && ctype[16] != ';')) {
		snprintf(err, errlen, "Content-Type must be application/json");
		return -1;
	}
	*len = evbuffer_get_length(in);
	*body = (const char *)evbuffer_pullup(in, -1);
	if (*body == NULL)
		*body = "";
	return 0;
}

void
httpd_runners_create(struct evhttp_request *req, const char *param)
{
	struct create_request	 cr;
	struct ipc_channel	*poller = child.cs_peers[ROLE_POLLER];
	struct buf		 payload;
	const char		*body;
	size_t			 len;
	char			 err[256];

	(void)param;
	if (httpd_body(req, &body, &len, err, sizeof(err)) == -1) {
		httpd_send_envelope(req, 415, "error", NULL, err);
		return;
	}
	if (httpd_create_parse(body, len, httpd_max_count(), &cr, err,
	    sizeof(err)) == -1) {
		httpd_send_envelope(req, HTTP_BADREQUEST, "error", NULL, err);
		httpd_create_request_free(&cr);
		return;
	}
	buf_init(&payload);
	create_encode(&cr, &payload);
	httpd_ask(req, poller, MSG_RUNNER_CREATE, &payload, CREATE_TIMEOUT_MS,
	    create_on_reply, NULL);
	log_info(LC_REQUEST, "create %lld runner%s for %s %s",
	    (long long)cr.cr_count, cr.cr_count == 1 ? "" : "s", cr.cr_scope,
	    cr.cr_scope_name);
	buf_free(&payload);
	httpd_create_request_free(&cr);
}

/* Answers of the docker worker: u8 ok, u16 http_status, str message. */
static int
docker_reply_head(struct ipc_reader *r, struct ipc_msg *msg, int *ok,
    int *status, char **message)
{
	ipc_reader_init(r, msg->m_data, msg->m_hdr.ih_len);
	*ok = ipc_get_bool(r);
	*status = ipc_get_u16(r);
	*message = ipc_get_str(r);
	return ipc_reader_error(r) == NULL && *status >= 200 &&
	    *status <= 599 ? 0 : -1;
}

static void
remove_on_reply(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct http_wait	*hw = arg;
	struct evhttp_request	*req = http_wait_end(hw);
	struct json_writer	 jw;
	struct ipc_reader	 r;
	struct buf		 data;
	char			*message = NULL;
	int			 ok, status;

	(void)ch;
	if (req == NULL)
		goto done;
	if (msg == NULL) {
		httpd_send_envelope(req, 504, "error", NULL,
		    "the docker worker did not answer in time");
		goto done;
	}
	if (docker_reply_head(&r, msg, &ok, &status, &message) == -1 ||
	    ipc_reader_done(&r) == -1) {
		httpd_send_envelope(req, 502, "error", NULL,
		    "malformed answer from the docker worker");
		goto done;
	}
	buf_init(&data);
	jw_init(&jw, &data);
	jw_object_begin(&jw);
	jw_kv_str(&jw, "runner_id", hw->hw_runner);
	jw_kv_str(&jw, "status", ok ? "removed" : "failed");
	jw_object_end(&jw);
	httpd_send_envelope(req, ok ? HTTP_OK : status, ok ? "success" :
	    "error", ok ? buf_cstr(&data) : NULL, message);
	buf_free(&data);
 done:
	free(message);
	free(hw);
}

void
httpd_runners_delete(struct evhttp_request *req, const char *name)
{
	struct buf	 payload;

	if (httpd_find_runner(name) == NULL) {
		httpd_send_unknown_runner(req, name);
		return;
	}
	buf_init(&payload);
	ipc_put_str(&payload, name);
	httpd_ask(req, child.cs_peers[ROLE_DOCKER], MSG_RUNNER_REMOVE,
	    &payload, DOCKER_TIMEOUT_MS, remove_on_reply, name);
	log_info(LC_REQUEST, "remove runner %s", name);
	buf_free(&payload);
}

static void
logs_on_reply(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct http_wait	*hw = arg;
	struct evhttp_request	*req = http_wait_end(hw);
	struct json_writer	 jw;
	struct ipc_reader	 r;
	struct buf		 data;
	const uint8_t		*log;
	char			*message = NULL;
	size_t			 len;
	int			 ok, status;

	(void)ch;
	if (req == NULL)
		goto done;
	if (msg == NULL) {
		httpd_send_envelope(req, 504, "error", NULL,
		    "the docker worker did not answer in time");
		goto done;
	}
	if (docker_reply_head(&r, msg, &ok, &status, &message) == -1 ||
	    (log = ipc_get_blob(&r, &len)) == NULL ||
	    ipc_reader_done(&r) == -1) {
		httpd_send_envelope(req, 502, "error", NULL,
		    "malformed answer from the docker worker");
		goto done;
	}
	buf_init(&data);
	jw_init(&jw, &data);
	jw_object_begin(&jw);
	jw_kv_str(&jw, "runner_id", hw->hw_runner);
	jw_key(&jw, "logs");
	jw_strn(&jw, (const char *)log, len);
	jw_object_end(&jw);
	httpd_send_envelope(req, ok ? HTTP_OK : status, ok ? "success" :
	    "error", ok ? buf_cstr(&data) : NULL, message);
	buf_free(&data);
 done:
	free(message);
	free(hw);
}

void
httpd_runners_logs(struct evhttp_request *req, const char *name)
{
	struct evkeyvalq	 query;
	struct buf		 payload;
	const char		*tail, *why;
	uint64_t		 lines = LOG_TAIL_DEFAULT;

	memset(&query, 0, sizeof(query));
	evhttp_parse_query_str(evhttp_uri_get_query(
	    evhttp_request_get_evhttp_uri(req)) != NULL ? evhttp_uri_get_query(
	    evhttp_request_get_evhttp_uri(req)) : "", &query);
	tail = evhttp_find_header(&query, "tail");
	if (tail != NULL && parse_u64(tail, 1, LOG_TAIL_MAX, &lines,
	    &why) == -1) {
		evhttp_clear_headers(&query);
		httpd_send_envelope(req, HTTP_BADREQUEST, "error", NULL,
		    "'tail' must be an integer from 1 to 10000");
		return;
	}
	evhttp_clear_headers(&query);
	if (httpd_find_runner(name) == NULL) {
		httpd_send_unknown_runner(req, name);
		return;
	}

	buf_init(&payload);
	ipc_put_str(&payload, name);
	ipc_put_u32(&payload, (uint32_t)lines);
	httpd_ask(req, child.cs_peers[ROLE_DOCKER], MSG_RUNNER_LOGS,
	    &payload, DOCKER_TIMEOUT_MS, logs_on_reply, name);
	buf_free(&payload);
}

static void
cleanup_on_reply(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct http_wait	*hw = arg;
	struct evhttp_request	*req = http_wait_end(hw);
	struct json_writer	 jw;
	struct ipc_reader	 r;
	struct buf		 data;
	char			*message = NULL;
	uint32_t		 removed;

	(void)ch;
	if (req == NULL)
		goto done;
	if (msg == NULL) {
		httpd_send_envelope(req, 504, "error", NULL,
		    "the docker worker did not answer in time");
		goto done;
	}
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	removed = ipc_get_u32(&r);
	message = ipc_get_str(&r);
	if (ipc_reader_done(&r) == -1) {
		httpd_send_envelope(req, 502, "error", NULL,
		    "malformed answer from the docker worker");
		goto done;
	}
	buf_init(&data);
	jw_init(&jw, &data);
	jw_object_begin(&jw);
	jw_kv_int(&jw, "removed", removed);
	jw_object_end(&jw);
	httpd_send_envelope(req, HTTP_OK, "success", buf_cstr(&data),
	    message);
	buf_free(&data);
 done:
	free(message);
	free(hw);
}

void
httpd_runners_cleanup(struct evhttp_request *req, const char *param)
{
	struct buf	 payload;

	(void)param;
	buf_init(&payload);
	httpd_ask(req, child.cs_peers[ROLE_DOCKER], MSG_RUNNER_CLEANUP,
	    &payload, DOCKER_TIMEOUT_MS, cleanup_on_reply, NULL);
	log_info(LC_REQUEST, "clean up runners");
	buf_free(&payload);
}

/*
 * MSG_GITHUB_CLEANUP's u8, as ipc.h describes it: delete, dry run, or
 * list this instance's runners as GitHub sees them.
 */
#define GITHUB_CLEANUP_DELETE	0
#define GITHUB_CLEANUP_DRY_RUN	1
#define GITHUB_CLEANUP_REPORT	2
/* Every scope is read page after page, then runners deleted in series. */
#define GITHUB_CLEANUP_TIMEOUT_MS	120000

/*
 * The envelope for a peer's answer of u16 status, str message and blob
 * data.  The data is passed on only as JSON of the expected kind (an
 * object, or with arrays_ok an array too): peers are not trusted.
 */
void
httpd_send_peer_answer(struct evhttp_request *req, const struct ipc_msg *msg,
    const char *peer, int arrays_ok)
{
	struct ipc_reader	 r;
	struct json_doc		 doc;
	const uint8_t		*blob;
	const char		*why;
	char			*message, *data = NULL, text[96];
	size_t			 len;
	int			 status, type;

	if (msg == NULL) {
		snprintf(text, sizeof(text), "the %s did not answer in time",
		    peer);
		httpd_send_error(req, 504, text);
		return;
	}
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	status = ipc_get_u16(&r);
	message = ipc_get_str(&r);
	blob = ipc_get_blob(&r, &len);
	if (ipc_reader_done(&r) == -1 || status < 200 || status > 599) {
		snprintf(text, sizeof(text), "malformed answer from the %s",
		    peer);
		httpd_send_error(req, 502, text);
		free(message);
		return;
	}

	if (len > 0 && json_parse(&doc, (const char *)blob, len, &why) == 0) {
		type = json_type(&doc, 0);
		if (type == JSON_OBJECT || (arrays_ok && type == JSON_ARRAY))
			data = xstrndup((const char *)blob, len);
		json_free(&doc);
	}
	httpd_send_envelope(req, status, status < 300 ? "success" : "error",
	    data, message);
	free(data);
	free(message);
}

static void
github_cleanup_on_reply(struct ipc_channel *ch, struct ipc_msg *msg,
    void *arg)
{
	struct http_wait	*hw = arg;
	struct evhttp_request	*req = http_wait_end(hw);

	(void)ch;
	free(hw);
	if (req != NULL)
		httpd_send_peer_answer(req, msg, "poller", 1);
}

static void
github_cleanup_ask(struct evhttp_request *req, uint8_t mode)
{
	struct buf	 payload;

	buf_init(&payload);
	ipc_put_u8(&payload, mode);
	httpd_ask(req, child.cs_peers[ROLE_POLLER], MSG_GITHUB_CLEANUP,
	    &payload, GITHUB_CLEANUP_TIMEOUT_MS, github_cleanup_on_reply, NULL);
	buf_free(&payload);
}

/* GitHub's runner lists, read by the poller: this instance's runners. */
void
httpd_runners_github_status(struct evhttp_request *req, const char *param)
{
	(void)param;
	github_cleanup_ask(req, GITHUB_CLEANUP_REPORT);
}

void
httpd_runners_cleanup_github(struct evhttp_request *req, const char *param)
{
	const char	*q;
	int		 dry;

	(void)param;
	q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if ((dry = httpd_dry_run_query(q)) == -2) {
		httpd_send_envelope(req, HTTP_BADREQUEST, "error", NULL,
		    "malformed query string");
		return;
	}
	if (dry == -1) {
		httpd_send_envelope(req, HTTP_BADREQUEST, "error", NULL,
		    "the only query parameter is 'dry_run', once: true, "
		    "false, 1 or 0");
		return;
	}
	log_info(LC_REQUEST, "clean up GitHub runners%s",
	    dry ? " (dry run)" : "");
	github_cleanup_ask(req, dry ? GITHUB_CLEANUP_DRY_RUN :
	    GITHUB_CLEANUP_DELETE);
}

/* Every configured pool appears, with zeros, so that graphs start. */
void
httpd_runners_metrics(struct buf *out)
{
	const struct config	*conf = &child.cs_config;
	size_t			 p, i;
	int			 s;
	unsigned int		 n;

	for (p = 0; p < conf->c_npools; p++)
		for (s = 0; s < RUNNER_STATUS_COUNT; s++) {
			n = 0;
			for (i = 0; i < httpd_nrunners; i++)
				if (httpd_runners[i].rn_status ==
				    (enum runner_status)s &&
				    strcmp(httpd_runners[i].rn_pool,
				    conf->c_pools[p].pl_name) == 0)
					n++;
			buf_printf(out, "ephemerd_runners{pool=\"%s\","
			    "state=\"%s\"} %u\n", conf->c_pools[p].pl_name,
			    runner_status_name((enum runner_status)s), n);
		}
}
