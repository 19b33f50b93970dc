/*
 * /metrics in the Prometheus text format.  httpd counts its own requests
 * and knows the runner table; the supervisor and the workers answer
 * MSG_METRICS_REQ with sample lines of the families declared here, and
 * httpd keeps only well-formed lines of the families each one may send.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "log.h"
#include "supervisor.h"
#include "util.h"

#define METRICS_TIMEOUT_MS	1500
#define METRICS_LINE_MAX	512
#define STATUS_MIN		100
#define STATUS_MAX		599

struct metric_family {
	const char	*mf_name;
	const char	*mf_type;
	const char	*mf_help;
	int		 mf_source;	/* the role whose samples count */
};

static const struct metric_family families[] = {
	{ "ephemerd_process_up", "gauge",
	    "Whether the process answered this scrape.", ROLE_HTTPD },
	{ "ephemerd_child_restarts_total", "counter",
	    "Times the supervisor restarted a child.", ROLE_SUPERVISOR },
	{ "ephemerd_http_requests_total", "counter",
	    "HTTP requests by route template and status.",
	    ROLE_HTTPD },
	{ "ephemerd_http_connections", "gauge",
	    "Open HTTP connections.", ROLE_HTTPD },
	{ "ephemerd_runners", "gauge",
	    "Runners in the table by pool and state.", ROLE_HTTPD },
	{ "ephemerd_runners_created_total", "counter",
	    "Runner containers created, by pool.", ROLE_DOCKER },
	{ "ephemerd_runners_destroyed_total", "counter",
	    "Runner containers removed, by pool.", ROLE_DOCKER },
	{ "ephemerd_container_exits_total", "counter",
	    "Runner containers that exited, by exit code.", ROLE_DOCKER },
	{ "ephemerd_github_requests_total", "counter",
	    "GitHub API requests by endpoint and status.", ROLE_POLLER },
	{ "ephemerd_github_rate_limit_remaining", "gauge",
	    "GitHub's X-RateLimit-Remaining as last seen.", ROLE_POLLER },
	{ "ephemerd_webhook_deliveries_total", "counter",
	    "Webhook deliveries by result.", ROLE_POLLER },
	{ "ephemerd_github_paused", "gauge",
	    "1 while GitHub requests are held back by a rate limit or a "
	    "backoff.", ROLE_POLLER },
	{ "ephemerd_auto_repositories", "gauge",
	    "Repositories automatic mode found.", ROLE_POLLER },
	{ "ephemerd_auto_watched_repositories", "gauge",
	    "Repositories whose workflows may want self-hosted runners.",
	    ROLE_POLLER },
	{ "ephemerd_auto_queued_jobs", "gauge",
	    "Queued jobs automatic mode knows of.", ROLE_POLLER },
	{ "ephemerd_auto_cycles_total", "counter",
	    "Demand polling rounds completed.", ROLE_POLLER },
	{ "ephemerd_auto_discoveries_total", "counter",
	    "Discovery rounds completed.", ROLE_POLLER },
	{ "ephemerd_auto_fetch_errors_total", "counter",
	    "GitHub reads of automatic mode that failed.", ROLE_POLLER },
	{ "ephemerd_auto_runners_started_total", "counter",
	    "Runners automatic mode asked for.", ROLE_POLLER },
	{ "ephemerd_job_queued_to_running_seconds", "histogram",
	    "Seconds from a job being queued to its runner's container "
	    "running (0 for a warm runner), by pool.", ROLE_POLLER },
	{ "ephemerd_job_running_to_picked_seconds", "histogram",
	    "Seconds from the later of a job being queued and its runner "
	    "running to the runner picking it, by pool.", ROLE_POLLER },
};

/* The sample names of a histogram family. */
static const char *const histogram_suffixes[] = { "_bucket", "_sum",
    "_count" };

