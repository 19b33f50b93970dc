/*
 * Reading JSON.  jsmn builds the token tree, but even in strict mode it
 * accepts "[1 2]", {"a"}, 01, a second value after the first and more, so
 * a small scanner checks the exact grammar of RFC 8259 first.  The scanner
 * also counts the tokens jsmn will produce, so the token array is sized
 * once and jsmn never runs out of tokens.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "json.h"
#include "util.h"

/* Deeper documents are refused; GitHub and Docker answers nest < 10. */
#define JSON_MAX_DEPTH		512
#define JSON_MAX_TOKENS		1000000

struct json_token {
	enum json_type	 jt_type;
	int		 jt_start;	/* strings: after the quote */
	int		 jt_end;	/* strings: at the closing quote */
	int		 jt_size;	/* members, elements, 1 for a key */
};

struct json_scan {
	const unsigned char	*js_p;
	size_t			 js_len;
	size_t			 js_pos;
	long			 js_ntoks;
	int			 js_depth;
	const char		*js_why;
	char			 js_stack[JSON_MAX_DEPTH];	/* '{' or '[' */
};

static int	 json_scan_fail(struct json_scan *, const char *);
static void	 json_scan_ws(struct json_scan *);
static int	 json_scan_string(struct json_scan *);
static int	 json_scan_number(struct json_scan *);
static int	 json_scan_literal(struct json_scan *, const char *);
static int	 json_scan_key(struct json_scan *);
static int	 json_scan_open(struct json_scan *);
static int	 json_scan_next(struct json_scan *);
static int	 json_scan(struct json_scan *);
static int	 json_hex4(const unsigned char *, size_t, size_t, uint32_t *);
static int	 json_escape_decode(const unsigned char *, size_t, size_t *,
		    uint32_t *, const char **);
static size_t	 json_utf8_encode(uint32_t, char *);
static int	 json_tokenize(struct json_doc *, const struct json_scan *,
		    const char **);
static const struct json_token *json_tok(const struct json_doc *, int);

size_t
json_utf8_len(const void *v, size_t len, size_t *bad)
{
	const unsigned char	*p = v;
	unsigned char		 lo = 0x80, hi = 0xbf;
	size_t			 n, i;

	if (bad != NULL)
		*bad = 1;
	if (len == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;

	/* Continuation bytes, overlong leads and leads beyond U+10FFFF. */
	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	if (p[0] < 0xe0)
		n = 2;
	else if (p[0] < 0xf0) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;	/* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f;	/* beyond U+10FFFF */
	}

	/* The bad prefix is the lead and the continuations that fit. */
	if (len < 2 || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++) {
		if (i >= len || (p[i] & 0xc0) != 0x80) {
			if (bad != NULL)
				*bad = i;
			return 0;
		}
	}
	return n;
}

static int
json_scan_fail(struct json_scan *s, const char *why)
{
	if (s->js_why == NULL)
		s->js_why = why;
	return -1;
}

static void
json_scan_ws(struct json_scan *s)
{
	while (s->js_pos < s->js_len) {
		switch (s->js_p[s->js_pos]) {
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			s->js_pos++;
			break;
		default:
			return;
		}
	}
}

static int
json_hex4(const unsigned char *p, size_t len, size_t at, uint32_t *v)
{
	size_t	 i;
	int	 d;

	if (at > len || len - at < 4)
		return -1;
	*v = 0;
	for (i = at; i < at + 4; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			d = p[i] - 'a' + 10;
		else if (p[i] >= 'A' && p[i] <= 'F')
			d = p[i] - 'A' + 10;
		else
			return -1;
		*v = *v << 4 | (uint32_t)d;
	}
	return 0;
}

/*
 * Decodes the escape whose backslash is at p[*pos] into a code point and
 * moves *pos past it.  A \u escape of a high surrogate must be followed by
 * one of a low surrogate; the pair makes one code point.
 */
