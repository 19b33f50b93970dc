/*
 * The supervisor: starts the three children, wires them to each other,
 * forwards their log lines, restarts the ones that die, reloads the
 * configuration on SIGHUP and stops everything in order on SIGTERM.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json_write.h"
#include "log.h"
#include "supervisor.h"
#include "util.h"

#define QUICK_DEATH_MS		10000	/* a death this soon is a failure */
#define QUICK_DEATH_LIMIT	5	/* in a row, then ephemerd gives up */
#define BACKOFF_BASE_MS		200
#define BACKOFF_CAP_MS		30000
#define STOP_GRACE_MS		1500	/* per child, three in a row < 5 s */
#define CONFIG_ACK_TIMEOUT_MS	10000
#define WATCHDOG_PERIOD_S	5
#define WATCHDOG_TIMEOUT_MS	3000
#define WATCHDOG_MISSES		3

extern char **environ;

struct child_proc {
	enum ipc_role		 cp_role;
	pid_t			 cp_pid;
	struct ipc_channel	*cp_chan;
	uint64_t		 cp_started_ms;
	unsigned int		 cp_quick_deaths;
	unsigned int		 cp_restarts;
	unsigned int		 cp_watchdog_misses;
	int			 cp_watchdog_pending;
	struct event		*cp_restart_ev;
};

static struct {
	struct event_base	*sv_base;
	struct config		 sv_config;
	int			 sv_listen_fd;
	struct child_proc	 sv_children[ROLE_COUNT];
	int			 sv_stopping;
	struct child_proc	*sv_stopping_child;
	struct event		*sv_stop_timer;
	struct event		*sv_watchdog;
	int			 sv_exit_code;
	uint64_t		 sv_start_ms;
} sv;

/* Children stop in this order: first the door, last the engine. */
static const enum ipc_role stop_order[] = {
	ROLE_HTTPD, ROLE_POLLER, ROLE_DOCKER
};

static void	 supervisor_spawn(struct child_proc *);
static void	 supervisor_stop_next(void);
static void	 supervisor_child_died(struct child_proc *, int);
static int	 supervisor_on_log(struct ipc_channel *, struct ipc_msg *,
		    void *);
static int	 supervisor_on_metrics_req(struct ipc_channel *,
		    struct ipc_msg *, void *);
static int	 supervisor_on_status_req(struct ipc_channel *,
		    struct ipc_msg *, void *);

static const struct ipc_dispatch supervisor_httpd_table[] = {
	{ MSG_LOG,		supervisor_on_log },
	{ MSG_STATUS_REQ,	supervisor_on_status_req },
	{ MSG_METRICS_REQ,	supervisor_on_metrics_req },
	{ MSG_CONFIG_ACK,	NULL },
	{ MSG_STATUS_REPLY,	NULL },
	{ MSG_NONE,		NULL }
};

static const struct ipc_dispatch supervisor_worker_table[] = {
	{ MSG_LOG,		supervisor_on_log },
	{ MSG_CONFIG_ACK,	NULL },
	{ MSG_STATUS_REPLY,	NULL },
	{ MSG_NONE,		NULL }
};

static const char *
child_name(const struct child_proc *cp)
{
	return ipc_role_name(cp->cp_role);
}

/* Accepts a child's line only if it names that child: no forged lines. */
static int
supervisor_on_log(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct child_proc	*cp = arg;
	struct ipc_reader	 r;
	char			*line, *name;
	int			 prio, ok = 0, i;

	(void)ch;
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	prio = ipc_get_u8(&r);
	line = ipc_get_str(&r);
	if (ipc_reader_done(&r) == -1 || prio > LOG_DEBUG) {
		free(line);
		return -1;
	}

	for (i = 0; i < LC_COUNT && !ok; i++) {
		const char *cat = log_category_name(i);
		size_t len = strlen(cat);

		if (strncmp(line, cat, len) != 0 || line[len] != ' ')
			continue;
		name = line + len + 1;
		len = strlen(child_name(cp));
		ok = strncmp(name, child_name(cp), len) == 0 &&
		    strncmp(name + len, ": ", 2) == 0;
	}
	if (ok)
		log_write_line(prio, line);
	free(line);
	return ok ? 0 : -1;
}

