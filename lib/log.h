/*
 * Logging in the OpenBSD manner, with ephemerd's category word and the
 * process name on every line: "START httpd: listening on 127.0.0.1:8080".
 *
 * The supervisor writes to syslog (or stderr with -d).  A child installs a
 * sink that forwards each finished line to the supervisor, because a
 * chrooted process cannot reopen /dev/log.
 */
#ifndef EPHEMERD_LOG_H
#define EPHEMERD_LOG_H

#include <stdarg.h>
#include <syslog.h>

enum log_category {
	LC_START,
	LC_CONFIG,
	LC_MONITOR,
	LC_SUCCESS,
	LC_ERROR,
	LC_WARNING,
	LC_INFO,
	LC_REQUEST,
	LC_RESPONSE,
	LC_HEALTH,
	LC_SHUTDOWN,
	LC_COUNT
};

/* A sink receives the syslog priority and the whole formatted line. */
typedef void (*log_sink_fn)(int, const char *, void *);

void	 log_init(const char *, int, int);
void	 log_set_procname(const char *);
void	 log_set_level(int);
int	 log_get_level(void);
void	 log_set_sink(log_sink_fn, void *);
/* Writes a line that was already formatted, as the supervisor does. */
void	 log_write_line(int, const char *);
const char *log_category_name(enum log_category);
/* Maps "debug", "INFO", "warning", ... to a syslog priority; -1 if none. */
int	 log_level_from_name(const char *);
/* Maps "daemon", "local0", ... to a syslog facility; -1 if none. */
int	 log_facility_from_name(const char *);

void	 log_emit(int, enum log_category, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
void	 log_vemit(int, enum log_category, const char *, va_list);
void	 log_warn(enum log_category, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 log_warnx(enum log_category, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 log_info(enum log_category, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 log_debug(enum log_category, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	 fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
