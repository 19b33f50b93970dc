/*
 * The Docker Engine API client.  Every call is one HTTP request over the
 * engine's unix socket; the done function gets the engine's own error
 * message, or the transport's when the engine is out of reach.  Events
 * and image pulls are streamed and parsed as they come.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "docker.h"
#include "docker_api.h"
#include "http_client.h"
#include "json.h"
#include "json_write.h"
#include "log.h"
#include "runner.h"
#include "util.h"

#define CALL_TIMEOUT_MS		30000L
#define CREATE_TIMEOUT_MS	60000L
#define PULL_TIMEOUT_MS		(15L * 60 * 1000)
#define EVENTS_TIMEOUT_MS	(24L * 3600 * 1000)
#define DEMUX_FRAME_MAX		(16U * 1024 * 1024)

enum call_kind {
	CALL_PLAIN,
	CALL_REMOVE,		/* 404 means already gone */
	CALL_START,		/* 304 means already started */
	CALL_STOP,		/* 304 means already stopped */
	CALL_LOGS,
	CALL_PULL,
	CALL_EVENTS,
	CALL_VERSION
};

/* An event parsed inside libcurl's callback, delivered from the loop. */
struct queued_event {
	TAILQ_ENTRY(queued_event) qe_entry;
	struct docker_event	 qe_ev;
};

TAILQ_HEAD(queued_events, queued_event);

/* One request in flight. */
struct docker_call {
	struct docker_engine	*dc_engine;
	enum call_kind		 dc_kind;
	docker_done_fn		 dc_done;
	docker_event_fn		 dc_on_event;
	void			*dc_arg;
	struct docker_lines	 dc_lines;	/* streamed calls */
	char			*dc_error;	/* from a streamed body */
	struct queued_events	 dc_events;
	struct event		*dc_flush;
	int			 dc_in_flush;
	int			 dc_finished;	/* done called during a flush */
};

void
docker_engine_init(struct docker_engine *de, struct event_base *base,
    const char *socket)
{
	memset(de, 0, sizeof(*de));
	de->de_base = base;
	de->de_http = http_client_new(base);
	de->de_socket = xstrdup(socket);
}

void
docker_engine_free(struct docker_engine *de)
{
	if (de->de_http != NULL)
		http_client_free(de->de_http);
	free(de->de_socket);
	free(de->de_version);
	free(de->de_api_version);
	memset(de, 0, sizeof(*de));
}

void
docker_cancel(struct docker_engine *de, long id)
{
	if (id > 0 && de->de_http != NULL)
		http_cancel(de->de_http, id);
}

/* Parsers of the streamed bodies. */

void
docker_lines_init(struct docker_lines *dl)
{
	memset(dl, 0, sizeof(*dl));
	buf_init(&dl->dl_buf);
}

void
docker_lines_free(struct docker_lines *dl)
{
	buf_free(&dl->dl_buf);
}

void
docker_lines_feed(struct docker_lines *dl, const char *data, size_t len,
    docker_line_fn fn, void *arg)
{
	const char	*nl;
	size_t		 n;

	while (len > 0) {
		nl = memchr(data, '\n', len);
		n = nl != NULL ? (size_t)(nl - data) : len;
		if (!dl->dl_skipping &&
		    dl->dl_buf.b_len + n > DOCKER_LINE_MAX) {
			dl->dl_skipping = 1;
			dl->dl_dropped++;
			buf_reset(&dl->dl_buf);
		}
		if (!dl->dl_skipping)
			buf_add(&dl->dl_buf, data, n);
		if (nl == NULL)
			return;
		data += n + 1;
		len -= n + 1;

		/* A whole line: hand it over, without its CR if any. */
		n = dl->dl_buf.b_len;
		if (n > 0 && dl->dl_buf.b_data[n - 1] == '\r')
			n--;
		if (!dl->dl_skipping && n > 0)
			fn((const char *)dl->dl_buf.b_data, n, arg);
		dl->dl_skipping = 0;
		buf_reset(&dl->dl_buf);
	}
}