static int
json_escape_decode(const unsigned char *p, size_t len, size_t *pos,
    uint32_t *cp, const char **why)
{
	size_t		 i = *pos + 1;
	uint32_t	 low;

	if (i >= len) {
		*why = "unterminated string";
		return -1;
	}
	switch (p[i]) {
	case '"':
	case '\\':
	case '/':
		*cp = p[i];
		break;
	case 'b':
		*cp = '\b';
		break;
	case 'f':
		*cp = '\f';
		break;
	case 'n':
		*cp = '\n';
		break;
	case 'r':
		*cp = '\r';
		break;
	case 't':
		*cp = '\t';
		break;
	case 'u':
		if (json_hex4(p, len, i + 1, cp) == -1) {
			*why = "invalid \\u escape in a string";
			return -1;
		}
		i += 4;
		if (*cp >= 0xdc00 && *cp <= 0xdfff) {
			*why = "lone low surrogate in a string";
			return -1;
		}
		if (*cp >= 0xd800 && *cp <= 0xdbff) {
			if (i + 2 >= len || p[i + 1] != '\\' ||
			    p[i + 2] != 'u' ||
			    json_hex4(p, len, i + 3, &low) == -1 ||
			    low < 0xdc00 || low > 0xdfff) {
				*why = "lone high surrogate in a string";
				return -1;
			}
			*cp = 0x10000 + ((*cp - 0xd800) << 10) +
			    (low - 0xdc00);
			i += 6;
		}
		if (*cp == 0) {
			*why = "\\u0000 in a string";
			return -1;
		}
		break;
	default:
		*why = "invalid escape in a string";
		return -1;
	}

	*pos = i + 1;
	return 0;
}

static int
json_scan_string(struct json_scan *s)
{
	const unsigned char	*p = s->js_p;
	uint32_t		 cp;
	size_t			 n;

	s->js_pos++;
	for (;;) {
		if (s->js_pos >= s->js_len)
			return json_scan_fail(s, "unterminated string");
		if (p[s->js_pos] == '"')
			break;
		if (p[s->js_pos] < 0x20)
			return json_scan_fail(s,
			    "control character in a string");
		if (p[s->js_pos] == '\\') {
			if (json_escape_decode(p, s->js_len, &s->js_pos, &cp,
			    &s->js_why) == -1)
				return -1;
			continue;
		}
		n = json_utf8_len(p + s->js_pos, s->js_len - s->js_pos,
		    NULL);
		if (n == 0)
			return json_scan_fail(s, "invalid UTF-8 in a string");
		s->js_pos += n;
	}

	s->js_pos++;
	return 0;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
json_scan_number(struct json_scan *s)
{
	const unsigned char	*p = s->js_p;
	size_t			 i = s->js_pos, len = s->js_len;

#define JSON_DIGIT(k)	((k) < len && p[(k)] >= '0' && p[(k)] <= '9')
	if (i < len && p[i] == '-')
		i++;
	if (!JSON_DIGIT(i))
		return json_scan_fail(s, "invalid number");
	if (p[i++] != '0') {
		while (JSON_DIGIT(i))
			i++;
	}

	if (i < len && p[i] == '.') {
		if (!JSON_DIGIT(i + 1))
			return json_scan_fail(s, "invalid number");
		for (i++; JSON_DIGIT(i); i++)
			;
	}

	if (i < len && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < len && (p[i] == '+' || p[i] == '-'))
			i++;
		if (!JSON_DIGIT(i))
			return json_scan_fail(s, "invalid number");
		while (JSON_DIGIT(i))
			i++;
	}
#undef JSON_DIGIT

	s->js_pos = i;
	return 0;
}

static int
json_scan_literal(struct json_scan *s, const char *word)
{
	size_t	 n = strlen(word);

	if (s->js_len - s->js_pos < n ||
	    memcmp(s->js_p + s->js_pos, word, n) != 0)
		return json_scan_fail(s, "unexpected character");
	s->js_pos += n;
	return 0;
}

/* A member's key and its colon; the value follows. */
static int
json_scan_key(struct json_scan *s)
{
	json_scan_ws(s);
	if (s->js_pos >= s->js_len)
		return json_scan_fail(s, "unexpected end of text");
	if (s->js_p[s->js_pos] != '"')
		return json_scan_fail(s, "expected a string as object key");
	if (json_scan_string(s) == -1)
		return -1;
	s->js_ntoks++;

	json_scan_ws(s);
	if (s->js_pos >= s->js_len || s->js_p[s->js_pos] != ':')
		return json_scan_fail(s, "expected ':' after an object key");
	s->js_pos++;
	return 0;
}

