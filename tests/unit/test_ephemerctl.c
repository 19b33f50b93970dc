/*
 * Unit tests for ephemerctl: the command line, the requests it makes, the
 * tables it prints, and its exit statuses.  The program's file is included
 * so that its static functions can be called; its main() is left out.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

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

#include "../../httpd/ephemerctl.c"

/* Parses a NULL-terminated list of words as if it followed argv[0]. */
static int
parse(struct ctl_opts *o, char *err, size_t errlen, ...)
{
	char	*argv[32];
	va_list	 ap;
	int	 argc = 0;

	argv[argc++] = "ephemerctl";
	va_start(ap, errlen);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	ctl_opts_init(o, NULL, NULL);
	err[0] = '\0';
	return ctl_parse_args(o, argc, argv, err, errlen);
}

static void
test_parse_defaults_and_environment(void **state)
{
	struct ctl_opts	 o;
	char		*argv[] = { "ephemerctl", "list", NULL };
	char		 err[256];

	(void)state;
	ctl_opts_init(&o, NULL, NULL);
	assert_int_equal(ctl_parse_args(&o, 2, argv, err, sizeof(err)), 0);
	assert_string_equal(o.co_url, CTL_DEFAULT_URL);
	assert_null(o.co_token);
	assert_int_equal(o.co_cmd, CMD_LIST);

	/* Empty variables count as unset; flags beat variables. */
	ctl_opts_init(&o, "", "");
	assert_string_equal(o.co_url, CTL_DEFAULT_URL);
	assert_null(o.co_token);
	ctl_opts_init(&o, "http://h:1", "tok");
	assert_string_equal(o.co_url, "http://h:1");
	assert_string_equal(o.co_token, "tok");
	{
		char	*argv2[] = { "ephemerctl", "--url=https://x:2",
		    "list", "--token", "t2", NULL };

		assert_int_equal(ctl_parse_args(&o, 5, argv2, err,
		    sizeof(err)), 0);
		assert_string_equal(o.co_url, "https://x:2");
		assert_string_equal(o.co_token, "t2");
	}
}

static void
test_parse_create(void **state)
{
	struct ctl_opts	 o;
	char		 err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "--json", "create",
	    "--scope", "org", "--scope-name=octo", "--count", "3",
	    "--label", "a", "--label=b", "--name", "n1", "--group", "g",
	    NULL), 0);
	assert_int_equal(o.co_cmd, CMD_CREATE);
	assert_true(o.co_json);
	assert_string_equal(o.co_scope, "org");
	assert_string_equal(o.co_scope_name, "octo");
	assert_int_equal(o.co_count, 3);
	assert_int_equal(o.co_nlabels, 2);
	assert_string_equal(o.co_labels[0], "a");
	assert_string_equal(o.co_labels[1], "b");
	assert_string_equal(o.co_name, "n1");
	assert_string_equal(o.co_group, "g");
}

static void
test_parse_runner_id(void **state)
{
	struct ctl_opts	 o;
	char		 err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "logs", "r1", "--tail",
	    "20", NULL), 0);
	assert_int_equal(o.co_cmd, CMD_LOGS);
	assert_string_equal(o.co_arg, "r1");
	assert_int_equal(o.co_tail, 20);

	/* After "--" a word that looks like an option is the id. */
	assert_int_equal(parse(&o, err, sizeof(err), "show", "--", "--x",
	    NULL), 0);
	assert_string_equal(o.co_arg, "--x");
}

/* Each bad command line fails with a message that names the problem. */
static void
test_parse_errors(void **state)
{
	static const struct {
		const char	*args[8];
		const char	*want;
	} cases[] = {
		{ { NULL }, "no command" },
		{ { "frob", NULL }, "unknown command 'frob'" },
		{ { "list", "extra", NULL }, "unexpected argument 'extra'" },
		{ { "show", NULL }, "show needs a runner ID" },
		{ { "destroy", NULL }, "destroy needs a runner ID" },
		{ { "show", "a", "b", NULL }, "unexpected argument 'b'" },
		{ { "list", "--tail", "5", NULL },
		    "list does not take --tail" },
		{ { "--count", "2", "health", NULL },
		    "health does not take --count" },
		{ { "list", "--frob", NULL }, "unknown option --frob" },
		{ { "list", "-x", NULL }, "unknown option -x" },
		{ { "list", "--json=1", NULL }, "--json takes no value" },
		{ { "list", "--url", NULL }, "--url needs a value" },
		{ { "--url", "ftp://x", "list", NULL }, "must begin with" },
		{ { "create", "--scope", "team", "--scope-name", "a", NULL },
		    "--scope repo or --scope org" },
		{ { "create", "--scope", "repo", NULL },
		    "create needs --scope-name" },
		{ { "create", "--scope", "repo", "--scope-name", "a/b",
		    "--count", "0", NULL }, "not a positive integer" },
		{ { "create", "--scope", "repo", "--scope-name", "a/b",
		    "--count", "2x", NULL }, "not a positive integer" },
		{ { "logs", "r", "--tail", "-1", NULL },
		    "not a positive integer" },
		{ { "help", "frob", NULL }, "no such command 'frob'" },
	};
	struct ctl_opts	 o;
	char		*argv[10], err[256];
	size_t		 i;
	int		 argc;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		argv[0] = "ephemerctl";
		for (argc = 1; cases[i].args[argc - 1] != NULL; argc++)
			argv[argc] = (char *)cases[i].args[argc - 1];
		argv[argc] = NULL;
		ctl_opts_init(&o, NULL, NULL);
		err[0] = '\0';
		if (ctl_parse_args(&o, argc, argv, err, sizeof(err)) != -1)
			fail_msg("case %zu was accepted", i);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err,
			    cases[i].want);
	}
}