static char *
json_member_dup(const char *line, size_t len, const char *key,
    const char *key2)
{
	struct json_doc	 doc;
	const char	*why;
	char		*s = NULL;
	int		 tok;

	if (json_parse(&doc, line, len, &why) == -1)
		return NULL;
	if (json_type(&doc, 0) == JSON_OBJECT) {
		tok = json_object_get(&doc, 0, key);
		if ((tok == -1 || json_type(&doc, tok) != JSON_STRING) &&
		    key2 != NULL)
			tok = json_object_get(&doc, 0, key2);
		if (tok != -1)
			s = json_get_str(&doc, tok);
	}
	json_free(&doc);
	return s;
}

char *
docker_error_message(const char *body, size_t len)
{
	return json_member_dup(body, len, "message", NULL);
}

char *
docker_pull_error(const char *line, size_t len)
{
	return json_member_dup(line, len, "error", NULL);
}

void
docker_event_free(struct docker_event *ev)
{
	free(ev->ev_type);
	free(ev->ev_action);
	free(ev->ev_id);
	free(ev->ev_name);
	free(ev->ev_runner);
	free(ev->ev_instance);
	memset(ev, 0, sizeof(*ev));
}

static void
docker_event_attributes(const struct json_doc *doc, int attrs,
    struct docker_event *ev)
{
	char		*s, *code;
	uint64_t	 v;
	const char	*why;

	ev->ev_name = json_member_str(doc, attrs, "name");
	ev->ev_runner = json_member_str(doc, attrs, LABEL_RUNNER);
	ev->ev_instance = json_member_str(doc, attrs, LABEL_INSTANCE);
	if ((s = json_member_str(doc, attrs, LABEL_MANAGED)) != NULL)
		ev->ev_managed = strcmp(s, "true") == 0;
	free(s);

	/* The engine sends the exit code as a decimal string. */
	code = json_member_str(doc, attrs, "exitCode");
	if (code != NULL && parse_u64(code, 0, 255, &v, &why) == 0) {
		ev->ev_has_exit = 1;
		ev->ev_exit_code = (int)v;
	}
	free(code);
}

int
docker_event_parse(const char *line, size_t len, struct docker_event *ev)
{
	struct json_doc	 doc;
	const char	*why;
	int		 actor, attrs;

	memset(ev, 0, sizeof(*ev));
	if (json_parse(&doc, line, len, &why) == -1)
		return -1;
	if (json_type(&doc, 0) != JSON_OBJECT)
		goto fail;

	ev->ev_type = json_member_str(&doc, 0, "Type");
	ev->ev_action = json_member_str(&doc, 0, "Action");
	actor = json_object_get(&doc, 0, "Actor");
	if (ev->ev_type == NULL || ev->ev_action == NULL || actor == -1 ||
	    json_type(&doc, actor) != JSON_OBJECT)
		goto fail;
	ev->ev_id = json_member_str(&doc, actor, "ID");
	if (ev->ev_id == NULL || ev->ev_id[0] == '\0')
		goto fail;
	attrs = json_object_get(&doc, actor, "Attributes");
	if (attrs != -1 && json_type(&doc, attrs) == JSON_OBJECT)
		docker_event_attributes(&doc, attrs, ev);
	json_free(&doc);
	return 0;

fail:
	json_free(&doc);
	docker_event_free(ev);
	return -1;
}

void
docker_demux_init(struct docker_demux *dx, struct buf *out)
{
	memset(dx, 0, sizeof(*dx));
	dx->dx_out = out;
}

int
docker_demux_feed(struct docker_demux *dx, const uint8_t *data, size_t len)
{
	size_t	 n;

	while (len > 0 && !dx->dx_bad) {
		if (dx->dx_left > 0) {
			n = len < dx->dx_left ? len : dx->dx_left;
			buf_add(dx->dx_out, data, n);
			dx->dx_left -= (uint32_t)n;
			data += n;
			len -= n;
			continue;
		}

		n = sizeof(dx->dx_hdr) - dx->dx_have;
		n = len < n ? len : n;
		memcpy(dx->dx_hdr + dx->dx_have, data, n);
		dx->dx_have += n;
		data += n;
		len -= n;
		if (dx->dx_have < sizeof(dx->dx_hdr))
			break;

		/* Stream 0, 1 or 2, three zero bytes, then the size. */
		if (dx->dx_hdr[0] > 2 || dx->dx_hdr[1] != 0 ||
		    dx->dx_hdr[2] != 0 || dx->dx_hdr[3] != 0) {
			dx->dx_bad = 1;
			break;
		}
		dx->dx_left = (uint32_t)dx->dx_hdr[4] << 24 |
		    (uint32_t)dx->dx_hdr[5] << 16 |
		    (uint32_t)dx->dx_hdr[6] << 8 | dx->dx_hdr[7];
		if (dx->dx_left > DEMUX_FRAME_MAX)
			dx->dx_bad = 1;
		dx->dx_have = 0;
	}
	return dx->dx_bad ? -1 : 0;
}