/* Requests by route (ROUTE_COUNT for none) and status. */
static uint64_t	 http_counts[ROUTE_COUNT + 1][STATUS_MAX - STATUS_MIN + 1];

struct metrics_query {
	struct evhttp_request	*mq_req;
	int			 mq_pending;
	int			 mq_answered[ROLE_COUNT];
	struct buf		 mq_text[ROLE_COUNT];
};

struct metrics_wait {
	struct metrics_query	*mw_query;
	enum ipc_role		 mw_role;
};

void
httpd_metrics_count(const struct httpd_route *rt, int code)
{
	if (code < STATUS_MIN || code > STATUS_MAX)
		return;
	http_counts[rt != NULL ? rt->rt_id : ROUTE_COUNT]
	    [code - STATUS_MIN]++;
}

void
httpd_metrics_free(void)
{
	memset(http_counts, 0, sizeof(http_counts));
}

/*
 * A sample line of the family: the name, optional labels of printable
 * characters, a space and a number.  Nothing else reaches the output.
 */
int
httpd_metrics_line_ok(const char *line, size_t len, const char *family)
{
	size_t	 nlen = strlen(family), i;
	int	 quoted = 0;

	if (len >= METRICS_LINE_MAX || len <= nlen + 1 ||
	    strncmp(line, family, nlen) != 0)
		return 0;
	i = nlen;
	if (line[i] == '{') {
		for (i++; i < len && (quoted || line[i] != '}'); i++) {
			if (line[i] < 0x20 || line[i] == 0x7f)
				return 0;
			if (line[i] == '\\' && quoted && i + 1 < len)
				i++;
			else if (line[i] == '"')
				quoted = !quoted;
		}
		if (i >= len)
			return 0;
		i++;
	}
	if (line[i++] != ' ' || i >= len)
		return 0;
	for (; i < len; i++)
		if (line[i] == '\0' ||
		    strchr("0123456789.eE+-NaInf", line[i]) == NULL)
			return 0;
	return 1;
}

/* Copies the lines of text that belong to the family. */
static void
metrics_copy_family(struct buf *out, const struct buf *text,
    const char *family)
{
	const char	*p = (const char *)text->b_data, *end = p + text->b_len;
	const char	*nl;

	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (httpd_metrics_line_ok(p, (size_t)(nl - p), family)) {
			buf_add(out, p, (size_t)(nl - p));
			buf_add_char(out, '\n');
		}
		p = nl + 1;
	}
}

static void
metrics_copy_samples(struct buf *out, const struct buf *text,
    const struct metric_family *mf)
{
	char	 name[128];
	size_t	 i;

	if (strcmp(mf->mf_type, "histogram") != 0) {
		metrics_copy_family(out, text, mf->mf_name);
		return;
	}
	for (i = 0; i < nitems(histogram_suffixes); i++) {
		snprintf(name, sizeof(name), "%s%s", mf->mf_name,
		    histogram_suffixes[i]);
		metrics_copy_family(out, text, name);
	}
}

static void
metrics_own_http(struct buf *out)
{
	const char	*route;
	size_t		 r, c;

	for (r = 0; r <= ROUTE_COUNT; r++)
		for (c = 0; c <= STATUS_MAX - STATUS_MIN; c++) {
			if (http_counts[r][c] == 0)
				continue;
			route = r < ROUTE_COUNT ? httpd_routes[r].rt_template :
			    "unmatched";
			buf_printf(out, "ephemerd_http_requests_total{route="
			    "\"%s\",code=\"%zu\"} %llu\n", route,
			    c + STATUS_MIN,
			    (unsigned long long)http_counts[r][c]);
		}
}

/* httpd's own samples, written into the part of its role. */
static void
metrics_own(struct buf *out, const struct metrics_query *mq)
{
	int	 role;

	for (role = 0; role < ROLE_COUNT; role++)
		buf_printf(out, "ephemerd_process_up{process=\"%s\"} %d\n",
		    ipc_role_name(role), role == ROLE_HTTPD ||
		    mq->mq_answered[role]);
	metrics_own_http(out);
	buf_printf(out, "ephemerd_http_connections %u\n",
	    httpd_conn_count());
	httpd_runners_metrics(out);
}

