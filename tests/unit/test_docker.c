/*
 * Unit tests for the docker worker's pure parts: placeholders, the create
 * call's body, the start request's wire form, event stream splitting and
 * parsing, log demultiplexing, container lists and the small helpers.
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
#include "docker_api.h"
#include "docker_runners.h"
#include "ipc.h"
#include "json.h"
#include "runner.h"
#include "util.h"

/* A die event exactly as Docker 20.10 sent it. */
static const char die_event[] =
    "{\"status\":\"die\",\"id\":\"3b92b9bab3506bb7a22c99c846b0504c698cc8e4"
    "f149d9b1f518072bc60dd9f5\",\"from\":\"ephemerd-test-busybox:latest\","
    "\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"3b92b9b"
    "ab3506bb7a22c99c846b0504c698cc8e4f149d9b1f518072bc60dd9f5\","
    "\"Attributes\":{\"exitCode\":\"3\",\"image\":\"ephemerd-test-busybox:"
    "latest\",\"io.ephemerd.instance\":\"t1\",\"io.ephemerd.managed\":"
    "\"true\",\"io.ephemerd.runner\":\"evtest\",\"name\":\"evtest\"}},"
    "\"scope\":\"local\",\"time\":1796328460,\"timeNano\":"
    "1796328460573878541}";

static const char destroy_event[] =
    "{\"Type\":\"container\",\"Action\":\"destroy\",\"Actor\":{\"ID\":"
    "\"abc123\",\"Attributes\":{\"name\":\"r1\"}},\"time\":1}";

static void
request_fill(struct start_request *sr, const char *scope,
    const char *scope_name)
{
	memset(sr, 0, sizeof(*sr));
	sr->sr_pool = xstrdup("default");
	sr->sr_name = xstrdup("runner-7");
	sr->sr_scope = xstrdup(scope);
	sr->sr_scope_name = xstrdup(scope_name);
	sr->sr_origin = xstrdup("auto");
	sr->sr_github_id = 9001;
	strlist_add(&sr->sr_labels, "self-hosted");
	strlist_add(&sr->sr_labels, "gpu");
	sr->sr_token = xstrdup("TOKEN-abc");
	sr->sr_jit = xstrdup("JIT-xyz");
}

