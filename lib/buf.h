/*
 * Growable byte buffers.  Allocation failure is fatal, so callers never
 * check for it.
 */
#ifndef EPHEMERD_BUF_H
#define EPHEMERD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t	*b_data;
	size_t	 b_len;
	size_t	 b_cap;
};

void	 buf_init(struct buf *);
void	 buf_free(struct buf *);
void	 buf_reset(struct buf *);
void	 buf_reserve(struct buf *, size_t);
void	 buf_add(struct buf *, const void *, size_t);
void	 buf_add_str(struct buf *, const char *);
void	 buf_add_char(struct buf *, char);
void	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void	 buf_consume(struct buf *, size_t);
/* Returns the contents as a NUL-terminated string owned by the buffer. */
const char *buf_cstr(struct buf *);

#endif
