/*
 * Webhook deliveries and the GitHub cleanup, the poller's side.  httpd
 * forwards deliveries unverified: the signature is checked here, where
 * the secret is.  The cleanup deletes GitHub's registrations of this
 * instance's runners that have no container and run no job, when httpd
 * asks and every purge_interval while discovery.cleanup_github is on.
 * GitHub's online flag is not trusted: it lags behind a runner process
 * that died.
 */
#include <sys/queue.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "counters.h"
#include "github.h"
#include "http_client.h"
#include "json.h"
#include "json_write.h"
#include "log.h"
#include "poller_auto.h"
#include "poller_hooks.h"
#include "poller_runners.h"
#include "runner.h"
#include "supervisor.h"
#include "util.h"
#include "webhook.h"

#define CLEANUP_PAGES_MAX	50
#define CLEANUP_ROWS_MAX	1000	/* runners listed in one answer */
#define CLEANUP_ERRORS_MAX	50
#define CLEANUP_INFLIGHT	2	/* runner lists read at once */

/* ---- webhook deliveries ---------------------------------------------- */

/* The identifiers of the last deliveries acted on, in a ring. */
static char	 ph_seen[HOOKS_DELIVERIES_KEPT][WEBHOOK_DELIVERY_MAX + 1];
static size_t	 ph_seen_next;
static struct counter_set ph_counts;

static const char *const delivery_results[] = {
	"accepted", "duplicate", "ping", "ignored", "bad_signature",
	"malformed", "unconfigured"
};

/* One delivery as httpd forwarded it. */
struct delivery_in {
	char		*di_event;
	char		*di_id;
	char		*di_signature;
	const uint8_t	*di_body;
	size_t		 di_len;
};

static void
delivery_count(const char *result)
{
	char	 labels[48];

	snprintf(labels, sizeof(labels), "result=\"%s\"", result);
	counter_add(&ph_counts, labels, 1);
}

static int
delivery_seen(const char *id)
{
	size_t	 i;

	if (*id == '\0')
		return 0;
	for (i = 0; i < HOOKS_DELIVERIES_KEPT; i++)
		if (strcmp(ph_seen[i], id) == 0)
			return 1;
	return 0;
}

static void
delivery_remember(const char *id)
{
	if (*id == '\0')
		return;
	strlcpy(ph_seen[ph_seen_next], id, sizeof(ph_seen[0]));
	ph_seen_next = (ph_seen_next + 1) % HOOKS_DELIVERIES_KEPT;
}

/* Answers httpd, counts and logs one line; never the body or signature. */
static void
delivery_answer(struct ipc_channel *ch, const struct ipc_msg *req,
    const struct delivery_in *di, const struct webhook_delivery *wd,
    int status, const char *message, const char *result, const char *data)
{
	struct buf	 b;
	char		 job[256] = "";

	buf_init(&b);
	ipc_put_u16(&b, (uint16_t)status);
	ipc_put_str(&b, message);
	ipc_put_blob(&b, data, data != NULL ? strlen(data) : 0);
	if (ipc_reply(ch, req, MSG_WEBHOOK_REPLY, b.b_data, b.b_len) == -1)
		log_warnx(LC_ERROR, "cannot answer httpd's webhook delivery");
	buf_free(&b);

	delivery_count(result);
	if (wd != NULL && wd->wd_event == WEBHOOK_WORKFLOW_JOB)
		snprintf(job, sizeof(job), ", action %s, job %llu, "
		    "repository %s", webhook_action_name(wd->wd_action),
		    (unsigned long long)wd->wd_job_id, wd->wd_repository);
	log_info(LC_INFO, "webhook delivery %s: event %s%s: %s",
	    *di->di_id != '\0' ? di->di_id : "-", di->di_event, job, result);
}

static void
delivery_on_ping(struct ipc_channel *ch, const struct ipc_msg *req,
    const struct delivery_in *di, const struct webhook_delivery *wd)
{
	struct json_writer	 jw;
	struct buf		 data;

	buf_init(&data);
	jw_init(&jw, &data);
	jw_object_begin(&jw);
	jw_kv_str(&jw, "zen", wd->wd_zen);
	jw_key(&jw, "hook_id");
	jw_uint(&jw, wd->wd_hook_id);
	jw_object_end(&jw);
	delivery_answer(ch, req, di, wd, 200, "pong", "ping", buf_cstr(&data));
	buf_free(&data);
}

