/*
 * The docker worker: the only process that talks to the Docker engine.
 * It starts runner containers for the poller, removes them for httpd,
 * follows the engine's event stream to see them end, and keeps the
 * runner table that httpd and the poller read.  The engine is the truth:
 * at start and after every reconnect the table is rebuilt from the
 * containers that carry ephemerd's labels.  It runs as the configured
 * user in the socket's group when the socket allows that, else as root.
 */
#include <sys/queue.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "counters.h"
#include "docker.h"
#include "docker_api.h"
#include "docker_runners.h"
#include "http_client.h"
#include "json.h"
#include "json_write.h"
#include "log.h"
#include "runner.h"
#include "supervisor.h"
#include "util.h"

#define ENGINE_TIMEOUT_MS	2000
#define BACKOFF_MIN_MS		200
#define BACKOFF_MAX_MS		10000
#define EXIT_LOG_LINES		100
#define LOGS_MAX_LINES		10000
#define LOG_REPLY_MAX		(512 * 1024)
#define STOP_SECONDS		10
#define EXITED_KEEP_SECONDS	600
#define SWEEP_SECONDS		30


/* A runner of the table, with what the worker needs to follow it. */
struct managed_runner {
	TAILQ_ENTRY(managed_runner) mr_entry;
	struct runner		 mr_rn;
	struct buf		 mr_log;	/* the tail, once exited */
	time_t			 mr_exited;	/* when it was seen to end */
	time_t			 mr_idle_since;
	uint64_t		 mr_added_ms;
	int			 mr_busy;	/* an exit or removal runs */
	int			 mr_refs;	/* callbacks holding it */
	int			 mr_dropped;	/* out of the table */
};

TAILQ_HEAD(managed_runners, managed_runner);

/* A request of a peer, answered later if the peer's channel still is. */
struct peer_request {
	enum ipc_role		 pq_role;
	unsigned int		 pq_gen;
	struct ipc_msg		 pq_msg;
};

/* One MSG_RUNNER_START on its way through create, pull and start. */
struct runner_start {
	TAILQ_ENTRY(runner_start) rs_entry;
	struct peer_request	 rs_req;
	struct start_request	 rs_sr;
	char			*rs_image;
	struct buf		 rs_body;	/* holds secrets */
	struct managed_runner	*rs_mr;		/* once created */
	int			 rs_pulled;
};

TAILQ_HEAD(runner_starts, runner_start);

/* A removal, for httpd (with a request) or for a timeout (without). */
struct runner_removal {
	struct managed_runner	*rr_mr;
	struct peer_request	 rr_req;
	int			 rr_has_req;
	enum runner_status	 rr_was;
};

struct logs_request {
	struct peer_request	 lq_req;
	unsigned int		 lq_lines;
};

struct cleanup_request {
	struct peer_request	 cq_req;
	unsigned int		 cq_count;
	int			 cq_has_req;
};

/* A health request from httpd, waiting for the engine's two answers. */
struct engine_probe {
	struct peer_request	 ep_req;
	int			 ep_pending;
	int			 ep_ping_ok;
	char			*ep_version;
	char			*ep_api_version;
	char			*ep_error;
};

static struct docker_engine	 engine;
static struct managed_runners	 runners = TAILQ_HEAD_INITIALIZER(runners);
static struct runner_starts	 starts = TAILQ_HEAD_INITIALIZER(starts);
static unsigned int		 peer_gen[ROLE_COUNT];
static struct event		*ev_reconnect, *ev_push, *ev_sweep;
static unsigned int		 engine_gen;	/* one per connection */
static int			 engine_up;	/* listed, events flowing */
static int			 engine_lost;	/* a reconnect is due */
static int			 engine_warned;
static long			 events_call;
static unsigned int		 backoff_ms = BACKOFF_MIN_MS;
static uint64_t			 list_sent_ms;
static int			 stopping;
static char			 hostname[256];
static struct counter_set	 created_total, destroyed_total, exits_total;

static void	 engine_connect(void);
static void	 engine_trouble(const char *);
static void	 engine_relist(void);
static void	 table_changed(void);
static void	 runner_exit(struct managed_runner *, int);

/* The instance whose runners this worker follows; others are not ours. */
static const char *
docker_instance(void)
{
	const char	*s = child.cs_config.c_instance;

	return s != NULL && s[0] != '\0' ? s : DOCKER_INSTANCE_DEFAULT;
}

/* Peers and their requests. */

static void
peer_request_init(struct peer_request *pq, enum ipc_role role,
    const struct ipc_msg *msg)
{
	pq->pq_role = role;
	pq->pq_gen = peer_gen[role];
	pq->pq_msg.m_hdr = msg->m_hdr;
	pq->pq_msg.m_data = NULL;
	pq->pq_msg.m_fd = -1;
}

static void
peer_reply(struct peer_request *pq, uint16_t type, const struct buf *b)
{
	struct ipc_channel	*ch = child.cs_peers[pq->pq_role];

	if (stopping || ch == NULL || pq->pq_gen != peer_gen[pq->pq_role])
		return;
	ipc_reply(ch, &pq->pq_msg, type, b->b_data, b->b_len);
}

static void
peer_send(enum ipc_role role, uint16_t type, const struct buf *b)
{
	struct ipc_channel	*ch = child.cs_peers[role];

	if (ch != NULL && ipc_send(ch, type, 0, -1, b->b_data, b->b_len) == -1)
		log_warnx(LC_ERROR, "cannot send %s to %s", ipc_type_name(type),
		    ipc_role_name(role));
}

/* The runner table. */

static struct managed_runner *
table_add(const struct runner *rn)
{
	struct managed_runner	*mr;

	mr = xcalloc(1, sizeof(*mr));
	runner_copy(&mr->mr_rn, rn);
	buf_init(&mr->mr_log);
	mr->mr_added_ms = monotonic_ms();
	TAILQ_INSERT_TAIL(&runners, mr, mr_entry);
	table_changed();
	return mr;
}

static void
mr_free(struct managed_runner *mr)
{
	runner_free(&mr->mr_rn);
	buf_free(&mr->mr_log);
	free(mr);
}

static void
table_drop(struct managed_runner *mr)
{
	if (mr->mr_dropped)
		return;
	TAILQ_REMOVE(&runners, mr, mr_entry);
	mr->mr_dropped = 1;
	table_changed();
	if (mr->mr_refs == 0)
		mr_free(mr);
}