static void
supervisor_status_json(struct json_writer *jw)
{
	struct child_proc	*cp;
	int			 i;

	jw_object_begin(jw);
	jw_kv_str(jw, "status", "ok");
	jw_kv_int(jw, "pid", getpid());
	jw_kv_int(jw, "uptime",
	    (int64_t)((monotonic_ms() - sv.sv_start_ms) / 1000));
	jw_key(jw, "children");
	jw_object_begin(jw);
	for (i = ROLE_HTTPD; i < ROLE_COUNT; i++) {
		cp = &sv.sv_children[i];
		jw_key(jw, child_name(cp));
		jw_object_begin(jw);
		jw_kv_int(jw, "pid", cp->cp_pid);
		jw_kv_bool(jw, "running", cp->cp_pid != 0);
		jw_kv_int(jw, "restarts", cp->cp_restarts);
		jw_object_end(jw);
	}
	jw_object_end(jw);
	jw_object_end(jw);
}

static int
supervisor_on_status_req(struct ipc_channel *ch, struct ipc_msg *msg,
    void *arg)
{
	struct json_writer	 jw;
	struct buf		 json, payload;

	(void)arg;
	if (msg->m_hdr.ih_len != 0)
		return -1;

	buf_init(&json);
	jw_init(&jw, &json);
	supervisor_status_json(&jw);
	buf_init(&payload);
	ipc_put_blob(&payload, json.b_data, json.b_len);
	ipc_reply(ch, msg, MSG_STATUS_REPLY, payload.b_data, payload.b_len);
	buf_free(&payload);
	buf_free(&json);
	return 0;
}

/* httpd's /metrics: how often each child was restarted. */
static int
supervisor_on_metrics_req(struct ipc_channel *ch, struct ipc_msg *msg,
    void *arg)
{
	struct buf	 text, payload;
	int		 i;

	(void)arg;
	if (msg->m_hdr.ih_len != 0)
		return -1;

	buf_init(&text);
	for (i = ROLE_HTTPD; i < ROLE_COUNT; i++)
		buf_printf(&text, "ephemerd_child_restarts_total"
		    "{process=\"%s\"} %u\n", child_name(&sv.sv_children[i]),
		    sv.sv_children[i].cp_restarts);
	buf_init(&payload);
	ipc_put_blob(&payload, text.b_data, text.b_len);
	ipc_reply(ch, msg, MSG_METRICS_REPLY, payload.b_data, payload.b_len);
	buf_free(&payload);
	buf_free(&text);
	return 0;
}

/* A child that breaks the protocol is not trusted to go on. */
static void
supervisor_on_child_close(struct ipc_channel *ch, const char *why,
    void *arg)
{
	struct child_proc	*cp = arg;
	int			 status;

	if (cp->cp_chan != ch)
		return;
	cp->cp_chan = NULL;
	if (cp->cp_pid != 0 && !sv.sv_stopping) {
		if (waitpid(cp->cp_pid, &status, WNOHANG) == cp->cp_pid)
			supervisor_child_died(cp, status);
		else {
			log_warnx(LC_MONITOR, "channel to %s (pid %d) closed: "
			    "%s; killing it", child_name(cp), (int)cp->cp_pid,
			    why);
			kill(cp->cp_pid, SIGKILL);
		}
	}
	ipc_channel_free(ch);
}