static void
test_parse_labels_limit(void **state)
{
	struct ctl_opts	 o;
	char		*argv[8 + 2 * (CTL_MAX_LABELS + 1)], err[256];
	int		 argc = 0, i;

	(void)state;
	argv[argc++] = "ephemerctl";
	argv[argc++] = "create";
	argv[argc++] = "--scope=repo";
	argv[argc++] = "--scope-name=a/b";
	for (i = 0; i < CTL_MAX_LABELS; i++) {
		argv[argc++] = "--label";
		argv[argc++] = "l";
	}
	ctl_opts_init(&o, NULL, NULL);
	assert_int_equal(ctl_parse_args(&o, argc, argv, err, sizeof(err)), 0);
	assert_int_equal(o.co_nlabels, CTL_MAX_LABELS);

	argv[argc++] = "--label";
	argv[argc++] = "one-too-many";
	ctl_opts_init(&o, NULL, NULL);
	assert_int_equal(ctl_parse_args(&o, argc, argv, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "at most"));
}

static void
test_parse_help(void **state)
{
	struct ctl_opts	 o;
	char		 err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "--help", NULL), 0);
	assert_true(o.co_help);
	assert_int_equal(o.co_cmd, CMD_NONE);
	/* A command's --help needs none of the command's arguments. */
	assert_int_equal(parse(&o, err, sizeof(err), "create", "-h", NULL), 0);
	assert_true(o.co_help);
	assert_int_equal(o.co_cmd, CMD_CREATE);
	assert_int_equal(parse(&o, err, sizeof(err), "help", "logs", NULL), 0);
	assert_int_equal(o.co_cmd, CMD_HELP);
	assert_string_equal(o.co_arg, "logs");
}

/* Builds the request for a command line; returns the method. */
static const char *
request_for(struct buf *path, struct buf *body, ...)
{
	struct ctl_opts	 o;
	char		*argv[32], err[256];
	va_list		 ap;
	int		 argc = 0;

	argv[argc++] = "ephemerctl";
	va_start(ap, body);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	ctl_opts_init(&o, NULL, NULL);
	if (ctl_parse_args(&o, argc, argv, err, sizeof(err)) == -1)
		fail_msg("parse: %s", err);
	buf_reset(path);
	buf_reset(body);
	return ctl_build_request(&o, path, body);
}

static void
test_requests(void **state)
{
	struct buf	 path, body;

	(void)state;
	buf_init(&path);
	buf_init(&body);
	assert_string_equal(request_for(&path, &body, "list", NULL), "GET");
	assert_string_equal(buf_cstr(&path), "/api/v1/runners");
	assert_int_equal(body.b_len, 0);

	/* Ids are escaped: they cannot reach another endpoint. */
	assert_string_equal(request_for(&path, &body, "destroy",
	    "../cleanup x", NULL), "DELETE");
	assert_string_equal(buf_cstr(&path),
	    "/api/v1/runners/..%2Fcleanup%20x");

	assert_string_equal(request_for(&path, &body, "logs", "r-1.a_b~",
	    "--tail", "7", NULL), "GET");
	assert_string_equal(buf_cstr(&path),
	    "/api/v1/runners/r-1.a_b~/logs?tail=7");

	assert_string_equal(request_for(&path, &body, "cleanup", NULL),
	    "POST");
	assert_string_equal(buf_cstr(&path), "/api/v1/runners/cleanup");
	request_for(&path, &body, "health", NULL);
	assert_string_equal(buf_cstr(&path), "/api/v1/health");
	request_for(&path, &body, "health", "--live", NULL);
	assert_string_equal(buf_cstr(&path), "/healthz");

	/* Only the fields given, strings escaped. */
	assert_string_equal(request_for(&path, &body, "create", "--scope",
	    "repo", "--scope-name", "o/r", NULL), "POST");
	assert_string_equal(buf_cstr(&body),
	    "{\"scope\":\"repo\",\"scope_name\":\"o/r\"}");
	request_for(&path, &body, "create", "--scope", "org", "--scope-name",
	    "o", "--count", "2", "--name", "a\"b", "--group", "g", "--label",
	    "x", "--label", "y", NULL);
	assert_string_equal(buf_cstr(&body),
	    "{\"scope\":\"org\",\"scope_name\":\"o\",\"count\":2,"
	    "\"runner_name\":\"a\\\"b\",\"runner_group\":\"g\","
	    "\"labels\":[\"x\",\"y\"]}");
	buf_free(&path);
	buf_free(&body);
}