/* Queued, in progress and completed change the queue; the rest do not. */
static void
delivery_on_job(struct ipc_channel *ch, const struct ipc_msg *req,
    const struct delivery_in *di, const struct webhook_delivery *wd)
{
	struct json_writer	 jw;
	struct buf		 data;
	char			 msg[96];
	int			 acts;

	acts = wd->wd_action == WEBHOOK_QUEUED ||
	    wd->wd_action == WEBHOOK_IN_PROGRESS ||
	    wd->wd_action == WEBHOOK_COMPLETED;
	if (acts)
		poller_auto_on_job(wd);

	buf_init(&data);
	jw_init(&jw, &data);
	jw_object_begin(&jw);
	jw_kv_str(&jw, "event", "workflow_job");
	jw_kv_str(&jw, "action", webhook_action_name(wd->wd_action));
	jw_key(&jw, "job_id");
	jw_uint(&jw, wd->wd_job_id);
	jw_kv_str(&jw, "repository", wd->wd_repository);
	jw_object_end(&jw);
	snprintf(msg, sizeof(msg), "workflow_job action %s changes nothing",
	    webhook_action_name(wd->wd_action));
	delivery_answer(ch, req, di, wd, acts ? 202 : 200, acts ? "accepted" :
	    msg, acts ? "accepted" : "ignored", buf_cstr(&data));
	buf_free(&data);
}

static void
delivery_handle(struct ipc_channel *ch, const struct ipc_msg *req,
    const struct delivery_in *di)
{
	const char		*secret = child.cs_config.c_webhook_secret;
	struct webhook_delivery	 wd;
	const char		*why;
	char			 err[256], msg[320];

	if (secret == NULL || *secret == '\0') {
		delivery_answer(ch, req, di, NULL, 503, "no webhook secret is "
		    "configured", "unconfigured", NULL);
		return;
	}
	if (webhook_verify(secret, strlen(secret), di->di_body, di->di_len,
	    *di->di_signature != '\0' ? di->di_signature : NULL, &why) == -1) {
		snprintf(msg, sizeof(msg), "the signature is missing or "
		    "wrong: %s", why);
		delivery_answer(ch, req, di, NULL, 401, msg, "bad_signature",
		    NULL);
		return;
	}
	if (delivery_seen(di->di_id)) {
		delivery_answer(ch, req, di, NULL, 200, "duplicate delivery "
		    "ignored", "duplicate", NULL);
		return;
	}
	if (webhook_parse(&wd, di->di_event, (const char *)di->di_body,
	    di->di_len, err, sizeof(err)) == -1) {
		delivery_answer(ch, req, di, NULL, 400, err, "malformed", NULL);
		return;
	}

	delivery_remember(di->di_id);
	if (wd.wd_event == WEBHOOK_PING)
		delivery_on_ping(ch, req, di, &wd);
	else if (wd.wd_event == WEBHOOK_WORKFLOW_JOB)
		delivery_on_job(ch, req, di, &wd);
	else {
		snprintf(msg, sizeof(msg), "event %s ignored", di->di_event);
		delivery_answer(ch, req, di, &wd, 200, msg, "ignored", NULL);
	}
	webhook_delivery_free(&wd);
}

int
poller_on_webhook(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct ipc_reader	 r;
	struct delivery_in	 di;
	int			 rc = 0;

	(void)arg;
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	di.di_event = ipc_get_str(&r);
	di.di_id = ipc_get_str(&r);
	di.di_signature = ipc_get_str(&r);
	di.di_body = ipc_get_blob(&r, &di.di_len);
	if (ipc_reader_done(&r) == -1) {
		log_warnx(LC_ERROR, "malformed webhook message from httpd: %s",
		    ipc_reader_error(&r));
		rc = -1;
	} else if (!webhook_header_valid(di.di_event, 0) ||
	    (di.di_id[0] != '\0' && !webhook_header_valid(di.di_id, 1))) {
		log_warnx(LC_ERROR, "malformed webhook message from httpd: "
		    "bad event name or delivery id");
		rc = -1;
	} else
		delivery_handle(ch, msg, &di);
	free(di.di_event);
	free(di.di_id);
	free(di.di_signature);
	return rc;
}