/*
 * Scans the start of a value: a whole scalar, or the opening bracket of a
 * container.  Returns 1 if a value must follow (a non-empty container was
 * opened), 0 if the value is complete, or -1.
 */
static int
json_scan_open(struct json_scan *s)
{
	unsigned char	 c;

	json_scan_ws(s);
	if (s->js_pos >= s->js_len)
		return json_scan_fail(s, "unexpected end of text");
	s->js_ntoks++;
	c = s->js_p[s->js_pos];
	switch (c) {
	case '"':
		return json_scan_string(s);
	case 't':
		return json_scan_literal(s, "true");
	case 'f':
		return json_scan_literal(s, "false");
	case 'n':
		return json_scan_literal(s, "null");
	case '{':
	case '[':
		break;
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return json_scan_number(s);
		return json_scan_fail(s, "unexpected character");
	}

	if (s->js_depth == JSON_MAX_DEPTH)
		return json_scan_fail(s, "nested too deeply");
	s->js_stack[s->js_depth++] = (char)c;
	s->js_pos++;

	json_scan_ws(s);
	if (s->js_pos < s->js_len &&
	    s->js_p[s->js_pos] == (c == '{' ? '}' : ']')) {
		s->js_pos++;
		s->js_depth--;
		return 0;
	}
	if (c == '{' && json_scan_key(s) == -1)
		return -1;
	return 1;
}

/*
 * After a value inside a container: a comma and the next member, or the
 * closing bracket.  Returns 1 if a value must follow, 0 if the container
 * was closed, or -1.
 */
static int
json_scan_next(struct json_scan *s)
{
	char	 top = s->js_stack[s->js_depth - 1];
	char	 c;

	json_scan_ws(s);
	if (s->js_pos >= s->js_len)
		return json_scan_fail(s, "unexpected end of text");
	c = (char)s->js_p[s->js_pos++];
	if (c == ',') {
		if (top == '{' && json_scan_key(s) == -1)
			return -1;
		return 1;
	}
	if ((c == '}' && top == '{') || (c == ']' && top == '[')) {
		s->js_depth--;
		return 0;
	}
	return json_scan_fail(s, top == '{' ? "expected ',' or '}'" :
	    "expected ',' or ']'");
}

static int
json_scan(struct json_scan *s)
{
	int	 want_value = 1;

	for (;;) {
		if (want_value)
			want_value = json_scan_open(s);
		else if (s->js_depth > 0)
			want_value = json_scan_next(s);
		else
			break;
		if (want_value == -1)
			return -1;
		if (s->js_ntoks > JSON_MAX_TOKENS)
			return json_scan_fail(s, "too many values");
	}

	json_scan_ws(s);
	if (s->js_pos != s->js_len)
		return json_scan_fail(s, "unexpected text after the value");
	return 0;
}

/* Runs jsmn over text the scanner found valid, and types its tokens. */
static int
json_tokenize(struct json_doc *doc, const struct json_scan *s,
    const char **why)
{
	jsmn_parser	 parser;
	jsmntok_t	*jt;
	int		 i, n;
	char		 c;

	jt = xreallocarray(NULL, s->js_ntoks, sizeof(*jt));
	jsmn_init(&parser);
	n = jsmn_parse(&parser, doc->jd_text, doc->jd_len, jt,
	    (unsigned int)s->js_ntoks);
	if (n != s->js_ntoks) {
		free(jt);
		*why = "internal error: jsmn disagrees with the scanner";
		return -1;
	}

	doc->jd_toks = xreallocarray(NULL, n, sizeof(*doc->jd_toks));
	for (i = 0; i < n; i++) {
		doc->jd_toks[i].jt_start = jt[i].start;
		doc->jd_toks[i].jt_end = jt[i].end;
		doc->jd_toks[i].jt_size = jt[i].size;
		c = doc->jd_text[jt[i].start];
		if (jt[i].type == JSMN_OBJECT)
			doc->jd_toks[i].jt_type = JSON_OBJECT;
		else if (jt[i].type == JSMN_ARRAY)
			doc->jd_toks[i].jt_type = JSON_ARRAY;
		else if (jt[i].type == JSMN_STRING)
			doc->jd_toks[i].jt_type = JSON_STRING;
		else if (c == 't')
			doc->jd_toks[i].jt_type = JSON_TRUE;
		else if (c == 'f')
			doc->jd_toks[i].jt_type = JSON_FALSE;
		else if (c == 'n')
			doc->jd_toks[i].jt_type = JSON_NULL;
		else
			doc->jd_toks[i].jt_type = JSON_NUMBER;
	}
	doc->jd_ntoks = n;

	free(jt);
	return 0;
}

