/*
 * Unit tests for the JSON reader and writer and the HTTP client.  The HTTP
 * tests run a small evhttp server in the same event base as the client.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "buf.h"
#include "http_client.h"
#include "json.h"
#include "json_write.h"
#include "util.h"

/* The fuzzing seeds are real GitHub answers; they double as test data. */
#define CORPUS_DIR	TEST_DATA_DIR "/../../fuzz/corpus/json"

/* Reads a file into a buffer of exactly its size, with no NUL after it. */
static char *
read_file(const char *path, size_t *len)
{
	char	*p;
	FILE	*f;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	p = xmalloc((size_t)n);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

/* Parses a file of the corpus; the caller frees *text and the doc. */
static void
parse_corpus_file(const char *name, struct json_doc *doc, char **text)
{
	char		 path[1024];
	const char	*why = NULL;
	size_t		 len;

	snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, name);
	*text = read_file(path, &len);
	if (json_parse(doc, *text, len, &why) == -1)
		fail_msg("%s: %s", name, why);
}

/* Follows a path like "runners", 0, "labels", 1, "name" from the root. */
static int
dig(const struct json_doc *doc, const char *first, ...)
{
	va_list		 ap;
	const char	*key;
	int		 tok = 0;

	va_start(ap, first);
	for (key = first; key != NULL && tok != -1;
	    key = va_arg(ap, const char *)) {
		if (key[0] == '#')
			tok = json_array_get(doc, tok, atoi(key + 1));
		else
			tok = json_object_get(doc, tok, key);
	}
	va_end(ap);
	return tok;
}

static void
assert_str_tok(const struct json_doc *doc, int tok, const char *want)
{
	char	*s;

	assert_int_not_equal(tok, -1);
	assert_int_equal(json_type(doc, tok), JSON_STRING);
	assert_true(json_streq(doc, tok, want));
	s = json_get_str(doc, tok);
	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static void
test_fixture_runners(void **state)
{
	struct json_doc	 doc;
	char		*text;
	int64_t		 v;
	int		 b, runners;

	(void)state;
	parse_corpus_file("actions-runners-list.openapi-example.json", &doc,
	    &text);
	assert_int_equal(json_type(&doc, 0), JSON_OBJECT);
	assert_int_equal(json_member_i64(&doc, 0, "total_count", &v), 0);
	assert_int_equal(v, 2);

	runners = json_object_get(&doc, 0, "runners");
	assert_int_equal(json_type(&doc, runners), JSON_ARRAY);
	assert_int_equal(json_size(&doc, runners), 2);
	assert_str_tok(&doc, dig(&doc, "runners", "#0", "labels", "#1", "name",
	    NULL), "X64");
	assert_str_tok(&doc, dig(&doc, "runners", "#1", "labels", "#3", "name",
	    NULL), "no-gpu");
	assert_str_tok(&doc, dig(&doc, "runners", "#1", "status", NULL),
	    "offline");
	assert_int_equal(json_get_bool(&doc, dig(&doc, "runners", "#0", "busy",
	    NULL), &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(json_get_i64(&doc, dig(&doc, "runners", "#1", "id",
	    NULL), &v), 0);
	assert_int_equal(v, 24);

	/* Absent paths and wrong types fail cleanly. */
	assert_int_equal(dig(&doc, "runners", "#2", NULL), -1);
	assert_int_equal(dig(&doc, "runners", "#0", "nope", NULL), -1);
	assert_int_equal(json_object_get(&doc, runners, "id"), -1);
	assert_null(json_member_str(&doc, 0, "total_count"));
	assert_int_equal(json_get_bool(&doc, dig(&doc, "total_count", NULL),
	    &b), -1);
	json_free(&doc);
	free(text);
}

static void
test_fixture_other(void **state)
{
	struct json_doc	 doc;
	char		*text;
	int64_t		 v;

	(void)state;
	parse_corpus_file("rate-limit.openapi-example.json", &doc, &text);
	assert_int_equal(json_get_i64(&doc, dig(&doc, "resources", "core",
	    "remaining", NULL), &v), 0);
	assert_int_equal(v, 4999);
	assert_int_equal(json_get_i64(&doc, dig(&doc, "rate", "reset",
	    NULL), &v), 0);
	assert_int_equal(v, 1372700873);
	json_free(&doc);
	free(text);

	parse_corpus_file("webhook-workflow_job.queued.payload.json", &doc,
	    &text);
	assert_str_tok(&doc, dig(&doc, "action", NULL), "queued");
	assert_str_tok(&doc, dig(&doc, "workflow_job", "labels", "#0", NULL),
	    "ubuntu-latest");
	assert_int_equal(json_get_i64(&doc, dig(&doc, "workflow_job", "id",
	    NULL), &v), 0);
	assert_int_equal(v, 289782451);
	json_free(&doc);
	free(text);
}

/* Writes the value at tok again through the writer. */
static void
rewrite(const struct json_doc *doc, int tok, struct json_writer *jw)
{
	const char	*raw;
	char		*s;
	size_t		 len;
	int		 i, n, k;

	switch (json_type(doc, tok)) {
	case JSON_OBJECT:
		jw_object_begin(jw);
		n = json_size(doc, tok);
		for (i = 0, k = tok + 1; i < n; i++, k = json_skip(doc, k)) {
			s = json_get_str(doc, k);
			jw_key(jw, s);
			free(s);
			rewrite(doc, k + 1, jw);
		}
		jw_object_end(jw);
		break;
	case JSON_ARRAY:
		jw_array_begin(jw);
		n = json_size(doc, tok);
		for (i = 0, k = tok + 1; i < n; i++, k = json_skip(doc, k))
			rewrite(doc, k, jw);
		jw_array_end(jw);
		break;
	case JSON_STRING:
		s = json_get_str(doc, tok);
		jw_str(jw, s);
		free(s);
		break;
	default:
		raw = json_raw(doc, tok, &len);
		jw_raw(jw, raw, len);
		break;
	}
}

/* Deep comparison; object members may come in any order. */
static int
same_value(const struct json_doc *a, int ta, const struct json_doc *b,
    int tb)
{
	const char	*ra, *rb;
	char		*sa, *sb, *key;
	size_t		 la, lb;
	int		 i, n, k, ok = 1;

	if (json_type(a, ta) != json_type(b, tb) ||
	    json_size(a, ta) != json_size(b, tb))
		return 0;
	n = json_size(a, ta);
	switch (json_type(a, ta)) {
	case JSON_OBJECT:
		for (i = 0, k = ta + 1; i < n && ok; i++, k = json_skip(a, k)) {
			key = json_get_str(a, k);
			ok = same_value(a, k + 1, b,
			    json_object_get(b, tb, key));
			free(key);
		}
		return ok;
	case JSON_ARRAY:
		for (i = 0; i < n && ok; i++)
			ok = same_value(a, json_array_get(a, ta, i), b,
			    json_array_get(b, tb, i));
		return ok;
	case JSON_STRING:
		sa = json_get_str(a, ta);
		sb = json_get_str(b, tb);
		ok = sa != NULL && sb != NULL && strcmp(sa, sb) == 0;
		free(sa);
		free(sb);
		return ok;
	default:
		ra = json_raw(a, ta, &la);
		rb = json_raw(b, tb, &lb);
		return la == lb && memcmp(ra, rb, la) == 0;
	}
}

/* Every corpus file survives parse, write, parse unchanged. */
static void
test_fixtures_roundtrip(void **state)
{
	struct json_doc		 a, b;
	struct json_writer	 jw;
	struct buf		 out;
	struct dirent		*de;
	DIR			*d;
	const char		*why;
	char			*text;
	int			 files = 0;

	(void)state;
	assert_non_null(d = opendir(CORPUS_DIR));
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".json") == NULL)
			continue;
		parse_corpus_file(de->d_name, &a, &text);
		buf_init(&out);
		jw_init(&jw, &out);
		rewrite(&a, 0, &jw);
		assert_int_equal(jw.jw_depth, 0);
		if (json_parse(&b, (const char *)out.b_data, out.b_len,
		    &why) == -1)
			fail_msg("%s rewritten: %s", de->d_name, why);
		if (!same_value(&a, 0, &b, 0))
			fail_msg("%s changed in the round trip", de->d_name);
		assert_true(b.jd_ntoks == a.jd_ntoks);
		json_free(&a);
		json_free(&b);
		buf_free(&out);
		free(text);
		files++;
	}
	closedir(d);
	assert_true(files >= 5);
}