static void
mr_hold(struct managed_runner *mr)
{
	mr->mr_refs++;
}

/* Returns 0 if the runner is still in the table, -1 if it is gone. */
static int
mr_release(struct managed_runner *mr)
{
	if (--mr->mr_refs == 0 && mr->mr_dropped) {
		mr_free(mr);
		return -1;
	}
	return mr->mr_dropped || stopping ? -1 : 0;
}

static struct managed_runner *
table_find_name(const char *name, int exited)
{
	struct managed_runner	*mr;

	TAILQ_FOREACH(mr, &runners, mr_entry) {
		if (strcmp(mr->mr_rn.rn_name, name) == 0 &&
		    (mr->mr_rn.rn_status == RUNNER_EXITED) == exited)
			return mr;
	}
	return NULL;
}

static struct managed_runner *
table_find_id(const char *id)
{
	struct managed_runner	*mr;

	TAILQ_FOREACH(mr, &runners, mr_entry) {
		if (mr->mr_rn.rn_status != RUNNER_EXITED &&
		    strcmp(mr->mr_rn.rn_container_id, id) == 0)
			return mr;
	}
	return NULL;
}

static void
table_set_status(struct managed_runner *mr, enum runner_status st)
{
	if (mr->mr_rn.rn_status == st)
		return;
	mr->mr_rn.rn_status = st;
	if (st == RUNNER_IDLE)
		mr->mr_idle_since = time(NULL);
	table_changed();
}

static size_t
table_count(void)
{
	struct managed_runner	*mr;
	size_t			 n = 0;

	TAILQ_FOREACH(mr, &runners, mr_entry)
		n++;
	return n;
}

/* Coalesces the changes of one turn of the loop into one push. */
static void
table_changed(void)
{
	struct timeval	 zero = { 0, 0 };

	if (ev_push != NULL && !stopping)
		evtimer_add(ev_push, &zero);
}

static void
table_push(evutil_socket_t fd, short what, void *arg)
{
	struct managed_runner	*mr;
	struct runner		*rns;
	struct buf		 b;
	size_t			 n = 0;

	(void)fd;
	(void)what;
	(void)arg;
	rns = xcalloc(table_count() + 1, sizeof(*rns));
	n = 0;
	TAILQ_FOREACH(mr, &runners, mr_entry)
		rns[n++] = mr->mr_rn;	/* shallow: encoded, not freed */
	buf_init(&b);
	runner_table_encode(rns, n, &b);
	peer_send(ROLE_HTTPD, MSG_RUNNER_TABLE, &b);
	peer_send(ROLE_POLLER, MSG_RUNNER_TABLE, &b);
	buf_free(&b);
	free(rns);
}

/* Tells the poller a runner is gone, so that it deregisters it. */
static void
runner_send_gone(const struct runner *rn)
{
	struct buf	 b;
	char		 labels[128];

	snprintf(labels, sizeof(labels), "pool=\"%s\"", rn->rn_pool);
	counter_add(&destroyed_total, labels, 1);
	buf_init(&b);
	runner_encode(rn, &b);
	peer_send(ROLE_POLLER, MSG_RUNNER_GONE, &b);
	buf_free(&b);
}

/* Counts a pool's runners: in the table and not ended, or on their way. */
static uint32_t
pool_count(const char *pool)
{
	struct managed_runner	*mr;
	struct runner_start	*rs;
	uint32_t		 n = 0;

	TAILQ_FOREACH(mr, &runners, mr_entry) {
		if (mr->mr_rn.rn_status != RUNNER_EXITED &&
		    strcmp(mr->mr_rn.rn_pool, pool) == 0)
			n++;
	}
	TAILQ_FOREACH(rs, &starts, rs_entry) {
		if (rs->rs_mr == NULL && strcmp(rs->rs_sr.sr_pool, pool) == 0)
			n++;
	}
	return n;
}

static int
name_in_use(const char *name)
{
	struct runner_start	*rs;

	if (table_find_name(name, 0) != NULL)
		return 1;
	TAILQ_FOREACH(rs, &starts, rs_entry) {
		if (strcmp(rs->rs_sr.sr_name, name) == 0)
			return 1;
	}
	return 0;
}

/* Starting runners: create, pull if the image is missing, start. */

static void
start_reply(struct runner_start *rs, int ok, const char *text)
{
	struct buf	 b;

	buf_init(&b);
	ipc_put_u8(&b, (uint8_t)ok);
	ipc_put_str(&b, text);
	peer_reply(&rs->rs_req, MSG_RUNNER_START_REPLY, &b);
	buf_free(&b);
	if (!ok && !stopping)
		log_warnx(LC_ERROR, "runner %s not started: %s",
		    rs->rs_sr.sr_name, text);
}

static void
start_wipe_body(struct runner_start *rs)
{
	if (rs->rs_body.b_data != NULL)
		explicit_bzero(rs->rs_body.b_data, rs->rs_body.b_cap);
	buf_free(&rs->rs_body);
}

static void
start_free(struct runner_start *rs)
{
	TAILQ_REMOVE(&starts, rs, rs_entry);
	start_wipe_body(rs);
	if (rs->rs_mr != NULL)
		mr_release(rs->rs_mr);
	docker_start_free(&rs->rs_sr);
	free(rs->rs_image);
	free(rs);
}

static void	 start_on_created(const struct docker_result *, void *);

static void
start_create(struct runner_start *rs)
{
	if (docker_container_create(&engine, rs->rs_sr.sr_name,
	    rs->rs_body.b_data, rs->rs_body.b_len, start_on_created,
	    rs) == -1) {
		start_reply(rs, 0, "cannot reach the Docker engine");
		start_free(rs);
	}
}

static void
start_on_removed(const struct docker_result *dr, void *arg)
{
	struct runner_start	*rs = arg;
	struct managed_runner	*mr = rs->rs_mr;

	if (dr->dr_error != NULL && !stopping)
		log_warnx(LC_ERROR, "cannot remove container %s of runner %s: "
		    "%s", mr->mr_rn.rn_container_id, rs->rs_sr.sr_name,
		    dr->dr_error);
	mr->mr_busy = 0;
	table_drop(mr);
	start_reply(rs, 0, buf_cstr(&rs->rs_body));
	start_free(rs);
}

