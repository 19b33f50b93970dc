/*
 * Reading JSON with jsmn.  The text stays where it is; tokens index into
 * it.  Parsing is strict (JSMN_STRICT), the whole text must be one value,
 * and strings are unescaped on request, with \u escapes turned to UTF-8.
 */
#ifndef EPHEMERD_JSON_H
#define EPHEMERD_JSON_H

#include <stddef.h>
#include <stdint.h>

enum json_type {
	JSON_INVALID = 0,
	JSON_OBJECT,
	JSON_ARRAY,
	JSON_STRING,
	JSON_NUMBER,
	JSON_TRUE,
	JSON_FALSE,
	JSON_NULL
};

struct json_token;

struct json_doc {
	const char		*jd_text;
	size_t			 jd_len;
	struct json_token	*jd_toks;
	int			 jd_ntoks;
};

/* Token 0 is the root.  Returns 0, or -1 with *why set. */
int	 json_parse(struct json_doc *, const char *, size_t, const char **);
void	 json_free(struct json_doc *);

enum json_type json_type(const struct json_doc *, int);
/* Members of an object or elements of an array. */
int	 json_size(const struct json_doc *, int);
/* The token after tok and all it contains; for walking siblings. */
int	 json_skip(const struct json_doc *, int);
/* The value for key in an object, or -1. */
int	 json_object_get(const struct json_doc *, int, const char *);
/* Element i of an array, or -1. */
int	 json_array_get(const struct json_doc *, int, int);
/* Raw bytes of a token (strings without quotes, still escaped). */
const char *json_raw(const struct json_doc *, int, size_t *);
/* True if tok is a string whose unescaped value equals s. */
int	 json_streq(const struct json_doc *, int, const char *);
/* A new unescaped string, or NULL if tok is no (valid) string. */
char	*json_get_str(const struct json_doc *, int);
/* Integers and booleans; -1 if tok has another type or is out of range. */
int	 json_get_i64(const struct json_doc *, int, int64_t *);
int	 json_get_bool(const struct json_doc *, int, int *);

/* Shortcuts for a member of an object. */
char	*json_member_str(const struct json_doc *, int, const char *);
int	 json_member_i64(const struct json_doc *, int, const char *,
	    int64_t *);

/*
 * Length (1 to 4) of the well-formed UTF-8 sequence at s, or 0 if there is
 * none; then *bad, if not NULL, is how many bytes make the ill-formed part.
 */
size_t	 json_utf8_len(const void *, size_t, size_t *);

#endif
