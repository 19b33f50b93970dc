/*
 * The poller.  It registers the runners httpd asks for with GitHub and
 * has the docker worker start them (poller_runners.c), and answers
 * health requests by asking GitHub for its rate limit, which proves that
 * the API is reachable with the configured credentials and tells how
 * much budget is left.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "github.h"
#include "http_client.h"
#include "json.h"
#include "json_write.h"
#include "log.h"
#include "poller.h"
#include "poller_auto.h"
#include "poller_hooks.h"
#include "poller_runners.h"
#include "supervisor.h"
#include "util.h"

#define RATE_LIMIT_TIMEOUT_MS	2000

/* A health request from httpd, waiting for GitHub's answer. */
struct health_probe {
	TAILQ_ENTRY(health_probe) hp_entry;
	struct ipc_channel	*hp_chan;	/* NULL once it went away */
	struct ipc_msg		 hp_req;
	long			 hp_http_id;
};

TAILQ_HEAD(health_probes, health_probe);

static struct http_client	*poller_http;
static struct github		*poller_github;
static struct health_probes	 poller_probes =
    TAILQ_HEAD_INITIALIZER(poller_probes);

static void
poller_write_rate(struct json_writer *jw, const struct http_response *res)
{
	struct json_doc	 doc;
	const char	*why;
	int64_t		 v;
	int		 core;

	if (json_parse(&doc, (const char *)res->hr_body.b_data,
	    res->hr_body.b_len, &why) == -1)
		return;
	core = json_object_get(&doc, 0, "resources");
	if (core != -1)
		core = json_object_get(&doc, core, "core");
	if (core != -1 && json_member_i64(&doc, core, "remaining", &v) == 0)
		jw_kv_int(jw, "remaining", v);
	if (core != -1 && json_member_i64(&doc, core, "limit", &v) == 0)
		jw_kv_int(jw, "limit", v);
	if (core != -1 && json_member_i64(&doc, core, "reset", &v) == 0)
		jw_kv_int(jw, "reset", v);
	json_free(&doc);
}

static void
poller_probe_reply(struct health_probe *hp, struct http_response *res)
{
	struct json_writer	 jw;
	struct buf		 json, payload;
	int			 reachable = res->hr_status == 200;
	char			 err[160];

	buf_init(&json);
	jw_init(&jw, &json);
	jw_object_begin(&jw);
	jw_kv_str(&jw, "status", "ok");
	jw_kv_int(&jw, "pid", getpid());
	jw_kv_bool(&jw, "healthy", reachable);
	jw_key(&jw, "github");
	jw_object_begin(&jw);
	jw_kv_str(&jw, "api_url", child.cs_config.c_api_url);
	jw_kv_bool(&jw, "reachable", reachable);
	if (res->hr_status != 0)
		jw_kv_int(&jw, "http_status", res->hr_status);
	if (reachable)
		poller_write_rate(&jw, res);
	else {
		if (res->hr_status != 0)
			snprintf(err, sizeof(err), "GitHub answered %ld",
			    res->hr_status);
		else
			snprintf(err, sizeof(err), "%s", res->hr_error != NULL ?
			    res->hr_error : "no answer");
		jw_kv_str(&jw, "error", err);
	}
	jw_object_end(&jw);
	jw_object_end(&jw);

	buf_init(&payload);
	ipc_put_blob(&payload, json.b_data, json.b_len);
	ipc_reply(hp->hp_chan, &hp->hp_req, MSG_HEALTH_REPLY, payload.b_data,
	    payload.b_len);
	buf_free(&payload);
	buf_free(&json);
}

static void
poller_on_rate_limit(struct http_response *res, void *arg)
{
	struct health_probe	*hp = arg;

	if (res->hr_status != 200)
		log_warnx(LC_HEALTH, "GitHub rate limit check failed: %s",
		    res->hr_status != 0 ? "unexpected status" :
		    res->hr_error != NULL ? res->hr_error : "no answer");
	if (hp->hp_chan != NULL)
		poller_probe_reply(hp, res);
	TAILQ_REMOVE(&poller_probes, hp, hp_entry);
	free(hp);
}

