/*
 * Unit tests for the workflow reader: every runs-on form, the errors and
 * their lines, the limits, and aliases that expand past the cap.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "util.h"
#include "workflow.h"

#define WF_DIR	TEST_DATA_DIR "/workflows"

static char *
read_file(const char *name, size_t *len)
{
	char	 path[512];
	char	*p;
	FILE	*f;
	long	 n;

	snprintf(path, sizeof(path), "%s/%s", WF_DIR, name);
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

static int
parse_file(struct workflow *wf, const char *name, char *err, size_t errlen)
{
	char	*text;
	size_t	 len;
	int	 rc;

	text = read_file(name, &len);
	rc = workflow_parse(wf, name, text, len, err, errlen);
	free(text);
	return rc;
}

static int
parse_str(struct workflow *wf, const char *text, char *err, size_t errlen)
{
	return workflow_parse(wf, "t.yml", text, strlen(text), err, errlen);
}

static const struct workflow_job *
find_job(const struct workflow *wf, const char *id)
{
	size_t	 i;

	for (i = 0; i < wf->wf_njobs; i++)
		if (strcmp(wf->wf_jobs[i].wj_id, id) == 0)
			return &wf->wf_jobs[i];
	fail_msg("no job '%s'", id);
	return NULL;
}

/* Checks a job's labels against a NULL-terminated list, in order. */
static void
check_labels(const struct workflow_job *job, ...)
{
	va_list		 ap;
	const char	*want;
	size_t		 i = 0;

	va_start(ap, job);
	while ((want = va_arg(ap, const char *)) != NULL) {
		assert_true(i < job->wj_labels.sl_count);
		assert_string_equal(job->wj_labels.sl_items[i], want);
		i++;
	}
	va_end(ap);
	assert_int_equal(job->wj_labels.sl_count, i);
}

static void
check_job(const struct workflow *wf, const char *id, int line,
    enum workflow_runs_on runs_on, enum workflow_need need)
{
	const struct workflow_job	*job = find_job(wf, id);

	assert_int_equal(job->wj_line, line);
	assert_int_equal(job->wj_runs_on, runs_on);
	assert_int_equal(job->wj_need, need);
}

static void
test_all_forms(void **state)
{
	struct workflow			 wf;
	const struct workflow_job	*job;
	char				 err[256];

	(void)state;
	assert_int_equal(parse_file(&wf, "all-forms.yml", err, sizeof(err)),
	    0);
	assert_int_equal(wf.wf_njobs, 13);

	check_job(&wf, "hosted", 8, WF_RUNS_ON_STATIC, WF_NEED_HOSTED);
	check_labels(find_job(&wf, "hosted"), "ubuntu-latest", NULL);
	check_job(&wf, "plain-self-hosted", 12, WF_RUNS_ON_STATIC,
	    WF_NEED_SELF_HOSTED);
	check_labels(find_job(&wf, "plain-self-hosted"), "self-hosted", NULL);
	check_job(&wf, "block-list", 16, WF_RUNS_ON_STATIC,
	    WF_NEED_SELF_HOSTED);
	check_labels(find_job(&wf, "block-list"), "self-hosted", "Linux",
	    "X64", NULL);
	check_labels(find_job(&wf, "flow-list"), "self-hosted", "linux",
	    "x64", "gpu", NULL);

	/* Expressions: the literal labels stay, the job is dynamic. */
	check_job(&wf, "mixed", 27, WF_RUNS_ON_DYNAMIC, WF_NEED_SELF_HOSTED);
	check_labels(find_job(&wf, "mixed"), "self-hosted", NULL);
	check_job(&wf, "matrix", 31, WF_RUNS_ON_DYNAMIC, WF_NEED_UNKNOWN);
	check_labels(find_job(&wf, "matrix"), NULL);

	/* Groups. */
	job = find_job(&wf, "group-only");
	assert_string_equal(job->wj_group, "build-runners");
	check_labels(job, NULL);
	assert_int_equal(job->wj_need, WF_NEED_UNKNOWN);
	job = find_job(&wf, "group-label");
	assert_string_equal(job->wj_group, "ubuntu-runners");
	check_labels(job, "ubuntu-24.04-16core", NULL);
	job = find_job(&wf, "group-labels");
	assert_string_equal(job->wj_group, "gpu-runners");
	check_labels(job, "self-hosted", "gpu", NULL);
	assert_int_equal(job->wj_need, WF_NEED_SELF_HOSTED);

	check_job(&wf, "custom-only", 53, WF_RUNS_ON_STATIC,
	    WF_NEED_SELF_HOSTED);
	check_job(&wf, "windows-arm", 57, WF_RUNS_ON_STATIC, WF_NEED_HOSTED);

	/* Reusable workflow calls have no runs-on and are no error. */
	job = find_job(&wf, "call");
	assert_int_equal(job->wj_runs_on, WF_RUNS_ON_NONE);
	assert_string_equal(job->wj_uses,
	    "octo-org/shared/.github/workflows/build.yml@v1");
	assert_null(job->wj_group);
	job = find_job(&wf, "call-local");
	assert_int_equal(job->wj_runs_on, WF_RUNS_ON_NONE);
	assert_string_equal(job->wj_uses, "./.github/workflows/deploy.yml");
	workflow_free(&wf);
}

