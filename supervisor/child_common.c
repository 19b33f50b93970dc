/*
 * The frame every child process runs in: an event loop, the channel to
 * the supervisor on descriptor 3, channels to the peers as the
 * supervisor hands them over, configuration and status.
 */
#include <sys/prctl.h>

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_write.h"
#include "log.h"
#include "supervisor.h"
#include "util.h"

struct child_state child;

static int	 child_on_config(struct ipc_channel *, struct ipc_msg *,
		    void *);
static int	 child_on_status(struct ipc_channel *, struct ipc_msg *,
		    void *);
static int	 child_on_shutdown(struct ipc_channel *, struct ipc_msg *,
		    void *);
static int	 child_on_peer_fd(struct ipc_channel *, struct ipc_msg *,
		    void *);
static int	 child_on_listen_fd(struct ipc_channel *, struct ipc_msg *,
		    void *);
static int	 child_on_metrics(struct ipc_channel *, struct ipc_msg *,
		    void *);

/* What the supervisor may send a child; httpd also gets its socket. */
static const struct ipc_dispatch child_parent_table[] = {
	{ MSG_CONFIG,		child_on_config },
	{ MSG_STATUS_REQ,	child_on_status },
	{ MSG_SHUTDOWN,		child_on_shutdown },
	{ MSG_PEER_FD,		child_on_peer_fd },
	{ MSG_LISTEN_FD,	child_on_listen_fd },
	{ MSG_STATUS_REPLY,	NULL },
	{ MSG_METRICS_REPLY,	NULL },
	{ MSG_NONE,		NULL }
};

/* Each peer's table of the child, with the frame's own rows added. */
static struct ipc_dispatch *child_peer_tables[ROLE_COUNT];

static const struct ipc_dispatch *
child_peer_table(enum ipc_role role)
{
	const struct ipc_dispatch *own = child.cs_ops->co_peer_tables[role];
	struct ipc_dispatch	*t;
	size_t			 n = 0, i;

	if (child_peer_tables[role] != NULL)
		return child_peer_tables[role];
	while (own != NULL && own[n].d_type != MSG_NONE)
		n++;
	t = xcalloc(n + 2, sizeof(*t));
	for (i = 0; i < n; i++)
		t[i] = own[i];
	t[n].d_type = MSG_METRICS_REQ;
	t[n].d_handler = child_on_metrics;
	t[n + 1].d_type = MSG_NONE;
	child_peer_tables[role] = t;
	return t;
}

static int
child_on_metrics(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct buf	 text, payload;

	(void)arg;
	if (msg->m_hdr.ih_len != 0)
		return -1;
	buf_init(&text);
	if (child.cs_ops->co_metrics != NULL)
		child.cs_ops->co_metrics(&text);
	buf_init(&payload);
	ipc_put_blob(&payload, text.b_data, text.b_len);
	ipc_reply(ch, msg, MSG_METRICS_REPLY, payload.b_data, payload.b_len);
	buf_free(&payload);
	buf_free(&text);
	return 0;
}

/* Log lines travel to the supervisor, which writes them. */
static void
child_log_sink(int prio, const char *line, void *arg)
{
	struct buf	 payload;

	(void)arg;
	if (child.cs_parent == NULL) {
		fprintf(stderr, "%s\n", line);
		return;
	}

	buf_init(&payload);
	ipc_put_u8(&payload, (uint8_t)prio);
	ipc_put_str(&payload, line);
	if (ipc_send(child.cs_parent, MSG_LOG, 0, -1, payload.b_data,
	    payload.b_len) == -1)
		fprintf(stderr, "%s\n", line);
	else if (prio <= LOG_CRIT)
		ipc_flush(child.cs_parent);
	buf_free(&payload);
}