static void
supervisor_on_config_ack(struct ipc_channel *ch, struct ipc_msg *msg,
    void *arg)
{
	struct child_proc	*cp = arg;
	struct ipc_reader	 r;
	char			*err;
	int			 ok;

	if (msg == NULL) {
		if (cp->cp_chan == ch)
			log_warnx(LC_CONFIG, "%s did not confirm its "
			    "configuration", child_name(cp));
		return;
	}
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	ok = ipc_get_bool(&r);
	err = ipc_get_str(&r);
	if (ipc_reader_done(&r) == -1)
		log_warnx(LC_CONFIG, "malformed answer from %s: %s",
		    child_name(cp), ipc_reader_error(&r));
	else if (!ok)
		log_emit(LOG_ERR, LC_ERROR, "%s refused the configuration: %s",
		    child_name(cp), err);
	free(err);
}

static void
supervisor_send_config(struct child_proc *cp)
{
	struct buf	 payload;

	buf_init(&payload);
	config_encode(&sv.sv_config, cp->cp_role, &payload);
	if (ipc_request(cp->cp_chan, MSG_CONFIG, payload.b_data,
	    payload.b_len, CONFIG_ACK_TIMEOUT_MS, supervisor_on_config_ack,
	    cp) == -1)
		log_warnx(LC_CONFIG, "cannot send the configuration to %s",
		    child_name(cp));
	explicit_bzero(payload.b_data, payload.b_len);
	buf_free(&payload);
}

/* A fresh socketpair between two running children, one end each. */
static void
supervisor_connect_peers(struct child_proc *a, struct child_proc *b)
{
	struct buf	 payload;
	int		 sp[2];

	if (a->cp_chan == NULL || b->cp_chan == NULL)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn(LC_MONITOR, "socketpair for %s and %s",
		    child_name(a), child_name(b));
		return;
	}

	buf_init(&payload);
	ipc_put_u8(&payload, (uint8_t)b->cp_role);
	if (ipc_send(a->cp_chan, MSG_PEER_FD, 0, sp[0], payload.b_data,
	    payload.b_len) == -1)
		close(sp[0]);
	buf_reset(&payload);
	ipc_put_u8(&payload, (uint8_t)a->cp_role);
	if (ipc_send(b->cp_chan, MSG_PEER_FD, 0, sp[1], payload.b_data,
	    payload.b_len) == -1)
		close(sp[1]);
	buf_free(&payload);
}

/* Children get no secret through their environment, only sanitizers'. */
static char **
supervisor_child_env(void)
{
	static const char *const keep[] = {
		"ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=", "TZ="
	};
	static char	*env[nitems(keep) + 1];
	size_t		 i, n = 0;
	char		**e;

	for (e = environ; *e != NULL; e++)
		for (i = 0; i < nitems(keep); i++)
			if (strncmp(*e, keep[i], strlen(keep[i])) == 0 &&
			    n < nitems(keep))
				env[n++] = *e;
	env[n] = NULL;
	return env;
}

static __attribute__((noreturn)) void
supervisor_exec_child(struct child_proc *cp, int fd)
{
	char	*argv[6];
	int	 argc = 0;

	if (fd == CHILD_PARENT_FD) {
		if (fcntl(fd, F_SETFD, 0) == -1)
			_exit(127);
	} else if (dup2(fd, CHILD_PARENT_FD) == -1)
		_exit(127);
	closefrom_compat(CHILD_PARENT_FD + 1);

	argv[argc++] = (char *)self_exe;
	argv[argc++] = "-R";
	argv[argc++] = (char *)child_name(cp);
	if (verbose > 0)
		argv[argc++] = "-v";
	argv[argc] = NULL;
	execve(self_exe, argv, supervisor_child_env());
	fprintf(stderr, "ephemerd: exec %s: %s\n", self_exe, strerror(errno));
	_exit(127);
}