static void
test_table_alignment(void **state)
{
	static const char *const r1[] = { "A", "LONGER", "Z" };
	static const char *const r2[] = { "wide cell", "b", "" };
	static const char *const r3[] = { "\xc3\xa9t\xc3\xa9", "x", "end" };
	struct ctl_table	 t;
	struct buf		 out;

	(void)state;
	buf_init(&out);
	ctl_table_init(&t, 3);
	ctl_table_add(&t, r1);
	ctl_table_add(&t, r2);
	ctl_table_add(&t, r3);
	ctl_table_render(&t, &out);
	/* "été" is three characters wide, not five bytes. */
	assert_string_equal(buf_cstr(&out),
	    "A          LONGER  Z\n"
	    "wide cell  b\n"
	    "\xc3\xa9t\xc3\xa9        x       end\n");
	ctl_table_free(&t);
	buf_free(&out);
}

static void
test_table_sanitizes(void **state)
{
	static const char *const row[] = { "a\x1b[31mred\n", "\xff\xfeok",
	    NULL };
	struct ctl_table	 t;
	struct buf		 out;

	(void)state;
	buf_init(&out);
	ctl_table_init(&t, 3);
	ctl_table_add(&t, row);
	ctl_table_render(&t, &out);
	assert_string_equal(buf_cstr(&out), "a?[31mred?  ??ok  -\n");
	ctl_table_free(&t);
	buf_free(&out);
}

/* Formats a body as ephemerctl would for the command cmd. */
static int
format(enum ctl_cmd cmd, const char *text, struct buf *out)
{
	struct ctl_opts		 o;
	struct ctl_answer	 a;
	int			 rc;

	ctl_opts_init(&o, NULL, NULL);
	o.co_cmd = cmd;
	memset(&a, 0, sizeof(a));
	buf_init(&a.ca_body);
	buf_add_str(&a.ca_body, text);
	a.ca_http = 200;
	ctl_answer_parse(&a);
	if (!a.ca_parsed)
		fail_msg("not parsed: %s", text);
	buf_reset(out);
	rc = ctl_format_answer(&o, &a, out);
	ctl_answer_free(&a);
	return rc;
}

static void
test_format_list_and_show(void **state)
{
	struct buf	 out;

	(void)state;
	buf_init(&out);
	assert_int_equal(format(CMD_LIST, "{\"status\":\"success\","
	    "\"data\":[{\"runner_id\":\"r1\",\"status\":\"idle\","
	    "\"pool\":\"default\",\"scope_name\":\"o/r\",\"created\":\"T\","
	    "\"container_id\":\"0123456789abcdef\"},{\"runner_id\":\"r22\","
	    "\"status\":\"busy\",\"pool\":\"p\",\"scope_name\":\"o\","
	    "\"created\":\"T\",\"container_id\":null}],\"message\":\"2\"}",
	    &out), 0);
	assert_string_equal(buf_cstr(&out),
	    "RUNNER  STATUS  POOL     SCOPE  CREATED  CONTAINER\n"
	    "r1      idle    default  o/r    T        0123456789ab\n"
	    "r22     busy    p        o      T        -\n");

	assert_int_equal(format(CMD_LIST, "{\"status\":\"success\","
	    "\"data\":[]}", &out), 0);
	assert_string_equal(buf_cstr(&out), "no runners\n");
	/* Data of the wrong shape is an error, not a crash. */
	assert_int_equal(format(CMD_LIST, "{\"status\":\"success\","
	    "\"data\":{}}", &out), -1);

	assert_int_equal(format(CMD_SHOW, "{\"status\":\"success\","
	    "\"data\":{\"runner_id\":\"r1\",\"labels\":{\"k\":\"v\"},"
	    "\"runner_labels\":[\"a\",\"b\"],\"exit_code\":0,\"job\":null}}",
	    &out), 0);
	assert_string_equal(buf_cstr(&out),
	    "runner_id:      r1\n"
	    "labels:\n"
	    "  k:            v\n"
	    "runner_labels:  a,b\n"
	    "exit_code:      0\n"
	    "job:            -\n");
	buf_free(&out);
}