static void
start_on_started(const struct docker_result *dr, void *arg)
{
	struct runner_start	*rs = arg;
	struct managed_runner	*mr = rs->rs_mr;
	char			 labels[128];

	if (stopping) {
		start_free(rs);
		return;
	}
	if (dr->dr_error == NULL) {
		log_emit(LOG_INFO, LC_SUCCESS, "runner %s started in pool %s "
		    "(container %.12s)", rs->rs_sr.sr_name, rs->rs_sr.sr_pool,
		    mr->mr_rn.rn_container_id);
		snprintf(labels, sizeof(labels), "pool=\"%s\"",
		    rs->rs_sr.sr_pool);
		counter_add(&created_total, labels, 1);
		start_reply(rs, 1, mr->mr_rn.rn_container_id);
		start_free(rs);
		return;
	}

	/* Nothing is left behind: the container goes, then the answer. */
	if (dr->dr_transport)
		engine_trouble(dr->dr_error);
	buf_reset(&rs->rs_body);
	buf_add_str(&rs->rs_body, dr->dr_error);
	mr->mr_busy = 1;
	table_set_status(mr, RUNNER_REMOVING);
	if (docker_container_remove(&engine, mr->mr_rn.rn_container_id,
	    start_on_removed, rs) == -1) {
		mr->mr_busy = 0;
		table_drop(mr);
		start_reply(rs, 0, buf_cstr(&rs->rs_body));
		start_free(rs);
	}
}

static char *
created_id(const struct docker_result *dr)
{
	struct json_doc	 doc;
	const char	*why;
	char		*id = NULL;

	if (json_parse(&doc, dr->dr_body, dr->dr_len, &why) == 0) {
		id = json_member_str(&doc, 0, "Id");
		json_free(&doc);
	}
	return id;
}

/* The container exists: into the table with it, then start it. */
static void
start_created(struct runner_start *rs, const char *id)
{
	struct start_request	*sr = &rs->rs_sr;
	struct managed_runner	*old;
	struct runner		 rn;

	/* An exited runner of the same name makes way for the new one. */
	if ((old = table_find_name(sr->sr_name, 1)) != NULL)
		table_drop(old);

	memset(&rn, 0, sizeof(rn));
	rn.rn_name = sr->sr_name;
	rn.rn_container_id = (char *)id;
	rn.rn_pool = sr->sr_pool;
	rn.rn_image = rs->rs_image;
	rn.rn_scope = sr->sr_scope;
	rn.rn_scope_name = sr->sr_scope_name;
	rn.rn_origin = sr->sr_origin;
	rn.rn_github_id = sr->sr_github_id;
	rn.rn_labels = sr->sr_labels;
	rn.rn_status = RUNNER_STARTING;
	rn.rn_created = time(NULL);
	rn.rn_exit_code = -1;
	rn.rn_job = "";
	rs->rs_mr = table_add(&rn);
	mr_hold(rs->rs_mr);

	if (docker_container_start(&engine, id, start_on_started, rs) == -1) {
		table_drop(rs->rs_mr);
		start_reply(rs, 0, "cannot reach the Docker engine");
		start_free(rs);
	}
}

static void
start_on_pulled(const struct docker_result *dr, void *arg)
{
	struct runner_start	*rs = arg;
	char			*msg;

	if (stopping) {
		start_free(rs);
		return;
	}
	if (dr->dr_error != NULL) {
		if (dr->dr_transport)
			engine_trouble(dr->dr_error);
		xasprintf(&msg, "image %s is not available: %s", rs->rs_image,
		    dr->dr_error);
		start_reply(rs, 0, msg);
		free(msg);
		start_free(rs);
		return;
	}
	log_info(LC_INFO, "pulled image %s", rs->rs_image);
	rs->rs_pulled = 1;
	start_create(rs);
}

static void
start_on_created(const struct docker_result *dr, void *arg)
{
	struct runner_start	*rs = arg;
	char			*id;

	if (stopping) {
		start_free(rs);
		return;
	}
	if (dr->dr_status == 404 && !rs->rs_pulled) {
		log_info(LC_INFO, "image %s is missing; pulling it",
		    rs->rs_image);
		if (docker_image_pull(&engine, rs->rs_image, start_on_pulled,
		    rs) == -1) {
			start_reply(rs, 0, "cannot reach the Docker engine");
			start_free(rs);
		}
		return;
	}

	start_wipe_body(rs);
	if (dr->dr_error != NULL) {
		if (dr->dr_transport)
			engine_trouble(dr->dr_error);
		start_reply(rs, 0, dr->dr_error);
		start_free(rs);
		return;
	}
	if ((id = created_id(dr)) == NULL || id[0] == '\0') {
		start_reply(rs, 0, "the engine's create answer has no Id");
		free(id);
		start_free(rs);
		return;
	}
	start_created(rs, id);
	free(id);
}

/* Checks a start against the configuration and the table. */
static int
start_admit(const struct start_request *sr, char *err, size_t errlen)
{
	struct pool	*pl;

	if ((pl = config_find_pool(&child.cs_config, sr->sr_pool)) == NULL) {
		snprintf(err, errlen, "no such pool: %.64s", sr->sr_pool);
		return -1;
	}
	if (!runner_name_valid(sr->sr_name)) {
		snprintf(err, errlen, "invalid runner name '%.80s'",
		    sr->sr_name);
		return -1;
	}
	if (name_in_use(sr->sr_name)) {
		snprintf(err, errlen, "runner name %s is in use", sr->sr_name);
		return -1;
	}
	if (pool_count(pl->pl_name) >= pl->pl_max_runners) {
		snprintf(err, errlen, "pool %s is full (max_runners %u)",
		    pl->pl_name, pl->pl_max_runners);
		return -1;
	}
	if (!engine_up) {
		snprintf(err, errlen, "the Docker engine is not reachable");
		return -1;
	}
	return 0;
}