int
json_parse(struct json_doc *doc, const char *text, size_t len,
    const char **why)
{
	struct json_scan	*s;
	size_t			 start;
	char			 c;

	memset(doc, 0, sizeof(*doc));
	if (len >= INT_MAX) {
		*why = "text too large";
		return -1;
	}
	s = xcalloc(1, sizeof(*s));
	s->js_p = (const unsigned char *)text;
	s->js_len = len;
	json_scan_ws(s);
	start = s->js_pos;
	if (json_scan(s) == -1) {
		*why = s->js_why;
		goto fail;
	}
	doc->jd_text = text;
	doc->jd_len = len;

	/*
	 * jsmn's strict mode wants a delimiter after a primitive, which a
	 * lone top-level number or literal lacks: make its token here.
	 */
	c = text[start];
	if (c != '{' && c != '[' && c != '"') {
		doc->jd_toks = xcalloc(1, sizeof(*doc->jd_toks));
		doc->jd_toks[0].jt_type = c == 't' ? JSON_TRUE :
		    c == 'f' ? JSON_FALSE : c == 'n' ? JSON_NULL : JSON_NUMBER;
		doc->jd_toks[0].jt_start = (int)start;
		doc->jd_toks[0].jt_end = (int)start;
		while (doc->jd_toks[0].jt_end < (int)len &&
		    strchr(" \t\r\n", text[doc->jd_toks[0].jt_end]) == NULL)
			doc->jd_toks[0].jt_end++;
		doc->jd_ntoks = 1;
	} else if (json_tokenize(doc, s, why) == -1)
		goto fail;

	free(s);
	return 0;

fail:
	free(s);
	json_free(doc);
	return -1;
}

void
json_free(struct json_doc *doc)
{
	free(doc->jd_toks);
	memset(doc, 0, sizeof(*doc));
}

static const struct json_token *
json_tok(const struct json_doc *doc, int tok)
{
	if (doc == NULL || tok < 0 || tok >= doc->jd_ntoks)
		return NULL;
	return &doc->jd_toks[tok];
}

enum json_type
json_type(const struct json_doc *doc, int tok)
{
	const struct json_token	*t;

	if ((t = json_tok(doc, tok)) == NULL)
		return JSON_INVALID;
	return t->jt_type;
}

int
json_size(const struct json_doc *doc, int tok)
{
	const struct json_token	*t;

	if ((t = json_tok(doc, tok)) == NULL ||
	    (t->jt_type != JSON_OBJECT && t->jt_type != JSON_ARRAY))
		return 0;
	return t->jt_size;
}

int
json_skip(const struct json_doc *doc, int tok)
{
	int	 left = 1;

	if (json_tok(doc, tok) == NULL)
		return -1;
	while (left > 0 && tok < doc->jd_ntoks) {
		left += doc->jd_toks[tok].jt_size - 1;
		tok++;
	}
	return tok;
}

int
json_object_get(const struct json_doc *doc, int obj, const char *key)
{
	int	 i, n, k;

	if (json_type(doc, obj) != JSON_OBJECT)
		return -1;
	n = doc->jd_toks[obj].jt_size;
	for (i = 0, k = obj + 1; i < n; i++, k = json_skip(doc, k)) {
		if (json_streq(doc, k, key))
			return k + 1;
	}
	return -1;
}