/* Parses s from a buffer of exactly its length, so overreads are seen. */
static int
parse_exact(struct json_doc *doc, const char *s, size_t len,
    const char **why)
{
	char	*copy;
	int	 rc;

	copy = xmalloc(len);
	memcpy(copy, s, len);
	*why = NULL;
	if ((rc = json_parse(doc, copy, len, why)) == -1)
		free(copy);
	return rc;
}

static void
free_exact(struct json_doc *doc)
{
	free((char *)doc->jd_text);
	json_free(doc);
}

static void
test_valid_documents(void **state)
{
	static const struct {
		const char	*text;
		enum json_type	 type;
		int		 ntoks;
	} cases[] = {
		{ "0", JSON_NUMBER, 1 },
		{ "-0.5e+3", JSON_NUMBER, 1 },
		{ " 12E-2 ", JSON_NUMBER, 1 },
		{ "true", JSON_TRUE, 1 },
		{ "false", JSON_FALSE, 1 },
		{ "\n\tnull\r\n", JSON_NULL, 1 },
		{ "\"\"", JSON_STRING, 1 },
		{ "\"a\\/b\"", JSON_STRING, 1 },
		{ "[]", JSON_ARRAY, 1 },
		{ "{}", JSON_OBJECT, 1 },
		{ "[[],{},[[1]]]", JSON_ARRAY, 6 },
		{ "{\"a\":{\"b\":[1,2,{\"c\":null}]},\"d\":\"\"}",
		    JSON_OBJECT, 12 },
		{ " [ 1 , -2 , 3.25 , true , false , null , \"x\" ] ",
		    JSON_ARRAY, 8 },
	};
	struct json_doc	 doc;
	const char	*why;
	size_t		 i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		if (parse_exact(&doc, cases[i].text, strlen(cases[i].text),
		    &why) == -1)
			fail_msg("\"%s\" refused: %s", cases[i].text, why);
		assert_int_equal(json_type(&doc, 0), cases[i].type);
		assert_int_equal(doc.jd_ntoks, cases[i].ntoks);
		assert_int_equal(json_skip(&doc, 0), cases[i].ntoks);
		free_exact(&doc);
	}
}

static void
test_invalid_documents(void **state)
{
	static const char *cases[] = {
		"", " ", "[1,2] x", "1 2", "{} {}", "[] []", "\"a\" \"b\"",
		"[1 2]", "[1,]", "[,1]", "[,]", "{,}", "{\"a\"}", "{\"a\":}",
		"{\"a\" 1}", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "{1:2}",
		"{true:1}", "[\"a\":1]", "{\"a\"::1}", "01", "-01", "-", "1.",
		".5", "1e", "1e+", "+1", "--1", "0x10", "1.5.2", "NaN",
		"Infinity", "tru", "truex", "nul", "True", "[1]]", "]", "}",
		"{]", "[}", "[1,2", "{\"a\":[1,{", "\"abc", "'a'",
		"\"\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\\"",
		"\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
		"\"\\ud800\\ud800\"", "\"\\ud800x\"", "\"a\tb\"", "\"\x01\"",
		"\"\x1f\"", "\"\\u0000\"", "\xff", "\"\xff\"", "\"\xc0\xaf\"",
		"\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
		"\"\xe2\x82\"", "\"\x80\"", "[1,\"\xe2\"]", "\xef\xbb\xbf{}",
	};
	static const char nul_inside[] = "[1,\0 2]";
	static const char nul_string[] = "\"a\0b\"";
	struct json_doc	 doc;
	const char	*why;
	size_t		 i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		if (parse_exact(&doc, cases[i], strlen(cases[i]), &why) == 0)
			fail_msg("case %zu \"%s\" accepted", i, cases[i]);
		assert_non_null(why);
		assert_null(doc.jd_toks);
		assert_int_equal(doc.jd_ntoks, 0);
	}
	assert_int_equal(parse_exact(&doc, nul_inside,
	    sizeof(nul_inside) - 1, &why), -1);
	assert_int_equal(parse_exact(&doc, nul_string,
	    sizeof(nul_string) - 1, &why), -1);
	assert_string_equal(why, "control character in a string");
}

