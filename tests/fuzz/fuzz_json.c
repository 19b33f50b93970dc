/*
 * libFuzzer harness for the JSON reader and json_escape().  Any input that
 * parses is walked with every accessor; then the input, escaped and
 * quoted, must read back as itself.  A broken invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "json_write.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *keys[] = { "id", "name", "labels", "runners", "", "a" };

static void
check_token(const struct json_doc *doc, int tok)
{
	const char	*raw;
	char		*s;
	size_t		 len, i;
	int64_t		 v;
	int		 b, k, n;

	n = json_skip(doc, tok);
	if (n <= tok || n > doc->jd_ntoks)
		abort();
	raw = json_raw(doc, tok, &len);
	if (raw < doc->jd_text || raw + len > doc->jd_text + doc->jd_len)
		abort();
	(void)json_get_i64(doc, tok, &v);
	(void)json_get_bool(doc, tok, &b);
	(void)json_array_get(doc, tok, 0);
	(void)json_array_get(doc, tok, json_size(doc, tok) - 1);

	/* A string reads back equal to itself. */
	if ((s = json_get_str(doc, tok)) != NULL) {
		if (json_type(doc, tok) != JSON_STRING ||
		    !json_streq(doc, tok, s))
			abort();
		free(s);
	} else if (json_type(doc, tok) == JSON_STRING)
		abort();

	/* A key found by name is a key with that name. */
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		k = json_object_get(doc, tok, keys[i]);
		if (k != -1 && !json_streq(doc, k - 1, keys[i]))
			abort();
	}
}

/* Every input, escaped and quoted, is valid JSON that reads back. */
static void
check_escape(const uint8_t *data, size_t size)
{
	struct json_doc	 doc;
	struct buf	 b;
	const char	*why;
	char		*s;
	size_t		 i, n;
	int		 clean = 1, rc;

	for (i = 0; i < size; i += n) {
		if ((n = json_utf8_len(data + i, size - i, NULL)) == 0 ||
		    data[i] == '\0') {
			clean = 0;
			break;
		}
	}

	buf_init(&b);
	buf_add_char(&b, '"');
	json_escape(&b, (const char *)data, size);
	buf_add_char(&b, '"');
	rc = json_parse(&doc, (const char *)b.b_data, b.b_len, &why);

	/* U+0000 is the one thing the reader refuses by design. */
	if (rc == -1) {
		if (memchr(data, '\0', size) == NULL)
			abort();
		buf_free(&b);
		return;
	}
	if ((s = json_get_str(&doc, 0)) == NULL)
		abort();
	if (clean && (strlen(s) != size || memcmp(s, data, size) != 0))
		abort();
	free(s);
	json_free(&doc);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_doc	 doc;
	const char	*why;
	int		 i;

	if (json_parse(&doc, (const char *)data, size, &why) == 0) {
		if (doc.jd_ntoks < 1)
			abort();
		for (i = 0; i < doc.jd_ntoks; i++)
			check_token(&doc, i);
		json_free(&doc);
	} else if (why == NULL)
		abort();

	check_escape(data, size);
	return 0;
}
