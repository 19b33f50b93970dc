/*
 * libFuzzer harness for GitHub's answers as the poller reads them.  The
 * same bytes go to every reader: generate-jitconfig, registration-token,
 * one page of a runner list, runner groups, the error text of a failed
 * request, github_json(), and, as a string, the time and Link header
 * readers.  A reader that fails must say why; one that succeeds must hand
 * back what its caller relies on.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "github.h"
#include "http_client.h"
#include "json.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_jit(const char *body, size_t len)
{
	const char	*why = NULL;
	uint64_t	 id = 0;
	char		*jit = NULL;

	if (github_parse_jit(body, len, &id, &jit, &why) == 0) {
		if (id == 0 || jit == NULL || jit[0] == '\0')
			abort();
		free(jit);
	} else if (why == NULL || jit != NULL)
		abort();
}

static void
check_token(const char *body, size_t len)
{
	const char	*why = NULL;
	time_t		 expires;
	char		*token = NULL;

	if (github_parse_token(body, len, &token, &expires, &why) == 0) {
		if (token == NULL || token[0] == '\0')
			abort();
		free(token);
	} else if (why == NULL || token != NULL)
		abort();
}

/* Two pages in a row, as a paginated walk appends them. */
static void
check_runners(const char *body, size_t len)
{
	struct github_runner_list	 rl = { NULL, 0 };
	const char			*why = NULL;
	size_t				 i, first;

	if (github_parse_runners(body, len, &rl, &why) == -1 && why == NULL)
		abort();
	first = rl.rl_count;
	if (github_parse_runners(body, len, &rl, &why) == 0 &&
	    rl.rl_count != 2 * first)
		abort();
	for (i = 0; i < rl.rl_count; i++)
		if (rl.rl_items[i].gr_id == 0 || rl.rl_items[i].gr_name == NULL)
			abort();
	github_runner_list_free(&rl);
}

static void
check_group(const char *body, size_t len)
{
	const char	*why = NULL;
	uint64_t	 id = 1;

	if (github_parse_group(body, len, "Default", &id, &why) == -1 &&
	    (why == NULL || id != 0))
		abort();
}

static void
check_response(const uint8_t *data, size_t size)
{
	struct http_response	 res;
	struct json_doc		 doc;
	const char		*why = NULL;
	char			*text;

	memset(&res, 0, sizeof(res));
	buf_init(&res.hr_body);
	buf_init(&res.hr_headers);
	res.hr_status = size > 0 ? 200 + data[0] % 400 : 0;
	buf_add(&res.hr_body, data, size);
	if ((text = github_error_text(&res)) == NULL ||
	    strncmp(text, "GitHub ", 7) != 0)
		abort();
	free(text);
	if (github_json(&doc, &res, &why) == 0)
		json_free(&doc);
	else if (why == NULL)
		abort();
	buf_free(&res.hr_body);
	buf_free(&res.hr_headers);
}

/* The Link header's next URL lies between a '<' and a '>' of it. */
static void
check_strings(const uint8_t *data, size_t size)
{
	char	*s, *next;
	time_t	 t;

	s = malloc(size + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	(void)github_parse_time(s, &t);
	if ((next = github_link_next(s)) != NULL) {
		if (strlen(next) > strlen(s) || strchr(next, '>') != NULL)
			abort();
		free(next);
	}
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*body = (const char *)data;

	check_jit(body, size);
	check_token(body, size);
	check_runners(body, size);
	check_group(body, size);
	check_response(data, size);
	check_strings(data, size);
	return 0;
}