static void
test_nesting_limit(void **state)
{
	struct json_doc	 doc;
	const char	*why;
	char		*s;
	int		 depth;

	(void)state;
	s = xmalloc(2 * 600);
	for (depth = 511; depth <= 513; depth++) {
		memset(s, '[', depth);
		memset(s + depth, ']', depth);
		if (depth <= 512) {
			assert_int_equal(parse_exact(&doc, s, 2 * depth, &why),
			    0);
			assert_int_equal(doc.jd_ntoks, depth);
			assert_int_equal(json_size(&doc, depth - 1), 0);
			free_exact(&doc);
		} else {
			assert_int_equal(parse_exact(&doc, s, 2 * depth, &why),
			    -1);
			assert_string_equal(why, "nested too deeply");
		}
	}
	free(s);
}

static void
test_unescape(void **state)
{
	static const char text[] = "{\"caf\\u00e9\":\"\\u00e9t\\u00C9\","
	    "\"smile\":\"\\ud83d\\ude00!\","
	    "\"esc\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\","
	    "\"raw\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\",\"k\\u0065y\":1}";
	struct json_doc	 doc;
	const char	*why, *raw;
	char		*s;
	size_t		 len;

	(void)state;
	assert_int_equal(parse_exact(&doc, text, sizeof(text) - 1, &why), 0);
	assert_str_tok(&doc, json_object_get(&doc, 0, "caf\xc3\xa9"),
	    "\xc3\xa9t\xc3\x89");
	assert_str_tok(&doc, json_object_get(&doc, 0, "smile"),
	    "\xf0\x9f\x98\x80!");
	assert_str_tok(&doc, json_object_get(&doc, 0, "esc"),
	    "\"\\/\b\f\n\r\t");
	assert_str_tok(&doc, json_object_get(&doc, 0, "raw"),
	    "caf\xc3\xa9 \xf0\x9f\x98\x80");
	assert_int_not_equal(json_object_get(&doc, 0, "key"), -1);

	/* Prefixes and extensions of a value are not equal to it. */
	assert_int_equal(json_object_get(&doc, 0, "caf"), -1);
	assert_int_equal(json_object_get(&doc, 0, "keys"), -1);
	assert_false(json_streq(&doc, json_object_get(&doc, 0, "smile"),
	    "\xf0\x9f\x98\x80"));

	/* json_raw leaves a string as it was written. */
	raw = json_raw(&doc, json_object_get(&doc, 0, "smile"), &len);
	assert_int_equal(len, 13);
	assert_memory_equal(raw, "\\ud83d\\ude00!", 13);
	s = json_get_str(&doc, 0);
	assert_null(s);
	free_exact(&doc);
}

static void
test_integers(void **state)
{
	static const struct {
		const char	*text;
		int		 ok;
		int64_t		 v;
	} cases[] = {
		{ "0", 1, 0 },
		{ "-0", 1, 0 },
		{ "42", 1, 42 },
		{ "9223372036854775807", 1, INT64_MAX },
		{ "-9223372036854775808", 1, INT64_MIN },
		{ "9223372036854775808", 0, 0 },
		{ "-9223372036854775809", 0, 0 },
		{ "99999999999999999999", 0, 0 },
		{ "1.0", 0, 0 },
		{ "1e3", 0, 0 },
		{ "\"5\"", 0, 0 },
		{ "true", 0, 0 },
		{ "null", 0, 0 },
		{ "[1]", 0, 0 },
	};
	struct json_doc	 doc;
	const char	*why;
	int64_t		 v;
	size_t		 i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		assert_int_equal(parse_exact(&doc, cases[i].text,
		    strlen(cases[i].text), &why), 0);
		v = -12345;
		if (cases[i].ok) {
			assert_int_equal(json_get_i64(&doc, 0, &v), 0);
			assert_true(v == cases[i].v);
		} else {
			assert_int_equal(json_get_i64(&doc, 0, &v), -1);
			assert_true(v == -12345);
		}
		free_exact(&doc);
	}
}

static void
test_bad_tokens(void **state)
{
	struct json_doc	 doc;
	const char	*why;
	size_t		 len;
	int		 b;

	(void)state;
	assert_int_equal(parse_exact(&doc, "[1,\"a\"]", 7, &why), 0);
	assert_int_equal(json_type(&doc, -1), JSON_INVALID);
	assert_int_equal(json_type(&doc, 3), JSON_INVALID);
	assert_int_equal(json_size(&doc, 1), 0);
	assert_int_equal(json_skip(&doc, 3), -1);
	assert_int_equal(json_array_get(&doc, 0, 2), -1);
	assert_int_equal(json_array_get(&doc, 0, -1), -1);
	assert_int_equal(json_array_get(&doc, 1, 0), -1);
	assert_int_equal(json_object_get(&doc, 0, "a"), -1);
	assert_null(json_get_str(&doc, 1));
	assert_null(json_get_str(&doc, 7));
	assert_null(json_raw(&doc, 9, &len));
	assert_int_equal(json_get_bool(&doc, 2, &b), -1);
	assert_false(json_streq(&doc, 1, "1"));
	free_exact(&doc);
}

static void
test_writer_shape(void **state)
{
	struct json_writer	 jw;
	struct buf		 b;

	(void)state;
	buf_init(&b);
	jw_init(&jw, &b);
	jw_object_begin(&jw);
	jw_kv_int(&jw, "a", -1);
	jw_key(&jw, "b");
	jw_array_begin(&jw);
	jw_bool(&jw, 1);
	jw_bool(&jw, 0);
	jw_null(&jw);
	jw_str(&jw, NULL);
	jw_array_begin(&jw);
	jw_array_end(&jw);
	jw_object_begin(&jw);
	jw_object_end(&jw);
	jw_array_end(&jw);
	jw_kv_str(&jw, "c\"", "d\n");
	jw_kv_bool(&jw, "e", 1);
	jw_key(&jw, "f");
	jw_uint(&jw, UINT64_MAX);
	jw_key(&jw, "g");
	jw_raw(&jw, "{\"h\":[]}", 8);
	jw_key(&jw, "i");
	jw_strn(&jw, "ab\0c", 4);
	jw_object_end(&jw);
	assert_string_equal(buf_cstr(&b), "{\"a\":-1,\"b\":[true,false,null,"
	    "null,[],{}],\"c\\\"\":\"d\\n\",\"e\":true,"
	    "\"f\":18446744073709551615,\"g\":{\"h\":[]},"
	    "\"i\":\"ab\\u0000c\"}");
	assert_int_equal(jw.jw_depth, 0);
	buf_free(&b);
}

