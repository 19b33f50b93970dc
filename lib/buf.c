/*
 * Growable byte buffers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "util.h"

void
buf_init(struct buf *b)
{
	b->b_data = NULL;
	b->b_len = 0;
	b->b_cap = 0;
}

void
buf_free(struct buf *b)
{
	free(b->b_data);
	buf_init(b);
}

void
buf_reset(struct buf *b)
{
	b->b_len = 0;
}

void
buf_reserve(struct buf *b, size_t more)
{
	size_t	 cap;

	if (more > SIZE_MAX - b->b_len - 1)
		fatalx("buffer size overflow");
	if (b->b_len + more + 1 <= b->b_cap)
		return;

	cap = b->b_cap == 0 ? 256 : b->b_cap;
	while (cap < b->b_len + more + 1) {
		if (cap > SIZE_MAX / 2)
			fatalx("buffer size overflow");
		cap *= 2;
	}
	b->b_data = xreallocarray(b->b_data, cap, 1);
	b->b_cap = cap;
}

void
buf_add(struct buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len > 0)
		memcpy(b->b_data + b->b_len, data, len);
	b->b_len += len;
	b->b_data[b->b_len] = '\0';
}

void
buf_add_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_add_char(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("buf_printf: bad format");

	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf((char *)b->b_data + b->b_len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->b_len += (size_t)n;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->b_len) {
		buf_reset(b);
		return;
	}
	memmove(b->b_data, b->b_data + n, b->b_len - n);
	b->b_len -= n;
	b->b_data[b->b_len] = '\0';
}

const char *
buf_cstr(struct buf *b)
{
	buf_reserve(b, 0);
	b->b_data[b->b_len] = '\0';
	return (const char *)b->b_data;
}