void
docker_log_demux(const uint8_t *data, size_t len, struct buf *out)
{
	struct docker_demux	 dx;
	size_t			 start = out->b_len;

	docker_demux_init(&dx, out);
	if (docker_demux_feed(&dx, data, len) == 0 && dx.dx_have == 0)
		return;

	/* A TTY's output, or a truncated frame: keep the bytes as they are. */
	out->b_len = start;
	buf_add(out, data, len);
}

void
docker_image_split(const char *image, char **repo, char **tag)
{
	const char	*colon, *slash, *at;

	/* A colon before the last slash is a registry's port. */
	at = strchr(image, '@');
	colon = strrchr(image, ':');
	slash = strrchr(image, '/');
	if (at != NULL) {
		*repo = xstrndup(image, (size_t)(at - image));
		*tag = xstrdup(at + 1);
	} else if (colon != NULL && (slash == NULL || colon > slash)) {
		*repo = xstrndup(image, (size_t)(colon - image));
		*tag = xstrdup(colon + 1);
	} else {
		*repo = xstrdup(image);
		*tag = xstrdup("latest");
	}
}

int
docker_api_prefix(const char *version, char *out, size_t outlen)
{
	unsigned long	 major, minor;
	char		*end;

	if (version == NULL || !isdigit((unsigned char)version[0]))
		return -1;
	major = strtoul(version, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]))
		return -1;
	minor = strtoul(end + 1, &end, 10);
	if (*end != '\0' || major > 99 || minor > 999)
		return -1;
	if (major > DOCKER_API_MAX_MAJOR || (major == DOCKER_API_MAX_MAJOR &&
	    minor > DOCKER_API_MAX_MINOR)) {
		major = DOCKER_API_MAX_MAJOR;
		minor = DOCKER_API_MAX_MINOR;
	}
	snprintf(out, outlen, "/v%lu.%lu", major, minor);
	return 0;
}

void
docker_url_escape(struct buf *b, const char *s)
{
	static const char	 hex[] = "0123456789ABCDEF";
	unsigned char		 c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '_' || c == '.' ||
		    c == '~')
			buf_add_char(b, (char)c);
		else {
			buf_add_char(b, '%');
			buf_add_char(b, hex[c >> 4]);
			buf_add_char(b, hex[c & 15]);
		}
	}
}

/* The filters query of a list or events call, already escaped. */
static void
docker_filters(struct buf *url, const char *const *labels, int containers)
{
	struct json_writer	 jw;
	struct buf		 json;

	buf_init(&json);
	jw_init(&jw, &json);
	jw_object_begin(&jw);
	jw_key(&jw, "label");
	jw_array_begin(&jw);
	for (; labels != NULL && *labels != NULL; labels++)
		jw_str(&jw, *labels);
	jw_array_end(&jw);
	if (containers) {
		jw_key(&jw, "type");
		jw_array_begin(&jw);
		jw_str(&jw, "container");
		jw_array_end(&jw);
	}
	jw_object_end(&jw);
	buf_add_str(url, "filters=");
	docker_url_escape(url, buf_cstr(&json));
	buf_free(&json);
}

/* Requests. */

static int	 docker_on_data(const char *, size_t, void *);
static void	 docker_on_done(struct http_response *, void *);

static struct docker_call *
docker_call_new(struct docker_engine *de, enum call_kind kind,
    docker_done_fn done, void *arg)
{
	struct docker_call	*dc;

	dc = xcalloc(1, sizeof(*dc));
	dc->dc_engine = de;
	dc->dc_kind = kind;
	dc->dc_done = done;
	dc->dc_arg = arg;
	docker_lines_init(&dc->dc_lines);
	TAILQ_INIT(&dc->dc_events);
	return dc;
}