/* Escapes s, parses it back as a JSON string and checks it reads want. */
static void
check_escape(const char *s, size_t len, const char *want)
{
	struct json_doc	 doc;
	struct buf	 b;
	const char	*why;
	char		*got;
	size_t		 i, n;

	buf_init(&b);
	buf_add_char(&b, '"');
	json_escape(&b, s, len);
	buf_add_char(&b, '"');

	/* The output is plain valid UTF-8 with no control characters. */
	for (i = 0; i < b.b_len; i += n) {
		n = json_utf8_len(b.b_data + i, b.b_len - i, NULL);
		assert_int_not_equal(n, 0);
		assert_true(b.b_data[i] >= 0x20);
	}

	if (json_parse(&doc, (const char *)b.b_data, b.b_len, &why) == -1)
		fail_msg("escaped text refused: %s", why);
	got = json_get_str(&doc, 0);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	json_free(&doc);
	buf_free(&b);
}

static void
test_escape_roundtrip(void **state)
{
	static const char nasty[] = "\"quoted\" \\back\\slash\\\" \b\f\n\r\t"
	    "\x01\x1f\x7f /caf\xc3\xa9 \xf0\x9f\x98\x80 \xef\xbf\xbd";
	char	 all[256], want[128 + 128 * 3 + 1];
	size_t	 i, k = 0;

	(void)state;
	check_escape(nasty, sizeof(nasty) - 1, nasty);
	check_escape("", 0, "");

	/* Each ill-formed part becomes one U+FFFD. */
	check_escape("\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd");
	check_escape("a\xe2\x82" "b", 4, "a\xef\xbf\xbd" "b");
	check_escape("\xf0\x9f\x98", 3, "\xef\xbf\xbd");
	check_escape("\xed\xa0\x80", 3,
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	check_escape("\xf4\x90\x80\x80", 4,
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	check_escape("\xf8\x88\x80\x80\x80", 5, "\xef\xbf\xbd\xef\xbf\xbd"
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	check_escape("x\xf4\x8f\xbf\xbfy", 6, "x\xf4\x8f\xbf\xbfy");

	/*
	 * Bytes 1 to 255 in order: the ASCII ones come back as they were;
	 * no byte from 0x80 on starts a sequence that the next byte
	 * completes, so each of those becomes one U+FFFD.
	 */
	for (i = 1; i < 256; i++) {
		all[i - 1] = (char)i;
		if (i < 0x80)
			want[k++] = (char)i;
		else {
			memcpy(want + k, "\xef\xbf\xbd", 3);
			k += 3;
		}
	}
	want[k] = '\0';
	check_escape(all, 255, want);
}

/* U+0000 is written as \u0000, which our reader refuses by design. */
static void
test_escape_nul(void **state)
{
	struct json_doc	 doc;
	struct buf	 b;
	const char	*why;

	(void)state;
	buf_init(&b);
	buf_add_char(&b, '"');
	json_escape(&b, "a\0b", 3);
	buf_add_char(&b, '"');
	assert_string_equal(buf_cstr(&b), "\"a\\u0000b\"");
	assert_int_equal(json_parse(&doc, (const char *)b.b_data, b.b_len,
	    &why), -1);
	assert_string_equal(why, "\\u0000 in a string");
	buf_free(&b);
}

static void
writer_misuse(int which)
{
	struct json_writer	 jw;
	struct buf		 b;
	int			 i;

	buf_init(&b);
	jw_init(&jw, &b);
	switch (which) {
	case 0:
		for (i = 0; i <= JW_MAX_DEPTH; i++)
			jw_array_begin(&jw);
		break;
	case 1:
		jw_array_begin(&jw);
		jw_key(&jw, "k");
		break;
	case 2:
		jw_object_begin(&jw);
		jw_int(&jw, 1);
		break;
	case 3:
		jw_object_begin(&jw);
		jw_array_end(&jw);
		break;
	case 4:
		jw_array_end(&jw);
		break;
	default:
		/* The control case: correct use at the deepest level. */
		for (i = 0; i < JW_MAX_DEPTH; i++)
			jw_array_begin(&jw);
		for (i = 0; i < JW_MAX_DEPTH; i++)
			jw_array_end(&jw);
		break;
	}
	_exit(0);
}

/* Misuse of the writer is fatal; correct use at the limit is not. */
static void
test_writer_misuse(void **state)
{
	pid_t	 pid;
	int	 which, status, devnull;

	(void)state;
	for (which = 0; which <= 5; which++) {
		if ((pid = fork()) == 0) {
			devnull = open("/dev/null", O_WRONLY);
			dup2(devnull, STDERR_FILENO);
			writer_misuse(which);
		}
		assert_true(pid > 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		if (which == 5)
			assert_int_equal(WEXITSTATUS(status), 0);
		else
			assert_int_not_equal(WEXITSTATUS(status), 0);
	}
}

/*
 * The HTTP client against an evhttp server in the same event base.
 */

struct server {
	struct event_base	*sv_base;
	struct evhttp		*sv_http;
	int			 sv_port;
	char			 sv_unix_path[108];
	int			 sv_stream_ended;
	struct event		*sv_stream_ev;
	struct evhttp_request	*sv_stream_req;
	int			 sv_stream_step;
};

struct result {
	int		 rs_done;
	long		 rs_status;
	int		 rs_code;
	char		*rs_error;
	char		*rs_body;
	size_t		 rs_body_len;
	char		*rs_reply_hdr;
	char		*rs_dup_hdr;
	char		*rs_missing_hdr;
	struct buf	 rs_stream;
	int		 rs_stream_calls;
	int		 rs_stream_early;
	int		 rs_stream_abort;
	long		 rs_cancel_id;
	struct http_client *rs_client;
};

struct ctx {
	struct event_base	*cx_base;
	struct server		 cx_srv;
	struct http_client	*cx_client;
	int			 cx_pending;	/* done calls still awaited */
	int			 cx_in_start;
	char			 cx_url[256];
};

static struct ctx *ctx;

static void
srv_reply_echo(struct evhttp_request *req)
{
	struct evkeyvalq	*in = evhttp_request_get_input_headers(req);
	struct evkeyvalq	*out = evhttp_request_get_output_headers(req);
	struct evbuffer		*body = evbuffer_new();
	const char		*m, *x;

	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		m = "GET";
		break;
	case EVHTTP_REQ_POST:
		m = "POST";
		break;
	case EVHTTP_REQ_PUT:
		m = "PUT";
		break;
	case EVHTTP_REQ_DELETE:
		m = "DELETE";
		break;
	default:
		m = "OTHER";
		break;
	}
	x = evhttp_find_header(in, "X-Test");
	evbuffer_add_printf(body, "%s\n%s\n", m, x != NULL ? x : "-");
	evbuffer_add_buffer(body, evhttp_request_get_input_buffer(req));
	evhttp_add_header(out, "X-Reply", "a");
	evhttp_add_header(out, "X-Dup", "1");
	evhttp_add_header(out, "x-dup", "  2 ");
	evhttp_send_reply(req, 200, "OK", body);
	evbuffer_free(body);
}

static void
srv_stream_step(evutil_socket_t fd, short ev, void *arg)
{
	static const char *chunks[] = { "one\n", "two\n", "three\n" };
	struct server	*sv = arg;
	struct evbuffer	*b;
	struct timeval	 tv = { 0, 50000 };

	(void)fd;
	(void)ev;
	if (sv->sv_stream_step == 3) {
		sv->sv_stream_ended = 1;
		evhttp_send_reply_end(sv->sv_stream_req);
		return;
	}
	b = evbuffer_new();
	evbuffer_add_printf(b, "%s", chunks[sv->sv_stream_step++]);
	evhttp_send_reply_chunk(sv->sv_stream_req, b);
	evbuffer_free(b);
	evtimer_add(sv->sv_stream_ev, &tv);
}

/*
 * Ends a stream early.  evhttp keeps a request whose client went away
 * until the reply is ended, and then frees it.
 */
static void
srv_stream_stop(struct server *sv)
{
	if (sv->sv_stream_req != NULL && !sv->sv_stream_ended)
		evhttp_send_reply_end(sv->sv_stream_req);
	sv->sv_stream_req = NULL;
	evtimer_del(sv->sv_stream_ev);
}

static void
srv_delayed(evutil_socket_t fd, short ev, void *arg)
{
	struct evhttp_request	*req = arg;
	struct evbuffer		*b = evbuffer_new();

	(void)fd;
	(void)ev;
	evbuffer_add_printf(b, "late %s", evhttp_request_get_uri(req));
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void
srv_handle(struct evhttp_request *req, void *arg)
{
	struct server	*sv = arg;
	const char	*uri = evhttp_request_get_uri(req);
	struct evbuffer	*b;
	struct timeval	 tv = { 0, 300000 };
	char		*big;

	if (strcmp(uri, "/echo") == 0)
		srv_reply_echo(req);
	else if (strcmp(uri, "/slow") == 0)
		return;		/* never answered */
	else if (strncmp(uri, "/delay", 6) == 0)
		event_base_once(sv->sv_base, -1, EV_TIMEOUT, srv_delayed, req,
		    &tv);
	else if (strcmp(uri, "/stream") == 0) {
		srv_stream_stop(sv);
		sv->sv_stream_req = req;
		sv->sv_stream_step = 0;
		sv->sv_stream_ended = 0;
		evhttp_send_reply_start(req, 200, "OK");
		srv_stream_step(-1, 0, sv);
	} else if (strcmp(uri, "/redirect") == 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Location", "/echo");
		evhttp_send_reply(req, 302, "Found", NULL);
	} else if (strcmp(uri, "/big") == 0) {
		b = evbuffer_new();
		big = xcalloc(1, 17 * 1024 * 1024);
		evbuffer_add(b, big, 17 * 1024 * 1024);
		free(big);
		evhttp_send_reply(req, 200, "OK", b);
		evbuffer_free(b);
	} else {
		b = evbuffer_new();
		evbuffer_add_printf(b, "not here");
		evhttp_send_reply(req, 404, "Not Found", b);
		evbuffer_free(b);
	}
}

static void
srv_start(struct server *sv, struct event_base *base)
{
	struct evhttp_bound_socket	*bs;
	struct sockaddr_in		 sin;
	struct sockaddr_un		 sun;
	socklen_t			 len = sizeof(sin);
	int				 fd;

	memset(sv, 0, sizeof(*sv));
	sv->sv_base = base;
	assert_non_null(sv->sv_http = evhttp_new(base));
	evhttp_set_allowed_methods(sv->sv_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_HEAD);
	evhttp_set_gencb(sv->sv_http, srv_handle, sv);
	bs = evhttp_bind_socket_with_handle(sv->sv_http, "127.0.0.1", 0);
	assert_non_null(bs);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs),
	    (struct sockaddr *)&sin, &len), 0);
	sv->sv_port = ntohs(sin.sin_port);
	assert_non_null(sv->sv_stream_ev = evtimer_new(base, srv_stream_step,
	    sv));

	/* evhttp takes any listening socket, a unix one included. */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/test_json.%d.sock",
	    (int)getpid());
	memcpy(sv->sv_unix_path, sun.sun_path, sizeof(sv->sv_unix_path));
	unlink(sun.sun_path);
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 16), 0);
	evutil_make_socket_nonblocking(fd);
	assert_non_null(evhttp_accept_socket_with_handle(sv->sv_http, fd));
}

