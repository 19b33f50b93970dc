/*
 * Webhook deliveries: the HMAC-SHA256 check of X-Hub-Signature-256 and
 * the fields of workflow_job and ping payloads that the scheduler uses.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "json.h"
#include "util.h"
#include "webhook.h"

#define SHA256_LEN	32
#define SIG_PREFIX	"sha256="

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes exactly 2 * SHA256_LEN hex digits. */
static int
hex_decode_digest(const char *hex, unsigned char *out)
{
	int	 hi, lo;
	size_t	 i;

	for (i = 0; i < SHA256_LEN; i++) {
		if ((hi = hex_value(hex[2 * i])) == -1 ||
		    (lo = hex_value(hex[2 * i + 1])) == -1)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return hex[2 * SHA256_LEN] == '\0' ? 0 : -1;
}

int
webhook_verify(const char *secret, size_t secretlen, const void *body,
    size_t len, const char *header, const char **why)
{
	unsigned char	 want[SHA256_LEN], got[EVP_MAX_MD_SIZE];
	unsigned int	 gotlen = 0;
	size_t		 plen = strlen(SIG_PREFIX);
	int		 rc = -1;

	if (secret == NULL || secretlen == 0 || secretlen > INT_MAX) {
		*why = "no webhook secret is configured";
		return -1;
	}
	if (header == NULL || *header == '\0') {
		*why = "missing " WEBHOOK_SIGNATURE_HEADER " header";
		return -1;
	}
	if (strncmp(header, SIG_PREFIX, plen) != 0 ||
	    strlen(header + plen) != 2 * SHA256_LEN ||
	    hex_decode_digest(header + plen, want) == -1) {
		*why = WEBHOOK_SIGNATURE_HEADER " is not sha256= and 64 hex "
		    "digits";
		return -1;
	}

	if (HMAC(EVP_sha256(), secret, (int)secretlen, body, len, got,
	    &gotlen) == NULL || gotlen != SHA256_LEN)
		*why = "cannot compute HMAC-SHA256";
	else if (CRYPTO_memcmp(want, got, SHA256_LEN) != 0)
		*why = "signature does not match";
	else
		rc = 0;
	explicit_bzero(got, sizeof(got));
	return rc;
}

static const struct {
	const char		*an_name;
	enum webhook_action	 an_action;
} action_names[] = {
	{ "queued", WEBHOOK_QUEUED },
	{ "in_progress", WEBHOOK_IN_PROGRESS },
	{ "completed", WEBHOOK_COMPLETED },
	{ "waiting", WEBHOOK_WAITING }
};

const char *
webhook_action_name(enum webhook_action action)
{
	size_t	 i;

	for (i = 0; i < nitems(action_names); i++)
		if (action_names[i].an_action == action)
			return action_names[i].an_name;
	return action == WEBHOOK_ACTION_NONE ? "none" : "other";
}

/* A positive integer member; -1 if absent, null or not one. */
static int
member_id(const struct json_doc *doc, int obj, const char *key,
    uint64_t *v)
{
	int64_t	 n;

	if (json_member_i64(doc, obj, key, &n) == -1 || n <= 0)
		return -1;
	*v = (uint64_t)n;
	return 0;
}

/* An optional string member: absent or null is NULL, another type -1. */
static int
member_opt_str(const struct json_doc *doc, int obj, const char *key,
    char **out)
{
	int	 tok;

	*out = NULL;
	tok = json_object_get(doc, obj, key);
	if (tok == -1 || json_type(doc, tok) == JSON_NULL)
		return 0;
	if ((*out = json_get_str(doc, tok)) == NULL)
		return -1;
	return 0;
}

static int
parse_labels(struct webhook_delivery *wd, const struct json_doc *doc,
    int arr, char *err, size_t errlen)
{
	char	*s;
	int	 n, i, tok;

	if (json_type(doc, arr) != JSON_ARRAY) {
		snprintf(err, errlen, "workflow_job.labels is not an array");
		return -1;
	}
	if ((n = json_size(doc, arr)) > WEBHOOK_MAX_LABELS) {
		snprintf(err, errlen, "workflow_job.labels has more than %d "
		    "labels", WEBHOOK_MAX_LABELS);
		return -1;
	}

	for (i = 0, tok = arr + 1; i < n; i++, tok = json_skip(doc, tok)) {
		if ((s = json_get_str(doc, tok)) == NULL || *s == '\0') {
			free(s);
			snprintf(err, errlen, "workflow_job.labels[%d] is not "
			    "a non-empty string", i);
			return -1;
		}
		strlist_add(&wd->wd_labels, s);
		free(s);
	}
	return 0;
}

static enum webhook_action
action_from_token(const struct json_doc *doc, int tok)
{
	size_t	 i;

	for (i = 0; i < nitems(action_names); i++)
		if (json_streq(doc, tok, action_names[i].an_name))
			return action_names[i].an_action;
	return WEBHOOK_ACTION_OTHER;
}

static int
parse_workflow_job(struct webhook_delivery *wd, const struct json_doc *doc,
    char *err, size_t errlen)
{
	int	 job, repo, org, inst, tok;

	tok = json_object_get(doc, 0, "action");
	if (json_type(doc, tok) != JSON_STRING) {
		snprintf(err, errlen, "'action' is missing or not a string");
		return -1;
	}
	wd->wd_action = action_from_token(doc, tok);

	job = json_object_get(doc, 0, "workflow_job");
	repo = json_object_get(doc, 0, "repository");
	if (json_type(doc, job) != JSON_OBJECT ||
	    json_type(doc, repo) != JSON_OBJECT) {
		snprintf(err, errlen, "'workflow_job' or 'repository' is "
		    "missing or not an object");
		return -1;
	}
	if (member_id(doc, job, "id", &wd->wd_job_id) == -1 ||
	    member_id(doc, job, "run_id", &wd->wd_run_id) == -1) {
		snprintf(err, errlen, "workflow_job.id or .run_id is missing "
		    "or not a positive integer");
		return -1;
	}
	if (parse_labels(wd, doc, json_object_get(doc, job, "labels"), err,
	    errlen) == -1)
		return -1;

	if ((wd->wd_status = json_member_str(doc, job, "status")) == NULL ||
	    (wd->wd_repository = json_member_str(doc, repo,
	    "full_name")) == NULL || strchr(wd->wd_repository, '/') == NULL) {
		snprintf(err, errlen, "workflow_job.status or "
		    "repository.full_name is missing or malformed");
		return -1;
	}
	if (member_opt_str(doc, job, "conclusion", &wd->wd_conclusion) == -1 ||
	    member_opt_str(doc, job, "runner_name",
	    &wd->wd_runner_name) == -1 ||
	    member_opt_str(doc, job, "created_at", &wd->wd_created_at) == -1) {
		snprintf(err, errlen, "workflow_job.conclusion, .runner_name "
		    "or .created_at is not a string");
		return -1;
	}
	(void)member_id(doc, job, "runner_id", &wd->wd_runner_id);

	/* Present only for organization repositories and for Apps. */
	org = json_object_get(doc, 0, "organization");
	if (json_type(doc, org) == JSON_OBJECT &&
	    (wd->wd_organization = json_member_str(doc, org,
	    "login")) == NULL) {
		snprintf(err, errlen, "organization.login is missing");
		return -1;
	}
	inst = json_object_get(doc, 0, "installation");
	if (json_type(doc, inst) == JSON_OBJECT)
		(void)member_id(doc, inst, "id", &wd->wd_installation_id);
	return 0;
}

static int
parse_ping(struct webhook_delivery *wd, const struct json_doc *doc,
    char *err, size_t errlen)
{
	if (member_id(doc, 0, "hook_id", &wd->wd_hook_id) == -1) {
		snprintf(err, errlen, "ping: 'hook_id' is missing or not a "
		    "positive integer");
		return -1;
	}
	if (member_opt_str(doc, 0, "zen", &wd->wd_zen) == -1) {
		snprintf(err, errlen, "ping: 'zen' is not a string");
		return -1;
	}
	return 0;
}

int
webhook_parse(struct webhook_delivery *wd, const char *event,
    const char *body, size_t len, char *err, size_t errlen)
{
	struct json_doc	 doc;
	const char	*why;
	int		 rc;

	memset(wd, 0, sizeof(*wd));
	if (event == NULL || *event == '\0') {
		snprintf(err, errlen, "missing X-GitHub-Event header");
		return -1;
	}
	if (strcmp(event, "ping") == 0)
		wd->wd_event = WEBHOOK_PING;
	else if (strcmp(event, "workflow_job") == 0)
		wd->wd_event = WEBHOOK_WORKFLOW_JOB;
	else {
		wd->wd_event = WEBHOOK_IGNORED;
		return 0;
	}

	if (len > WEBHOOK_MAX_BODY) {
		snprintf(err, errlen, "body larger than %d bytes",
		    WEBHOOK_MAX_BODY);
		return -1;
	}
	if (json_parse(&doc, body, len, &why) == -1) {
		snprintf(err, errlen, "malformed JSON: %s", why);
		return -1;
	}
	if (json_type(&doc, 0) != JSON_OBJECT) {
		snprintf(err, errlen, "the payload is not a JSON object");
		rc = -1;
	} else if (wd->wd_event == WEBHOOK_PING)
		rc = parse_ping(wd, &doc, err, errlen);
	else
		rc = parse_workflow_job(wd, &doc, err, errlen);
	json_free(&doc);

	if (rc == -1)
		webhook_delivery_free(wd);
	return rc;
}

void
webhook_delivery_free(struct webhook_delivery *wd)
{
	strlist_clear(&wd->wd_labels, 0);
	free(wd->wd_status);
	free(wd->wd_conclusion);
	free(wd->wd_runner_name);
	free(wd->wd_repository);
	free(wd->wd_organization);
	free(wd->wd_created_at);
	free(wd->wd_zen);
	memset(wd, 0, sizeof(*wd));
}

int
webhook_header_valid(const char *s, int delivery)
{
	size_t	 i, len = strlen(s);

	if (len == 0 || len > (delivery ? WEBHOOK_DELIVERY_MAX :
	    WEBHOOK_EVENT_MAX))
		return 0;
	for (i = 0; i < len; i++)
		if (!(delivery ? isgraph((unsigned char)s[i]) &&
		    s[i] != '"' && s[i] != '\\' :
		    isalnum((unsigned char)s[i]) || s[i] == '_'))
			return 0;
	return 1;
}