static void
docker_call_free(struct docker_call *dc)
{
	struct queued_event	*qe;

	while ((qe = TAILQ_FIRST(&dc->dc_events)) != NULL) {
		TAILQ_REMOVE(&dc->dc_events, qe, qe_entry);
		docker_event_free(&qe->qe_ev);
		free(qe);
	}
	if (dc->dc_flush != NULL)
		event_free(dc->dc_flush);
	free(dc->dc_error);
	docker_lines_free(&dc->dc_lines);
	free(dc);
}

/*
 * Hands the queued events over.  A handler may cancel the stream, which
 * finishes the call under our feet: then the call is freed here, after
 * the loop, and no later event is delivered.
 */
static void
docker_events_deliver(struct docker_call *dc)
{
	struct queued_event	*qe;

	dc->dc_in_flush = 1;
	while (!dc->dc_finished &&
	    (qe = TAILQ_FIRST(&dc->dc_events)) != NULL) {
		TAILQ_REMOVE(&dc->dc_events, qe, qe_entry);
		dc->dc_on_event(&qe->qe_ev, dc->dc_arg);
		docker_event_free(&qe->qe_ev);
		free(qe);
	}
	dc->dc_in_flush = 0;
}

static void
docker_events_flush(evutil_socket_t fd, short what, void *arg)
{
	struct docker_call	*dc = arg;

	(void)fd;
	(void)what;
	docker_events_deliver(dc);
	if (dc->dc_finished)
		docker_call_free(dc);
}

static long
docker_call_send(struct docker_call *dc, const char *method,
    const char *path, const void *body, size_t len, long timeout_ms)
{
	static const char	*json_headers[] = {
		"Content-Type: application/json", NULL
	};
	struct docker_engine	*de = dc->dc_engine;
	struct http_request	 rq;
	char			*url;
	long			 id;

	xasprintf(&url, "%s%s%s", DOCKER_URL_BASE,
	    dc->dc_kind == CALL_VERSION ? "" : de->de_prefix, path);
	memset(&rq, 0, sizeof(rq));
	rq.hq_method = method;
	rq.hq_url = url;
	rq.hq_unix_socket = de->de_socket;
	rq.hq_headers = body != NULL ? json_headers : NULL;
	rq.hq_body = body;
	rq.hq_body_len = len;
	rq.hq_timeout_ms = timeout_ms;
	if (dc->dc_kind == CALL_PULL || dc->dc_kind == CALL_EVENTS)
		rq.hq_on_data = docker_on_data;
	log_debug(LC_INFO, "engine: %s %s", method, path);
	id = http_request_start(de->de_http, &rq, docker_on_done, dc);
	free(url);
	if (id == -1)
		docker_call_free(dc);
	return id;
}

static long
docker_call_start(struct docker_engine *de, enum call_kind kind,
    const char *method, const char *path, const void *body, size_t len,
    long timeout_ms, docker_done_fn done, void *arg)
{
	return docker_call_send(docker_call_new(de, kind, done, arg), method,
	    path, body, len, timeout_ms);
}

/* A line of a streamed body: an event, or a pull's progress. */
static void
docker_on_line(const char *line, size_t len, void *arg)
{
	struct docker_call	*dc = arg;
	struct queued_event	*qe;
	struct docker_event	 ev;

	/* libcurl forbids new requests from here: the loop delivers it. */
	if (dc->dc_kind == CALL_EVENTS &&
	    docker_event_parse(line, len, &ev) == 0) {
		qe = xcalloc(1, sizeof(*qe));
		qe->qe_ev = ev;
		TAILQ_INSERT_TAIL(&dc->dc_events, qe, qe_entry);
		return;
	}
	if (dc->dc_error == NULL)
		dc->dc_error = json_member_dup(line, len, "error", "message");
}