static void
srv_stop(struct server *sv)
{
	srv_stream_stop(sv);
	evhttp_free(sv->sv_http);
	event_free(sv->sv_stream_ev);
	unlink(sv->sv_unix_path);
}

static void
watchdog(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	fail_msg("the event loop ran for 10 seconds");
}

static int
setup_http(void **state)
{
	(void)state;
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->cx_base = event_base_new();
	srv_start(&ctx->cx_srv, ctx->cx_base);
	ctx->cx_client = http_client_new(ctx->cx_base);
	return 0;
}

static int
teardown_http(void **state)
{
	(void)state;
	http_client_free(ctx->cx_client);
	srv_stop(&ctx->cx_srv);
	event_base_free(ctx->cx_base);
	free(ctx);
	ctx = NULL;
	return 0;
}

static void
result_free(struct result *r)
{
	free(r->rs_error);
	free(r->rs_body);
	free(r->rs_reply_hdr);
	free(r->rs_dup_hdr);
	free(r->rs_missing_hdr);
	buf_free(&r->rs_stream);
}

static void
on_done(struct http_response *resp, void *arg)
{
	struct result	*r = arg;

	/* The contract: never called from inside http_request_start. */
	assert_false(ctx->cx_in_start);
	r->rs_done++;
	r->rs_status = resp->hr_status;
	r->rs_code = resp->hr_curl_code;
	r->rs_error = resp->hr_error != NULL ? xstrdup(resp->hr_error) : NULL;
	r->rs_body_len = resp->hr_body.b_len;
	r->rs_body = xmalloc(resp->hr_body.b_len + 1);
	if (resp->hr_body.b_len > 0)
		memcpy(r->rs_body, resp->hr_body.b_data, resp->hr_body.b_len);
	r->rs_body[resp->hr_body.b_len] = '\0';
	r->rs_reply_hdr = http_header_get(resp, "x-REPLY");
	r->rs_dup_hdr = http_header_get(resp, "X-Dup");
	r->rs_missing_hdr = http_header_get(resp, "X-Missing");
	if (--ctx->cx_pending == 0)
		event_base_loopbreak(ctx->cx_base);
}