static int
docker_on_start(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct runner_start	*rs;
	struct create_spec	 cs;
	const char		*why;
	char			 err[256];

	(void)ch;
	(void)arg;
	rs = xcalloc(1, sizeof(*rs));
	peer_request_init(&rs->rs_req, ROLE_POLLER, msg);
	if (docker_start_decode(msg->m_data, msg->m_hdr.ih_len, &rs->rs_sr,
	    &why) == -1) {
		log_warnx(LC_ERROR, "malformed runner start from the poller: "
		    "%s", why);
		free(rs);
		return -1;
	}
	buf_init(&rs->rs_body);
	if (start_admit(&rs->rs_sr, err, sizeof(err)) == -1) {
		TAILQ_INSERT_TAIL(&starts, rs, rs_entry);
		start_reply(rs, 0, err);
		start_free(rs);
		return 0;
	}
	TAILQ_INSERT_TAIL(&starts, rs, rs_entry);

	memset(&cs, 0, sizeof(cs));
	cs.cs_pool = config_find_pool(&child.cs_config, rs->rs_sr.sr_pool);
	cs.cs_req = &rs->rs_sr;
	cs.cs_instance = docker_instance();
	cs.cs_socket = child.cs_config.c_docker_socket;
	cs.cs_hostname = hostname;
	cs.cs_now = time(NULL);
	rs->rs_image = xstrdup(cs.cs_pool->pl_image);
	docker_create_body(&cs, &rs->rs_body);
	log_info(LC_INFO, "starting runner %s in pool %s (image %s)",
	    rs->rs_sr.sr_name, rs->rs_sr.sr_pool, rs->rs_image);
	start_create(rs);
	return 0;
}

/* Runners that end: exit code, log tail, removal, word to the poller. */

static void
exit_on_removed(const struct docker_result *dr, void *arg)
{
	struct managed_runner	*mr = arg;

	if (mr_release(mr) == -1)
		return;
	mr->mr_busy = 0;

	/* Without the engine, the listing after the reconnect decides. */
	if (dr->dr_transport) {
		engine_trouble(dr->dr_error);
		return;
	}
	if (dr->dr_error != NULL)
		log_warnx(LC_ERROR, "cannot remove the container of runner %s: "
		    "%s", mr->mr_rn.rn_name, dr->dr_error);
	mr->mr_exited = time(NULL);
	table_set_status(mr, RUNNER_EXITED);
	log_info(LC_MONITOR, "runner %s exited with code %d; container "
	    "removed", mr->mr_rn.rn_name, (int)mr->mr_rn.rn_exit_code);
	runner_send_gone(&mr->mr_rn);
}

static void
exit_on_logs(const struct docker_result *dr, void *arg)
{
	struct managed_runner	*mr = arg;

	if (mr_release(mr) == -1)
		return;
	if (dr->dr_transport) {
		mr->mr_busy = 0;
		engine_trouble(dr->dr_error);
		return;
	}
	buf_reset(&mr->mr_log);
	if (dr->dr_error == NULL)
		buf_add(&mr->mr_log, dr->dr_body, dr->dr_len);
	else
		log_warnx(LC_WARNING, "no log tail for runner %s: %s",
		    mr->mr_rn.rn_name, dr->dr_error);
	mr_hold(mr);
	if (docker_container_remove(&engine, mr->mr_rn.rn_container_id,
	    exit_on_removed, mr) == -1)
		mr_release(mr);
}

static void
runner_exit(struct managed_runner *mr, int code)
{
	char	 labels[32];

	if (mr->mr_busy || mr->mr_rn.rn_status == RUNNER_EXITED ||
	    mr->mr_rn.rn_status == RUNNER_REMOVING)
		return;
	mr->mr_busy = 1;
	mr->mr_rn.rn_exit_code = code;
	snprintf(labels, sizeof(labels), "code=\"%d\"", code);
	counter_add(&exits_total, labels, 1);
	mr_hold(mr);
	if (docker_container_logs(&engine, mr->mr_rn.rn_container_id,
	    EXIT_LOG_LINES, exit_on_logs, mr) == -1)
		mr_release(mr);
}

/* Removing runners, for httpd and for timeouts. */

static void
removal_reply(struct runner_removal *rr, int ok, int status,
    const char *text)
{
	struct buf	 b;

	if (!rr->rr_has_req)
		return;
	buf_init(&b);
	ipc_put_u8(&b, (uint8_t)ok);
	ipc_put_u16(&b, (uint16_t)status);
	ipc_put_str(&b, text);
	peer_reply(&rr->rr_req, MSG_RUNNER_REMOVE_REPLY, &b);
	buf_free(&b);
}

static void
removal_on_removed(const struct docker_result *dr, void *arg)
{
	struct runner_removal	*rr = arg;
	struct managed_runner	*mr = rr->rr_mr;
	char			*msg;

	if (mr_release(mr) == -1)
		goto done;
	mr->mr_busy = 0;
	if (dr->dr_error != NULL) {
		if (dr->dr_transport)
			engine_trouble(dr->dr_error);
		xasprintf(&msg, "cannot remove runner %s: %s",
		    mr->mr_rn.rn_name, dr->dr_error);
		log_warnx(LC_ERROR, "%s", msg);
		table_set_status(mr, rr->rr_was);
		removal_reply(rr, 0, 502, msg);
		free(msg);
		goto done;
	}

	xasprintf(&msg, "runner %s removed", mr->mr_rn.rn_name);
	log_info(LC_MONITOR, "%s", msg);
	runner_send_gone(&mr->mr_rn);
	removal_reply(rr, 1, 200, msg);
	free(msg);
	table_drop(mr);
done:
	free(rr);
}

static void
removal_on_stopped(const struct docker_result *dr, void *arg)
{
	struct runner_removal	*rr = arg;
	struct managed_runner	*mr = rr->rr_mr;

	/* A stop that fails is no reason not to remove with force. */
	if (dr->dr_error != NULL && !stopping)
		log_warnx(LC_WARNING, "stopping runner %s: %s",
		    mr->mr_rn.rn_name, dr->dr_error);
	if (stopping) {
		mr_release(mr);
		free(rr);
		return;
	}
	if (docker_container_remove(&engine, mr->mr_rn.rn_container_id,
	    removal_on_removed, rr) == -1) {
		mr_release(mr);
		free(rr);
	}
}

static void
runner_remove(struct managed_runner *mr, const struct peer_request *pq)
{
	struct runner_removal	*rr;

	rr = xcalloc(1, sizeof(*rr));
	rr->rr_mr = mr;
	rr->rr_was = mr->mr_rn.rn_status;
	if (pq != NULL) {
		rr->rr_req = *pq;
		rr->rr_has_req = 1;
	}
	mr->mr_busy = 1;
	mr_hold(mr);
	table_set_status(mr, RUNNER_REMOVING);
	if (docker_container_stop(&engine, mr->mr_rn.rn_container_id,
	    STOP_SECONDS, removal_on_stopped, rr) == -1) {
		mr_release(mr);
		free(rr);
	}
}