static void
metrics_query_finish(struct metrics_query *mq)
{
	struct evbuffer	*body;
	struct buf	 out;
	size_t		 i;
	int		 role;

	buf_init(&out);
	metrics_own(&mq->mq_text[ROLE_HTTPD], mq);
	for (i = 0; i < nitems(families); i++) {
		buf_printf(&out, "# HELP %s %s\n# TYPE %s %s\n",
		    families[i].mf_name, families[i].mf_help,
		    families[i].mf_name, families[i].mf_type);
		metrics_copy_samples(&out, &mq->mq_text[families[i].mf_source],
		    &families[i]);
	}
	if (mq->mq_req != NULL) {
		httpd_conn_watch(mq->mq_req, NULL, NULL);
		evhttp_add_header(evhttp_request_get_output_headers(
		    mq->mq_req), "Content-Type",
		    "text/plain; version=0.0.4; charset=utf-8");
		if ((body = evbuffer_new()) == NULL)
			fatalx("evbuffer_new failed");
		evbuffer_add(body, out.b_data, out.b_len);
		evhttp_send_reply(mq->mq_req, HTTP_OK, "OK", body);
		evbuffer_free(body);
	}
	buf_free(&out);
	for (role = 0; role < ROLE_COUNT; role++)
		buf_free(&mq->mq_text[role]);
	free(mq);
}

static void
metrics_on_reply(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct metrics_wait	*mw = arg;
	struct metrics_query	*mq = mw->mw_query;
	struct ipc_reader	 r;
	const uint8_t		*blob;
	size_t			 len;

	(void)ch;
	if (msg != NULL) {
		ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
		blob = ipc_get_blob(&r, &len);
		if (ipc_reader_done(&r) == 0) {
			buf_add(&mq->mq_text[mw->mw_role], blob, len);
			mq->mq_answered[mw->mw_role] = 1;
		}
	}
	free(mw);
	if (--mq->mq_pending == 0)
		metrics_query_finish(mq);
}

static void
metrics_on_client_close(void *arg)
{
	struct metrics_query	*mq = arg;

	mq->mq_req = NULL;
}

static void
metrics_ask(struct metrics_query *mq, enum ipc_role role,
    struct ipc_channel *ch)
{
	struct metrics_wait	*mw;

	if (ch == NULL)
		return;
	mw = xcalloc(1, sizeof(*mw));
	mw->mw_query = mq;
	mw->mw_role = role;
	mq->mq_pending++;
	if (ipc_request(ch, MSG_METRICS_REQ, NULL, 0, METRICS_TIMEOUT_MS,
	    metrics_on_reply, mw) == -1) {
		mq->mq_pending--;
		free(mw);
	}
}

void
httpd_metrics_serve(struct evhttp_request *req, const char *param)
{
	struct metrics_query	*mq;
	int			 role;

	(void)param;
	mq = xcalloc(1, sizeof(*mq));
	mq->mq_req = req;
	for (role = 0; role < ROLE_COUNT; role++)
		buf_init(&mq->mq_text[role]);
	mq->mq_answered[ROLE_HTTPD] = 1;

	/* Held while asking, so that no answer can finish it early. */
	mq->mq_pending = 1;
	httpd_conn_watch(req, metrics_on_client_close, mq);
	metrics_ask(mq, ROLE_SUPERVISOR, child.cs_parent);
	metrics_ask(mq, ROLE_POLLER, child.cs_peers[ROLE_POLLER]);
	metrics_ask(mq, ROLE_DOCKER, child.cs_peers[ROLE_DOCKER]);
	if (--mq->mq_pending == 0)
		metrics_query_finish(mq);
}