static void
supervisor_spawn(struct child_proc *cp)
{
	const struct ipc_dispatch *table;
	pid_t		 pid;
	int		 sp[2], i;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1)
		fatal("socketpair");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0) {
		close(sp[0]);
		supervisor_exec_child(cp, sp[1]);
	}
	close(sp[1]);

	cp->cp_pid = pid;
	cp->cp_started_ms = monotonic_ms();
	cp->cp_watchdog_misses = 0;
	cp->cp_watchdog_pending = 0;
	table = cp->cp_role == ROLE_HTTPD ? supervisor_httpd_table :
	    supervisor_worker_table;
	cp->cp_chan = ipc_channel_new(sv.sv_base, sp[0], child_name(cp),
	    table, supervisor_on_child_close, cp);
	log_info(LC_START, "%s started (pid %d)", child_name(cp), (int)pid);

	if (cp->cp_role == ROLE_HTTPD) {
		int fd = fcntl(sv.sv_listen_fd, F_DUPFD_CLOEXEC, 0);

		if (fd == -1)
			fatal("dup of the listen socket");
		ipc_send(cp->cp_chan, MSG_LISTEN_FD, 0, fd, NULL, 0);
	}
	supervisor_send_config(cp);
	for (i = ROLE_HTTPD; i < ROLE_COUNT; i++)
		if (&sv.sv_children[i] != cp)
			supervisor_connect_peers(cp, &sv.sv_children[i]);
}

static void
supervisor_on_restart(evutil_socket_t fd, short what, void *arg)
{
	struct child_proc	*cp = arg;

	(void)fd;
	(void)what;
	if (!sv.sv_stopping && cp->cp_pid == 0) {
		cp->cp_restarts++;
		supervisor_spawn(cp);
	}
}

/* Exponential backoff with jitter: half to all of the doubled delay. */
static uint64_t
supervisor_backoff_ms(unsigned int failures)
{
	uint64_t	 delay = BACKOFF_BASE_MS;

	while (failures-- > 1 && delay < BACKOFF_CAP_MS)
		delay *= 2;
	if (delay > BACKOFF_CAP_MS)
		delay = BACKOFF_CAP_MS;
	return delay / 2 + (uint64_t)random() % (delay / 2 + 1);
}

static void
supervisor_begin_stop(int code)
{
	int	 i;

	if (sv.sv_stopping)
		return;
	sv.sv_stopping = 1;
	sv.sv_exit_code = code;
	for (i = ROLE_HTTPD; i < ROLE_COUNT; i++)
		event_del(sv.sv_children[i].cp_restart_ev);
	event_del(sv.sv_watchdog);
	supervisor_stop_next();
}

static void
supervisor_describe_exit(int status, char *out, size_t len)
{
	if (WIFEXITED(status))
		snprintf(out, len, "exited with status %d",
		    WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(out, len, "stopped (status 0x%x)", status);
}

static void
supervisor_child_died(struct child_proc *cp, int status)
{
	struct ipc_channel	*ch = cp->cp_chan;
	struct timeval		 tv;
	uint64_t		 lived = monotonic_ms() - cp->cp_started_ms;
	uint64_t		 delay;
	char			 how[64];

	supervisor_describe_exit(status, how, sizeof(how));
	cp->cp_pid = 0;
	cp->cp_chan = NULL;
	if (ch != NULL)
		ipc_channel_free(ch);
	if (sv.sv_stopping) {
		log_info(LC_SHUTDOWN, "%s %s", child_name(cp), how);
		return;
	}

	cp->cp_quick_deaths = lived < QUICK_DEATH_MS ?
	    cp->cp_quick_deaths + 1 : 1;
	if (cp->cp_quick_deaths >= QUICK_DEATH_LIMIT) {
		log_emit(LOG_ERR, LC_ERROR, "%s keeps dying within %d s of "
		    "starting (%u times in a row, last %s); giving up",
		    child_name(cp), QUICK_DEATH_MS / 1000,
		    cp->cp_quick_deaths, how);
		supervisor_begin_stop(1);
		return;
	}

	delay = supervisor_backoff_ms(cp->cp_quick_deaths);
	log_warnx(LC_MONITOR, "%s %s after %llu ms; restarting it in "
	    "%llu ms", child_name(cp), how, (unsigned long long)lived,
	    (unsigned long long)delay);
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)((delay % 1000) * 1000);
	event_add(cp->cp_restart_ev, &tv);
}

