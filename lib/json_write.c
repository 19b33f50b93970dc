/*
 * Writing JSON.  Misuse (a key inside an array, a value without a key in
 * an object, unbalanced ends, nesting beyond JW_MAX_DEPTH) is a bug in
 * the caller and fatal, so a malformed document never leaves the process.
 */
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "json_write.h"
#include "log.h"

/* jw_first[] holds these flags for each open container. */
#define JW_EMPTY	0x1	/* no member yet */
#define JW_OBJECT	0x2

static void	 jw_value_prefix(struct json_writer *);
static void	 jw_open(struct json_writer *, int, char);
static void	 jw_close(struct json_writer *, int, char);

void
jw_init(struct json_writer *jw, struct buf *b)
{
	memset(jw, 0, sizeof(*jw));
	jw->jw_buf = b;
}

/* The comma before a value, unless it follows its key. */
static void
jw_value_prefix(struct json_writer *jw)
{
	int	*top;

	if (jw->jw_after_key) {
		jw->jw_after_key = 0;
		return;
	}
	if (jw->jw_depth == 0)
		return;

	top = &jw->jw_first[jw->jw_depth - 1];
	if (*top & JW_OBJECT)
		fatalx("json writer: value without a key in an object");
	if (!(*top & JW_EMPTY))
		buf_add_char(jw->jw_buf, ',');
	*top &= ~JW_EMPTY;
}

static void
jw_open(struct json_writer *jw, int flags, char c)
{
	jw_value_prefix(jw);
	if (jw->jw_depth == JW_MAX_DEPTH)
		fatalx("json writer: nested deeper than %d", JW_MAX_DEPTH);
	jw->jw_first[jw->jw_depth++] = JW_EMPTY | flags;
	buf_add_char(jw->jw_buf, c);
}

static void
jw_close(struct json_writer *jw, int flags, char c)
{
	if (jw->jw_depth == 0 || jw->jw_after_key ||
	    (jw->jw_first[jw->jw_depth - 1] & JW_OBJECT) != flags)
		fatalx("json writer: unbalanced '%c'", c);
	jw->jw_depth--;
	buf_add_char(jw->jw_buf, c);
}

void
jw_object_begin(struct json_writer *jw)
{
	jw_open(jw, JW_OBJECT, '{');
}

void
jw_object_end(struct json_writer *jw)
{
	jw_close(jw, JW_OBJECT, '}');
}

void
jw_array_begin(struct json_writer *jw)
{
	jw_open(jw, 0, '[');
}

void
jw_array_end(struct json_writer *jw)
{
	jw_close(jw, 0, ']');
}

void
jw_key(struct json_writer *jw, const char *key)
{
	int	*top;

	if (jw->jw_depth == 0 || jw->jw_after_key ||
	    !(jw->jw_first[jw->jw_depth - 1] & JW_OBJECT))
		fatalx("json writer: key \"%s\" outside an object", key);
	top = &jw->jw_first[jw->jw_depth - 1];
	if (!(*top & JW_EMPTY))
		buf_add_char(jw->jw_buf, ',');
	*top &= ~JW_EMPTY;

	buf_add_char(jw->jw_buf, '"');
	json_escape(jw->jw_buf, key, strlen(key));
	buf_add(jw->jw_buf, "\":", 2);
	jw->jw_after_key = 1;
}

void
jw_str(struct json_writer *jw, const char *s)
{
	if (s == NULL)
		jw_null(jw);
	else
		jw_strn(jw, s, strlen(s));
}

void
jw_strn(struct json_writer *jw, const char *s, size_t len)
{
	jw_value_prefix(jw);
	buf_add_char(jw->jw_buf, '"');
	json_escape(jw->jw_buf, s, len);
	buf_add_char(jw->jw_buf, '"');
}

void
jw_int(struct json_writer *jw, int64_t v)
{
	jw_value_prefix(jw);
	buf_printf(jw->jw_buf, "%" PRId64, v);
}

void
jw_uint(struct json_writer *jw, uint64_t v)
{
	jw_value_prefix(jw);
	buf_printf(jw->jw_buf, "%" PRIu64, v);
}

void
jw_bool(struct json_writer *jw, int v)
{
	jw_value_prefix(jw);
	buf_add_str(jw->jw_buf, v ? "true" : "false");
}

void
jw_null(struct json_writer *jw)
{
	jw_value_prefix(jw);
	buf_add_str(jw->jw_buf, "null");
}

void
jw_raw(struct json_writer *jw, const char *text, size_t len)
{
	jw_value_prefix(jw);
	buf_add(jw->jw_buf, text, len);
}

void
jw_kv_str(struct json_writer *jw, const char *key, const char *v)
{
	jw_key(jw, key);
	jw_str(jw, v);
}

void
jw_kv_int(struct json_writer *jw, const char *key, int64_t v)
{
	jw_key(jw, key);
	jw_int(jw, v);
}

void
jw_kv_bool(struct json_writer *jw, const char *key, int v)
{
	jw_key(jw, key);
	jw_bool(jw, v);
}

/*
 * Well-formed UTF-8 is copied as it is, so the output stays readable;
 * each ill-formed part becomes one \ufffd, so the output is always valid.
 */
void
json_escape(struct buf *b, const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n, bad;

	while (i < len) {
		if (p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' &&
		    p[i] != '\\') {
			/* Copy the plain run in one go. */
			for (n = i + 1; n < len && p[n] >= 0x20 &&
			    p[n] < 0x80 && p[n] != '"' && p[n] != '\\'; n++)
				;
			buf_add(b, p + i, n - i);
			i = n;
			continue;
		}

		switch (p[i]) {
		case '"':
			buf_add(b, "\\\"", 2);
			break;
		case '\\':
			buf_add(b, "\\\\", 2);
			break;
		case '\n':
			buf_add(b, "\\n", 2);
			break;
		case '\r':
			buf_add(b, "\\r", 2);
			break;
		case '\t':
			buf_add(b, "\\t", 2);
			break;
		case '\b':
			buf_add(b, "\\b", 2);
			break;
		case '\f':
			buf_add(b, "\\f", 2);
			break;
		default:
			if (p[i] < 0x20) {
				buf_printf(b, "\\u%04x", p[i]);
				break;
			}
			if ((n = json_utf8_len(p + i, len - i, &bad)) == 0) {
				buf_add(b, "\\ufffd", 6);
				i += bad;
			} else {
				buf_add(b, p + i, n);
				i += n;
			}
			continue;
		}
		i++;
	}
}