static int
docker_on_data(const char *data, size_t len, void *arg)
{
	struct docker_call	*dc = arg;
	struct timeval		 zero = { 0, 0 };

	docker_lines_feed(&dc->dc_lines, data, len, docker_on_line, dc);
	if (TAILQ_EMPTY(&dc->dc_events))
		return 0;
	if (dc->dc_flush == NULL && (dc->dc_flush = evtimer_new(
	    dc->dc_engine->de_base, docker_events_flush, dc)) == NULL)
		fatalx("evtimer_new failed");
	evtimer_add(dc->dc_flush, &zero);
	return 0;
}

static int
docker_call_ok(const struct docker_call *dc, long status)
{
	if (status >= 200 && status < 300)
		return 1;
	return (dc->dc_kind == CALL_REMOVE && status == 404) ||
	    ((dc->dc_kind == CALL_STOP || dc->dc_kind == CALL_START) &&
	    status == 304);
}

static void
docker_version_apply(struct docker_engine *de, const struct buf *body)
{
	struct json_doc	 doc;
	const char	*why;

	if (json_parse(&doc, (const char *)body->b_data, body->b_len,
	    &why) == -1)
		return;
	free(de->de_version);
	free(de->de_api_version);
	de->de_version = json_member_str(&doc, 0, "Version");
	de->de_api_version = json_member_str(&doc, 0, "ApiVersion");
	json_free(&doc);
	if (docker_api_prefix(de->de_api_version, de->de_prefix,
	    sizeof(de->de_prefix)) == -1)
		de->de_prefix[0] = '\0';
}

static void
docker_on_done(struct http_response *res, void *arg)
{
	struct docker_call	*dc = arg;
	struct docker_result	 dr;
	struct buf		 logs;
	char			*msg = NULL, generic[64];

	/* A last line without its newline. */
	if (dc->dc_lines.dl_buf.b_len > 0 && !dc->dc_lines.dl_skipping)
		docker_on_line((const char *)dc->dc_lines.dl_buf.b_data,
		    dc->dc_lines.dl_buf.b_len, dc);

	/* Events that came before the end go first. */
	if (dc->dc_kind == CALL_EVENTS && !dc->dc_in_flush)
		docker_events_deliver(dc);

	memset(&dr, 0, sizeof(dr));
	buf_init(&logs);
	dr.dr_status = res->hr_status;
	dr.dr_body = (const char *)res->hr_body.b_data;
	dr.dr_len = res->hr_body.b_len;
	if (res->hr_status == 0) {
		dr.dr_transport = 1;
		dr.dr_error = res->hr_error != NULL ? res->hr_error :
		    "no answer from the engine";
	} else if (!docker_call_ok(dc, res->hr_status)) {
		msg = dc->dc_error != NULL ? xstrdup(dc->dc_error) :
		    docker_error_message(dr.dr_body, dr.dr_len);
		snprintf(generic, sizeof(generic), "engine answered %ld",
		    res->hr_status);
		dr.dr_error = msg != NULL ? msg : generic;
	} else if (dc->dc_kind == CALL_PULL && dc->dc_error != NULL)
		dr.dr_error = dc->dc_error;
	else if (dc->dc_kind == CALL_VERSION) {
		docker_version_apply(dc->dc_engine, &res->hr_body);
		if (dc->dc_engine->de_prefix[0] == '\0')
			dr.dr_error = "no usable ApiVersion in /version";
	} else if (dc->dc_kind == CALL_LOGS) {
		docker_log_demux(res->hr_body.b_data, res->hr_body.b_len,
		    &logs);
		dr.dr_body = (const char *)logs.b_data;
		dr.dr_len = logs.b_len;
	}

	dc->dc_done(&dr, dc->dc_arg);
	buf_free(&logs);
	free(msg);
	if (dc->dc_in_flush)
		dc->dc_finished = 1;
	else
		docker_call_free(dc);
}

long
docker_version(struct docker_engine *de, docker_done_fn done, void *arg)
{
	return docker_call_start(de, CALL_VERSION, "GET", "/version", NULL, 0,
	    CALL_TIMEOUT_MS, done, arg);
}