static void
test_anchors(void **state)
{
	struct workflow	 wf;
	char		 err[256];

	(void)state;
	assert_int_equal(parse_file(&wf, "anchors.yml", err, sizeof(err)), 0);
	assert_int_equal(wf.wf_njobs, 2);
	check_labels(find_job(&wf, "first"), "self-hosted", "linux", "large",
	    NULL);
	check_labels(find_job(&wf, "second"), "self-hosted", "linux", "large",
	    NULL);
	workflow_free(&wf);
}

static void
expect_file_error(const char *name, const char *want)
{
	struct workflow	 wf;
	char		 err[256];

	assert_int_equal(parse_file(&wf, name, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("%s: got \"%s\", want \"%s\"", name, err, want);
	assert_null(wf.wf_jobs);
	assert_int_equal(wf.wf_njobs, 0);
}

static void
test_file_errors(void **state)
{
	(void)state;
	expect_file_error("syntax-error.yml", "syntax-error.yml:6: YAML "
	    "syntax error");
	expect_file_error("root-list.yml", "root-list.yml:1: a workflow must "
	    "be a mapping, not a sequence");
	expect_file_error("no-runs-on.yml", "no-runs-on.yml:9: job 'broken' "
	    "has neither 'runs-on' nor 'uses'");
	expect_file_error("nested-label.yml", "nested-label.yml:6: a runs-on "
	    "label must be a string, not a sequence");
}

static void
expect_error(const char *text, const char *want)
{
	struct workflow	 wf;
	char		 err[256];

	assert_int_equal(parse_str(&wf, text, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("got \"%s\", want \"%s\"", err, want);
	assert_int_equal(wf.wf_njobs, 0);
}

static void
test_errors(void **state)
{
	(void)state;
	expect_error("", "t.yml: the file is empty");
	expect_error("name: x\n", "t.yml:1: the workflow has no 'jobs'");
	expect_error("just text\n", "t.yml:1: a workflow must be a mapping");
	expect_error("jobs: [a, b]\n", "t.yml:1: 'jobs' must be a mapping");
	expect_error("jobs: {}\n", "t.yml:1: 'jobs' is empty");
	expect_error("jobs:\n  a:\n    runs-on:\n", "t.yml:3: a runs-on label "
	    "must not be empty");
	expect_error("jobs:\n  a:\n    runs-on: [x, '']\n", "t.yml:3: a "
	    "runs-on label must not be empty");
	expect_error("jobs:\n  a:\n    runs-on: []\n", "t.yml:3: job 'a': "
	    "runs-on must not be an empty list");
	expect_error("jobs:\n  a:\n    runs-on: {}\n", "t.yml:3: job 'a': "
	    "runs-on must not be an empty mapping");
	expect_error("jobs:\n  a:\n    runs-on: {group: g, image: x}\n",
	    "t.yml:3: job 'a': runs-on may hold 'group' and 'labels'");
	expect_error("jobs:\n  a: {runs-on: x}\n  a: {runs-on: y}\n",
	    "t.yml:3: job 'a' is defined twice");
	expect_error("jobs:\n  a: [x]\n", "t.yml:2: job 'a' must be a mapping");
	expect_error("jobs:\n  a:\n    runs-on: x\n    uses: ./w.yml\n",
	    "t.yml:3: job 'a' has both 'runs-on' and 'uses'");
	expect_error("jobs:\n  a:\n    runs-on: x\n    runs-on: y\n",
	    "t.yml:4: job 'a' has two 'runs-on' keys");
	expect_error("jobs:\n  ? [x]\n  : {runs-on: x}\n",
	    "t.yml:2: a job id must be a string, not a sequence");
	expect_error("jobs: {a: {runs-on: x}}\njobs: {b: {runs-on: y}}\n",
	    "t.yml:2: 'jobs' is given twice");
}

/* A NUL byte in the middle of the text is refused, not read past. */
static void
test_nul_byte(void **state)
{
	static const char	 text[] = "jobs:\n  a: {runs-on: x\0y}\n";
	struct workflow		 wf;
	char			 err[256];

	(void)state;
	assert_int_equal(workflow_parse(&wf, "t.yml", text, sizeof(text) - 1,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "t.yml"));
}

static void
test_limits(void **state)
{
	struct workflow	 wf;
	struct buf	 b;
	char		 err[256];
	int		 i;

	(void)state;
	/* 100 labels pass, 101 do not. */
	buf_init(&b);
	buf_add_str(&b, "jobs:\n  a:\n    runs-on: [self-hosted");
	for (i = 1; i < WORKFLOW_MAX_LABELS; i++)
		buf_printf(&b, ", l%d", i);
	buf_add_str(&b, "]\n");
	assert_int_equal(parse_str(&wf, buf_cstr(&b), err, sizeof(err)), 0);
	assert_int_equal(wf.wf_jobs[0].wj_labels.sl_count,
	    WORKFLOW_MAX_LABELS);
	workflow_free(&wf);
	b.b_len -= 2;
	buf_add_str(&b, ", one-more]\n");
	assert_int_equal(parse_str(&wf, buf_cstr(&b), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "t.yml:3: job 'a' has more than 100"));

	/* 1,000 jobs pass, 1,001 do not. */
	buf_reset(&b);
	buf_add_str(&b, "jobs:\n");
	for (i = 0; i < WORKFLOW_MAX_JOBS; i++)
		buf_printf(&b, "  j%d: {runs-on: self-hosted}\n", i);
	assert_int_equal(parse_str(&wf, buf_cstr(&b), err, sizeof(err)), 0);
	assert_int_equal(wf.wf_njobs, WORKFLOW_MAX_JOBS);
	workflow_free(&wf);
	buf_add_str(&b, "  extra: {runs-on: self-hosted}\n");
	assert_int_equal(parse_str(&wf, buf_cstr(&b), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "t.yml:2: more than 1000 jobs"));

	/* Nesting: 50 levels pass, 1 MiB of brackets stops at level 65. */
	buf_reset(&b);
	buf_add_str(&b, "jobs: {a: {runs-on: x}}\nx: ");
	for (i = 0; i < 50; i++)
		buf_add_char(&b, '[');
	for (i = 0; i < 50; i++)
		buf_add_char(&b, ']');
	assert_int_equal(parse_str(&wf, buf_cstr(&b), err, sizeof(err)), 0);
	workflow_free(&wf);
	buf_reset(&b);
	buf_add_str(&b, "jobs: {a: {runs-on: x}}\nx: ");
	while (b.b_len < WORKFLOW_MAX_TEXT)
		buf_add_char(&b, '[');
	assert_int_equal(parse_str(&wf, buf_cstr(&b), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "t.yml:2: nested deeper than 64 levels"));

	/* Text over 1 MiB is refused before libyaml sees it. */
	buf_reset(&b);
	buf_add_str(&b, "jobs: {a: {runs-on: x}}\n#");
	while (b.b_len <= WORKFLOW_MAX_TEXT)
		buf_add_char(&b, 'x');
	assert_int_equal(parse_str(&wf, buf_cstr(&b), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger than"));
	b.b_len = WORKFLOW_MAX_TEXT;
	assert_int_equal(parse_str(&wf, buf_cstr(&b), err, sizeof(err)), 0);
	workflow_free(&wf);
	buf_free(&b);
}

/*
 * Builds a file whose jobs are all the same aliased mapping of npairs
 * keys: small text, njobs * npairs nodes to look at.
 */
static void
build_alias_jobs(struct buf *b, int njobs, int npairs)
{
	int	 i;

	buf_reset(b);
	buf_add_str(b, "x: &x {runs-on: self-hosted");
	for (i = 0; i < npairs; i++)
		buf_printf(b, ", k%d: 0", i);
	buf_add_str(b, "}\njobs:\n");
	for (i = 0; i < njobs; i++)
		buf_printf(b, "  j%d: *x\n", i);
}

static void
test_alias_bomb(void **state)
{
	struct workflow	 wf;
	struct buf	 b;
	char		 err[256];
	int		 i;

	(void)state;
	buf_init(&b);

	/* Moderate sharing is fine ... */
	build_alias_jobs(&b, 100, 100);
	assert_int_equal(parse_str(&wf, buf_cstr(&b), err, sizeof(err)), 0);
	assert_int_equal(wf.wf_njobs, 100);
	check_labels(&wf.wf_jobs[99], "self-hosted", NULL);
	workflow_free(&wf);

	/* ... a million nodes out of 30 kB of text is not. */
	build_alias_jobs(&b, 1000, 1000);
	assert_true(b.b_len < 40000);
	assert_int_equal(parse_str(&wf, buf_cstr(&b), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too large once its aliases are "
	    "expanded"));

	/* The classic "billion laughs" nests sequences of aliases. */
	buf_reset(&b);
	buf_add_str(&b, "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol]\n");
	for (i = 1; i < 10; i++)
		buf_printf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
		    "*a%d, *a%d]\n", i, i, i - 1, i - 1, i - 1, i - 1, i - 1,
		    i - 1, i - 1, i - 1);
	buf_add_str(&b, "jobs:\n  boom:\n    runs-on: *a9\n");
	assert_int_equal(parse_str(&wf, buf_cstr(&b), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "must be a string, not a sequence"));
	buf_free(&b);
}

static void
test_hosted_labels(void **state)
{
	static const char *const hosted[] = { "ubuntu-latest", "UBUNTU-24.04",
	    "ubuntu-22.04-arm", "windows-2022", "windows-11-arm",
	    "windows-latest", "macos-15", "macos-latest-large",
	    "macos-14-xlarge", "macos-13-intel" };
	static const char *const custom[] = { "self-hosted", "linux",
	    "ubuntu", "ubuntu-", "ubuntu-24.04-16core", "windows-2022-gpu",
	    "macos-fast", "my-ubuntu-latest", "ubuntu-24.04.arm", "" };
	size_t	 i;

	(void)state;
	for (i = 0; i < nitems(hosted); i++)
		if (!workflow_label_is_hosted(hosted[i]))
			fail_msg("'%s' should be hosted", hosted[i]);
	for (i = 0; i < nitems(custom); i++)
		if (workflow_label_is_hosted(custom[i]))
			fail_msg("'%s' should not be hosted", custom[i]);
}

static enum workflow_need
need_of(const char *a, const char *b)
{
	struct strlist		 sl = { NULL, 0 };
	enum workflow_need	 need;

	if (a != NULL)
		strlist_add(&sl, a);
	if (b != NULL)
		strlist_add(&sl, b);
	need = workflow_labels_need(&sl);
	strlist_clear(&sl, 0);
	return need;
}

static void
test_labels_need(void **state)
{
	(void)state;
	assert_int_equal(need_of(NULL, NULL), WF_NEED_UNKNOWN);
	assert_int_equal(need_of("ubuntu-latest", NULL), WF_NEED_HOSTED);
	assert_int_equal(need_of("Self-Hosted", NULL), WF_NEED_SELF_HOSTED);
	assert_int_equal(need_of("self-hosted", "ubuntu-latest"),
	    WF_NEED_SELF_HOSTED);
	assert_int_equal(need_of("linux", "gpu"), WF_NEED_SELF_HOSTED);
	assert_int_equal(need_of("gpu", "macos-14"), WF_NEED_HOSTED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_forms),
		cmocka_unit_test(test_anchors),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_alias_bomb),
		cmocka_unit_test(test_hosted_labels),
		cmocka_unit_test(test_labels_need),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
