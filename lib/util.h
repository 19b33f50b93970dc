/*
 * Small portable helpers: allocation that cannot fail, string copies,
 * strict number parsing, time stamps.
 */
#ifndef EPHEMERD_UTIL_H
#define EPHEMERD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

/* glibc's <sys/queue.h> lacks it; the caller includes <sys/queue.h>. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

#ifndef HAVE_STRLCPY
size_t	 strlcpy(char *, const char *, size_t);
#endif
#ifndef HAVE_STRLCAT
size_t	 strlcat(char *, const char *, size_t);
#endif
#ifndef HAVE_EXPLICIT_BZERO
void	 explicit_bzero(void *, size_t);
#endif
/* Frees a string after wiping it; for secrets. */
void	 freezero_str(char *);

/*
 * Parses a decimal integer in [min, max].  Returns 0, or -1 with *why set
 * to a short reason ("not a number", "too small", "too large").
 */
int	 parse_u64(const char *, uint64_t, uint64_t, uint64_t *,
	    const char **);
/* Parses true/false, yes/no, on/off, 1/0 (any case).  -1 if none. */
int	 parse_bool(const char *);

/* Closes every descriptor from fd up. */
void	 closefrom_compat(int);

/* Monotonic milliseconds, for timeouts and durations. */
uint64_t monotonic_ms(void);
/* ISO 8601 UTC time stamp "2026-12-03T19:36:41Z" into buf (>= 21 bytes). */
void	 iso8601_utc(time_t, char *, size_t);

/* Constant-time comparison of two byte strings of possibly other lengths. */
int	 timingsafe_streq(const char *, const char *);

#endif
