/*
 * Writing JSON into a buffer, with correct escaping of any byte string
 * (control characters as \u00XX, invalid UTF-8 replaced by U+FFFD).
 * Commas are placed automatically.
 */
#ifndef EPHEMERD_JSON_WRITE_H
#define EPHEMERD_JSON_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define JW_MAX_DEPTH	32

struct json_writer {
	struct buf	*jw_buf;
	int		 jw_depth;
	int		 jw_first[JW_MAX_DEPTH];	/* no member yet */
	int		 jw_after_key;
};

void	 jw_init(struct json_writer *, struct buf *);
void	 jw_object_begin(struct json_writer *);
void	 jw_object_end(struct json_writer *);
void	 jw_array_begin(struct json_writer *);
void	 jw_array_end(struct json_writer *);
void	 jw_key(struct json_writer *, const char *);
void	 jw_str(struct json_writer *, const char *);	/* NULL as null */
void	 jw_strn(struct json_writer *, const char *, size_t);
void	 jw_int(struct json_writer *, int64_t);
void	 jw_uint(struct json_writer *, uint64_t);
void	 jw_bool(struct json_writer *, int);
void	 jw_null(struct json_writer *);
/* Inserts text that is already valid JSON. */
void	 jw_raw(struct json_writer *, const char *, size_t);

/* Key and value in one call. */
void	 jw_kv_str(struct json_writer *, const char *, const char *);
void	 jw_kv_int(struct json_writer *, const char *, int64_t);
void	 jw_kv_bool(struct json_writer *, const char *, int);

/* Appends s escaped, without quotes. */
void	 json_escape(struct buf *, const char *, size_t);

#endif
