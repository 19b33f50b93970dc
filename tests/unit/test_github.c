/*
 * Unit tests for the poller's GitHub functions that do no I/O: request
 * checks, pool selection, runner names and reading GitHub's answers
 * (the documented examples copied under tests/double/fixtures).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "github.h"
#include "http_client.h"
#include "json.h"
#include "runner.h"
#include "util.h"

#ifndef TEST_DATA_DIR
#define TEST_DATA_DIR	"tests/unit/data"
#endif
#define FIXTURES	TEST_DATA_DIR "/../../double/fixtures"

#define ERRLEN		256

static char *
read_fixture(const char *name, size_t *len)
{
	char		 path[512];
	struct buf	 b;
	FILE		*f;
	char		 chunk[4096];
	size_t		 n;
	char		*out;

	snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
	f = fopen(path, "r");
	assert_non_null(f);
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	*len = b.b_len;
	out = xstrndup((const char *)b.b_data, b.b_len);
	buf_free(&b);
	return out;
}

static void
make_pool(struct pool *pl, const char *name, const char *labels)
{
	char	*copy = xstrdup(labels), *p, *tok;

	config_pool_init(pl, name);
	for (p = copy; (tok = strsep(&p, ",")) != NULL;)
		if (*tok != '\0')
			strlist_add(&pl->pl_labels, tok);
	free(copy);
}

static void
make_list(struct strlist *sl, const char *labels)
{
	char	*copy = xstrdup(labels), *p, *tok;

	memset(sl, 0, sizeof(*sl));
	for (p = copy; (tok = strsep(&p, ",")) != NULL;)
		if (*tok != '\0')
			strlist_add(sl, tok);
	free(copy);
}

/* ---- request checks ---- */

static void
test_scope_check(void **state)
{
	char	 err[ERRLEN];

	(void)state;
	assert_int_equal(github_scope_check("repo", "octo-org/hello.world_1",
	    err, sizeof(err)), 0);
	assert_int_equal(github_scope_check("org", "octo-org", err,
	    sizeof(err)), 0);

	assert_int_equal(github_scope_check("repo", "octo-org", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "owner/repo"));
	assert_int_equal(github_scope_check("repo", "a/b/c", err,
	    sizeof(err)), -1);
	assert_int_equal(github_scope_check("repo", "-a/b", err,
	    sizeof(err)), -1);
	assert_int_equal(github_scope_check("repo", "a/..", err,
	    sizeof(err)), -1);
	assert_int_equal(github_scope_check("repo", "a/b c", err,
	    sizeof(err)), -1);
	assert_int_equal(github_scope_check("repo", "a_b/c", err,
	    sizeof(err)), -1);
	assert_int_equal(github_scope_check("org", "a/b", err,
	    sizeof(err)), -1);
	assert_int_equal(github_scope_check("org",
	    "a234567890123456789012345678901234567890", err, sizeof(err)), -1);
	assert_int_equal(github_scope_check("enterprise", "a", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "repo"));
}

static void
test_label_check(void **state)
{
	char	 err[ERRLEN], longl[GITHUB_LABEL_MAX + 2];

	(void)state;
	assert_int_equal(github_label_check("self-hosted", err, sizeof(err)),
	    0);
	assert_int_equal(github_label_check("gpu.large_2", err, sizeof(err)),
	    0);
	assert_int_equal(github_label_check("", err, sizeof(err)), -1);
	assert_int_equal(github_label_check("a,b", err, sizeof(err)), -1);
	assert_int_equal(github_label_check("a b", err, sizeof(err)), -1);
	assert_int_equal(github_label_check("a\nb", err, sizeof(err)), -1);
	memset(longl, 'x', sizeof(longl) - 1);
	longl[sizeof(longl) - 1] = '\0';
	assert_int_equal(github_label_check(longl, err, sizeof(err)), -1);
	longl[GITHUB_LABEL_MAX] = '\0';
	assert_int_equal(github_label_check(longl, err, sizeof(err)), 0);
}

/* ---- pool selection ---- */

struct pools {
	struct pool	 p[4];
	size_t		 n;
};