/* ---- cleaning up GitHub ----------------------------------------------- */

/* A registration of ours without a container or a job. */
struct stale_runner {
	uint64_t	 sr_id;
	char		*sr_name;
	char		*sr_scope;
	char		*sr_scope_name;
};

struct scope_fetch;

struct cleanup_run {
	TAILQ_ENTRY(cleanup_run) cr_entry;
	TAILQ_HEAD(, scope_fetch) cr_pending;	/* lists not yet asked for */
	size_t			 cr_active;	/* lists being read */
	enum github_cleanup_mode cr_mode;
	int			 cr_periodic;
	struct ipc_channel	*cr_chan;	/* NULL when nobody waits */
	struct ipc_msg		 cr_req;
	size_t			 cr_listing;	/* scopes still being read */
	size_t			 cr_scopes;
	size_t			 cr_scopes_failed;
	struct stale_runner	*cr_stale;
	size_t			 cr_nstale;
	size_t			 cr_next;	/* the next one to delete */
	struct buf		 cr_rows;
	struct json_writer	 cr_rows_jw;
	size_t			 cr_nrows;
	struct buf		 cr_errors;
	struct json_writer	 cr_errors_jw;
	size_t			 cr_nerrors;
	char			*cr_first_error;
	size_t			 cr_kept;
};

/* GitHub's runner list of one scope, read page after page. */
struct scope_fetch {
	TAILQ_ENTRY(scope_fetch) sf_entry;
	struct cleanup_run	*sf_run;
	char			*sf_scope;
	char			*sf_scope_name;
	char			*sf_url;
	int			 sf_pages;
};

TAILQ_HEAD(cleanup_runs, cleanup_run);

static struct github		*ph_github;
static struct cleanup_runs	 ph_runs = TAILQ_HEAD_INITIALIZER(ph_runs);
static struct event		*ph_timer;
static uint32_t			 ph_timer_interval;
static int			 ph_periodic_busy;
static int			 ph_stopping;

static const char *const cleanup_mode_names[CLEANUP_MODE_COUNT] = {
	"cleanup", "dry run", "status"
};

static void	 cleanup_delete_next(struct cleanup_run *);