static void
remove_reply_now(const struct peer_request *pq, int ok, int status,
    const char *text)
{
	struct runner_removal	 rr;

	memset(&rr, 0, sizeof(rr));
	rr.rr_req = *pq;
	rr.rr_has_req = 1;
	removal_reply(&rr, ok, status, text);
}

static int
docker_on_remove(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct ipc_reader	 r;
	struct peer_request	 pq;
	struct managed_runner	*mr;
	char			*name, *text;

	(void)ch;
	(void)arg;
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	name = ipc_get_str(&r);
	if (ipc_reader_done(&r) == -1) {
		free(name);
		return -1;
	}
	peer_request_init(&pq, ROLE_HTTPD, msg);

	if ((mr = table_find_name(name, 0)) != NULL && mr->mr_busy) {
		xasprintf(&text, "runner %s is already ending", name);
		remove_reply_now(&pq, 0, 409, text);
	} else if (mr != NULL) {
		log_info(LC_INFO, "removing runner %s as asked", name);
		runner_remove(mr, &pq);
		text = NULL;
	} else if ((mr = table_find_name(name, 1)) != NULL) {
		/* Its container is gone already; only the entry is left. */
		table_drop(mr);
		xasprintf(&text, "runner %s removed", name);
		remove_reply_now(&pq, 1, 200, text);
	} else {
		xasprintf(&text, "no such runner: %.100s", name);
		remove_reply_now(&pq, 0, 404, text);
	}
	free(text);
	free(name);
	return 0;
}

/* Log tails. */

static void
logs_reply(struct peer_request *pq, int ok, int status, const char *text,
    const char *log, size_t len)
{
	struct buf	 b;

	/* The newest part is what matters when the tail is too long. */
	if (len > LOG_REPLY_MAX) {
		log += len - LOG_REPLY_MAX;
		len = LOG_REPLY_MAX;
	}
	buf_init(&b);
	ipc_put_u8(&b, (uint8_t)ok);
	ipc_put_u16(&b, (uint16_t)status);
	ipc_put_str(&b, text);
	ipc_put_blob(&b, log, len);
	peer_reply(pq, MSG_RUNNER_LOGS_REPLY, &b);
	buf_free(&b);
}

/* The last n lines of a stored tail. */
static const char *
logs_last_lines(const char *log, size_t *len, unsigned int n)
{
	size_t	 i = *len;

	if (i > 0 && log[i - 1] == '\n')
		i--;
	while (i > 0) {
		if (log[i - 1] == '\n' && n-- <= 1)
			break;
		i--;
	}
	*len -= i;
	return log + i;
}

static void
logs_on_done(const struct docker_result *dr, void *arg)
{
	struct logs_request	*lq = arg;

	if (dr->dr_error != NULL)
		logs_reply(&lq->lq_req, 0, dr->dr_status == 404 ? 404 : 502,
		    dr->dr_error, NULL, 0);
	else
		logs_reply(&lq->lq_req, 1, 200, "", dr->dr_body, dr->dr_len);
	free(lq);
}

static int
docker_on_logs(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct ipc_reader	 r;
	struct logs_request	*lq;
	struct managed_runner	*mr;
	const char		*log;
	char			*name, *text;
	size_t			 len;

	(void)ch;
	(void)arg;
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	name = ipc_get_str(&r);
	lq = xcalloc(1, sizeof(*lq));
	lq->lq_lines = ipc_get_u32(&r);
	if (ipc_reader_done(&r) == -1) {
		free(name);
		free(lq);
		return -1;
	}
	peer_request_init(&lq->lq_req, ROLE_HTTPD, msg);
	if (lq->lq_lines == 0 || lq->lq_lines > LOGS_MAX_LINES)
		lq->lq_lines = lq->lq_lines == 0 ? EXIT_LOG_LINES :
		    LOGS_MAX_LINES;

	if ((mr = table_find_name(name, 0)) != NULL) {
		if (docker_container_logs(&engine, mr->mr_rn.rn_container_id,
		    lq->lq_lines, logs_on_done, lq) == -1) {
			logs_reply(&lq->lq_req, 0, 503, "cannot reach the "
			    "Docker engine", NULL, 0);
			free(lq);
		}
	} else if ((mr = table_find_name(name, 1)) != NULL) {
		len = mr->mr_log.b_len;
		log = logs_last_lines((const char *)mr->mr_log.b_data, &len,
		    lq->lq_lines);
		logs_reply(&lq->lq_req, 1, 200, "", log, len);
		free(lq);
	} else {
		xasprintf(&text, "no such runner: %.100s", name);
		logs_reply(&lq->lq_req, 0, 404, text, NULL, 0);
		free(text);
		free(lq);
	}
	free(name);
	return 0;
}

/* Cleanup: exited entries, exited containers, runners past their time. */

static unsigned int
sweep_timeouts(void)
{
	struct managed_runner	*mr, *next;
	struct pool		*pl;
	time_t			 now = time(NULL);
	unsigned int		 n = 0;

	TAILQ_FOREACH_SAFE(mr, &runners, mr_entry, next) {
		if (mr->mr_busy)
			continue;
		if (mr->mr_rn.rn_status == RUNNER_EXITED) {
			if (now - mr->mr_exited >= EXITED_KEEP_SECONDS)
				table_drop(mr);
			continue;
		}
		pl = config_find_pool(&child.cs_config, mr->mr_rn.rn_pool);
		if (pl == NULL)
			continue;
		if (mr->mr_rn.rn_status == RUNNER_STARTING &&
		    now - mr->mr_rn.rn_created > pl->pl_bootstrap_timeout) {
			log_warnx(LC_MONITOR, "runner %s did not come online "
			    "within %u s; removing it", mr->mr_rn.rn_name,
			    pl->pl_bootstrap_timeout);
		} else if (mr->mr_rn.rn_status == RUNNER_IDLE &&
		    now - mr->mr_idle_since > pl->pl_idle_timeout) {
			log_info(LC_MONITOR, "runner %s idle for %u s; "
			    "removing it", mr->mr_rn.rn_name,
			    pl->pl_idle_timeout);
		} else
			continue;
		runner_remove(mr, NULL);
		n++;
	}
	return n;
}