static void
pools_setup(struct pools *ps)
{
	make_pool(&ps->p[0], "big", "self-hosted,linux,x64,gpu,large");
	make_pool(&ps->p[1], "default", "self-hosted,linux");
	make_pool(&ps->p[2], "gpu", "self-hosted,Linux,GPU");
	make_pool(&ps->p[3], "arm", "self-hosted,linux,arm64");
	ps->n = 4;
}

static void
pools_teardown(struct pools *ps)
{
	size_t	 i;

	for (i = 0; i < ps->n; i++)
		config_pool_free(&ps->p[i]);
}

static const char *
select_name(struct pools *ps, size_t n, const char *labels, char *err)
{
	struct strlist	 want;
	struct pool	*pl;

	make_list(&want, labels);
	pl = github_pool_select(ps->p, n, &want, err, ERRLEN);
	strlist_clear(&want, 0);
	return pl != NULL ? pl->pl_name : NULL;
}

static void
test_pool_select(void **state)
{
	struct pools	 ps;
	char		 err[ERRLEN];

	(void)state;
	pools_setup(&ps);
	/* No labels: the pool named default, even when it is not first. */
	assert_string_equal(select_name(&ps, 4, "", err), "default");
	/* Fewest extra labels among the pools that cover the request. */
	assert_string_equal(select_name(&ps, 4, "self-hosted", err),
	    "default");
	assert_string_equal(select_name(&ps, 4, "gpu", err), "gpu");
	assert_string_equal(select_name(&ps, 4, "LINUX,gpu,Self-Hosted", err),
	    "gpu");
	assert_string_equal(select_name(&ps, 4, "gpu,x64", err), "big");
	assert_string_equal(select_name(&ps, 4, "ARM64", err), "arm");

	/* Labels no pool has are named; a mix no single pool has says so. */
	assert_null(select_name(&ps, 4, "self-hosted,windows,tpu", err));
	assert_non_null(strstr(err, "windows, tpu"));
	assert_null(strstr(err, "self-hosted"));
	assert_null(select_name(&ps, 4, "gpu,arm64", err));
	assert_non_null(strstr(err, "no single pool"));

	/* Without a pool named default, the first one. */
	assert_string_equal(select_name(&ps, 1, "", err), "big");
	assert_null(select_name(&ps, 0, "", err));
	pools_teardown(&ps);
}

/* ---- runner names ---- */

static void
test_runner_name(void **state)
{
	char	 name[RUNNER_NAME_MAX + 1], small[16];
	char	 longpool[200];

	(void)state;
	assert_int_equal(github_runner_name("build1", "default", 0x0a1b2c3d,
	    name, sizeof(name)), 0);
	assert_string_equal(name, "eph-build1-default-0a1b2c3d");

	/* Pool names are lower-cased and kept to [a-z0-9-]. */
	assert_int_equal(github_runner_name("h", "GPU_Large..x", 1, name,
	    sizeof(name)), 0);
	assert_string_equal(name, "eph-h-gpu-large-x-00000001");
	assert_int_equal(github_runner_name("h", "__", 2, name,
	    sizeof(name)), 0);
	assert_string_equal(name, "eph-h-pool-00000002");

	/* A long pool name is cut so the whole name fits GitHub's 64. */
	memset(longpool, 'p', sizeof(longpool) - 1);
	longpool[sizeof(longpool) - 1] = '\0';
	assert_int_equal(github_runner_name("abcdefghijkl", longpool,
	    0xffffffff, name, sizeof(name)), 0);
	assert_int_equal(strlen(name), RUNNER_NAME_MAX);
	assert_true(runner_name_valid(name));
	assert_string_equal(name + strlen(name) - 9, "-ffffffff");

	assert_int_equal(github_runner_name("h", "default", 1, small,
	    sizeof(small)), -1);
}

/* ---- GitHub's answers ---- */