static void
supervisor_on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct child_proc	*cp;
	pid_t			 pid;
	int			 status, i;

	(void)sig;
	(void)what;
	(void)arg;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = ROLE_HTTPD; i < ROLE_COUNT; i++) {
			cp = &sv.sv_children[i];
			if (cp->cp_pid == pid)
				supervisor_child_died(cp, status);
		}
		if (sv.sv_stopping && sv.sv_stopping_child != NULL &&
		    sv.sv_stopping_child->cp_pid == 0)
			supervisor_stop_next();
	}
}

static void
supervisor_on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct child_proc	*cp = sv.sv_stopping_child;

	(void)fd;
	(void)what;
	(void)arg;
	if (cp != NULL && cp->cp_pid != 0) {
		log_warnx(LC_SHUTDOWN, "%s did not stop in time; killing it",
		    child_name(cp));
		kill(cp->cp_pid, SIGKILL);
	}
}

/* Stops the next running child in order; ends the loop after the last. */
static void
supervisor_stop_next(void)
{
	struct child_proc	*cp;
	struct timeval		 tv = { STOP_GRACE_MS / 1000,
				    (STOP_GRACE_MS % 1000) * 1000 };
	size_t			 i;

	event_del(sv.sv_stop_timer);
	for (i = 0; i < nitems(stop_order); i++) {
		cp = &sv.sv_children[stop_order[i]];
		if (cp->cp_pid == 0)
			continue;
		sv.sv_stopping_child = cp;
		if (cp->cp_chan == NULL || ipc_send(cp->cp_chan,
		    MSG_SHUTDOWN, 0, -1, NULL, 0) == -1)
			kill(cp->cp_pid, SIGTERM);
		event_add(sv.sv_stop_timer, &tv);
		return;
	}
	sv.sv_stopping_child = NULL;
	event_base_loopexit(sv.sv_base, NULL);
}

static void
supervisor_on_term(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (sv.sv_stopping)
		return;
	log_info(LC_SHUTDOWN, "received %s; stopping",
	    sig == SIGINT ? "SIGINT" : "SIGTERM");
	supervisor_begin_stop(0);
}

/* Settings bound at start cannot change without a restart. */
static void
supervisor_keep_fixed(struct config *next, const struct config *cur)
{
	static const size_t fixed[] = {
		offsetof(struct config, c_listen),
		offsetof(struct config, c_user),
		offsetof(struct config, c_chroot),
	};
	static const char *const names[] = {
		"httpd.listen", "user", "chroot"
	};
	char	**n, *const *c;
	size_t	 i;

	for (i = 0; i < nitems(fixed); i++) {
		n = (char **)((char *)next + fixed[i]);
		c = (char *const *)((const char *)cur + fixed[i]);
		if (strcmp(*n, *c) == 0)
			continue;
		log_warnx(LC_CONFIG, "%s changed; it takes effect only when "
		    "ephemerd restarts", names[i]);
		free(*n);
		*n = xstrdup(*c);
	}
}

static void
supervisor_reload(void)
{
	struct config	 next;
	char		 err[1024];
	int		 i;

	log_info(LC_CONFIG, "received SIGHUP; reloading %s",
	    sv.sv_config.c_file);
	if (config_load(&next, sv.sv_config.c_file, environ, err,
	    sizeof(err)) == -1) {
		log_emit(LOG_ERR, LC_ERROR, "reload failed: %s; keeping the "
		    "old configuration", err);
		config_free(&next);
		return;
	}
	supervisor_keep_fixed(&next, &sv.sv_config);
	config_free(&sv.sv_config);
	sv.sv_config = next;
	log_set_level(verbose > 0 ? LOG_DEBUG : sv.sv_config.c_log_level);

	for (i = ROLE_HTTPD; i < ROLE_COUNT; i++)
		if (sv.sv_children[i].cp_chan != NULL)
			supervisor_send_config(&sv.sv_children[i]);
	log_info(LC_CONFIG, "reloaded %s", sv.sv_config.c_file);
}