static int
poller_on_health_req(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct health_probe	*hp;
	char			*url;

	(void)arg;
	if (msg->m_hdr.ih_len != 0)
		return -1;

	hp = xcalloc(1, sizeof(*hp));
	hp->hp_chan = ch;
	hp->hp_req.m_hdr = msg->m_hdr;
	hp->hp_req.m_fd = -1;
	TAILQ_INSERT_TAIL(&poller_probes, hp, hp_entry);

	xasprintf(&url, "%s/rate_limit", child.cs_config.c_api_url);
	hp->hp_http_id = github_request(poller_github, "GET", url, NULL, NULL,
	    RATE_LIMIT_TIMEOUT_MS, poller_on_rate_limit, hp);
	if (hp->hp_http_id == -1) {
		TAILQ_REMOVE(&poller_probes, hp, hp_entry);
		free(hp);
	}
	free(url);
	return 0;
}

/* Answers for a channel that closed have nowhere to go. */
static void
poller_peer_changed(enum ipc_role role, struct ipc_channel *ch)
{
	struct health_probe	*hp;

	poller_runners_peer_changed(role, ch);
	if (role != ROLE_HTTPD)
		return;
	TAILQ_FOREACH(hp, &poller_probes, hp_entry)
		hp->hp_chan = NULL;
}

static int
poller_configure(struct config *conf, int first, char *err, size_t errlen)
{
	if (!first) {
		poller_auto_configure(conf);
		poller_hooks_configure(conf);
		return 0;
	}
	if (privsep_drop(conf->c_user, NULL, (gid_t)-1, err, errlen) == -1)
		return -1;
	if ((poller_http = http_client_new(child.cs_base)) == NULL) {
		snprintf(err, errlen, "cannot create the HTTP client");
		return -1;
	}
	poller_github = github_new(poller_http, &child.cs_config);
	poller_runners_init(poller_github);
	poller_auto_init(poller_github);
	poller_hooks_init(poller_github);
	log_info(LC_START, "GitHub API at %s", conf->c_api_url);
	poller_auto_configure(conf);
	poller_hooks_configure(conf);
	return 0;
}

static void
poller_shutdown(void)
{
	poller_auto_stop();
	poller_hooks_stop();
	poller_runners_stop();
	github_drop_waiting(poller_github);
	if (poller_http != NULL) {
		http_client_free(poller_http);
		poller_http = NULL;
	}
	poller_auto_free();
	poller_hooks_free();
	poller_runners_free();
	if (poller_github != NULL) {
		github_free(poller_github);
		poller_github = NULL;
	}
	github_metrics_free();
}

static const struct ipc_dispatch poller_httpd_table[] = {
	{ MSG_HEALTH_REQ,	poller_on_health_req },
	{ MSG_RUNNER_CREATE,	poller_on_runner_create },
	{ MSG_WEBHOOK,		poller_on_webhook },
	{ MSG_GITHUB_CLEANUP,	poller_on_github_cleanup },
	{ MSG_NONE,		NULL }
};

static const struct ipc_dispatch poller_docker_table[] = {
	{ MSG_RUNNER_START_REPLY, NULL },
	{ MSG_RUNNER_TABLE,	poller_on_runner_table },
	{ MSG_RUNNER_GONE,	poller_on_runner_gone },
	{ MSG_NONE,		NULL }
};

static void
poller_metrics(struct buf *b)
{
	github_metrics(b);
	poller_hooks_metrics(b);
	poller_auto_metrics(b);
}

static void
poller_status(struct json_writer *jw)
{
	poller_runners_status(jw);
	poller_auto_status(jw);
}

const struct child_ops poller_ops = {
	.co_role = ROLE_POLLER,
	.co_peer_tables = {
		[ROLE_HTTPD] = poller_httpd_table,
		[ROLE_DOCKER] = poller_docker_table,
	},
	.co_configure = poller_configure,
	.co_status = poller_status,
	.co_peer_changed = poller_peer_changed,
	.co_shutdown = poller_shutdown,
	.co_metrics = poller_metrics,
};