static void
test_parse_jit(void **state)
{
	const char	*ok = "{\"runner\":{\"id\":23,\"name\":\"New runner\","
	    "\"os\":\"unknown\",\"status\":\"offline\",\"busy\":false,"
	    "\"labels\":[{\"id\":5,\"name\":\"self-hosted\","
	    "\"type\":\"read-only\"}]},\"encoded_jit_config\":\"abc123\"}";
	const char	*bad[] = {
		"{\"runner\":{\"name\":\"x\"},\"encoded_jit_config\":\"abc\"}",
		"{\"runner\":{\"id\":0},\"encoded_jit_config\":\"abc\"}",
		"{\"runner\":{\"id\":4}}",
		"{\"runner\":{\"id\":4},\"encoded_jit_config\":\"\"}",
		"{\"runner\":7,\"encoded_jit_config\":\"abc\"}",
		"[]",
		"{\"runner\":",
	};
	const char	*why;
	uint64_t	 id = 0;
	char		*jit;
	size_t		 i;

	(void)state;
	assert_int_equal(github_parse_jit(ok, strlen(ok), &id, &jit, &why),
	    0);
	assert_int_equal(id, 23);
	assert_string_equal(jit, "abc123");
	free(jit);
	for (i = 0; i < nitems(bad); i++) {
		jit = (char *)1;
		assert_int_equal(github_parse_jit(bad[i], strlen(bad[i]), &id,
		    &jit, &why), -1);
		assert_null(jit);
		assert_non_null(why);
	}
}

static void
test_parse_time(void **state)
{
	time_t	 t;

	(void)state;
	/* The documented example: 12:13:35 at -08:00 is 20:13:35 UTC. */
	assert_int_equal(github_parse_time("2020-01-22T12:13:35.123-08:00",
	    &t), 0);
	assert_int_equal((long long)t, 1579724015LL);
	assert_int_equal(github_parse_time("2020-01-22T20:13:35Z", &t), 0);
	assert_int_equal((long long)t, 1579724015LL);
	assert_int_equal(github_parse_time("2020-01-22T21:43:35+01:30", &t),
	    0);
	assert_int_equal((long long)t, 1579724015LL);
	assert_int_equal(github_parse_time("2020-01-22T20:13:35", &t), -1);
	assert_int_equal(github_parse_time("2020-13-22T20:13:35Z", &t), -1);
	assert_int_equal(github_parse_time("2020-01-22 20:13:35Z", &t), -1);
	assert_int_equal(github_parse_time("2020-01-22T20:13:35Zjunk", &t),
	    -1);
}

static void
test_parse_token(void **state)
{
	const char	*why;
	char		*body, *token;
	size_t		 len;
	time_t		 exp;

	(void)state;
	body = read_fixture("actions-registration-token.openapi-example.json",
	    &len);
	assert_int_equal(github_parse_token(body, len, &token, &exp, &why), 0);
	assert_string_equal(token, "LLBF3JGZDX3P5PMEXLND6TS6FCWO6");
	assert_int_equal((long long)exp, 1579724015LL);
	free(token);
	free(body);

	body = "{\"token\":\"T\",\"expires_at\":\"soon\"}";
	assert_int_equal(github_parse_token(body, strlen(body), &token, &exp,
	    &why), -1);
	assert_null(token);
	body = "{\"expires_at\":\"2020-01-22T20:13:35Z\"}";
	assert_int_equal(github_parse_token(body, strlen(body), &token, &exp,
	    &why), -1);
	assert_null(token);
	assert_string_equal(why, "no token in the answer");
}

static void
test_parse_runners(void **state)
{
	struct github_runner_list	 rl;
	const char			*why, *page2;
	char				*body;
	size_t				 len;

	(void)state;
	memset(&rl, 0, sizeof(rl));
	body = read_fixture("actions-runners-list.openapi-example.json", &len);
	assert_int_equal(github_parse_runners(body, len, &rl, &why), 0);
	free(body);
	assert_int_equal(rl.rl_count, 2);
	assert_int_equal(rl.rl_items[0].gr_id, 23);
	assert_string_equal(rl.rl_items[0].gr_name, "linux_runner");
	assert_true(rl.rl_items[0].gr_online);
	assert_true(rl.rl_items[0].gr_busy);
	assert_int_equal(rl.rl_items[1].gr_id, 24);
	assert_false(rl.rl_items[1].gr_online);
	assert_false(rl.rl_items[1].gr_busy);

	/* A second page appends. */
	page2 = "{\"total_count\":3,\"runners\":[{\"id\":99,\"name\":\"z\","
	    "\"os\":\"linux\",\"status\":\"online\",\"busy\":false,"
	    "\"labels\":[]}]}";
	assert_int_equal(github_parse_runners(page2, strlen(page2), &rl,
	    &why), 0);
	assert_int_equal(rl.rl_count, 3);
	assert_int_equal(rl.rl_items[2].gr_id, 99);

	page2 = "{\"runners\":[{\"id\":5,\"name\":\"y\",\"status\":\"online\","
	    "\"busy\":\"no\"}]}";
	assert_int_equal(github_parse_runners(page2, strlen(page2), &rl,
	    &why), -1);
	page2 = "{\"total_count\":0}";
	assert_int_equal(github_parse_runners(page2, strlen(page2), &rl,
	    &why), -1);
	assert_int_equal(rl.rl_count, 3);
	github_runner_list_free(&rl);
	assert_int_equal(rl.rl_count, 0);
}