static long
start(const char *method, const char *path, struct http_request *rq,
    struct result *r)
{
	struct http_request	 def;
	long			 id;

	if (rq == NULL) {
		memset(&def, 0, sizeof(def));
		rq = &def;
	}
	snprintf(ctx->cx_url, sizeof(ctx->cx_url), "http://127.0.0.1:%d%s",
	    ctx->cx_srv.sv_port, path);
	rq->hq_method = method;
	if (rq->hq_url == NULL)
		rq->hq_url = ctx->cx_url;
	ctx->cx_in_start = 1;
	id = http_request_start(ctx->cx_client, rq, on_done, r);
	ctx->cx_in_start = 0;
	assert_true(id > 0);
	ctx->cx_pending++;
	return id;
}

/* Runs the loop until every started request is done. */
static void
run(void)
{
	struct event	*wd;
	struct timeval	 tv = { 10, 0 };

	wd = evtimer_new(ctx->cx_base, watchdog, NULL);
	evtimer_add(wd, &tv);
	if (ctx->cx_pending > 0)
		event_base_dispatch(ctx->cx_base);
	event_free(wd);
	assert_int_equal(ctx->cx_pending, 0);
}

static void
test_http_get(void **state)
{
	static const char *hdrs[] = { "X-Test: hello", "Accept: text/plain",
	    NULL };
	struct http_request	 rq;
	struct result		 r;

	(void)state;
	memset(&r, 0, sizeof(r));
	memset(&rq, 0, sizeof(rq));
	rq.hq_headers = hdrs;
	start("GET", "/echo", &rq, &r);
	assert_int_equal(r.rs_done, 0);
	run();
	assert_int_equal(r.rs_done, 1);
	assert_int_equal(r.rs_status, 200);
	assert_int_equal(r.rs_code, 0);
	assert_null(r.rs_error);
	assert_string_equal(r.rs_body, "GET\nhello\n");
	assert_string_equal(r.rs_reply_hdr, "a");
	assert_string_equal(r.rs_dup_hdr, "2");
	assert_null(r.rs_missing_hdr);
	result_free(&r);
}

static void
test_http_post_put_delete(void **state)
{
	static const char body[] = "a=1&b=\0\xff binary";
	struct http_request	 rq;
	struct result		 post, put, del, empty;
	char			*big;
	size_t			 big_len = 3 * 1024 * 1024;

	(void)state;
	memset(&post, 0, sizeof(post));
	memset(&put, 0, sizeof(put));
	memset(&del, 0, sizeof(del));
	memset(&empty, 0, sizeof(empty));
	memset(&rq, 0, sizeof(rq));
	rq.hq_body = body;
	rq.hq_body_len = sizeof(body) - 1;
	start("POST", "/echo", &rq, &post);
	memset(&rq, 0, sizeof(rq));
	start("DELETE", "/echo", &rq, &del);
	memset(&rq, 0, sizeof(rq));
	start("POST", "/echo", &rq, &empty);

	/* A big body: libcurl asks for 100-continue first. */
	big = xmalloc(big_len);
	memset(big, 'z', big_len);
	memset(&rq, 0, sizeof(rq));
	rq.hq_body = big;
	rq.hq_body_len = big_len;
	start("PUT", "/echo", &rq, &put);
	free(big);	/* the client keeps its own copy */
	run();

	assert_int_equal(post.rs_status, 200);
	assert_int_equal(post.rs_body_len, 7 + sizeof(body) - 1);
	assert_memory_equal(post.rs_body, "POST\n-\n", 7);
	assert_memory_equal(post.rs_body + 7, body, sizeof(body) - 1);
	assert_int_equal(del.rs_status, 200);
	assert_string_equal(del.rs_body, "DELETE\n-\n");
	assert_int_equal(empty.rs_status, 200);
	assert_string_equal(empty.rs_body, "POST\n-\n");
	assert_int_equal(put.rs_status, 200);
	assert_int_equal(put.rs_body_len, 6 + big_len);
	assert_memory_equal(put.rs_body, "PUT\n-\nzzz", 9);
	assert_string_equal(put.rs_reply_hdr, "a");
	result_free(&post);
	result_free(&put);
	result_free(&del);
	result_free(&empty);
}

static void
test_http_404_redirect(void **state)
{
	struct result	 nf, redir;

	(void)state;
	memset(&nf, 0, sizeof(nf));
	memset(&redir, 0, sizeof(redir));
	start("GET", "/nothing", NULL, &nf);
	start("GET", "/redirect", NULL, &redir);
	run();
	assert_int_equal(nf.rs_status, 404);
	assert_null(nf.rs_error);
	assert_string_equal(nf.rs_body, "not here");

	/* Redirects are the caller's decision. */
	assert_int_equal(redir.rs_status, 302);
	assert_null(redir.rs_error);
	assert_null(redir.rs_reply_hdr);
	result_free(&nf);
	result_free(&redir);
}

static void
test_http_timeout(void **state)
{
	static const char *hdrs[] = { "Authorization: Bearer s3cr3t-t0ken",
	    NULL };
	struct http_request	 rq;
	struct result		 r;
	struct timeval		 t0, t1;
	long			 ms;

	(void)state;
	memset(&r, 0, sizeof(r));
	memset(&rq, 0, sizeof(rq));
	rq.hq_timeout_ms = 300;
	rq.hq_headers = hdrs;
	gettimeofday(&t0, NULL);
	start("GET", "/slow", &rq, &r);
	run();
	gettimeofday(&t1, NULL);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
	assert_int_equal(r.rs_status, 0);
	assert_int_equal(r.rs_code, CURLE_OPERATION_TIMEDOUT);
	assert_non_null(r.rs_error);
	assert_null(strstr(r.rs_error, "s3cr3t"));
	assert_true(ms >= 250 && ms < 3000);
	result_free(&r);
}