static void
cleanup_error(struct cleanup_run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
cleanup_error(struct cleanup_run *run, const char *fmt, ...)
{
	va_list	 ap;
	char	 text[512];

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (run->cr_periodic)
		log_warnx(LC_WARNING, "GitHub cleanup: %s", text);
	if (run->cr_first_error == NULL)
		run->cr_first_error = xstrdup(text);
	if (run->cr_nerrors++ < CLEANUP_ERRORS_MAX)
		jw_str(&run->cr_errors_jw, text);
}

/*
 * Is the name one this instance gives: "eph-INSTANCE-POOL-" and eight
 * hex digits, for a configured pool?  Checking the pool part too spares
 * an instance whose name merely begins with ours (instance "a", "a-b").
 */
static int
runner_is_ours(const char *name)
{
	const struct config	*conf = &child.cs_config;
	char			 want[RUNNER_NAME_MAX + 1];
	size_t			 i, len;

	for (i = 0; i < conf->c_npools; i++) {
		if (github_runner_name(conf->c_instance,
		    conf->c_pools[i].pl_name, 0, want, sizeof(want)) == -1)
			continue;
		len = strlen(want) - 8;
		if (strncmp(name, want, len) == 0 && strlen(name + len) == 8 &&
		    strspn(name + len, "0123456789abcdef") == 8)
			return 1;
	}
	return 0;
}

static void
stale_free(struct stale_runner *sr)
{
	free(sr->sr_name);
	free(sr->sr_scope);
	free(sr->sr_scope_name);
}

static void
scope_fetch_free(struct scope_fetch *sf)
{
	free(sf->sf_scope);
	free(sf->sf_scope_name);
	free(sf->sf_url);
	free(sf);
}

static void
cleanup_run_free(struct cleanup_run *run)
{
	struct scope_fetch	*sf;
	size_t			 i;

	TAILQ_REMOVE(&ph_runs, run, cr_entry);
	while ((sf = TAILQ_FIRST(&run->cr_pending)) != NULL) {
		TAILQ_REMOVE(&run->cr_pending, sf, sf_entry);
		scope_fetch_free(sf);
	}
	for (i = 0; i < run->cr_nstale; i++)
		stale_free(&run->cr_stale[i]);
	free(run->cr_stale);
	buf_free(&run->cr_rows);
	buf_free(&run->cr_errors);
	free(run->cr_first_error);
	if (run->cr_periodic)
		ph_periodic_busy = 0;
	free(run);
}

static void
cleanup_row(struct cleanup_run *run, const struct stale_runner *sr)
{
	struct json_writer	*jw = &run->cr_rows_jw;

	if (run->cr_nrows++ >= CLEANUP_ROWS_MAX)
		return;
	jw_object_begin(jw);
	jw_kv_str(jw, "name", sr->sr_name);
	jw_key(jw, "id");
	jw_uint(jw, sr->sr_id);
	jw_kv_str(jw, "scope", sr->sr_scope);
	jw_kv_str(jw, "scope_name", sr->sr_scope_name);
	jw_object_end(jw);
}

static void
cleanup_message(const struct cleanup_run *run, char *msg, size_t len)
{
	const char	*verb = run->cr_mode == CLEANUP_DELETE ? "deleted" :
			    "would delete";

	if (run->cr_mode == CLEANUP_REPORT)
		snprintf(msg, len, "%zu runner%s of instance %s on GitHub",
		    run->cr_nrows, run->cr_nrows == 1 ? "" : "s",
		    child.cs_config.c_instance);
	else
		snprintf(msg, len, "%s %zu idle runner%s of instance %s "
		    "without a container; %zu kept", verb, run->cr_nrows,
		    run->cr_nrows == 1 ? "" : "s", child.cs_config.c_instance,
		    run->cr_kept);
	if (run->cr_nerrors > 0)
		snprintf(msg + strlen(msg), len - strlen(msg), "; %zu error%s, "
		    "the first: %s", run->cr_nerrors, run->cr_nerrors == 1 ?
		    "" : "s", run->cr_first_error);
}

/*
 * A report is the list of runners, as GitHub lists them; a cleanup says
 * what went (or would go), how many stay and what failed.
 */
static void
cleanup_reply(struct cleanup_run *run, const char *msg)
{
	struct json_writer	 jw;
	struct buf		 data, b;
	int			 status = 200;

	if (run->cr_scopes > 0 && run->cr_scopes_failed == run->cr_scopes)
		status = 502;
	jw_array_end(&run->cr_rows_jw);
	jw_array_end(&run->cr_errors_jw);
	buf_init(&data);
	jw_init(&jw, &data);
	if (run->cr_mode == CLEANUP_REPORT)
		jw_raw(&jw, buf_cstr(&run->cr_rows), run->cr_rows.b_len);
	else {
		jw_object_begin(&jw);
		jw_key(&jw, run->cr_mode == CLEANUP_DELETE ? "deleted" :
		    "would_delete");
		jw_raw(&jw, buf_cstr(&run->cr_rows), run->cr_rows.b_len);
		jw_kv_int(&jw, "kept", (int64_t)run->cr_kept);
		jw_key(&jw, "errors");
		jw_raw(&jw, buf_cstr(&run->cr_errors), run->cr_errors.b_len);
		jw_object_end(&jw);
	}

	buf_init(&b);
	ipc_put_u16(&b, (uint16_t)status);
	ipc_put_str(&b, msg);
	ipc_put_blob(&b, data.b_data, data.b_len);
	if (ipc_reply(run->cr_chan, &run->cr_req, MSG_GITHUB_CLEANUP_REPLY,
	    b.b_data, b.b_len) == -1)
		log_warnx(LC_ERROR, "cannot answer httpd's GitHub cleanup");
	buf_free(&b);
	buf_free(&data);
}

/*
 * The end of a run.  httpd may have been restarted meanwhile: an answer
 * goes only to the channel that asked, if it is still the current one.
 */
static void
cleanup_finish(struct cleanup_run *run)
{
	char	 msg[256];

	cleanup_message(run, msg, sizeof(msg));
	if (run->cr_periodic && (run->cr_nrows > 0 || run->cr_nerrors > 0))
		log_info(LC_INFO, "periodic GitHub cleanup: %s", msg);
	else if (!run->cr_periodic)
		log_info(LC_INFO, "GitHub %s: %s",
		    cleanup_mode_names[run->cr_mode], msg);
	if (run->cr_chan != NULL && !ph_stopping &&
	    run->cr_chan == child.cs_peers[ROLE_HTTPD])
		cleanup_reply(run, msg);
	cleanup_run_free(run);
}

static void
cleanup_on_delete(struct http_response *res, void *arg)
{
	struct cleanup_run	*run = arg;
	struct stale_runner	*sr = &run->cr_stale[run->cr_next++];
	char			*err;

	if (res->hr_status == 204 || res->hr_status == 404) {
		log_info(LC_INFO, "runner %s (GitHub id %llu) deleted from %s "
		    "%s: idle and without a container", sr->sr_name,
		    (unsigned long long)sr->sr_id, sr->sr_scope,
		    sr->sr_scope_name);
		cleanup_row(run, sr);
	} else {
		err = github_error_text(res);
		cleanup_error(run, "runner %s (GitHub id %llu) in %s %s: %s",
		    sr->sr_name, (unsigned long long)sr->sr_id, sr->sr_scope,
		    sr->sr_scope_name, err);
		free(err);
	}
	cleanup_delete_next(run);
}

/* One DELETE at a time: GitHub asks for mutations in series. */
static void
cleanup_delete_next(struct cleanup_run *run)
{
	struct stale_runner	*sr;
	char			*url, suffix[64];

	if (run->cr_next >= run->cr_nstale || ph_stopping) {
		cleanup_finish(run);
		return;
	}
	sr = &run->cr_stale[run->cr_next];
	snprintf(suffix, sizeof(suffix), "runners/%llu",
	    (unsigned long long)sr->sr_id);
	url = github_scope_url(child.cs_config.c_api_url, sr->sr_scope,
	    sr->sr_scope_name, suffix);
	if (github_request(ph_github, "DELETE", url, NULL, NULL, 0,
	    cleanup_on_delete, run) == -1) {
		cleanup_error(run, "runner %s: the request did not start",
		    sr->sr_name);
		run->cr_next = run->cr_nstale;
		cleanup_finish(run);
	}
	free(url);
}

/* Every scope has been read: dry runs and reports are done. */
static void
cleanup_listed(struct cleanup_run *run)
{
	size_t	 i;

	if (run->cr_mode == CLEANUP_DRY_RUN)
		for (i = 0; i < run->cr_nstale; i++)
			cleanup_row(run, &run->cr_stale[i]);
	if (run->cr_mode == CLEANUP_DELETE)
		cleanup_delete_next(run);
	else
		cleanup_finish(run);
}

static void	 scope_fetch_pump(struct cleanup_run *);

static void
scope_fetch_end(struct scope_fetch *sf, const char *err)
{
	struct cleanup_run	*run = sf->sf_run;

	if (err != NULL) {
		run->cr_scopes_failed++;
		cleanup_error(run, "runners of %s %s: %s", sf->sf_scope,
		    sf->sf_scope_name, err);
	}
	scope_fetch_free(sf);
	run->cr_active--;

	/* The next lists start while this one still holds the run. */
	scope_fetch_pump(run);
	if (--run->cr_listing == 0)
		cleanup_listed(run);
}

static void
report_labels(struct json_writer *jw, const struct json_doc *doc, int rtok)
{
	int	 arr, i, n, name;

	jw_key(jw, "labels");
	jw_array_begin(jw);
	arr = json_object_get(doc, rtok, "labels");
	n = arr != -1 && json_type(doc, arr) == JSON_ARRAY ?
	    json_size(doc, arr) : 0;
	for (i = 0; i < n; i++) {
		name = json_object_get(doc, json_array_get(doc, arr, i),
		    "name");
		if (name != -1 && json_type(doc, name) == JSON_STRING) {
			char *s = json_get_str(doc, name);

			jw_str(jw, s);
			free(s);
		}
	}
	jw_array_end(jw);
}

static void
report_row(struct cleanup_run *run, const struct scope_fetch *sf,
    const struct github_runner *gr, const struct json_doc *doc, int rtok)
{
	struct json_writer	*jw = &run->cr_rows_jw;

	if (run->cr_nrows++ >= CLEANUP_ROWS_MAX)
		return;
	jw_object_begin(jw);
	jw_kv_str(jw, "runner_id", gr->gr_name);
	jw_key(jw, "github_runner_id");
	jw_uint(jw, gr->gr_id);
	jw_kv_str(jw, "status", gr->gr_online ? "online" : "offline");
	jw_kv_bool(jw, "busy", gr->gr_busy);
	report_labels(jw, doc, rtok);
	jw_kv_str(jw, "scope", sf->sf_scope);
	jw_kv_str(jw, "scope_name", sf->sf_scope_name);
	jw_kv_bool(jw, "container", poller_runners_has(gr->gr_name));
	jw_object_end(jw);
}

static void
stale_add(struct cleanup_run *run, const struct scope_fetch *sf,
    const struct github_runner *gr)
{
	struct stale_runner	*sr;

	run->cr_stale = xreallocarray(run->cr_stale, run->cr_nstale + 1,
	    sizeof(*run->cr_stale));
	sr = &run->cr_stale[run->cr_nstale++];
	sr->sr_id = gr->gr_id;
	sr->sr_name = xstrdup(gr->gr_name);
	sr->sr_scope = xstrdup(sf->sf_scope);
	sr->sr_scope_name = xstrdup(sf->sf_scope_name);
}

/* Sorts one page's runners: not ours, kept, or stale. */
static int
scope_fetch_sort(struct scope_fetch *sf, const char *body, size_t len,
    const char **why)
{
	struct cleanup_run		*run = sf->sf_run;
	struct github_runner_list	 list = { NULL, 0 };
	const struct github_runner	*gr;
	struct json_doc			 doc;
	size_t				 i;
	int				 arr;

	if (github_parse_runners(body, len, &list, why) == -1)
		return -1;
	if (json_parse(&doc, body, len, why) == -1) {
		github_runner_list_free(&list);
		return -1;
	}
	arr = json_object_get(&doc, 0, "runners");
	for (i = 0; i < list.rl_count; i++) {
		gr = &list.rl_items[i];
		if (!runner_is_ours(gr->gr_name))
			continue;
		if (run->cr_mode == CLEANUP_REPORT)
			report_row(run, sf, gr, &doc,
			    json_array_get(&doc, arr, (int)i));
		else if (gr->gr_busy || poller_runners_has(gr->gr_name))
			run->cr_kept++;
		else
			stale_add(run, sf, gr);
	}
	json_free(&doc);
	github_runner_list_free(&list);
	return 0;
}

static void	 scope_fetch_page(struct scope_fetch *);

/* The next page, only on the API's own host: the token goes along. */
static char *
scope_fetch_next(const struct http_response *res)
{
	const char	*api = child.cs_config.c_api_url;
	char		*link, *next = NULL;

	if ((link = http_header_get(res, "Link")) != NULL)
		next = github_link_next(link);
	free(link);
	if (next != NULL && (strncmp(next, api, strlen(api)) != 0 ||
	    next[strlen(api)] != '/')) {
		free(next);
		next = NULL;
	}
	return next;
}

static void
scope_fetch_on_page(struct http_response *res, void *arg)
{
	struct scope_fetch	*sf = arg;
	const char		*why;
	char			*err, *next;

	if (res->hr_status != 200) {
		err = github_error_text(res);
		scope_fetch_end(sf, err);
		free(err);
		return;
	}
	if (scope_fetch_sort(sf, (const char *)res->hr_body.b_data,
	    res->hr_body.b_len, &why) == -1) {
		scope_fetch_end(sf, why);
		return;
	}
	next = scope_fetch_next(res);
	if (next == NULL || ph_stopping ||
	    ++sf->sf_pages >= CLEANUP_PAGES_MAX) {
		free(next);
		scope_fetch_end(sf, ph_stopping ? "the poller is stopping" :
		    NULL);
		return;
	}
	free(sf->sf_url);
	sf->sf_url = next;
	scope_fetch_page(sf);
}

static void
scope_fetch_page(struct scope_fetch *sf)
{
	if (github_request(ph_github, "GET", sf->sf_url, NULL, NULL, 0,
	    scope_fetch_on_page, sf) == -1)
		scope_fetch_end(sf, "the request did not start");
}

/*
 * A few lists at a time: GitHub asks for requests in series, and a
 * cleanup of hundreds of repositories must not starve the polling.
 */
static void
scope_fetch_pump(struct cleanup_run *run)
{
	struct scope_fetch	*sf;

	while ((sf = TAILQ_FIRST(&run->cr_pending)) != NULL &&
	    (ph_stopping || run->cr_active < CLEANUP_INFLIGHT)) {
		TAILQ_REMOVE(&run->cr_pending, sf, sf_entry);
		run->cr_active++;
		if (ph_stopping)
			scope_fetch_end(sf, "the poller is stopping");
		else
			scope_fetch_page(sf);
	}
}

static void
scope_fetch_start(struct cleanup_run *run, const char *scope,
    const char *scope_name)
{
	struct scope_fetch	*sf;
	char			 err[256];

	if (github_scope_check(scope, scope_name, err, sizeof(err)) == -1) {
		cleanup_error(run, "%s", err);
		return;
	}
	sf = xcalloc(1, sizeof(*sf));
	sf->sf_run = run;
	sf->sf_scope = xstrdup(scope);
	sf->sf_scope_name = xstrdup(scope_name);
	sf->sf_url = github_scope_url(child.cs_config.c_api_url, scope,
	    scope_name, "runners?per_page=100");
	run->cr_scopes++;
	run->cr_listing++;
	TAILQ_INSERT_TAIL(&run->cr_pending, sf, sf_entry);
	scope_fetch_pump(run);
}

/* Each scope once, whichever list it came from. */
static void
cleanup_scopes(struct strlist *scopes, struct strlist *names)
{
	struct strlist	 s = { NULL, 0 }, n = { NULL, 0 };
	size_t		 i, j;

	poller_auto_scopes(&s, &n);
	poller_runners_scopes(&s, &n);
	for (i = 0; i < s.sl_count && i < n.sl_count; i++) {
		for (j = 0; j < scopes->sl_count; j++)
			if (strcmp(scopes->sl_items[j], s.sl_items[i]) == 0 &&
			    strcasecmp(names->sl_items[j], n.sl_items[i]) == 0)
				break;
		if (j < scopes->sl_count)
			continue;
		strlist_add(scopes, s.sl_items[i]);
		strlist_add(names, n.sl_items[i]);
	}
	strlist_clear(&s, 0);
	strlist_clear(&n, 0);
}

static struct cleanup_run *
cleanup_start(enum github_cleanup_mode mode, struct ipc_channel *ch,
    const struct ipc_msg *req)
{
	struct cleanup_run	*run = xcalloc(1, sizeof(*run));
	struct strlist		 scopes = { NULL, 0 }, names = { NULL, 0 };
	size_t			 i;

	run->cr_mode = mode;
	run->cr_chan = ch;
	if (req != NULL)
		run->cr_req.m_hdr = req->m_hdr;
	run->cr_req.m_fd = -1;
	TAILQ_INIT(&run->cr_pending);
	buf_init(&run->cr_rows);
	jw_init(&run->cr_rows_jw, &run->cr_rows);
	jw_array_begin(&run->cr_rows_jw);
	buf_init(&run->cr_errors);
	jw_init(&run->cr_errors_jw, &run->cr_errors);
	jw_array_begin(&run->cr_errors_jw);
	TAILQ_INSERT_TAIL(&ph_runs, run, cr_entry);

	cleanup_scopes(&scopes, &names);
	/* Held while starting, so that no fetch can finish the run early. */
	run->cr_listing = 1;
	for (i = 0; i < scopes.sl_count; i++)
		scope_fetch_start(run, scopes.sl_items[i], names.sl_items[i]);
	strlist_clear(&scopes, 0);
	strlist_clear(&names, 0);
	log_debug(LC_MONITOR, "GitHub %s: reading the runners of %zu scope%s",
	    cleanup_mode_names[mode], run->cr_scopes,
	    run->cr_scopes == 1 ? "" : "s");
	return run;
}

/* Releases the hold that cleanup_start() took. */
static void
cleanup_go(struct cleanup_run *run)
{
	if (--run->cr_listing == 0)
		cleanup_listed(run);
}

static void
cleanup_refuse(struct ipc_channel *ch, const struct ipc_msg *req,
    int status, const char *message)
{
	struct buf	 b;

	buf_init(&b);
	ipc_put_u16(&b, (uint16_t)status);
	ipc_put_str(&b, message);
	ipc_put_blob(&b, NULL, 0);
	if (ipc_reply(ch, req, MSG_GITHUB_CLEANUP_REPLY, b.b_data,
	    b.b_len) == -1)
		log_warnx(LC_ERROR, "cannot answer httpd's GitHub cleanup");
	buf_free(&b);
}

int
poller_on_github_cleanup(struct ipc_channel *ch, struct ipc_msg *msg,
    void *arg)
{
	struct ipc_reader	 r;
	uint8_t			 mode;

	(void)arg;
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	mode = ipc_get_u8(&r);
	if (ipc_reader_done(&r) == -1 || mode >= CLEANUP_MODE_COUNT) {
		log_warnx(LC_ERROR, "malformed GitHub cleanup message from "
		    "httpd");
		return -1;
	}
	if (ph_github == NULL || ph_stopping) {
		cleanup_refuse(ch, msg, 503, "the poller is stopping");
		return 0;
	}
	/* Without the docker worker's table every runner looks stale. */
	if (mode != CLEANUP_REPORT && !poller_runners_ready()) {
		cleanup_refuse(ch, msg, 503, "the docker worker is not "
		    "connected, so runners with a container cannot be told "
		    "apart; try again");
		return 0;
	}
	cleanup_go(cleanup_start(mode, ch, msg));
	return 0;
}

static void
cleanup_tick(evutil_socket_t fd, short what, void *arg)
{
	struct cleanup_run	*run;

	(void)fd;
	(void)what;
	(void)arg;
	if (ph_periodic_busy || ph_stopping || !poller_runners_ready())
		return;
	ph_periodic_busy = 1;
	run = cleanup_start(CLEANUP_DELETE, NULL, NULL);
	run->cr_periodic = 1;
	cleanup_go(run);
}

static void
cleanup_timer_stop(void)
{
	if (ph_timer != NULL) {
		event_free(ph_timer);
		ph_timer = NULL;
	}
	ph_timer_interval = 0;
}

/* The first round waits one interval, so the docker worker's table is in. */
static void
cleanup_timer_arm(uint32_t interval)
{
	struct timeval	 tv = { (time_t)interval, 0 };

	if (ph_timer != NULL && ph_timer_interval == interval)
		return;
	cleanup_timer_stop();
	ph_timer = event_new(child.cs_base, -1, EV_PERSIST, cleanup_tick,
	    NULL);
	if (ph_timer == NULL || event_add(ph_timer, &tv) == -1)
		fatalx("cannot arm the GitHub cleanup timer");
	ph_timer_interval = interval;
	log_info(LC_CONFIG, "GitHub cleanup every %u s", interval);
}

void
poller_hooks_configure(const struct config *conf)
{
	size_t	 i;

	if (ph_counts.cs_count == 0)
		for (i = 0; i < nitems(delivery_results); i++) {
			char labels[48];

			snprintf(labels, sizeof(labels), "result=\"%s\"",
			    delivery_results[i]);
			counter_add(&ph_counts, labels, 0);
		}
	if (conf->c_cleanup_github && conf->c_purge_interval > 0)
		cleanup_timer_arm(conf->c_purge_interval);
	else if (ph_timer != NULL) {
		cleanup_timer_stop();
		log_info(LC_CONFIG, "periodic GitHub cleanup off");
	}
}

void
poller_hooks_metrics(struct buf *b)
{
	counter_write(&ph_counts, "ephemerd_webhook_deliveries_total", b);
}

void
poller_hooks_init(struct github *gh)
{
	ph_github = gh;
}

/* Requests still in flight then end through their callbacks. */
void
poller_hooks_stop(void)
{
	ph_stopping = 1;
	cleanup_timer_stop();
}

/* Once the HTTP client is gone. */
void
poller_hooks_free(void)
{
	while (!TAILQ_EMPTY(&ph_runs))
		cleanup_run_free(TAILQ_FIRST(&ph_runs));
	ph_github = NULL;
	counter_set_free(&ph_counts);
}