static char *
expand(const char *value, const struct start_request *sr)
{
	struct expand_ctx	 ex;
	struct buf		 b;
	char			*s;

	ex.ex_req = sr;
	ex.ex_hostname = "host1";
	ex.ex_now = 1700000000;
	buf_init(&b);
	docker_expand(value, &ex, &b);
	s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

static void
test_expand_repo(void **state)
{
	struct start_request	 sr;
	char			*s;
	size_t			 i;
	static const char *const cases[][2] = {
		{ "{scope_name}", "octo/hello" },
		{ "{repo_owner}|{repo_name}|{repo_full_name}",
		    "octo|hello|octo/hello" },
		{ "{runner_name}@{pool}", "runner-7@default" },
		{ "{registration_token}/{jit_config}", "TOKEN-abc/JIT-xyz" },
		{ "{hostname} {timestamp} {timestamp_iso}",
		    "host1 1700000000 2023-11-14T22:13:20Z" },
		{ "{labels}", "self-hosted,gpu" },
		{ "https://github.com/{scope_name}",
		    "https://github.com/octo/hello" },
		/* Anything else in braces stays as it is. */
		{ "{\"a\": {x}} {} {runner_name",
		    "{\"a\": {x}} {} {runner_name" },
		{ "{{pool}}", "{default}" },
		{ "", "" },
	};

	(void)state;
	request_fill(&sr, "repo", "octo/hello");
	for (i = 0; i < nitems(cases); i++) {
		s = expand(cases[i][0], &sr);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
	docker_start_free(&sr);
}

static void
test_expand_org(void **state)
{
	struct start_request	 sr;
	char			*s;

	(void)state;
	request_fill(&sr, "org", "acme");
	s = expand("[{repo_owner}][{repo_name}][{repo_full_name}]", &sr);
	assert_string_equal(s, "[acme][][acme]");
	free(s);
	docker_start_free(&sr);
}

static void
pool_fill(struct pool *pl, int dind, uint64_t memory)
{
	config_pool_init(pl, "default");
	free(pl->pl_image);
	pl->pl_image = xstrdup("runner:1");
	free(pl->pl_command);
	pl->pl_command = xstrdup(dind ? "" : "run.sh --once");
	free(pl->pl_network);
	pl->pl_network = xstrdup("host");
	pl->pl_memory = memory;
	pl->pl_nano_cpus = 1500000000ULL;
	pl->pl_pids_limit = 0;
	pl->pl_docker_in_docker = dind;
	config_pool_setenv(pl, "JIT", "{jit_config}");
	config_pool_setenv(pl, "URL", "https://github.com/{scope_name}");
}

static void
create_body(int dind, uint64_t memory, struct json_doc *doc,
    struct buf *b)
{
	struct start_request	 sr;
	struct create_spec	 cs;
	struct pool		 pl;
	const char		*why;

	request_fill(&sr, "repo", "octo/hello");
	pool_fill(&pl, dind, memory);
	memset(&cs, 0, sizeof(cs));
	cs.cs_pool = &pl;
	cs.cs_req = &sr;
	cs.cs_instance = "ci-host";
	cs.cs_socket = "/run/docker.sock";
	cs.cs_hostname = "host1";
	cs.cs_now = 1700000000;
	buf_init(b);
	docker_create_body(&cs, b);
	assert_int_equal(json_parse(doc, (const char *)b->b_data, b->b_len,
	    &why), 0);
	config_pool_free(&pl);
	docker_start_free(&sr);
}

static void
assert_member(const struct json_doc *doc, int obj, const char *key,
    const char *want)
{
	char	*s = json_member_str(doc, obj, key);

	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static void
test_create_body(void **state)
{
	struct json_doc	 doc;
	struct buf	 b;
	int		 cmd, env, labels, host;
	int64_t		 v;

	(void)state;
	create_body(0, 1 << 30, &doc, &b);
	assert_member(&doc, 0, "Image", "runner:1");
	cmd = json_object_get(&doc, 0, "Cmd");
	assert_int_equal(json_size(&doc, cmd), 3);
	assert_true(json_streq(&doc, json_array_get(&doc, cmd, 0), "/bin/sh"));
	assert_true(json_streq(&doc, json_array_get(&doc, cmd, 2),
	    "run.sh --once"));
	env = json_object_get(&doc, 0, "Env");
	assert_int_equal(json_size(&doc, env), 2);
	assert_true(json_streq(&doc, json_array_get(&doc, env, 0),
	    "JIT=JIT-xyz"));
	assert_true(json_streq(&doc, json_array_get(&doc, env, 1),
	    "URL=https://github.com/octo/hello"));

	labels = json_object_get(&doc, 0, "Labels");
	assert_int_equal(json_size(&doc, labels), 9);
	assert_member(&doc, labels, LABEL_MANAGED, "true");
	assert_member(&doc, labels, LABEL_INSTANCE, "ci-host");
	assert_member(&doc, labels, LABEL_POOL, "default");
	assert_member(&doc, labels, LABEL_RUNNER, "runner-7");
	assert_member(&doc, labels, LABEL_SCOPE, "repo");
	assert_member(&doc, labels, LABEL_SCOPE_NAME, "octo/hello");
	assert_member(&doc, labels, LABEL_GITHUB_ID, "9001");
	assert_member(&doc, labels, LABEL_ORIGIN, "auto");
	assert_member(&doc, labels, LABEL_RUNNER_LABELS, "self-hosted,gpu");

	host = json_object_get(&doc, 0, "HostConfig");
	assert_int_equal(json_member_i64(&doc, host, "Memory", &v), 0);
	assert_int_equal(v, 1 << 30);
	assert_int_equal(json_member_i64(&doc, host, "NanoCpus", &v), 0);
	assert_int_equal(v, 1500000000);
	/* A limit of zero is no limit: not sent at all. */
	assert_int_equal(json_object_get(&doc, host, "PidsLimit"), -1);
	assert_member(&doc, host, "NetworkMode", "host");
	assert_int_equal(json_type(&doc, json_object_get(&doc, host,
	    "Privileged")), JSON_FALSE);
	assert_int_equal(json_type(&doc, json_object_get(&doc, host,
	    "AutoRemove")), JSON_FALSE);
	assert_int_equal(json_object_get(&doc, host, "Binds"), -1);
	json_free(&doc);
	buf_free(&b);
}

static void
test_create_body_dind(void **state)
{
	struct json_doc	 doc;
	struct buf	 b;
	int		 host, binds;

	(void)state;
	create_body(1, 0, &doc, &b);
	/* No command: the image's own. */
	assert_int_equal(json_object_get(&doc, 0, "Cmd"), -1);
	host = json_object_get(&doc, 0, "HostConfig");
	assert_int_equal(json_object_get(&doc, host, "Memory"), -1);
	assert_int_equal(json_type(&doc, json_object_get(&doc, host,
	    "Privileged")), JSON_TRUE);
	binds = json_object_get(&doc, host, "Binds");
	assert_int_equal(json_size(&doc, binds), 1);
	assert_true(json_streq(&doc, json_array_get(&doc, binds, 0),
	    "/run/docker.sock:/var/run/docker.sock"));
	json_free(&doc);
	buf_free(&b);
}

static void
test_start_wire(void **state)
{
	struct start_request	 sr, out;
	struct buf		 b;
	const char		*why;
	size_t			 cut;

	(void)state;
	request_fill(&sr, "repo", "octo/hello");
	buf_init(&b);
	docker_start_encode(&sr, &b);
	assert_int_equal(docker_start_decode(b.b_data, b.b_len, &out, &why),
	    0);
	assert_string_equal(out.sr_name, "runner-7");
	assert_string_equal(out.sr_scope_name, "octo/hello");
	assert_int_equal(out.sr_github_id, 9001);
	assert_int_equal(out.sr_labels.sl_count, 2);
	assert_string_equal(out.sr_labels.sl_items[1], "gpu");
	assert_string_equal(out.sr_jit, "JIT-xyz");
	docker_start_free(&out);

	/* Every truncation and one byte too many are refused. */
	for (cut = 0; cut < b.b_len; cut++)
		assert_int_equal(docker_start_decode(b.b_data, cut, &out,
		    &why), -1);
	buf_add_char(&b, 0);
	assert_int_equal(docker_start_decode(b.b_data, b.b_len, &out, &why),
	    -1);
	buf_free(&b);
	docker_start_free(&sr);
}

static void
assert_start_refused(const char *scope, const char *scope_name,
    const char *origin, const char *label, const char *want)
{
	struct start_request	 sr, out;
	struct buf		 b;
	const char		*why = NULL;

	request_fill(&sr, scope, scope_name);
	free(sr.sr_origin);
	sr.sr_origin = xstrdup(origin);
	if (label != NULL)
		strlist_add(&sr.sr_labels, label);
	buf_init(&b);
	docker_start_encode(&sr, &b);
	assert_int_equal(docker_start_decode(b.b_data, b.b_len, &out, &why),
	    -1);
	assert_string_equal(why, want);
	buf_free(&b);
	docker_start_free(&sr);
}

static void
test_start_refused(void **state)
{
	(void)state;
	assert_start_refused("team", "octo/hello", "api", NULL,
	    "scope is neither repo nor org");
	assert_start_refused("repo", "octo", "api", NULL,
	    "malformed scope name");
	assert_start_refused("repo", "octo/hello/x", "api", NULL,
	    "malformed scope name");
	assert_start_refused("org", "octo/hello", "api", NULL,
	    "malformed scope name");
	assert_start_refused("repo", "octo/he llo", "api", NULL,
	    "malformed scope name");
	assert_start_refused("repo", "octo/hello", "cron", NULL,
	    "origin is neither api nor auto");
	assert_start_refused("repo", "octo/hello", "api", "a,b",
	    "empty label or label with a comma");
}

struct line_log {
	struct buf	 ll_all;	/* lines joined with '|' */
	int		 ll_count;
};

static void
collect_line(const char *line, size_t len, void *arg)
{
	struct line_log	*ll = arg;

	buf_add(&ll->ll_all, line, len);
	buf_add_char(&ll->ll_all, '|');
	ll->ll_count++;
}

/* Any chunking gives the same lines as the whole stream. */
static void
test_lines_chunking(void **state)
{
	static const char	 stream[] = "{\"a\":1}\n\n{\"b\":2}\r\n{\"c\"";
	struct docker_lines	 dl;
	struct line_log		 ll;
	size_t			 len = sizeof(stream) - 1, step, i, n;

	(void)state;
	for (step = 1; step <= len; step++) {
		docker_lines_init(&dl);
		buf_init(&ll.ll_all);
		ll.ll_count = 0;
		for (i = 0; i < len; i += n) {
			n = len - i < step ? len - i : step;
			docker_lines_feed(&dl, stream + i, n, collect_line,
			    &ll);
		}
		assert_int_equal(ll.ll_count, 2);
		assert_string_equal(buf_cstr(&ll.ll_all),
		    "{\"a\":1}|{\"b\":2}|");
		/* The unfinished line waits for more. */
		assert_int_equal(dl.dl_buf.b_len, 4);
		docker_lines_free(&dl);
		buf_free(&ll.ll_all);
	}
}

static void
test_lines_overlong(void **state)
{
	struct docker_lines	 dl;
	struct line_log		 ll;
	char			*big;

	(void)state;
	big = xmalloc(DOCKER_LINE_MAX + 10);
	memset(big, 'x', DOCKER_LINE_MAX + 10);
	docker_lines_init(&dl);
	buf_init(&ll.ll_all);
	ll.ll_count = 0;
	docker_lines_feed(&dl, big, DOCKER_LINE_MAX + 10, collect_line, &ll);
	docker_lines_feed(&dl, "tail\nok\n", 8, collect_line, &ll);
	assert_int_equal(dl.dl_dropped, 1);
	assert_int_equal(ll.ll_count, 1);
	assert_string_equal(buf_cstr(&ll.ll_all), "ok|");
	docker_lines_free(&dl);
	buf_free(&ll.ll_all);
	free(big);
}

static void
test_event_parse(void **state)
{
	struct docker_event	 ev;
	static const char *const bad[] = {
		"", "[]", "{}", "not json",
		"{\"Type\":\"container\",\"Action\":\"die\"}",
		"{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{}}",
		"{\"Type\":1,\"Action\":\"die\",\"Actor\":{\"ID\":\"x\"}}",
		"{\"message\":\"client version 9.9 is too new\"}",
	};
	size_t			 i;

	(void)state;
	assert_int_equal(docker_event_parse(die_event, strlen(die_event),
	    &ev), 0);
	assert_string_equal(ev.ev_type, "container");
	assert_string_equal(ev.ev_action, "die");
	assert_int_equal(strlen(ev.ev_id), 64);
	assert_string_equal(ev.ev_name, "evtest");
	assert_string_equal(ev.ev_runner, "evtest");
	assert_string_equal(ev.ev_instance, "t1");
	assert_true(ev.ev_managed);
	assert_true(ev.ev_has_exit);
	assert_int_equal(ev.ev_exit_code, 3);
	docker_event_free(&ev);

	assert_int_equal(docker_event_parse(destroy_event,
	    strlen(destroy_event), &ev), 0);
	assert_string_equal(ev.ev_action, "destroy");
	assert_false(ev.ev_managed);
	assert_false(ev.ev_has_exit);
	assert_null(ev.ev_runner);
	docker_event_free(&ev);

	for (i = 0; i < nitems(bad); i++)
		assert_int_equal(docker_event_parse(bad[i], strlen(bad[i]),
		    &ev), -1);
}

static void
frame(struct buf *b, uint8_t stream, const char *text)
{
	uint8_t		 hdr[8] = { stream, 0, 0, 0, 0, 0, 0, 0 };
	uint32_t	 n = (uint32_t)strlen(text);

	hdr[4] = (uint8_t)(n >> 24);
	hdr[5] = (uint8_t)(n >> 16);
	hdr[6] = (uint8_t)(n >> 8);
	hdr[7] = (uint8_t)n;
	buf_add(b, hdr, sizeof(hdr));
	buf_add(b, text, n);
}

static void
test_demux(void **state)
{
	struct docker_demux	 dx;
	struct buf		 in, out;
	size_t			 step, i, n;

	(void)state;
	buf_init(&in);
	frame(&in, 1, "line one\n");
	frame(&in, 2, "err: two\n");
	frame(&in, 1, "");
	frame(&in, 1, "three\n");

	/* Whole, and in chunks of every size: the same text. */
	for (step = 1; step <= in.b_len; step++) {
		buf_init(&out);
		docker_demux_init(&dx, &out);
		for (i = 0; i < in.b_len; i += n) {
			n = in.b_len - i < step ? in.b_len - i : step;
			assert_int_equal(docker_demux_feed(&dx, in.b_data + i,
			    n), 0);
		}
		assert_string_equal(buf_cstr(&out),
		    "line one\nerr: two\nthree\n");
		buf_free(&out);
	}
	buf_free(&in);
}

static void
test_demux_not_multiplexed(void **state)
{
	struct buf	 in, out;

	(void)state;
	/* A TTY's output is copied as it is. */
	buf_init(&out);
	docker_log_demux((const uint8_t *)"hello\nworld\n", 12, &out);
	assert_string_equal(buf_cstr(&out), "hello\nworld\n");
	buf_free(&out);

	/* So is a stream whose last header is cut short. */
	buf_init(&in);
	frame(&in, 1, "ab");
	buf_add(&in, "\1\0\0", 3);
	buf_init(&out);
	docker_log_demux(in.b_data, in.b_len, &out);
	assert_int_equal(out.b_len, in.b_len);
	assert_memory_equal(out.b_data, in.b_data, in.b_len);
	buf_free(&out);
	buf_free(&in);
}

static const char list_body[] =
    "[{\"Id\":\"aaa111\",\"Names\":[\"/r-1\"],\"Image\":\"runner:1\","
    "\"Created\":1796328411,\"Labels\":{\"io.ephemerd.managed\":\"true\","
    "\"io.ephemerd.pool\":\"default\",\"io.ephemerd.runner\":\"r-1\","
    "\"io.ephemerd.scope\":\"org\",\"io.ephemerd.scope-name\":\"acme\","
    "\"io.ephemerd.github-runner-id\":\"77\",\"io.ephemerd.origin\":"
    "\"auto\",\"io.ephemerd.runner-labels\":\"self-hosted,,x64\"},"
    "\"State\":\"running\",\"Status\":\"Up 43 seconds\"},"
    "{\"Id\":\"bbb222\",\"Names\":[\"/r-2\"],\"Image\":\"runner:1\","
    "\"Labels\":{\"io.ephemerd.runner\":\"r-2\"},\"State\":\"exited\","
    "\"Status\":\"Exited (137) 2 seconds ago\"},"
    "{\"Id\":\"ccc333\",\"Labels\":{\"io.ephemerd.runner\":\"-bad name\"},"
    "\"State\":\"running\"}, 42]";

static void
test_list_parse(void **state)
{
	struct listed_container	*lcs;
	const char		*why;
	size_t			 n;

	(void)state;
	assert_int_equal(docker_list_parse(list_body, strlen(list_body), &lcs,
	    &n, &why), 0);
	assert_int_equal(n, 4);

	assert_true(lcs[0].lc_valid);
	assert_string_equal(lcs[0].lc_state, "running");
	assert_int_equal(lcs[0].lc_exit_code, -1);
	assert_string_equal(lcs[0].lc_runner.rn_name, "r-1");
	assert_string_equal(lcs[0].lc_runner.rn_container_id, "aaa111");
	assert_string_equal(lcs[0].lc_runner.rn_scope_name, "acme");
	assert_string_equal(lcs[0].lc_runner.rn_origin, "auto");
	assert_int_equal(lcs[0].lc_runner.rn_github_id, 77);
	assert_int_equal(lcs[0].lc_runner.rn_created, 1796328411);
	assert_int_equal(lcs[0].lc_runner.rn_labels.sl_count, 2);
	assert_string_equal(lcs[0].lc_runner.rn_labels.sl_items[1], "x64");

	assert_true(lcs[1].lc_valid);
	assert_int_equal(lcs[1].lc_exit_code, 137);
	assert_string_equal(lcs[1].lc_runner.rn_pool, "");
	assert_int_equal(lcs[1].lc_runner.rn_labels.sl_count, 0);

	/* A name Docker or GitHub would refuse is nobody's runner. */
	assert_false(lcs[2].lc_valid);
	assert_false(lcs[3].lc_valid);
	docker_list_free(lcs, n);

	assert_int_equal(docker_list_parse("{}", 2, &lcs, &n, &why), -1);
	assert_int_equal(docker_list_parse("[", 1, &lcs, &n, &why), -1);
}

static void
test_status_exit_code(void **state)
{
	(void)state;
	assert_int_equal(docker_status_exit_code("Exited (0) 1 second ago"),
	    0);
	assert_int_equal(docker_status_exit_code("Exited (255) now"), 255);
	assert_int_equal(docker_status_exit_code("Exited (256) now"), -1);
	assert_int_equal(docker_status_exit_code("Exited () now"), -1);
	assert_int_equal(docker_status_exit_code("Exited (12"), -1);
	assert_int_equal(docker_status_exit_code("Up 3 hours"), -1);
	assert_int_equal(docker_status_exit_code(NULL), -1);
}

static void
test_image_split(void **state)
{
	static const char *const cases[][3] = {
		{ "busybox", "busybox", "latest" },
		{ "busybox:1.36", "busybox", "1.36" },
		{ "myoung34/github-runner:latest", "myoung34/github-runner",
		    "latest" },
		{ "registry:5000/team/runner", "registry:5000/team/runner",
		    "latest" },
		{ "registry:5000/runner:v2", "registry:5000/runner", "v2" },
		{ "runner@sha256:abcd", "runner", "sha256:abcd" },
	};
	char	*repo, *tag;
	size_t	 i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		docker_image_split(cases[i][0], &repo, &tag);
		assert_string_equal(repo, cases[i][1]);
		assert_string_equal(tag, cases[i][2]);
		free(repo);
		free(tag);
	}
}

static void
test_api_prefix(void **state)
{
	char	 p[16];

	(void)state;
	assert_int_equal(docker_api_prefix("1.41", p, sizeof(p)), 0);
	assert_string_equal(p, "/v1.41");
	assert_int_equal(docker_api_prefix("1.45", p, sizeof(p)), 0);
	assert_string_equal(p, "/v1.41");
	assert_int_equal(docker_api_prefix("2.0", p, sizeof(p)), 0);
	assert_string_equal(p, "/v1.41");
	assert_int_equal(docker_api_prefix("1.24", p, sizeof(p)), 0);
	assert_string_equal(p, "/v1.24");
	assert_int_equal(docker_api_prefix("1", p, sizeof(p)), -1);
	assert_int_equal(docker_api_prefix("1.x", p, sizeof(p)), -1);
	assert_int_equal(docker_api_prefix("v1.41", p, sizeof(p)), -1);
	assert_int_equal(docker_api_prefix("1.41.2", p, sizeof(p)), -1);
	assert_int_equal(docker_api_prefix(NULL, p, sizeof(p)), -1);
}

static void
test_messages(void **state)
{
	static const char	 err[] =
	    "{\"message\":\"No such image: runner:\\\"1\\\"\"}";
	static const char	 pull[] =
	    "{\"errorDetail\":{\"message\":\"denied\"},\"error\":\"denied\"}";
	struct buf		 b;
	char			*s;

	(void)state;
	s = docker_error_message(err, sizeof(err) - 1);
	assert_string_equal(s, "No such image: runner:\"1\"");
	free(s);
	assert_null(docker_error_message("<html>", 6));
	s = docker_pull_error(pull, sizeof(pull) - 1);
	assert_string_equal(s, "denied");
	free(s);
	assert_null(docker_pull_error("{\"status\":\"Pulling\"}", 20));

	buf_init(&b);
	docker_url_escape(&b, "{\"label\":[\"a=b c\"]}~._-");
	assert_string_equal(buf_cstr(&b),
	    "%7B%22label%22%3A%5B%22a%3Db%20c%22%5D%7D~._-");
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand_repo),
		cmocka_unit_test(test_expand_org),
		cmocka_unit_test(test_create_body),
		cmocka_unit_test(test_create_body_dind),
		cmocka_unit_test(test_start_wire),
		cmocka_unit_test(test_start_refused),
		cmocka_unit_test(test_lines_chunking),
		cmocka_unit_test(test_lines_overlong),
		cmocka_unit_test(test_event_parse),
		cmocka_unit_test(test_demux),
		cmocka_unit_test(test_demux_not_multiplexed),
		cmocka_unit_test(test_list_parse),
		cmocka_unit_test(test_status_exit_code),
		cmocka_unit_test(test_image_split),
		cmocka_unit_test(test_api_prefix),
		cmocka_unit_test(test_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
