/*
 * Unit tests for httpd's request policy: routes (and their agreement with
 * httpd/openapi.json), bearer tokens, CORS origins, trusted proxies and
 * the token buckets.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "httpd_policy.h"
#include "json.h"
#include "util.h"

static void
test_route_match(void **state)
{
	const struct httpd_route *rt;
	char	 p[65];

	(void)state;
	rt = httpd_route_match("/api/v1/runners", p, sizeof(p));
	assert_non_null(rt);
	assert_int_equal(rt->rt_id, ROUTE_RUNNERS);
	rt = httpd_route_match("/api/v1/runners/cleanup", p, sizeof(p));
	assert_int_equal(rt->rt_id, ROUTE_RUNNERS_CLEANUP);
	rt = httpd_route_match("/api/v1/runners/r-1.x", p, sizeof(p));
	assert_int_equal(rt->rt_id, ROUTE_RUNNER);
	assert_string_equal(p, "r-1.x");
	rt = httpd_route_match("/api/v1/runners/abc/logs", p, sizeof(p));
	assert_int_equal(rt->rt_id, ROUTE_RUNNER_LOGS);
	assert_string_equal(p, "abc");
	assert_null(httpd_route_match("/api/v1/runners/abc/other", p,
	    sizeof(p)));
	assert_null(httpd_route_match("/api/v1/runners/", p, sizeof(p)));
	assert_null(httpd_route_match("/api/v1/runnersx", p, sizeof(p)));
	assert_null(httpd_route_match("/", p, sizeof(p)));
	/* A segment longer than the buffer does not match. */
	assert_null(httpd_route_match("/api/v1/runners/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    p, sizeof(p)));
	assert_string_equal(httpd_route_allow(RM_GET | RM_DELETE),
	    "GET, HEAD, DELETE");
}

/* Every route of the table is where enum route_id says it is. */
static void
test_route_table_order(void **state)
{
	size_t	 i;

	(void)state;
	for (i = 0; i < ROUTE_COUNT; i++)
		assert_int_equal(httpd_routes[i].rt_id, i);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE	*f = fopen(path, "rb");
	char	*data;
	long	 n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	data = xmalloc((size_t)n + 1);
	assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
	data[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return data;
}

static int
openapi_method_bit(const char *m)
{
	if (strcmp(m, "get") == 0)
		return RM_GET;
	if (strcmp(m, "post") == 0)
		return RM_POST;
	if (strcmp(m, "delete") == 0)
		return RM_DELETE;
	return -1;
}

/*
 * The documented paths and methods of openapi.json are exactly those of
 * the route table: a route added, removed or changed on one side only
 * fails here.
 */
static void
test_openapi_matches_routes(void **state)
{
	struct json_doc	 doc;
	const char	*why;
	char		*text, *path, *method;
	size_t		 len, i;
	int		 paths, key, val, mkey, n, m, j, k, bit;
	int		 seen[ROUTE_COUNT] = { 0 };
	const struct httpd_route *rt;

	(void)state;
	text = read_file(OPENAPI_JSON, &len);
	assert_int_equal(json_parse(&doc, text, len, &why), 0);
	paths = json_object_get(&doc, 0, "paths");
	assert_int_not_equal(paths, -1);
	n = json_size(&doc, paths);
	for (j = 0, key = paths + 1; j < n; j++) {
		val = key + 1;
		path = json_get_str(&doc, key);
		rt = NULL;
		for (i = 0; i < ROUTE_COUNT; i++)
			if (strcmp(httpd_routes[i].rt_template, path) == 0)
				rt = &httpd_routes[i];
		if (rt == NULL)
			fail_msg("openapi.json documents %s, not served", path);
		assert_true(rt->rt_documented);
		m = json_size(&doc, val);
		for (k = 0, mkey = val + 1; k < m; k++) {
			method = json_get_str(&doc, mkey);
			bit = openapi_method_bit(method);
			if (bit == -1 || !(rt->rt_methods & bit))
				fail_msg("openapi.json: %s %s not served",
				    method, path);
			seen[rt->rt_id] |= bit;
			free(method);
			mkey = json_skip(&doc, mkey + 1);
		}
		free(path);
		key = json_skip(&doc, val);
	}
	for (i = 0; i < ROUTE_COUNT; i++)
		if (httpd_routes[i].rt_documented &&
		    seen[i] != httpd_routes[i].rt_methods)
			fail_msg("%s: served methods %#x, documented %#x",
			    httpd_routes[i].rt_template,
			    httpd_routes[i].rt_methods, seen[i]);
	json_free(&doc);
	free(text);
}

static void
test_tokens(void **state)
{
	char		*items[] = { "alpha-token", "beta" };
	struct strlist	 tokens = { items, 2 };
	struct strlist	 none = { NULL, 0 };

	(void)state;
	assert_true(httpd_token_ok(&tokens, "Bearer alpha-token"));
	assert_true(httpd_token_ok(&tokens, "bearer beta"));
	assert_false(httpd_token_ok(&tokens, "Bearer alpha"));
	assert_false(httpd_token_ok(&tokens, "Bearer alpha-token2"));
	assert_false(httpd_token_ok(&tokens, "Bearer "));
	assert_false(httpd_token_ok(&tokens, "Basic YmV0YQ=="));
	assert_false(httpd_token_ok(&tokens, "beta"));
	assert_false(httpd_token_ok(&tokens, NULL));
	assert_false(httpd_token_ok(&none, "Bearer beta"));
}

static void
test_cors(void **state)
{
	char		*any[] = { "*" };
	char		*list[] = {
		"https://a.example", "http://b.example:8080"
	};
	struct strlist	 all = { any, 1 }, some = { list, 2 };

	(void)state;
	assert_string_equal(httpd_cors_origin(&all, "https://x.example"),
	    "*");
	assert_string_equal(httpd_cors_origin(&some,
	    "http://b.example:8080"), "http://b.example:8080");
	assert_null(httpd_cors_origin(&some, "http://b.example"));
	assert_null(httpd_cors_origin(&some, "https://a.example.evil"));
	assert_null(httpd_cors_origin(&some, NULL));
	assert_null(httpd_cors_origin(&all, ""));
}

static void
test_netmask(void **state)
{
	struct netmask	 nm;

	(void)state;
	assert_int_equal(netmask_parse("10.1.0.0/16", &nm), 0);
	assert_true(netmask_match(&nm, "10.1.255.3"));
	assert_false(netmask_match(&nm, "10.2.0.1"));
	assert_false(netmask_match(&nm, "::1"));
	assert_true(netmask_match(&nm, "::ffff:10.1.2.3"));
	assert_int_equal(netmask_parse("192.168.1.128/25", &nm), 0);
	assert_true(netmask_match(&nm, "192.168.1.200"));
	assert_false(netmask_match(&nm, "192.168.1.100"));
	assert_int_equal(netmask_parse("127.0.0.1", &nm), 0);
	assert_true(netmask_match(&nm, "127.0.0.1"));
	assert_false(netmask_match(&nm, "127.0.0.2"));
	assert_int_equal(netmask_parse("fd00::/8", &nm), 0);
	assert_true(netmask_match(&nm, "fd12:3456::1"));
	assert_false(netmask_match(&nm, "fe80::1"));
	assert_int_equal(netmask_parse("0.0.0.0/0", &nm), 0);
	assert_true(netmask_match(&nm, "8.8.8.8"));
	assert_false(netmask_match(&nm, "not-an-address"));
	assert_int_equal(netmask_parse("10.0.0.0/33", &nm), -1);
	assert_int_equal(netmask_parse("10.0.0/8", &nm), -1);
	assert_int_equal(netmask_parse("/8", &nm), -1);
	assert_int_equal(netmask_parse("example.com", &nm), -1);
}

static void
test_client_addr(void **state)
{
	struct netmask	 proxies[2];
	char		 out[48];

	(void)state;
	assert_int_equal(netmask_parse("127.0.0.1", &proxies[0]), 0);
	assert_int_equal(netmask_parse("10.0.0.0/8", &proxies[1]), 0);

	/* An untrusted peer's header is ignored. */
	httpd_client_addr(proxies, 2, "192.0.2.7", "1.2.3.4", out,
	    sizeof(out));
	assert_string_equal(out, "192.0.2.7");
	/* The hop the trusted proxy added, not what the client wrote. */
	httpd_client_addr(proxies, 2, "127.0.0.1", "6.6.6.6, 198.51.100.9",
	    out, sizeof(out));
	assert_string_equal(out, "198.51.100.9");
	/* Trusted hops are skipped from the right. */
	httpd_client_addr(proxies, 2, "127.0.0.1",
	    "6.6.6.6,198.51.100.9 , 10.2.3.4", out, sizeof(out));
	assert_string_equal(out, "198.51.100.9");
	httpd_client_addr(proxies, 2, "127.0.0.1", "2001:db8::5", out,
	    sizeof(out));
	assert_string_equal(out, "2001:db8::5");
	/* A malformed hop stops the walk at the last believed address. */
	httpd_client_addr(proxies, 2, "127.0.0.1", "1.1.1.1, garbage", out,
	    sizeof(out));
	assert_string_equal(out, "127.0.0.1");
	httpd_client_addr(proxies, 2, "127.0.0.1", "", out, sizeof(out));
	assert_string_equal(out, "127.0.0.1");
	httpd_client_addr(proxies, 2, "127.0.0.1", NULL, out, sizeof(out));
	assert_string_equal(out, "127.0.0.1");
	httpd_client_addr(proxies, 0, "127.0.0.1", "5.5.5.5", out,
	    sizeof(out));
	assert_string_equal(out, "127.0.0.1");
}

static void
test_ratelimit_bucket(void **state)
{
	struct ratelimit rl;
	unsigned int	 wait = 0;
	int		 i;

	(void)state;
	ratelimit_init(&rl, 2, 5, 100);
	for (i = 0; i < 5; i++)
		assert_int_equal(ratelimit_take(&rl, "a", 1000, &wait), 0);
	assert_int_equal(ratelimit_take(&rl, "a", 1000, &wait), -1);
	assert_int_equal(wait, 1);
	/* Another client has its own bucket. */
	assert_int_equal(ratelimit_take(&rl, "b", 1000, &wait), 0);
	/* 2 per second: one token after 500 ms, not before. */
	assert_int_equal(ratelimit_take(&rl, "a", 1400, &wait), -1);
	assert_int_equal(ratelimit_take(&rl, "a", 1500, &wait), 0);
	assert_int_equal(ratelimit_take(&rl, "a", 1500, &wait), -1);
	/* Refill stops at the burst. */
	for (i = 0; i < 5; i++)
		assert_int_equal(ratelimit_take(&rl, "a", 100000, &wait), 0);
	assert_int_equal(ratelimit_take(&rl, "a", 100000, &wait), -1);
	ratelimit_free(&rl);

	/* A slow rate asks for a longer wait. */
	ratelimit_init(&rl, 1, 1, 10);
	ratelimit_set(&rl, 1, 1);
	assert_int_equal(ratelimit_take(&rl, "c", 0, &wait), 0);
	assert_int_equal(ratelimit_take(&rl, "c", 0, &wait), -1);
	assert_int_equal(wait, 1);
	ratelimit_free(&rl);
}

/* A full table forgets the client idle the longest, and only that one. */
static void
test_ratelimit_eviction(void **state)
{
	struct ratelimit rl;
	unsigned int	 wait;
	char		 name[16];
	int		 i;

	(void)state;
	ratelimit_init(&rl, 1, 1, 3);
	assert_int_equal(ratelimit_take(&rl, "old", 0, &wait), 0);
	assert_int_equal(ratelimit_take(&rl, "mid", 10, &wait), 0);
	assert_int_equal(ratelimit_take(&rl, "new", 20, &wait), 0);
	/* "old" is used again: "mid" is now the idlest. */
	assert_int_equal(ratelimit_take(&rl, "old", 30, &wait), -1);
	assert_int_equal(ratelimit_take(&rl, "fourth", 40, &wait), 0);
	assert_int_equal(rl.rl_count, 3);
	/* "old" kept its empty bucket; "mid" starts afresh. */
	assert_int_equal(ratelimit_take(&rl, "old", 50, &wait), -1);
	assert_int_equal(ratelimit_take(&rl, "mid", 60, &wait), 0);
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		ratelimit_take(&rl, name, 100 + (uint64_t)i, &wait);
	}
	assert_int_equal(rl.rl_count, 3);
	ratelimit_free(&rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_match),
		cmocka_unit_test(test_route_table_order),
		cmocka_unit_test(test_openapi_matches_routes),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_cors),
		cmocka_unit_test(test_netmask),
		cmocka_unit_test(test_client_addr),
		cmocka_unit_test(test_ratelimit_bucket),
		cmocka_unit_test(test_ratelimit_eviction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