static void
child_on_parent_close(struct ipc_channel *ch, const char *why, void *arg)
{
	(void)arg;
	log_set_sink(NULL, NULL);
	child.cs_parent = NULL;
	log_emit(LOG_ERR, LC_SHUTDOWN, "lost the supervisor (%s); exiting",
	    why);
	ipc_channel_free(ch);
	child_exit();
}

static void
child_on_peer_close(struct ipc_channel *ch, const char *why, void *arg)
{
	enum ipc_role	 role = (enum ipc_role)(intptr_t)arg;

	if (child.cs_peers[role] != ch)
		return;
	log_info(LC_MONITOR, "channel to %s closed: %s", ipc_role_name(role),
	    why);
	child.cs_peers[role] = NULL;
	ipc_channel_free(ch);	/* why is not used past here */
	if (child.cs_ops->co_peer_changed != NULL)
		child.cs_ops->co_peer_changed(role, NULL);
}

static int
child_apply_config(struct config *conf, char *err, size_t errlen)
{
	int	 first = !child.cs_configured;

	if (child.cs_ops->co_configure(conf, first, err, errlen) == -1)
		return -1;

	log_set_level(verbose > 0 ? LOG_DEBUG : conf->c_log_level);
	if (child.cs_configured)
		config_free(&child.cs_config);
	child.cs_config = *conf;
	child.cs_configured = 1;
	return 0;
}

static int
child_on_config(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct config	 conf;
	struct buf	 ack;
	const char	*why;
	char		 err[512] = "";
	int		 ok;

	(void)arg;
	config_init(&conf);
	if (config_decode(&conf, child.cs_ops->co_role, msg->m_data,
	    msg->m_hdr.ih_len, &why) == -1) {
		config_free(&conf);
		log_warnx(LC_CONFIG, "malformed configuration: %s", why);
		return -1;
	}

	ok = child_apply_config(&conf, err, sizeof(err)) == 0;
	if (!ok) {
		config_free(&conf);
		if (!child.cs_configured)
			fatalx("cannot start: %s", err);
		log_warnx(LC_CONFIG, "new configuration refused: %s", err);
	}

	buf_init(&ack);
	ipc_put_u8(&ack, (uint8_t)ok);
	ipc_put_str(&ack, err);
	ipc_reply(ch, msg, MSG_CONFIG_ACK, ack.b_data, ack.b_len);
	buf_free(&ack);
	return 0;
}

void
child_status_json(struct json_writer *jw)
{
	jw_object_begin(jw);
	jw_kv_str(jw, "status", "ok");
	jw_kv_int(jw, "pid", getpid());
	jw_kv_int(jw, "uptime", (int64_t)((monotonic_ms() -
	    child.cs_start_ms) / 1000));
	if (child.cs_ops->co_status != NULL)
		child.cs_ops->co_status(jw);
	jw_object_end(jw);
}

static int
child_on_status(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct json_writer	 jw;
	struct buf		 json, payload;

	(void)arg;
	if (msg->m_hdr.ih_len != 0)
		return -1;

	buf_init(&json);
	jw_init(&jw, &json);
	child_status_json(&jw);
	buf_init(&payload);
	ipc_put_blob(&payload, json.b_data, json.b_len);
	ipc_reply(ch, msg, MSG_STATUS_REPLY, payload.b_data, payload.b_len);
	buf_free(&payload);
	buf_free(&json);
	return 0;
}

static int
child_on_shutdown(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	(void)ch;
	(void)arg;
	if (msg->m_hdr.ih_len != 0)
		return -1;
	log_info(LC_SHUTDOWN, "asked to stop");
	child_exit();
	return 0;
}