static void
test_http_refused(void **state)
{
	struct http_request	 rq;
	struct result		 r, proto;
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	char			 url[64];
	int			 fd;

	(void)state;
	memset(&r, 0, sizeof(r));
	memset(&proto, 0, sizeof(proto));

	/* A port that was just free and has no listener. */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/",
	    ntohs(sin.sin_port));
	memset(&rq, 0, sizeof(rq));
	rq.hq_url = url;
	start("GET", "", &rq, &r);

	/* Only http and https are allowed. */
	memset(&rq, 0, sizeof(rq));
	rq.hq_url = "file:///etc/passwd";
	start("GET", "", &rq, &proto);
	run();

	assert_int_equal(r.rs_status, 0);
	assert_int_equal(r.rs_code, CURLE_COULDNT_CONNECT);
	assert_non_null(r.rs_error);
	assert_int_equal(proto.rs_status, 0);
	assert_int_equal(proto.rs_code, CURLE_UNSUPPORTED_PROTOCOL);
	assert_string_equal(proto.rs_body, "");
	result_free(&r);
	result_free(&proto);
}

static int
on_data(const char *data, size_t len, void *arg)
{
	struct result	*r = arg;

	r->rs_stream_calls++;
	if (r->rs_stream_calls == 1 && !ctx->cx_srv.sv_stream_ended)
		r->rs_stream_early = 1;
	buf_add(&r->rs_stream, data, len);
	if (r->rs_stream_abort == 1)
		return -1;
	if (r->rs_stream_abort == 2)
		http_cancel(r->rs_client, r->rs_cancel_id);
	if (r->rs_stream_abort == 3) {
		http_client_free(r->rs_client);
		ctx->cx_client = NULL;
	}
	return 0;
}

static void
test_http_stream(void **state)
{
	struct http_request	 rq;
	struct result		 r;

	(void)state;
	memset(&r, 0, sizeof(r));
	memset(&rq, 0, sizeof(rq));
	rq.hq_on_data = on_data;
	start("GET", "/stream", &rq, &r);
	run();
	assert_int_equal(r.rs_status, 200);
	assert_null(r.rs_error);
	assert_int_equal(r.rs_body_len, 0);
	assert_int_equal(r.rs_stream.b_len, 14);
	assert_memory_equal(r.rs_stream.b_data, "one\ntwo\nthree\n", 14);

	/* Data came while the server was still sending. */
	assert_true(r.rs_stream_early);
	assert_true(r.rs_stream_calls >= 2);
	result_free(&r);
}

static void
test_http_stream_stop(void **state)
{
	struct http_request	 rq;
	struct result		 stop, cancel;

	(void)state;
	memset(&stop, 0, sizeof(stop));
	memset(&cancel, 0, sizeof(cancel));
	memset(&rq, 0, sizeof(rq));
	rq.hq_on_data = on_data;
	stop.rs_stream_abort = 1;
	start("GET", "/stream", &rq, &stop);
	run();
	assert_int_equal(stop.rs_done, 1);
	assert_int_equal(stop.rs_status, 0);
	assert_int_equal(stop.rs_stream_calls, 1);
	assert_string_equal(stop.rs_error,
	    "transfer stopped by the data handler");

	/* Cancelling from inside on_data waits until libcurl returns. */
	cancel.rs_stream_abort = 2;
	cancel.rs_client = ctx->cx_client;
	cancel.rs_cancel_id = start("GET", "/stream", &rq, &cancel);
	run();
	assert_int_equal(cancel.rs_done, 1);
	assert_int_equal(cancel.rs_status, 0);
	assert_int_equal(cancel.rs_stream_calls, 1);
	assert_string_equal(cancel.rs_error, "cancelled");
	result_free(&stop);
	result_free(&cancel);
}

static void
cancel_cb(evutil_socket_t fd, short ev, void *arg)
{
	long	*id = arg;

	(void)fd;
	(void)ev;
	http_cancel(ctx->cx_client, *id);
	http_cancel(ctx->cx_client, *id);	/* a second time is a no-op */
	http_cancel(ctx->cx_client, 999999);
}

static void
test_http_cancel(void **state)
{
	struct result	 slow, other;
	struct timeval	 tv = { 0, 100000 };
	long		 id;

	(void)state;
	memset(&slow, 0, sizeof(slow));
	memset(&other, 0, sizeof(other));
	id = start("GET", "/slow", NULL, &slow);
	start("GET", "/echo", NULL, &other);
	event_base_once(ctx->cx_base, -1, EV_TIMEOUT, cancel_cb, &id, &tv);
	run();
	assert_int_equal(slow.rs_done, 1);
	assert_int_equal(slow.rs_status, 0);
	assert_string_equal(slow.rs_error, "cancelled");
	assert_int_equal(other.rs_done, 1);
	assert_int_equal(other.rs_status, 200);
	result_free(&slow);
	result_free(&other);
}

static void
test_http_parallel(void **state)
{
	struct result	 a, b;
	struct timeval	 t0, t1;
	long		 ms;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	gettimeofday(&t0, NULL);
	start("GET", "/delay?a", NULL, &a);
	start("GET", "/delay?b", NULL, &b);
	run();
	gettimeofday(&t1, NULL);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
	assert_string_equal(a.rs_body, "late /delay?a");
	assert_string_equal(b.rs_body, "late /delay?b");

	/* Each answer takes 300 ms; one after the other would take 600. */
	assert_true(ms >= 290 && ms < 550);
	result_free(&a);
	result_free(&b);
}

static void
test_http_unix_socket(void **state)
{
	struct http_request	 rq;
	struct result		 r;

	(void)state;
	memset(&r, 0, sizeof(r));
	memset(&rq, 0, sizeof(rq));
	rq.hq_url = "http://localhost/echo";
	rq.hq_unix_socket = ctx->cx_srv.sv_unix_path;
	start("DELETE", "", &rq, &r);
	run();
	assert_int_equal(r.rs_status, 200);
	assert_string_equal(r.rs_body, "DELETE\n-\n");
	result_free(&r);
}