static void
test_parse_group(void **state)
{
	const char	*why;
	char		*body;
	size_t		 len;
	uint64_t	 id;

	(void)state;
	body = read_fixture("actions-runner-groups-list.openapi-example.json",
	    &len);
	assert_int_equal(github_parse_group(body, len, "octo-runner-group", &id,
	    &why), 0);
	assert_int_equal(id, 2);
	assert_int_equal(github_parse_group(body, len, "EXPENSIVE-hardware",
	    &id, &why), 0);
	assert_int_equal(id, 3);
	assert_int_equal(github_parse_group(body, len, "none", &id, &why), 0);
	assert_int_equal(id, 0);
	free(body);
	assert_int_equal(github_parse_group("{}", 2, "x", &id, &why), -1);
}

static void
test_link_next(void **state)
{
	/* As recorded from api.github.com (octokit fixtures). */
	const char	*first = "<https://api.github.com/repositories/"
	    "515435940/issues?per_page=3&page=2>; rel=\"next\", "
	    "<https://api.github.com"
	    "/repositories/515435940/issues?per_page=3&page=5>; rel=\"last\"";
	const char	*middle = "<https://api.github.com/repositories/"
	    "515435940/issues?per_page=3&page=1>; rel=\"prev\", <https://api."
	    "github.com/repositories/515435940/issues?per_page=3&page=3>; "
	    "rel=\"next\", <https://api.github.com/repositories/515435940/"
	    "issues?per_page=3&page=5>; rel=\"last\", <https://api.github.com/"
	    "repositories/515435940/issues?per_page=3&page=1>; rel=\"first\"";
	const char	*last = "<https://api.github.com/repositories/515435940"
	    "/issues?per_page=3&page=4>; rel=\"prev\", <https://api.github.com"
	    "/repositories/515435940/issues?per_page=3&page=1>; rel=\"first\"";
	char		*u;

	(void)state;
	u = github_link_next(first);
	assert_string_equal(u, "https://api.github.com/repositories/515435940"
	    "/issues?per_page=3&page=2");
	free(u);
	u = github_link_next(middle);
	assert_string_equal(u, "https://api.github.com/repositories/515435940"
	    "/issues?per_page=3&page=3");
	free(u);
	assert_null(github_link_next(last));
	assert_null(github_link_next(""));
	assert_null(github_link_next("<broken; rel=\"next\""));
}

static void
test_error_text(void **state)
{
	struct http_response	 res;
	char			*s;

	(void)state;
	memset(&res, 0, sizeof(res));
	buf_init(&res.hr_body);
	res.hr_status = 409;
	buf_add_str(&res.hr_body, "{\"message\":\"Already exists - A runner "
	    "with the name x already exists.\",\"status\":\"409\"}");
	s = github_error_text(&res);
	assert_string_equal(s, "GitHub answered 409: Already exists - A "
	    "runner with the name x already exists.");
	free(s);

	buf_reset(&res.hr_body);
	buf_add_str(&res.hr_body, "<html>");
	res.hr_status = 502;
	s = github_error_text(&res);
	assert_string_equal(s, "GitHub answered 502");
	free(s);

	res.hr_status = 0;
	res.hr_error = "Connection refused";
	s = github_error_text(&res);
	assert_string_equal(s, "GitHub could not be reached: "
	    "Connection refused");
	free(s);
	buf_free(&res.hr_body);
}