static int
child_on_peer_fd(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct ipc_reader	 r;
	enum ipc_role		 role;
	char			 name[32];

	(void)ch;
	(void)arg;
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	role = (enum ipc_role)ipc_get_u8(&r);
	if (ipc_reader_done(&r) == -1 || msg->m_fd == -1 ||
	    role == ROLE_SUPERVISOR || role >= ROLE_COUNT ||
	    role == child.cs_ops->co_role)
		return -1;

	if (child.cs_peers[role] != NULL)
		ipc_channel_free(child.cs_peers[role]);
	snprintf(name, sizeof(name), "%s", ipc_role_name(role));
	child.cs_peers[role] = ipc_channel_new(child.cs_base, msg->m_fd,
	    name, child_peer_table(role), child_on_peer_close,
	    (void *)(intptr_t)role);
	msg->m_fd = -1;
	log_debug(LC_MONITOR, "connected to %s", name);
	if (child.cs_ops->co_peer_changed != NULL)
		child.cs_ops->co_peer_changed(role, child.cs_peers[role]);
	return 0;
}

static int
child_on_listen_fd(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	(void)ch;
	(void)arg;
	if (child.cs_ops->co_role != ROLE_HTTPD || msg->m_fd == -1 ||
	    msg->m_hdr.ih_len != 0 || child.cs_listen_fd != -1)
		return -1;
	child.cs_listen_fd = msg->m_fd;
	msg->m_fd = -1;
	return 0;
}

static void
child_on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_info(LC_SHUTDOWN, "received signal %d", (int)sig);
	child_exit();
}

void
child_exit(void)
{
	event_base_loopexit(child.cs_base, NULL);
}

static void
child_cleanup(void)
{
	int	 i;

	if (child.cs_ops->co_shutdown != NULL)
		child.cs_ops->co_shutdown();
	for (i = 0; i < ROLE_COUNT; i++)
		if (child.cs_peers[i] != NULL) {
			ipc_channel_free(child.cs_peers[i]);
			child.cs_peers[i] = NULL;
		}
	if (child.cs_parent != NULL) {
		ipc_flush(child.cs_parent);
		log_set_sink(NULL, NULL);
		ipc_channel_free(child.cs_parent);
		child.cs_parent = NULL;
	}
	if (child.cs_configured)
		config_free(&child.cs_config);
	if (child.cs_listen_fd != -1)
		close(child.cs_listen_fd);
	for (i = 0; i < ROLE_COUNT; i++) {
		free(child_peer_tables[i]);
		child_peer_tables[i] = NULL;
	}
}

/*
 * Runs a child until the supervisor tells it to stop, the channel to the
 * supervisor closes, or SIGTERM arrives.  Ctrl-C in a terminal reaches
 * the whole process group; only the supervisor acts on it, so that
 * children stop in order.
 */
int
child_run(const struct child_ops *ops)
{
	struct event	*ev_term;

	child.cs_ops = ops;
	child.cs_start_ms = monotonic_ms();
	child.cs_listen_fd = -1;
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);

	if ((child.cs_base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	child.cs_parent = ipc_channel_new(child.cs_base, CHILD_PARENT_FD,
	    "supervisor", child_parent_table, child_on_parent_close, NULL);
	log_set_sink(child_log_sink, NULL);
	ev_term = evsignal_new(child.cs_base, SIGTERM, child_on_signal, NULL);
	if (ev_term == NULL || event_add(ev_term, NULL) == -1)
		fatalx("cannot watch SIGTERM");

	event_base_dispatch(child.cs_base);

	child_cleanup();
	event_free(ev_term);
	event_base_free(child.cs_base);
	return 0;
}

__attribute__((noreturn)) void
child_main(enum ipc_role role)
{
	static const struct child_ops *const ops[ROLE_COUNT] = {
		[ROLE_HTTPD] = &httpd_ops,
		[ROLE_POLLER] = &poller_ops,
		[ROLE_DOCKER] = &docker_ops,
	};

	log_init(ipc_role_name(role), 1, LOG_DAEMON);
	log_set_level(verbose > 0 ? LOG_DEBUG : LOG_INFO);
	proctitle_set(ipc_role_name(role));
	exit(child_run(ops[role]) == 0 ? 0 : 1);
}