static void
test_format_health_and_logs(void **state)
{
	struct buf	 out;

	(void)state;
	buf_init(&out);
	assert_int_equal(format(CMD_HEALTH, "{\"status\":\"error\",\"data\":"
	    "{\"processes\":{\"httpd\":{\"status\":\"ok\",\"pid\":7,"
	    "\"uptime\":3},\"docker\":{\"status\":\"ok\",\"pid\":9,"
	    "\"engine\":{\"socket\":\"/s\",\"reachable\":false}}},"
	    "\"healthy\":false}}", &out), 0);
	assert_string_equal(buf_cstr(&out),
	    "PROCESS  STATUS  PID  DETAIL\n"
	    "httpd    ok      7    up 3 s\n"
	    "docker   ok      9    Docker /s UNREACHABLE, version -\n"
	    "UNHEALTHY\n");

	assert_int_equal(format(CMD_LOGS, "{\"status\":\"success\",\"data\":"
	    "{\"runner_id\":\"r\",\"logs\":\"one\\ntwo\"}}", &out), 0);
	assert_string_equal(buf_cstr(&out), "one\ntwo\n");
	assert_int_equal(format(CMD_CLEANUP, "{\"status\":\"success\","
	    "\"data\":{\"removed\":2},\"message\":\"removed 2 runners\"}",
	    &out), 0);
	assert_string_equal(buf_cstr(&out), "removed 2 runners\n");
	buf_free(&out);
}

static void
test_answer_envelope(void **state)
{
	struct ctl_answer	 a;

	(void)state;
	memset(&a, 0, sizeof(a));
	buf_init(&a.ca_body);
	buf_add_str(&a.ca_body, "{\"status\":\"success\",\"data\":null,"
	    "\"message\":\"fine \\u00e9\"}");
	a.ca_http = 404;
	ctl_answer_parse(&a);
	/* A 4xx is an error even when the body says success. */
	assert_true(a.ca_parsed);
	assert_false(a.ca_ok);
	assert_string_equal(a.ca_message, "fine \xc3\xa9");
	ctl_answer_free(&a);

	buf_init(&a.ca_body);
	buf_add_str(&a.ca_body, "<html>bad gateway</html>");
	a.ca_http = 502;
	ctl_answer_parse(&a);
	assert_false(a.ca_parsed);
	assert_false(a.ca_ok);
	ctl_answer_free(&a);
}

/* Runs ctl_main with stdout and stderr thrown away. */
static int
run_main(int argc, char *argv[])
{
	int	 rc, out, err, null;

	fflush(stdout);
	fflush(stderr);
	out = dup(1);
	err = dup(2);
	null = open("/dev/null", O_WRONLY);
	assert_true(out != -1 && err != -1 && null != -1);
	dup2(null, 1);
	dup2(null, 2);
	rc = ctl_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(out, 1);
	dup2(err, 2);
	close(out);
	close(err);
	close(null);
	return rc;
}

/* A port of 127.0.0.1 on which nothing listens. */
static int
closed_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 s, port;

	s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(s);
	return port;
}

static void
test_exit_statuses(void **state)
{
	char	 url[64];
	char	*help[] = { "ephemerctl", "--help", NULL };
	char	*bad[] = { "ephemerctl", "list", "--count", "1", NULL };
	char	*down[] = { "ephemerctl", "--url", url, "list", NULL };

	(void)state;
	assert_int_equal(run_main(2, help), CTL_EXIT_OK);
	assert_int_equal(run_main(4, bad), CTL_EXIT_USAGE);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed_port());
	assert_int_equal(run_main(4, down), CTL_EXIT_CONNECT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_defaults_and_environment),
		cmocka_unit_test(test_parse_create),
		cmocka_unit_test(test_parse_runner_id),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_labels_limit),
		cmocka_unit_test(test_parse_help),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_table_alignment),
		cmocka_unit_test(test_table_sanitizes),
		cmocka_unit_test(test_format_list_and_show),
		cmocka_unit_test(test_format_health_and_logs),
		cmocka_unit_test(test_answer_envelope),
		cmocka_unit_test(test_exit_statuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