static void
sweep_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (engine_up)
		sweep_timeouts();
}

static void
cleanup_on_removed(const struct docker_result *dr, void *arg)
{
	(void)arg;
	if (dr->dr_error != NULL && !stopping)
		log_warnx(LC_ERROR, "cleanup: cannot remove a container: %s",
		    dr->dr_error);
}

/* Exited labelled containers not followed by the table go too. */
static unsigned int
cleanup_listed(const struct docker_result *dr)
{
	struct listed_container	*lcs;
	struct managed_runner	*mr;
	const char		*why;
	size_t			 i, n;
	unsigned int		 count = 0;

	if (docker_list_parse(dr->dr_body, dr->dr_len, &lcs, &n, &why) == -1)
		return 0;
	for (i = 0; i < n; i++) {
		if (lcs[i].lc_id == NULL || lcs[i].lc_state == NULL ||
		    (strcmp(lcs[i].lc_state, "exited") != 0 &&
		    strcmp(lcs[i].lc_state, "dead") != 0))
			continue;
		if ((mr = table_find_id(lcs[i].lc_id)) != NULL &&
		    mr->mr_busy)
			continue;
		docker_container_remove(&engine, lcs[i].lc_id,
		    cleanup_on_removed, NULL);
		if (mr != NULL)
			table_drop(mr);
		if (lcs[i].lc_valid) {
			lcs[i].lc_runner.rn_status = RUNNER_EXITED;
			lcs[i].lc_runner.rn_exit_code = lcs[i].lc_exit_code;
			runner_send_gone(&lcs[i].lc_runner);
		}
		count++;
	}
	docker_list_free(lcs, n);
	return count;
}

static void
cleanup_on_list(const struct docker_result *dr, void *arg)
{
	struct cleanup_request	*cq = arg;
	struct buf		 b;
	char			 text[128];
	unsigned int		 listed = 0;

	if (dr->dr_error == NULL && !stopping)
		listed = cleanup_listed(dr);
	else if (dr->dr_transport && !stopping)
		engine_trouble(dr->dr_error);
	cq->cq_count += listed;
	snprintf(text, sizeof(text), "removed %u runner%s", cq->cq_count,
	    cq->cq_count == 1 ? "" : "s");
	if (dr->dr_error != NULL)
		snprintf(text, sizeof(text), "removed %u runner%s; listing "
		    "containers failed", cq->cq_count,
		    cq->cq_count == 1 ? "" : "s");
	buf_init(&b);
	ipc_put_u32(&b, cq->cq_count);
	ipc_put_str(&b, text);
	peer_reply(&cq->cq_req, MSG_RUNNER_CLEANUP_REPLY, &b);
	buf_free(&b);
	if (!stopping)
		log_info(LC_INFO, "cleanup: %s", text);
	free(cq);
}

static const char *const *
our_labels(void)
{
	static char	 instance[128];
	static const char *labels[3];

	snprintf(instance, sizeof(instance), "%s=%s", LABEL_INSTANCE,
	    docker_instance());
	labels[0] = LABEL_MANAGED "=true";
	labels[1] = instance;
	labels[2] = NULL;
	return labels;
}

static int
docker_on_cleanup(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct cleanup_request	*cq;
	struct managed_runner	*mr, *next;

	(void)ch;
	(void)arg;
	if (msg->m_hdr.ih_len != 0)
		return -1;
	cq = xcalloc(1, sizeof(*cq));
	peer_request_init(&cq->cq_req, ROLE_HTTPD, msg);
	TAILQ_FOREACH_SAFE(mr, &runners, mr_entry, next) {
		if (mr->mr_rn.rn_status == RUNNER_EXITED && !mr->mr_busy) {
			table_drop(mr);
			cq->cq_count++;
		}
	}
	if (engine_up)
		cq->cq_count += sweep_timeouts();
	if (docker_container_list(&engine, our_labels(), cleanup_on_list,
	    cq) == -1)
		free(cq);
	return 0;
}

/* GitHub's view of the runners, from the poller. */

static void
github_apply(const char *name, uint64_t id, int online, int busy,
    const char *job)
{
	struct managed_runner	*mr;
	enum runner_status	 st;

	if ((mr = table_find_name(name, 0)) == NULL || mr->mr_busy)
		return;
	if (mr->mr_rn.rn_github_id == 0 && id != 0) {
		mr->mr_rn.rn_github_id = id;
		table_changed();
	}
	st = mr->mr_rn.rn_status;
	if (st != RUNNER_STARTING && st != RUNNER_IDLE && st != RUNNER_BUSY)
		return;
	if (online && busy) {
		if (strcmp(mr->mr_rn.rn_job, job) != 0) {
			free(mr->mr_rn.rn_job);
			mr->mr_rn.rn_job = xstrdup(job);
			table_changed();
		}
		table_set_status(mr, RUNNER_BUSY);
	} else if (online)
		table_set_status(mr, RUNNER_IDLE);
}

/* One runner as the poller reports it. */
struct github_view {
	char		*gv_name;
	uint64_t	 gv_id;
	int		 gv_online;
	int		 gv_busy;
	char		*gv_job;
};

static int
docker_on_github(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct ipc_reader	 r;
	struct github_view	*gv;
	uint32_t		 i, n;
	int			 rc = -1;

	(void)ch;
	(void)arg;
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	if ((n = ipc_get_u32(&r)) > RUNNER_TABLE_MAX)
		return -1;
	gv = xcalloc((size_t)n + 1, sizeof(*gv));
	for (i = 0; i < n; i++) {
		gv[i].gv_name = ipc_get_str(&r);
		gv[i].gv_id = ipc_get_u64(&r);
		gv[i].gv_online = ipc_get_bool(&r);
		gv[i].gv_busy = ipc_get_bool(&r);
		gv[i].gv_job = ipc_get_str(&r);
	}

	/* Applied only once the whole message proved well-formed. */
	if (ipc_reader_done(&r) == 0) {
		for (i = 0; i < n; i++)
			github_apply(gv[i].gv_name, gv[i].gv_id,
			    gv[i].gv_online, gv[i].gv_busy, gv[i].gv_job);
		rc = 0;
	}
	for (i = 0; i < n; i++) {
		free(gv[i].gv_name);
		free(gv[i].gv_job);
	}
	free(gv);
	return rc;
}

