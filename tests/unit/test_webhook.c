/*
 * Unit tests for webhook deliveries: GitHub's HMAC test vector and its
 * near misses, the real payloads of workflow_job and ping, and broken,
 * truncated and oddly shaped bodies.
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
#include "json.h"
#include "util.h"
#include "webhook.h"

#define FIXTURE_DIR	TEST_DATA_DIR "/../../double/fixtures"

static char *
read_fixture(const char *name, size_t *len)
{
	char	 path[512];
	char	*p;
	FILE	*f;
	long	 n;

	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, name);
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

struct vector {
	char	*v_secret;
	char	*v_payload;
	char	*v_header;
};

/* GitHub's documented test vector, read from the fixture. */
static void
load_vector(struct vector *v)
{
	struct json_doc	 doc;
	const char	*why;
	char		*text;
	size_t		 len;

	text = read_fixture("webhook-signature-test-vector.json", &len);
	assert_int_equal(json_parse(&doc, text, len, &why), 0);
	v->v_secret = json_member_str(&doc, 0, "secret");
	v->v_payload = json_member_str(&doc, 0, "payload");
	v->v_header = json_member_str(&doc, 0, "X-Hub-Signature-256");
	assert_non_null(v->v_secret);
	assert_non_null(v->v_payload);
	assert_non_null(v->v_header);
	json_free(&doc);
	free(text);
}

static void
free_vector(struct vector *v)
{
	free(v->v_secret);
	free(v->v_payload);
	free(v->v_header);
}

static int
verify(const struct vector *v, const char *payload, size_t len,
    const char *header, const char **why)
{
	return webhook_verify(v->v_secret, strlen(v->v_secret), payload, len,
	    header, why);
}