static void
supervisor_on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	if (!sv.sv_stopping)
		supervisor_reload();
}

static void
supervisor_on_watchdog_reply(struct ipc_channel *ch, struct ipc_msg *msg,
    void *arg)
{
	struct child_proc	*cp = arg;

	if (cp->cp_chan != ch)
		return;
	cp->cp_watchdog_pending = 0;
	if (msg != NULL) {
		cp->cp_watchdog_misses = 0;
		return;
	}
	if (++cp->cp_watchdog_misses < WATCHDOG_MISSES)
		return;
	log_warnx(LC_MONITOR, "%s (pid %d) has not answered %d status "
	    "requests; killing it", child_name(cp), (int)cp->cp_pid,
	    WATCHDOG_MISSES);
	kill(cp->cp_pid, SIGKILL);
}

/* A child that hangs is as dead as one that exits. */
static void
supervisor_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct child_proc	*cp;
	int			 i;

	(void)fd;
	(void)what;
	(void)arg;
	for (i = ROLE_HTTPD; i < ROLE_COUNT; i++) {
		cp = &sv.sv_children[i];
		if (cp->cp_chan == NULL || cp->cp_watchdog_pending)
			continue;
		if (ipc_request(cp->cp_chan, MSG_STATUS_REQ, NULL, 0,
		    WATCHDOG_TIMEOUT_MS, supervisor_on_watchdog_reply,
		    cp) == 0)
			cp->cp_watchdog_pending = 1;
	}
}

/* Splits "host:port" or "[v6]:port"; the configuration was validated. */
static int
supervisor_split_listen(const char *addr, char *host, size_t hostlen,
    const char **port)
{
	const char	*colon;
	size_t		 len;

	if ((colon = strrchr(addr, ':')) == NULL)
		return -1;
	*port = colon + 1;
	len = (size_t)(colon - addr);
	if (len >= 2 && addr[0] == '[' && addr[len - 1] == ']') {
		addr++;
		len -= 2;
	}
	if (len >= hostlen)
		return -1;
	memcpy(host, addr, len);
	host[len] = '\0';
	return 0;
}

/* Bound here, as root, so that a privileged port works for httpd. */
static int
supervisor_bind(const char *addr, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res, *ai;
	const char	*port;
	char		 host[256];
	int		 fd = -1, on = 1, rc, saved = 0;

	if (supervisor_split_listen(addr, host, sizeof(host), &port) == -1) {
		snprintf(err, errlen, "bad listen address %s", addr);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints,
	    &res)) != 0) {
		snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc));
		return -1;
	}

	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 128) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		snprintf(err, errlen, "cannot listen on %s: %s", addr,
		    strerror(saved != 0 ? saved : EADDRNOTAVAIL));
	return fd;
}

/* Checks what only root can arrange, before anything is started. */
static int
supervisor_prepare(struct config *conf, char *err, size_t errlen)
{
	struct stat	 st;
	uid_t		 uid;
	gid_t		 gid;

	if (geteuid() != 0)
		return 0;
	if (privsep_lookup_user(conf->c_user, &uid, &gid, err, errlen) == -1)
		return -1;
	if (conf->c_chroot[0] == '\0')
		return 0;
	if (stat(conf->c_chroot, &st) == -1) {
		if (errno != ENOENT || mkdir(conf->c_chroot, 0755) == -1) {
			snprintf(err, errlen, "chroot %s: %s", conf->c_chroot,
			    strerror(errno));
			return -1;
		}
		return 0;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		snprintf(err, errlen, "chroot %s must be a directory owned by "
		    "root and writable only by root", conf->c_chroot);
		return -1;
	}
	return 0;
}

