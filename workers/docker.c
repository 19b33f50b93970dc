/*
 * The docker worker.  For now it answers health requests by pinging the
 * engine and reading its version.  It runs as the configured user in
 * the socket's group when the socket allows that, else as root.
 */
#include <sys/queue.h>
#include <sys/stat.h>

#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docker.h"
#include "http_client.h"
#include "json.h"
#include "json_write.h"
#include "log.h"
#include "supervisor.h"
#include "util.h"

#define ENGINE_TIMEOUT_MS	2000

/* A health request from httpd, waiting for the engine's two answers. */
struct engine_probe {
	TAILQ_ENTRY(engine_probe) ep_entry;
	struct ipc_channel	*ep_chan;	/* NULL once it went away */
	struct ipc_msg		 ep_req;
	int			 ep_pending;
	int			 ep_ping_ok;
	char			*ep_version;
	char			*ep_api_version;
	char			*ep_error;
};

TAILQ_HEAD(engine_probes, engine_probe);

static struct http_client	*docker_http;
static struct engine_probes	 docker_probes =
    TAILQ_HEAD_INITIALIZER(docker_probes);

static void
docker_probe_reply(struct engine_probe *ep)
{
	struct json_writer	 jw;
	struct buf		 json, payload;
	int			 reachable;

	reachable = ep->ep_ping_ok && ep->ep_version != NULL;
	buf_init(&json);
	jw_init(&jw, &json);
	jw_object_begin(&jw);
	jw_kv_str(&jw, "status", "ok");
	jw_kv_int(&jw, "pid", getpid());
	jw_kv_bool(&jw, "healthy", reachable);
	jw_key(&jw, "engine");
	jw_object_begin(&jw);
	jw_kv_str(&jw, "socket", child.cs_config.c_docker_socket);
	jw_kv_bool(&jw, "reachable", reachable);
	if (ep->ep_version != NULL)
		jw_kv_str(&jw, "version", ep->ep_version);
	if (ep->ep_api_version != NULL)
		jw_kv_str(&jw, "api_version", ep->ep_api_version);
	if (ep->ep_error != NULL)
		jw_kv_str(&jw, "error", ep->ep_error);
	jw_object_end(&jw);
	jw_object_end(&jw);

	buf_init(&payload);
	ipc_put_blob(&payload, json.b_data, json.b_len);
	ipc_reply(ep->ep_chan, &ep->ep_req, MSG_HEALTH_REPLY, payload.b_data,
	    payload.b_len);
	buf_free(&payload);
	buf_free(&json);
}

static void
docker_probe_done(struct engine_probe *ep)
{
	if (--ep->ep_pending > 0)
		return;
	if (ep->ep_chan != NULL)
		docker_probe_reply(ep);
	TAILQ_REMOVE(&docker_probes, ep, ep_entry);
	free(ep->ep_version);
	free(ep->ep_api_version);
	free(ep->ep_error);
	free(ep);
}

static void
docker_probe_error(struct engine_probe *ep, const char *what,
    const struct http_response *res)
{
	char	 err[256];

	if (ep->ep_error != NULL)
		return;
	if (res->hr_status != 0)
		snprintf(err, sizeof(err), "%s: engine answered %ld", what,
		    res->hr_status);
	else
		snprintf(err, sizeof(err), "%s: %s", what,
		    res->hr_error != NULL ? res->hr_error : "no answer");
	ep->ep_error = xstrdup(err);
	log_warnx(LC_HEALTH, "Docker engine check failed: %s", err);
}

static void
docker_on_ping(struct http_response *res, void *arg)
{
	struct engine_probe	*ep = arg;

	ep->ep_ping_ok = res->hr_status == 200;
	if (!ep->ep_ping_ok)
		docker_probe_error(ep, "/_ping", res);
	docker_probe_done(ep);
}