/* Following the engine: events, listing, reconnecting. */

static void
events_on_event(const struct docker_event *ev, void *arg)
{
	struct managed_runner	*mr;

	if ((uintptr_t)arg != engine_gen || stopping ||
	    strcmp(ev->ev_type, "container") != 0 || !ev->ev_managed ||
	    ev->ev_instance == NULL ||
	    strcmp(ev->ev_instance, docker_instance()) != 0)
		return;

	mr = table_find_id(ev->ev_id);
	if (strcmp(ev->ev_action, "die") == 0) {
		log_debug(LC_MONITOR, "container %.12s (%s) died, code %d",
		    ev->ev_id, ev->ev_name != NULL ? ev->ev_name : "?",
		    ev->ev_has_exit ? ev->ev_exit_code : -1);
		if (mr != NULL)
			runner_exit(mr, ev->ev_has_exit ? ev->ev_exit_code :
			    -1);
		else
			engine_relist();
	} else if (strcmp(ev->ev_action, "destroy") == 0 && mr != NULL &&
	    !mr->mr_busy) {
		log_info(LC_MONITOR, "container of runner %s was removed "
		    "outside ephemerd", mr->mr_rn.rn_name);
		mr->mr_rn.rn_status = RUNNER_EXITED;
		runner_send_gone(&mr->mr_rn);
		table_drop(mr);
	} else if (strcmp(ev->ev_action, "start") == 0 && mr == NULL &&
	    ev->ev_runner != NULL && !name_in_use(ev->ev_runner))
		engine_relist();
}

static void
events_on_done(const struct docker_result *dr, void *arg)
{
	if ((uintptr_t)arg != engine_gen || stopping)
		return;
	events_call = 0;
	engine_trouble(dr->dr_error != NULL ? dr->dr_error :
	    "the event stream ended");
}

/* A running container the table does not know: it becomes a runner. */
static void
reconcile_running(struct listed_container *lc)
{
	struct managed_runner	*mr;
	struct runner_start	*rs;

	if (table_find_id(lc->lc_id) != NULL)
		return;
	TAILQ_FOREACH(rs, &starts, rs_entry)
		if (strcmp(rs->rs_sr.sr_name, lc->lc_runner.rn_name) == 0)
			return;
	if ((mr = table_find_name(lc->lc_runner.rn_name, 0)) != NULL)
		return;
	table_add(&lc->lc_runner);
	log_info(LC_MONITOR, "adopted running runner %s (container %.12s)",
	    lc->lc_runner.rn_name, lc->lc_id);
}

/* An ended (or never started) container: handled as if it just died. */
static void
reconcile_ended(struct listed_container *lc)
{
	struct managed_runner	*mr;
	struct runner_start	*rs;

	TAILQ_FOREACH(rs, &starts, rs_entry)
		if (strcmp(rs->rs_sr.sr_name, lc->lc_runner.rn_name) == 0)
			return;
	if ((mr = table_find_id(lc->lc_id)) == NULL) {
		if (table_find_name(lc->lc_runner.rn_name, 0) != NULL)
			return;
		mr = table_add(&lc->lc_runner);
		log_info(LC_MONITOR, "found ended runner %s (container %.12s)",
		    lc->lc_runner.rn_name, lc->lc_id);
	}
	runner_exit(mr, lc->lc_exit_code);
}

/* A runner whose container vanished while nobody watched. */
static void
reconcile_vanished(const struct listed_container *lcs, size_t n)
{
	struct managed_runner	*mr, *next;
	size_t			 i;

	TAILQ_FOREACH_SAFE(mr, &runners, mr_entry, next) {
		if (mr->mr_busy || mr->mr_rn.rn_status == RUNNER_EXITED ||
		    mr->mr_added_ms >= list_sent_ms)
			continue;
		for (i = 0; i < n; i++)
			if (lcs[i].lc_id != NULL && strcmp(lcs[i].lc_id,
			    mr->mr_rn.rn_container_id) == 0)
				break;
		if (i < n)
			continue;
		log_warnx(LC_MONITOR, "container of runner %s is gone",
		    mr->mr_rn.rn_name);
		mr->mr_rn.rn_exit_code = -1;
		mr->mr_exited = time(NULL);
		table_set_status(mr, RUNNER_EXITED);
		runner_send_gone(&mr->mr_rn);
	}
}

static void
list_on_done(const struct docker_result *dr, void *arg)
{
	struct listed_container	*lcs;
	const char		*why, *st;
	size_t			 i, n;

	if ((uintptr_t)arg != engine_gen || stopping)
		return;
	if (dr->dr_error != NULL) {
		engine_trouble(dr->dr_error);
		return;
	}
	if (docker_list_parse(dr->dr_body, dr->dr_len, &lcs, &n, &why) == -1) {
		engine_trouble(why);
		return;
	}
	for (i = 0; i < n; i++) {
		if (!lcs[i].lc_valid)
			continue;
		st = lcs[i].lc_state;
		if (strcmp(st, "running") == 0 || strcmp(st, "paused") == 0 ||
		    strcmp(st, "restarting") == 0)
			reconcile_running(&lcs[i]);
		else if (strcmp(st, "exited") == 0 || strcmp(st, "dead") == 0 ||
		    strcmp(st, "created") == 0)
			reconcile_ended(&lcs[i]);
	}
	reconcile_vanished(lcs, n);
	docker_list_free(lcs, n);

	if (!engine_up)
		log_info(LC_MONITOR, "following the Docker engine %s (API %s)",
		    engine.de_version != NULL ? engine.de_version : "?",
		    engine.de_prefix + 1);
	engine_up = 1;
	engine_warned = 0;
	backoff_ms = BACKOFF_MIN_MS;
}

/* Lists our containers again: an event showed something unknown. */
static void
engine_relist(void)
{
	if (!engine_up || stopping)
		return;
	list_sent_ms = monotonic_ms();
	docker_container_list(&engine, our_labels(), list_on_done,
	    (void *)(uintptr_t)engine_gen);
}