static void
test_hmac_vector(void **state)
{
	struct vector	 v;
	const char	*why = NULL;
	char		*upper, *p;

	(void)state;
	load_vector(&v);
	assert_int_equal(verify(&v, v.v_payload, strlen(v.v_payload),
	    v.v_header, &why), 0);

	/* Hex digits in capitals are the same digest. */
	upper = xstrdup(v.v_header);
	for (p = upper + strlen("sha256="); *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(verify(&v, v.v_payload, strlen(v.v_payload), upper,
	    &why), 0);
	free(upper);

	/* The empty body has a signature too, and it is another one. */
	assert_int_equal(verify(&v, "", 0, v.v_header, &why), -1);
	assert_string_equal(why, "signature does not match");
	free_vector(&v);
}

/* Every single flipped bit of the body, and of the digest, is refused. */
static void
test_hmac_flipped_bits(void **state)
{
	struct vector	 v;
	const char	*why;
	char		*body, *header;
	size_t		 len, i, hlen, plen = strlen("sha256=");
	int		 bit;

	(void)state;
	load_vector(&v);
	len = strlen(v.v_payload);
	body = xstrdup(v.v_payload);
	for (i = 0; i < len; i++)
		for (bit = 0; bit < 8; bit++) {
			body[i] ^= (char)(1 << bit);
			why = NULL;
			assert_int_equal(verify(&v, body, len, v.v_header,
			    &why), -1);
			assert_string_equal(why, "signature does not match");
			body[i] ^= (char)(1 << bit);
		}
	free(body);

	/* Changing one hex digit to another changes the digest. */
	header = xstrdup(v.v_header);
	hlen = strlen(header);
	for (i = plen; i < hlen; i++) {
		header[i] = header[i] == '0' ? '1' : '0';
		assert_int_equal(verify(&v, v.v_payload, len, header, &why),
		    -1);
		assert_string_equal(why, "signature does not match");
		header[i] = v.v_header[i];
	}
	free(header);

	/* The right header with the wrong secret. */
	assert_int_equal(webhook_verify("It's a secret to everybody", 26,
	    v.v_payload, len, v.v_header, &why), -1);
	free_vector(&v);
}

static void
test_hmac_bad_headers(void **state)
{
	struct vector	 v;
	struct buf	 b;
	const char	*why;
	size_t		 len;

	(void)state;
	load_vector(&v);
	len = strlen(v.v_payload);
	buf_init(&b);

	assert_int_equal(verify(&v, v.v_payload, len, NULL, &why), -1);
	assert_non_null(strstr(why, "missing"));
	assert_int_equal(verify(&v, v.v_payload, len, "", &why), -1);
	assert_non_null(strstr(why, "missing"));

	/* One digit short, one digit long. */
	buf_add(&b, v.v_header, strlen(v.v_header) - 1);
	assert_int_equal(verify(&v, v.v_payload, len, buf_cstr(&b), &why), -1);
	assert_non_null(strstr(why, "64 hex digits"));
	buf_reset(&b);
	buf_printf(&b, "%s0", v.v_header);
	assert_int_equal(verify(&v, v.v_payload, len, buf_cstr(&b), &why), -1);
	assert_non_null(strstr(why, "64 hex digits"));

	/* Another algorithm, no prefix, a non-hex digit, trailing space. */
	buf_reset(&b);
	buf_printf(&b, "sha1=%s", v.v_header + strlen("sha256="));
	assert_int_equal(verify(&v, v.v_payload, len, buf_cstr(&b), &why), -1);
	assert_int_equal(verify(&v, v.v_payload, len,
	    v.v_header + strlen("sha256="), &why), -1);
	buf_reset(&b);
	buf_add_str(&b, v.v_header);
	b.b_data[20] = 'g';
	assert_int_equal(verify(&v, v.v_payload, len, buf_cstr(&b), &why), -1);
	assert_non_null(strstr(why, "64 hex digits"));
	buf_reset(&b);
	buf_printf(&b, "%s ", v.v_header);
	assert_int_equal(verify(&v, v.v_payload, len, buf_cstr(&b), &why), -1);

	/* No secret configured: nothing verifies. */
	assert_int_equal(webhook_verify("", 0, v.v_payload, len, v.v_header,
	    &why), -1);
	assert_int_equal(webhook_verify(NULL, 0, v.v_payload, len, v.v_header,
	    &why), -1);

	/* The reason never carries the signature. */
	assert_null(strstr(why, v.v_header + strlen("sha256=")));
	buf_free(&b);
	free_vector(&v);
}

struct expect_job {
	const char		*ej_file;
	enum webhook_action	 ej_action;
	uint64_t		 ej_id;
	uint64_t		 ej_run_id;
	const char		*ej_labels[3];
	const char		*ej_status;
	const char		*ej_runner_name;
	const char		*ej_repo;
	const char		*ej_org;
	uint64_t		 ej_installation;
	const char		*ej_created_at;
	const char		*ej_conclusion;
};

/* What API.md §3.3 says each fixture holds. */
static const struct expect_job expect_jobs[] = {
	{ "webhook-workflow_job.queued.payload.json", WEBHOOK_QUEUED,
	    289782451, 2202229078, { "ubuntu-latest" }, "queued",
	    "GitHub Actions 5", "Codertocat/Hello-World", NULL, 3456996,
	    "2021-09-13T02:21:13Z", NULL },
	{ "webhook-workflow_job.in_progress.payload.json",
	    WEBHOOK_IN_PROGRESS, 289782451, 2202229078, { "ubuntu-latest" },
	    "in_progress", "GitHub Actions 5", "Codertocat/Hello-World", NULL,
	    1, "2021-09-13T02:21:13Z", NULL },
	{ "webhook-workflow_job.completed.success.with-organization."
	    "payload.json", WEBHOOK_COMPLETED, 289782451, 2202229078,
	    { "ubuntu-latest" }, "completed", "GitHub Actions 5",
	    "Codertocat/Hello-World", "Octocoders", 0, "2021-08-05T10:33:58Z",
	    "success" },
	{ "webhook-workflow_job.completed.failure.with-organization."
	    "payload.json", WEBHOOK_COMPLETED, 289782451, 2202229078,
	    { "ubuntu-latest" }, "completed", "GitHub Actions 5",
	    "Codertocat/Hello-World", "Octocoders", 0, "2021-08-05T10:33:58Z",
	    "failure" },
	{ "webhook-workflow_job.waiting.payload.json", WEBHOOK_WAITING,
	    12877621891ULL, 4747967848ULL, { "self-hosted", "k8s" },
	    "waiting", NULL, "lineville/elastic-machines-testing", NULL,
	    23154469, "2023-04-19T21:12:12Z", NULL },
	{ "webhook-workflow_job.queued.self-hosted.terraform-aws-github-"
	    "runner.json", WEBHOOK_QUEUED, 3169272040ULL, 1068820843,
	    { "self-hosted" }, "queued", NULL,
	    "github-aws-runners/terraform-aws-github-runner",
	    "github-aws-runners", 0, NULL, NULL },
};

static void
assert_opt_str(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else {
		assert_non_null(got);
		assert_string_equal(got, want);
	}
}

static void
test_workflow_job_fixtures(void **state)
{
	const struct expect_job	*ej;
	struct webhook_delivery	 wd;
	char			*body, err[256];
	size_t			 i, k, len;

	(void)state;
	for (i = 0; i < nitems(expect_jobs); i++) {
		ej = &expect_jobs[i];
		body = read_fixture(ej->ej_file, &len);
		if (webhook_parse(&wd, "workflow_job", body, len, err,
		    sizeof(err)) == -1)
			fail_msg("%s: %s", ej->ej_file, err);
		assert_int_equal(wd.wd_event, WEBHOOK_WORKFLOW_JOB);
		assert_int_equal(wd.wd_action, ej->ej_action);
		assert_int_equal(wd.wd_job_id, ej->ej_id);
		assert_int_equal(wd.wd_run_id, ej->ej_run_id);
		for (k = 0; ej->ej_labels[k] != NULL; k++) {
			assert_true(k < wd.wd_labels.sl_count);
			assert_string_equal(wd.wd_labels.sl_items[k],
			    ej->ej_labels[k]);
		}
		assert_int_equal(wd.wd_labels.sl_count, k);
		assert_string_equal(wd.wd_status, ej->ej_status);
		assert_opt_str(wd.wd_runner_name, ej->ej_runner_name);
		assert_string_equal(wd.wd_repository, ej->ej_repo);
		assert_opt_str(wd.wd_organization, ej->ej_org);
		assert_int_equal(wd.wd_installation_id, ej->ej_installation);
		assert_opt_str(wd.wd_created_at, ej->ej_created_at);
		assert_opt_str(wd.wd_conclusion, ej->ej_conclusion);
		webhook_delivery_free(&wd);
		free(body);
	}
}

static void
test_ping_fixtures(void **state)
{
	static const char *const files[] = {
	    "webhook-ping.with-organization.payload.json",
	    "webhook-ping.with-app_id.payload.json" };
	struct webhook_delivery	 wd;
	char			*body, err[256];
	size_t			 i, len;

	(void)state;
	for (i = 0; i < nitems(files); i++) {
		body = read_fixture(files[i], &len);
		assert_int_equal(webhook_parse(&wd, "ping", body, len, err,
		    sizeof(err)), 0);
		assert_int_equal(wd.wd_event, WEBHOOK_PING);
		assert_int_equal(wd.wd_hook_id, 109948940);
		assert_string_equal(wd.wd_zen,
		    "Anything added dilutes everything else.");
		assert_int_equal(wd.wd_action, WEBHOOK_ACTION_NONE);
		webhook_delivery_free(&wd);

		/* The same body as another event is ignored, not parsed. */
		assert_int_equal(webhook_parse(&wd, "push", body, len, err,
		    sizeof(err)), 0);
		assert_int_equal(wd.wd_event, WEBHOOK_IGNORED);
		webhook_delivery_free(&wd);

		/* A ping is no workflow_job. */
		assert_int_equal(webhook_parse(&wd, "workflow_job", body, len,
		    err, sizeof(err)), -1);
		free(body);
	}
}

/* Every truncation of a real payload is an error, never a crash. */
static void
test_truncated(void **state)
{
	struct webhook_delivery	 wd;
	char			*body, *copy, err[256];
	size_t			 len, n, k;

	(void)state;
	body = read_fixture("webhook-workflow_job.queued.payload.json", &len);
	for (n = 0; n < len; n++) {
		/* An exact-size copy, so that reading past it is caught. */
		copy = xmalloc(n + 1);
		memcpy(copy, body, n);
		err[0] = '\0';
		if (webhook_parse(&wd, "workflow_job", copy, n, err,
		    sizeof(err)) == 0) {
			/* Only trailing white space may be cut. */
			for (k = n; k < len; k++)
				assert_non_null(strchr(" \t\r\n", body[k]));
			webhook_delivery_free(&wd);
		} else
			assert_true(err[0] != '\0');
		free(copy);
	}
	free(body);
}

static void
expect_error(const char *event, const char *body, const char *want)
{
	struct webhook_delivery	 wd;
	char			 err[256];

	assert_int_equal(webhook_parse(&wd, event, body, strlen(body), err,
	    sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("got \"%s\", want \"%s\"", err, want);
	assert_null(wd.wd_repository);
	assert_int_equal(wd.wd_labels.sl_count, 0);
}

#define REPO	"\"repository\":{\"full_name\":\"o/r\"}"

static void
test_bad_shapes(void **state)
{
	struct buf	 b;
	int		 i;

	(void)state;
	expect_error("workflow_job", "{", "malformed JSON");
	expect_error("workflow_job", "[1]", "not a JSON object");
	expect_error(NULL, "{}", "missing X-GitHub-Event");
	expect_error("workflow_job", "{}", "'action' is missing");
	expect_error("workflow_job", "{\"action\":\"queued\"," REPO "}",
	    "'workflow_job' or 'repository'");
	expect_error("workflow_job", "{\"action\":\"queued\",\"workflow_job\":"
	    "{\"id\":\"1\",\"run_id\":2}," REPO "}", "workflow_job.id");
	expect_error("workflow_job", "{\"action\":\"queued\",\"workflow_job\":"
	    "{\"id\":-1,\"run_id\":2}," REPO "}", "workflow_job.id");
	expect_error("workflow_job", "{\"action\":\"queued\",\"workflow_job\":"
	    "{\"id\":1,\"run_id\":2,\"labels\":\"x\"}," REPO "}",
	    "labels is not an array");
	expect_error("workflow_job", "{\"action\":\"queued\",\"workflow_job\":"
	    "{\"id\":1,\"run_id\":2,\"labels\":[\"x\",3]}," REPO "}",
	    "labels[1]");
	expect_error("workflow_job", "{\"action\":\"queued\",\"workflow_job\":"
	    "{\"id\":1,\"run_id\":2,\"labels\":[],\"status\":\"queued\"},"
	    "\"repository\":{\"full_name\":\"noslash\"}}",
	    "repository.full_name");
	expect_error("workflow_job", "{\"action\":\"queued\",\"workflow_job\":"
	    "{\"id\":1,\"run_id\":2,\"labels\":[],\"status\":\"queued\","
	    "\"runner_name\":5}," REPO "}", ".runner_name");
	expect_error("ping", "{\"zen\":\"z\"}", "hook_id");

	/* 101 labels are more than GitHub allows. */
	buf_init(&b);
	buf_add_str(&b, "{\"action\":\"queued\",\"workflow_job\":{\"id\":1,"
	    "\"run_id\":2,\"status\":\"queued\",\"labels\":[\"a\"");
	for (i = 1; i <= WEBHOOK_MAX_LABELS; i++)
		buf_add_str(&b, ",\"a\"");
	buf_add_str(&b, "]}," REPO "}");
	expect_error("workflow_job", buf_cstr(&b), "more than 100 labels");
	buf_free(&b);
}

/* The smallest body that is accepted, and an action added later. */
static void
test_minimal_and_unknown_action(void **state)
{
	static const char	 body[] = "{\"action\":\"requested\","
	    "\"workflow_job\":{\"id\":1,\"run_id\":2,\"labels\":[],"
	    "\"status\":\"requested\",\"runner_name\":null},"
	    "\"organization\":null," REPO "}";
	struct webhook_delivery	 wd;
	char			 err[256];

	(void)state;
	assert_int_equal(webhook_parse(&wd, "workflow_job", body,
	    sizeof(body) - 1, err, sizeof(err)), 0);
	assert_int_equal(wd.wd_action, WEBHOOK_ACTION_OTHER);
	assert_int_equal(wd.wd_labels.sl_count, 0);
	assert_null(wd.wd_runner_name);
	assert_null(wd.wd_organization);
	assert_string_equal(webhook_action_name(WEBHOOK_IN_PROGRESS),
	    "in_progress");
	webhook_delivery_free(&wd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_vector),
		cmocka_unit_test(test_hmac_flipped_bits),
		cmocka_unit_test(test_hmac_bad_headers),
		cmocka_unit_test(test_workflow_job_fixtures),
		cmocka_unit_test(test_ping_fixtures),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_shapes),
		cmocka_unit_test(test_minimal_and_unknown_action),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