/* GitHub's answers pass whole; no shorter prefix of them does. */
static void
test_json_whole(void **state)
{
	static const char *const names[] = {
		"actions-runners-list.openapi-example.json",
		"actions-generate-jitconfig.openapi-example.json",
		"actions-registration-token.openapi-example.json",
		"actions-runner-groups-list.openapi-example.json",
		"actions-run-jobs-list.openapi-example.json",
		"rate-limit.openapi-example.json",
	};
	struct http_response	 res;
	struct json_doc		 doc;
	const char		*why;
	char			*body;
	size_t			 i, len, cut;

	(void)state;
	memset(&res, 0, sizeof(res));
	res.hr_status = 200;
	for (i = 0; i < nitems(names); i++) {
		body = read_fixture(names[i], &len);
		while (len > 0 && strchr(" \t\r\n", body[len - 1]) != NULL)
			len--;
		buf_init(&res.hr_body);
		buf_add(&res.hr_body, body, len);
		assert_int_equal(github_json(&doc, &res, &why), 0);
		json_free(&doc);

		for (cut = 0; cut < len; cut++) {
			res.hr_body.b_len = cut;
			why = NULL;
			assert_int_equal(github_json(&doc, &res, &why), -1);
			assert_non_null(why);
		}
		buf_free(&res.hr_body);
		free(body);
	}

	/* Text after the value, or a transport error, fails too. */
	buf_init(&res.hr_body);
	buf_add_str(&res.hr_body, "{\"a\":1}{");
	assert_int_equal(github_json(&doc, &res, &why), -1);
	res.hr_status = 0;
	assert_int_equal(github_json(&doc, &res, &why), -1);
	assert_string_equal(why, "GitHub did not answer");
	buf_free(&res.hr_body);
}

static void
test_scope_url(void **state)
{
	char	*u;

	(void)state;
	u = github_scope_url("https://ghe.example/api/v3", "repo", "o/r",
	    "runners/generate-jitconfig");
	assert_string_equal(u, "https://ghe.example/api/v3/repos/o/r/actions/"
	    "runners/generate-jitconfig");
	free(u);
	u = github_scope_url("https://api.github.com", "org", "octo",
	    "runners/5");
	assert_string_equal(u, "https://api.github.com/orgs/octo/actions/"
	    "runners/5");
	free(u);
}

/* Metrics name endpoints by template, never by user or number. */
static void
test_endpoint_template(void **state)
{
	static const struct {
		const char	*url, *want;
	} cases[] = {
		{ "https://api.github.com/repos/octo/hello/actions/runners/42",
		  "/repos/{owner}/{repo}/actions/runners/{id}" },
		{ "https://api.github.com/orgs/acme/actions/runner-groups?x=1",
		  "/orgs/{org}/actions/runner-groups" },
		{ "https://api.github.com/rate_limit", "/rate_limit" },
		{ "https://api.github.com/repos/o/r/actions/runners"
		  "/registration-token",
		  "/repos/{owner}/{repo}/actions/runners/registration-token" },
		{ "https://api.github.com/weird/na\"me", "/weird/na_me" },
	};
	char	 out[GITHUB_ENDPOINT_MAX];
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		github_endpoint_template("https://api.github.com",
		    cases[i].url, out, sizeof(out));
		assert_string_equal(out, cases[i].want);
	}
	github_endpoint_template("https://ghe.example/api/v3",
	    "https://ghe.example/api/v3/repos/a/b/actions/runners", out,
	    sizeof(out));
	assert_string_equal(out, "/repos/{owner}/{repo}/actions/runners");
	github_endpoint_template("https://api.github.com",
	    "https://api.github.com/repos/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/"
	    "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	    "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccc/dd",
	    out, 40);
	assert_true(strlen(out) < 40);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scope_check),
		cmocka_unit_test(test_label_check),
		cmocka_unit_test(test_pool_select),
		cmocka_unit_test(test_runner_name),
		cmocka_unit_test(test_parse_jit),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_parse_token),
		cmocka_unit_test(test_parse_runners),
		cmocka_unit_test(test_parse_group),
		cmocka_unit_test(test_link_next),
		cmocka_unit_test(test_error_text),
		cmocka_unit_test(test_json_whole),
		cmocka_unit_test(test_scope_url),
		cmocka_unit_test(test_endpoint_template),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
