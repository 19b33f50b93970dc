/*
 * Logging: "CATEGORY process: message" lines to syslog, stderr or a sink.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "log.h"
#include "util.h"

#define LOG_LINE_MAX	2048

static const char *const log_category_names[LC_COUNT] = {
	"START", "CONFIG", "MONITOR", "SUCCESS", "ERROR", "WARNING", "INFO",
	"REQUEST", "RESPONSE", "HEALTH", "SHUTDOWN"
};

static char		 log_procname[32] = "ephemerd";
static int		 log_to_stderr = 1;
static int		 log_level = LOG_INFO;
static log_sink_fn	 log_sink;
static void		*log_sink_arg;

void
log_init(const char *procname, int to_stderr, int facility)
{
	log_set_procname(procname);
	log_to_stderr = to_stderr;
	if (!to_stderr)
		openlog("ephemerd", LOG_PID | LOG_NDELAY, facility);
}

void
log_set_procname(const char *procname)
{
	strlcpy(log_procname, procname, sizeof(log_procname));
}

void
log_set_level(int level)
{
	log_level = level;
}

int
log_get_level(void)
{
	return log_level;
}

void
log_set_sink(log_sink_fn fn, void *arg)
{
	log_sink = fn;
	log_sink_arg = arg;
}

const char *
log_category_name(enum log_category cat)
{
	if ((int)cat < 0 || cat >= LC_COUNT)
		return "INFO";
	return log_category_names[cat];
}

int
log_level_from_name(const char *name)
{
	static const struct {
		const char	*name;
		int		 level;
	} levels[] = {
		{ "debug", LOG_DEBUG }, { "info", LOG_INFO },
		{ "warning", LOG_WARNING }, { "warn", LOG_WARNING },
		{ "error", LOG_ERR }
	};
	size_t	 i;

	for (i = 0; i < nitems(levels); i++)
		if (strcasecmp(name, levels[i].name) == 0)
			return levels[i].level;
	return -1;
}

int
log_facility_from_name(const char *name)
{
	static const struct {
		const char	*name;
		int		 facility;
	} facilities[] = {
		{ "daemon", LOG_DAEMON }, { "user", LOG_USER },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
		{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 }
	};
	size_t	 i;

	for (i = 0; i < nitems(facilities); i++)
		if (strcasecmp(name, facilities[i].name) == 0)
			return facilities[i].facility;
	return -1;
}

void
log_write_line(int prio, const char *line)
{
	if (log_to_stderr) {
		fprintf(stderr, "%s\n", line);
		fflush(stderr);
	} else
		syslog(prio, "%s", line);
}

/* A line never spans two: control characters could forge a log entry. */
static void
log_sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

void
log_vemit(int prio, enum log_category cat, const char *fmt, va_list ap)
{
	char	 msg[LOG_LINE_MAX], line[LOG_LINE_MAX + 64];
	int	 saved_errno = errno;

	if (prio > log_level)
		return;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_sanitize(msg);
	snprintf(line, sizeof(line), "%s %s: %s", log_category_name(cat),
	    log_procname, msg);

	if (log_sink != NULL)
		log_sink(prio, line, log_sink_arg);
	else
		log_write_line(prio, line);
	errno = saved_errno;
}

void
log_emit(int prio, enum log_category cat, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vemit(prio, cat, fmt, ap);
	va_end(ap);
}

void
log_warn(enum log_category cat, const char *fmt, ...)
{
	char	 msg[LOG_LINE_MAX];
	int	 saved_errno = errno;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(LOG_WARNING, cat, "%s: %s", msg, strerror(saved_errno));
}

void
log_warnx(enum log_category cat, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vemit(LOG_WARNING, cat, fmt, ap);
	va_end(ap);
}

void
log_info(enum log_category cat, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vemit(LOG_INFO, cat, fmt, ap);
	va_end(ap);
}

void
log_debug(enum log_category cat, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vemit(LOG_DEBUG, cat, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char	 msg[LOG_LINE_MAX];
	int	 saved_errno = errno;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(LOG_CRIT, LC_ERROR, "fatal: %s: %s", msg,
	    strerror(saved_errno));
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	char	 msg[LOG_LINE_MAX];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(LOG_CRIT, LC_ERROR, "fatal: %s", msg);
	exit(1);
}