static void
docker_on_version(struct http_response *res, void *arg)
{
	struct engine_probe	*ep = arg;
	struct json_doc		 doc;
	const char		*why;

	if (res->hr_status != 200)
		docker_probe_error(ep, "/version", res);
	else if (json_parse(&doc, (const char *)res->hr_body.b_data,
	    res->hr_body.b_len, &why) == 0) {
		ep->ep_version = json_member_str(&doc, 0, "Version");
		ep->ep_api_version = json_member_str(&doc, 0, "ApiVersion");
		json_free(&doc);
	} else if (ep->ep_error == NULL)
		xasprintf(&ep->ep_error, "/version: malformed JSON: %s", why);
	docker_probe_done(ep);
}

static void
docker_engine_get(struct engine_probe *ep, const char *path,
    http_done_fn done)
{
	struct http_request	 rq;
	char			*url;

	xasprintf(&url, "%s%s", DOCKER_URL_BASE, path);
	memset(&rq, 0, sizeof(rq));
	rq.hq_method = "GET";
	rq.hq_url = url;
	rq.hq_unix_socket = child.cs_config.c_docker_socket;
	rq.hq_timeout_ms = ENGINE_TIMEOUT_MS;
	ep->ep_pending++;
	http_request_start(docker_http, &rq, done, ep);
	free(url);
}

static int
docker_on_health_req(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct engine_probe	*ep;

	(void)arg;
	if (msg->m_hdr.ih_len != 0)
		return -1;

	ep = xcalloc(1, sizeof(*ep));
	ep->ep_chan = ch;
	ep->ep_req.m_hdr = msg->m_hdr;
	ep->ep_req.m_fd = -1;
	TAILQ_INSERT_TAIL(&docker_probes, ep, ep_entry);
	docker_engine_get(ep, "/_ping", docker_on_ping);
	docker_engine_get(ep, "/version", docker_on_version);
	return 0;
}

static void
docker_peer_changed(enum ipc_role role, struct ipc_channel *ch)
{
	struct engine_probe	*ep;

	(void)ch;
	if (role != ROLE_HTTPD)
		return;
	TAILQ_FOREACH(ep, &docker_probes, ep_entry)
		ep->ep_chan = NULL;
}

/*
 * Membership of the socket's group gives all the access the worker
 * needs, so root is kept only when the socket belongs to root's group.
 */
static int
docker_drop_privileges(struct config *conf, char *err, size_t errlen)
{
	struct stat	 st;
	struct group	*gr;

	if (geteuid() != 0)
		return 0;
	if (stat(conf->c_docker_socket, &st) == -1 || st.st_gid == 0 ||
	    (st.st_mode & (S_IRGRP | S_IWGRP)) != (S_IRGRP | S_IWGRP)) {
		log_info(LC_START, "staying root: %s is not usable by a "
		    "group other than root's", conf->c_docker_socket);
		return 0;
	}
	if (privsep_drop(conf->c_user, NULL, st.st_gid, err, errlen) == -1)
		return -1;
	gr = getgrgid(st.st_gid);
	log_info(LC_START, "running as %s in group %s for %s", conf->c_user,
	    gr != NULL ? gr->gr_name : "?", conf->c_docker_socket);
	return 0;
}

static int
docker_configure(struct config *conf, int first, char *err, size_t errlen)
{
	if (!first)
		return 0;
	if (docker_drop_privileges(conf, err, errlen) == -1)
		return -1;
	if ((docker_http = http_client_new(child.cs_base)) == NULL) {
		snprintf(err, errlen, "cannot create the HTTP client");
		return -1;
	}
	log_info(LC_START, "Docker engine at %s", conf->c_docker_socket);
	return 0;
}

static void
docker_shutdown(void)
{
	if (docker_http != NULL) {
		http_client_free(docker_http);
		docker_http = NULL;
	}
}

static const struct ipc_dispatch docker_httpd_table[] = {
	{ MSG_HEALTH_REQ,	docker_on_health_req },
	{ MSG_NONE,		NULL }
};

const struct child_ops docker_ops = {
	.co_role = ROLE_DOCKER,
	.co_peer_tables = {
		[ROLE_HTTPD] = docker_httpd_table,
	},
	.co_configure = docker_configure,
	.co_peer_changed = docker_peer_changed,
	.co_shutdown = docker_shutdown,
};