static void
version_on_done(const struct docker_result *dr, void *arg)
{
	if ((uintptr_t)arg != engine_gen || stopping)
		return;
	if (dr->dr_error != NULL) {
		engine_trouble(dr->dr_error);
		return;
	}

	/* The stream first, so that no event falls between it and the list. */
	events_call = docker_events(&engine, our_labels(), events_on_event,
	    events_on_done, (void *)(uintptr_t)engine_gen);
	list_sent_ms = monotonic_ms();
	docker_container_list(&engine, our_labels(), list_on_done,
	    (void *)(uintptr_t)engine_gen);
}

static void
engine_connect(void)
{
	engine_gen++;
	engine_lost = 0;
	docker_version(&engine, version_on_done,
	    (void *)(uintptr_t)engine_gen);
}

static void
reconnect_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	engine_connect();
}

/*
 * The engine failed us: drop the stream and try again later, waiting
 * twice as long each time (with jitter, so that many workers do not
 * come back at once).
 */
static void
engine_trouble(const char *why)
{
	struct timeval	 tv;
	unsigned int	 delay;
	long		 call;

	if (stopping || engine_lost)
		return;
	engine_lost = 1;
	engine_up = 0;
	engine_gen++;
	if (!engine_warned)
		log_warnx(LC_ERROR, "lost the Docker engine: %s; reconnecting",
		    why != NULL ? why : "unknown error");
	engine_warned = 1;
	if ((call = events_call) != 0) {
		events_call = 0;
		docker_cancel(&engine, call);
	}

	delay = backoff_ms / 2 + (unsigned int)random() % (backoff_ms / 2 + 1);
	backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    backoff_ms * 2;
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(ev_reconnect, &tv);
}

/* Health requests from httpd. */

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
	jw_kv_int(&jw, "runners", (int64_t)table_count());
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
	peer_reply(&ep->ep_req, MSG_HEALTH_REPLY, &payload);
	buf_free(&payload);
	buf_free(&json);
}

static void
docker_probe_done(struct engine_probe *ep)
{
	if (--ep->ep_pending > 0)
		return;
	docker_probe_reply(ep);
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
	if (!stopping)
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
	if (http_request_start(engine.de_http, &rq, done, ep) != -1)
		ep->ep_pending++;
	free(url);
}

static int
docker_on_health_req(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct engine_probe	*ep;

	(void)ch;
	(void)arg;
	if (msg->m_hdr.ih_len != 0)
		return -1;

	ep = xcalloc(1, sizeof(*ep));
	peer_request_init(&ep->ep_req, ROLE_HTTPD, msg);
	ep->ep_pending = 1;
	docker_engine_get(ep, "/_ping", docker_on_ping);
	docker_engine_get(ep, "/version", docker_on_version);
	docker_probe_done(ep);
	return 0;
}

/* The child's frame. */

static void
docker_peer_changed(enum ipc_role role, struct ipc_channel *ch)
{
	/* Answers to requests of a closed channel must not reach a new one. */
	peer_gen[role]++;
	if (ch != NULL && (role == ROLE_HTTPD || role == ROLE_POLLER))
		table_changed();
}

static void
docker_metrics(struct buf *out)
{
	counter_write(&created_total, "ephemerd_runners_created_total", out);
	counter_write(&destroyed_total, "ephemerd_runners_destroyed_total",
	    out);
	counter_write(&exits_total, "ephemerd_container_exits_total", out);
}

static void
docker_status(struct json_writer *jw)
{
	jw_kv_int(jw, "runners", (int64_t)table_count());
	jw_kv_bool(jw, "engine_connected", engine_up);
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
	struct timeval	 sweep = { SWEEP_SECONDS, 0 };

	if (!first)
		return 0;
	if (docker_drop_privileges(conf, err, errlen) == -1)
		return -1;
	if (gethostname(hostname, sizeof(hostname)) == -1)
		strlcpy(hostname, "localhost", sizeof(hostname));
	hostname[sizeof(hostname) - 1] = '\0';
	srandom((unsigned int)(getpid() ^ time(NULL)));

	docker_engine_init(&engine, child.cs_base, conf->c_docker_socket);
	ev_reconnect = evtimer_new(child.cs_base, reconnect_on_timer, NULL);
	ev_push = evtimer_new(child.cs_base, table_push, NULL);
	ev_sweep = event_new(child.cs_base, -1, EV_PERSIST, sweep_on_timer,
	    NULL);
	if (ev_reconnect == NULL || ev_push == NULL || ev_sweep == NULL ||
	    event_add(ev_sweep, &sweep) == -1) {
		snprintf(err, errlen, "cannot create the worker's timers");
		return -1;
	}
	log_info(LC_START, "Docker engine at %s", conf->c_docker_socket);
	engine_connect();
	return 0;
}

static void
docker_shutdown(void)
{
	struct managed_runner	*mr;

	/* Callbacks of cancelled calls only free what they hold. */
	stopping = 1;
	docker_engine_free(&engine);
	counter_set_free(&created_total);
	counter_set_free(&destroyed_total);
	counter_set_free(&exits_total);
	while ((mr = TAILQ_FIRST(&runners)) != NULL) {
		TAILQ_REMOVE(&runners, mr, mr_entry);
		mr_free(mr);
	}
	if (ev_reconnect != NULL)
		event_free(ev_reconnect);
	if (ev_push != NULL)
		event_free(ev_push);
	if (ev_sweep != NULL)
		event_free(ev_sweep);
	ev_reconnect = ev_push = ev_sweep = NULL;
}

static const struct ipc_dispatch docker_httpd_table[] = {
	{ MSG_HEALTH_REQ,	docker_on_health_req },
	{ MSG_RUNNER_REMOVE,	docker_on_remove },
	{ MSG_RUNNER_LOGS,	docker_on_logs },
	{ MSG_RUNNER_CLEANUP,	docker_on_cleanup },
	{ MSG_NONE,		NULL }
};

static const struct ipc_dispatch docker_poller_table[] = {
	{ MSG_RUNNER_START,	docker_on_start },
	{ MSG_RUNNER_GITHUB,	docker_on_github },
	{ MSG_NONE,		NULL }
};

const struct child_ops docker_ops = {
	.co_role = ROLE_DOCKER,
	.co_peer_tables = {
		[ROLE_HTTPD] = docker_httpd_table,
		[ROLE_POLLER] = docker_poller_table,
	},
	.co_configure = docker_configure,
	.co_status = docker_status,
	.co_metrics = docker_metrics,
	.co_peer_changed = docker_peer_changed,
	.co_shutdown = docker_shutdown,
};