/* Calls on one container: the id or name goes into the path, escaped. */
static long
docker_container_call(struct docker_engine *de, enum call_kind kind,
    const char *method, const char *id, const char *rest, long timeout_ms,
    docker_done_fn done, void *arg)
{
	struct buf	 path;
	long		 rc;

	buf_init(&path);
	buf_add_str(&path, "/containers/");
	docker_url_escape(&path, id);
	buf_add_str(&path, rest);
	rc = docker_call_start(de, kind, method, buf_cstr(&path), NULL, 0,
	    timeout_ms, done, arg);
	buf_free(&path);
	return rc;
}

long
docker_container_create(struct docker_engine *de, const char *name,
    const void *body, size_t len, docker_done_fn done, void *arg)
{
	struct buf	 path;
	long		 rc;

	buf_init(&path);
	buf_add_str(&path, "/containers/create?name=");
	docker_url_escape(&path, name);
	rc = docker_call_start(de, CALL_PLAIN, "POST", buf_cstr(&path), body,
	    len, CREATE_TIMEOUT_MS, done, arg);
	buf_free(&path);
	return rc;
}

long
docker_container_start(struct docker_engine *de, const char *id,
    docker_done_fn done, void *arg)
{
	return docker_container_call(de, CALL_START, "POST", id, "/start",
	    CREATE_TIMEOUT_MS, done, arg);
}

long
docker_container_stop(struct docker_engine *de, const char *id, int secs,
    docker_done_fn done, void *arg)
{
	char	 rest[32];

	snprintf(rest, sizeof(rest), "/stop?t=%d", secs);
	return docker_container_call(de, CALL_STOP, "POST", id, rest,
	    CALL_TIMEOUT_MS + secs * 1000L, done, arg);
}

long
docker_container_remove(struct docker_engine *de, const char *id,
    docker_done_fn done, void *arg)
{
	return docker_container_call(de, CALL_REMOVE, "DELETE", id,
	    "?force=1", CALL_TIMEOUT_MS, done, arg);
}

long
docker_container_inspect(struct docker_engine *de, const char *id,
    docker_done_fn done, void *arg)
{
	return docker_container_call(de, CALL_PLAIN, "GET", id, "/json",
	    CALL_TIMEOUT_MS, done, arg);
}

long
docker_container_logs(struct docker_engine *de, const char *id,
    unsigned int tail, docker_done_fn done, void *arg)
{
	char	 rest[64];

	snprintf(rest, sizeof(rest), "/logs?stdout=1&stderr=1&tail=%u", tail);
	return docker_container_call(de, CALL_LOGS, "GET", id, rest,
	    CALL_TIMEOUT_MS, done, arg);
}

long
docker_container_list(struct docker_engine *de, const char *const *labels,
    docker_done_fn done, void *arg)
{
	struct buf	 path;
	long		 rc;

	buf_init(&path);
	buf_add_str(&path, "/containers/json?all=1&");
	docker_filters(&path, labels, 0);
	rc = docker_call_start(de, CALL_PLAIN, "GET", buf_cstr(&path), NULL,
	    0, CALL_TIMEOUT_MS, done, arg);
	buf_free(&path);
	return rc;
}

long
docker_image_pull(struct docker_engine *de, const char *image,
    docker_done_fn done, void *arg)
{
	struct buf	 path;
	char		*repo, *tag;
	long		 rc;

	docker_image_split(image, &repo, &tag);
	buf_init(&path);
	buf_add_str(&path, "/images/create?fromImage=");
	docker_url_escape(&path, repo);
	buf_add_str(&path, "&tag=");
	docker_url_escape(&path, tag);
	rc = docker_call_start(de, CALL_PULL, "POST", buf_cstr(&path), NULL,
	    0, PULL_TIMEOUT_MS, done, arg);
	buf_free(&path);
	free(repo);
	free(tag);
	return rc;
}

long
docker_events(struct docker_engine *de, const char *const *labels,
    docker_event_fn on_event, docker_done_fn done, void *arg)
{
	struct docker_call	*dc;
	struct buf		 path;
	long			 rc;

	dc = docker_call_new(de, CALL_EVENTS, done, arg);
	dc->dc_on_event = on_event;
	buf_init(&path);
	buf_add_str(&path, "/events?");
	docker_filters(&path, labels, 1);
	rc = docker_call_send(dc, "GET", buf_cstr(&path), NULL, 0,
	    EVENTS_TIMEOUT_MS);
	buf_free(&path);
	return rc;
}