int
json_array_get(const struct json_doc *doc, int arr, int idx)
{
	int	 i, k;

	if (json_type(doc, arr) != JSON_ARRAY || idx < 0 ||
	    idx >= doc->jd_toks[arr].jt_size)
		return -1;
	for (i = 0, k = arr + 1; i < idx; i++)
		k = json_skip(doc, k);
	return k;
}

const char *
json_raw(const struct json_doc *doc, int tok, size_t *len)
{
	const struct json_token	*t;

	if ((t = json_tok(doc, tok)) == NULL) {
		*len = 0;
		return NULL;
	}
	*len = (size_t)(t->jt_end - t->jt_start);
	return doc->jd_text + t->jt_start;
}

static size_t
json_utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

int
json_streq(const struct json_doc *doc, int tok, const char *s)
{
	const unsigned char	*p;
	const char		*why;
	char			 u[4];
	size_t			 i, end, k = 0, n;
	uint32_t		 cp;

	if (json_type(doc, tok) != JSON_STRING || s == NULL)
		return 0;
	p = (const unsigned char *)doc->jd_text;
	i = (size_t)doc->jd_toks[tok].jt_start;
	end = (size_t)doc->jd_toks[tok].jt_end;

	while (i < end) {
		if (p[i] != '\\') {
			if ((unsigned char)s[k] != p[i])
				return 0;
			i++;
			k++;
			continue;
		}
		if (json_escape_decode(p, end, &i, &cp, &why) == -1)
			return 0;
		n = json_utf8_encode(cp, u);
		if (strncmp(s + k, u, n) != 0)
			return 0;
		k += n;
	}
	return s[k] == '\0';
}

char *
json_get_str(const struct json_doc *doc, int tok)
{
	const unsigned char	*p;
	const char		*why;
	char			*out;
	size_t			 i, end, k = 0;
	uint32_t		 cp;

	if (json_type(doc, tok) != JSON_STRING)
		return NULL;
	p = (const unsigned char *)doc->jd_text;
	i = (size_t)doc->jd_toks[tok].jt_start;
	end = (size_t)doc->jd_toks[tok].jt_end;

	/* Unescaping never makes a string longer. */
	out = xmalloc(end - i + 1);
	while (i < end) {
		if (p[i] != '\\') {
			out[k++] = (char)p[i++];
			continue;
		}
		if (json_escape_decode(p, end, &i, &cp, &why) == -1) {
			free(out);
			return NULL;
		}
		k += json_utf8_encode(cp, out + k);
	}
	out[k] = '\0';
	return out;
}

int
json_get_i64(const struct json_doc *doc, int tok, int64_t *v)
{
	const char	*p;
	size_t		 len, i = 0;
	uint64_t	 mag = 0, limit = INT64_MAX;
	int		 neg = 0;

	if (json_type(doc, tok) != JSON_NUMBER)
		return -1;
	p = json_raw(doc, tok, &len);
	if (len > 0 && p[0] == '-') {
		neg = 1;
		limit = (uint64_t)INT64_MAX + 1;
		i++;
	}

	/* The scanner checked the grammar: only digits can remain. */
	for (; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		if (mag > (limit - (uint64_t)(p[i] - '0')) / 10)
			return -1;
		mag = mag * 10 + (uint64_t)(p[i] - '0');
	}

	if (neg)
		*v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN :
		    -(int64_t)mag;
	else
		*v = (int64_t)mag;
	return 0;
}

int
json_get_bool(const struct json_doc *doc, int tok, int *v)
{
	switch (json_type(doc, tok)) {
	case JSON_TRUE:
		*v = 1;
		return 0;
	case JSON_FALSE:
		*v = 0;
		return 0;
	default:
		return -1;
	}
}

char *
json_member_str(const struct json_doc *doc, int obj, const char *key)
{
	return json_get_str(doc, json_object_get(doc, obj, key));
}

int
json_member_i64(const struct json_doc *doc, int obj, const char *key,
    int64_t *v)
{
	return json_get_i64(doc, json_object_get(doc, obj, key), v);
}