static struct event *
supervisor_signal(int sig, event_callback_fn fn)
{
	struct event	*ev;

	if ((ev = evsignal_new(sv.sv_base, sig, fn, NULL)) == NULL ||
	    event_add(ev, NULL) == -1)
		fatalx("cannot watch signal %d", sig);
	return ev;
}

static void
supervisor_start_all(void)
{
	struct timeval	 period = { WATCHDOG_PERIOD_S, 0 };
	int		 i;

	for (i = ROLE_HTTPD; i < ROLE_COUNT; i++) {
		sv.sv_children[i].cp_role = (enum ipc_role)i;
		sv.sv_children[i].cp_restart_ev = evtimer_new(sv.sv_base,
		    supervisor_on_restart, &sv.sv_children[i]);
		if (sv.sv_children[i].cp_restart_ev == NULL)
			fatalx("evtimer_new failed");
	}
	for (i = ROLE_HTTPD; i < ROLE_COUNT; i++)
		supervisor_spawn(&sv.sv_children[i]);

	sv.sv_stop_timer = evtimer_new(sv.sv_base, supervisor_on_stop_timeout,
	    NULL);
	sv.sv_watchdog = event_new(sv.sv_base, -1, EV_PERSIST,
	    supervisor_on_watchdog, NULL);
	if (sv.sv_stop_timer == NULL || sv.sv_watchdog == NULL ||
	    event_add(sv.sv_watchdog, &period) == -1)
		fatalx("cannot arm the supervisor's timers");
}

static void
supervisor_cleanup(struct event **sigs, size_t nsigs)
{
	size_t	 i;

	for (i = 0; i < nsigs; i++)
		event_free(sigs[i]);
	for (i = ROLE_HTTPD; i < ROLE_COUNT; i++)
		event_free(sv.sv_children[i].cp_restart_ev);
	event_free(sv.sv_stop_timer);
	event_free(sv.sv_watchdog);
	event_base_free(sv.sv_base);
	close(sv.sv_listen_fd);
	config_free(&sv.sv_config);
}

int
supervisor_run(struct config *conf, int fg)
{
	struct event	*sigs[4];
	char		 err[1024];

	sv.sv_config = *conf;
	sv.sv_start_ms = monotonic_ms();
	srandom((unsigned int)(getpid() ^ time(NULL)));
	if (supervisor_prepare(&sv.sv_config, err, sizeof(err)) == -1 ||
	    (sv.sv_listen_fd = supervisor_bind(sv.sv_config.c_listen, err,
	    sizeof(err))) == -1) {
		fprintf(stderr, "ephemerd: %s\n", err);
		return 1;
	}
	if (!fg && daemon(0, 0) == -1) {
		fprintf(stderr, "ephemerd: daemon: %s\n", strerror(errno));
		return 1;
	}

	log_init("supervisor", fg, sv.sv_config.c_log_facility);
	log_set_level(verbose > 0 ? LOG_DEBUG : sv.sv_config.c_log_level);
	proctitle_set("supervisor");
	log_info(LC_START, "%s %s starting with %s, listening on %s",
	    PACKAGE_NAME, PACKAGE_VERSION, sv.sv_config.c_file,
	    sv.sv_config.c_listen);
	if (geteuid() != 0)
		log_warnx(LC_WARNING, "not running as root; privileges are "
		    "not dropped");

	signal(SIGPIPE, SIG_IGN);
	if ((sv.sv_base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	sigs[0] = supervisor_signal(SIGCHLD, supervisor_on_sigchld);
	sigs[1] = supervisor_signal(SIGHUP, supervisor_on_hup);
	sigs[2] = supervisor_signal(SIGTERM, supervisor_on_term);
	sigs[3] = supervisor_signal(SIGINT, supervisor_on_term);
	supervisor_start_all();

	event_base_dispatch(sv.sv_base);

	log_info(LC_SHUTDOWN, "%s stopped", PACKAGE_NAME);
	supervisor_cleanup(sigs, nitems(sigs));
	return sv.sv_exit_code;
}