static void
test_http_too_big(void **state)
{
	struct result	 r;

	(void)state;
	memset(&r, 0, sizeof(r));
	start("GET", "/big", NULL, &r);
	run();
	assert_int_equal(r.rs_status, 0);
	assert_string_equal(r.rs_error, "response body larger than 16 MiB");
	assert_true(r.rs_body_len <= 16 * 1024 * 1024);
	result_free(&r);
}

/* A hand-written server for what evhttp cannot send: a 1xx block. */
static void
raw_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	static const char reply[] = "HTTP/1.1 103 Early Hints\r\n"
	    "X-Reply: early\r\nX-Dup: early\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Dup: final\r\n"
	    "Connection: close\r\n\r\nok";
	struct event	**evp = arg;
	char		  req[4096];

	(void)ev;
	if (read(fd, req, sizeof(req)) > 0)
		assert_int_equal(write(fd, reply, sizeof(reply) - 1),
		    sizeof(reply) - 1);
	event_free(*evp);
	close(fd);
}

static void
raw_accept_cb(evutil_socket_t lfd, short ev, void *arg)
{
	struct event	**evp = arg;
	int		  fd;

	(void)ev;
	assert_true((fd = accept(lfd, NULL, NULL)) != -1);
	*evp = event_new(ctx->cx_base, fd, EV_READ, raw_read_cb, evp);
	event_add(*evp, NULL);
}

/* Only the headers of the final answer are kept. */
static void
test_http_informational(void **state)
{
	struct http_request	 rq;
	struct result		 r;
	struct sockaddr_in	 sin;
	struct event		*lev, *cev = NULL;
	socklen_t		 len = sizeof(sin);
	char			 url[64];
	int			 lfd;

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((lfd = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	lev = event_new(ctx->cx_base, lfd, EV_READ, raw_accept_cb, &cev);
	event_add(lev, NULL);

	memset(&r, 0, sizeof(r));
	memset(&rq, 0, sizeof(rq));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/",
	    ntohs(sin.sin_port));
	rq.hq_url = url;
	start("GET", "", &rq, &r);
	run();
	assert_int_equal(r.rs_status, 200);
	assert_string_equal(r.rs_body, "ok");
	assert_string_equal(r.rs_dup_hdr, "final");
	assert_null(r.rs_reply_hdr);
	event_free(lev);
	close(lfd);
	result_free(&r);
}

static void
free_in_done(struct http_response *resp, void *arg)
{
	on_done(resp, arg);
	http_client_free(ctx->cx_client);
	ctx->cx_client = NULL;
}

/* Freeing the client cancels what is in flight, even from a callback. */
static void
test_http_free(void **state)
{
	struct http_request	 rq;
	struct result		 a, b, c, d, e;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	memset(&d, 0, sizeof(d));
	memset(&e, 0, sizeof(e));
	start("GET", "/slow", NULL, &a);
	start("GET", "/slow", NULL, &b);
	http_client_free(ctx->cx_client);
	assert_int_equal(a.rs_done + b.rs_done, 2);
	assert_string_equal(a.rs_error, "cancelled");
	assert_string_equal(b.rs_error, "cancelled");

	/* From a done function: the echo's done frees the client. */
	ctx->cx_client = http_client_new(ctx->cx_base);
	start("GET", "/slow", NULL, &c);
	snprintf(ctx->cx_url, sizeof(ctx->cx_url), "http://127.0.0.1:%d/echo",
	    ctx->cx_srv.sv_port);
	memset(&rq, 0, sizeof(rq));
	rq.hq_url = ctx->cx_url;
	ctx->cx_in_start = 1;
	assert_true(http_request_start(ctx->cx_client, &rq, free_in_done,
	    &d) > 0);
	ctx->cx_in_start = 0;
	ctx->cx_pending++;
	run();
	assert_null(ctx->cx_client);
	assert_int_equal(d.rs_status, 200);
	assert_int_equal(c.rs_done, 1);
	assert_string_equal(c.rs_error, "cancelled");

	/* From an on_data function, inside libcurl. */
	ctx->cx_client = http_client_new(ctx->cx_base);
	memset(&rq, 0, sizeof(rq));
	rq.hq_on_data = on_data;
	e.rs_stream_abort = 3;
	e.rs_client = ctx->cx_client;
	start("GET", "/stream", &rq, &e);
	run();
	assert_null(ctx->cx_client);
	assert_int_equal(e.rs_done, 1);
	assert_int_equal(e.rs_stream_calls, 1);
	result_free(&a);
	result_free(&b);
	result_free(&c);
	result_free(&d);
	result_free(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_runners),
		cmocka_unit_test(test_fixture_other),
		cmocka_unit_test(test_fixtures_roundtrip),
		cmocka_unit_test(test_valid_documents),
		cmocka_unit_test(test_invalid_documents),
		cmocka_unit_test(test_nesting_limit),
		cmocka_unit_test(test_unescape),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_bad_tokens),
		cmocka_unit_test(test_writer_shape),
		cmocka_unit_test(test_escape_roundtrip),
		cmocka_unit_test(test_escape_nul),
		cmocka_unit_test(test_writer_misuse),
		cmocka_unit_test_setup_teardown(test_http_get, setup_http,
		    teardown_http),
		cmocka_unit_test_setup_teardown(test_http_post_put_delete,
		    setup_http, teardown_http),
		cmocka_unit_test_setup_teardown(test_http_404_redirect,
		    setup_http, teardown_http),
		cmocka_unit_test_setup_teardown(test_http_timeout, setup_http,
		    teardown_http),
		cmocka_unit_test_setup_teardown(test_http_refused, setup_http,
		    teardown_http),
		cmocka_unit_test_setup_teardown(test_http_stream, setup_http,
		    teardown_http),
		cmocka_unit_test_setup_teardown(test_http_stream_stop,
		    setup_http, teardown_http),
		cmocka_unit_test_setup_teardown(test_http_cancel, setup_http,
		    teardown_http),
		cmocka_unit_test_setup_teardown(test_http_parallel, setup_http,
		    teardown_http),
		cmocka_unit_test_setup_teardown(test_http_unix_socket,
		    setup_http, teardown_http),
		cmocka_unit_test_setup_teardown(test_http_too_big, setup_http,
		    teardown_http),
		cmocka_unit_test_setup_teardown(test_http_informational,
		    setup_http, teardown_http),
		cmocka_unit_test_setup_teardown(test_http_free, setup_http,
		    teardown_http),
	};
	int	 rc;

	/* The client leaves this to the program, once, at start. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
