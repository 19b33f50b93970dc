/*
 * httpd's request policy without the event loop: routes, tokens, CORS,
 * client addresses, rate limiting, and the checks of what a client sends
 * to the runner endpoints (the body of a creation, the cleanup query).
 */
#include <arpa/inet.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd_policy.h"
#include "json.h"
#include "runner.h"
#include "util.h"

#define REQUEST_LABELS_MAX	32
#define LABEL_LEN_MAX		100

/*
 * Every path httpd serves.  Fixed paths come before the templates that
 * would also match them; openapi.json documents the rows marked so.
 */
const struct httpd_route httpd_routes[ROUTE_COUNT] = {
	{ ROUTE_HEALTH, "/health", RM_GET, RF_NOLOG | RF_NOLIMIT, 1 },
	{ ROUTE_HEALTHZ, "/healthz", RM_GET, RF_NOLOG | RF_NOLIMIT, 1 },
	{ ROUTE_API_HEALTH, "/api/v1/health", RM_GET, RF_NOLOG, 1 },
	{ ROUTE_RUNNERS, "/api/v1/runners", RM_GET | RM_POST, RF_AUTH, 1 },
	{ ROUTE_RUNNERS_CLEANUP, "/api/v1/runners/cleanup", RM_POST,
	    RF_AUTH, 1 },
	{ ROUTE_RUNNERS_CLEANUP_GITHUB, "/api/v1/runners/cleanup-github",
	    RM_POST, RF_AUTH, 1 },
	{ ROUTE_RUNNERS_GITHUB_STATUS, "/api/v1/runners/github-status",
	    RM_GET, RF_AUTH, 1 },
	{ ROUTE_RUNNER, "/api/v1/runners/{id}", RM_GET | RM_DELETE,
	    RF_AUTH, 1 },
	{ ROUTE_RUNNER_LOGS, "/api/v1/runners/{id}/logs", RM_GET, RF_AUTH, 1 },
	/* Signed by GitHub: no bearer token, which GitHub cannot send. */
	{ ROUTE_WEBHOOK, "/api/v1/webhook", RM_POST, 0, 1 },
	{ ROUTE_METRICS, "/metrics", RM_GET, 0, 1 },
	{ ROUTE_OPENAPI, "/openapi.json", RM_GET, 0, 1 },
	{ ROUTE_DOCS, "/docs", RM_GET, 0, 1 },
	{ ROUTE_REDOC, "/redoc", RM_GET, 0, 1 },
	{ ROUTE_ASSET, "/assets/{file}", RM_GET, 0, 0 },
};

/* Matches one template; "{...}" takes one non-empty path segment. */
static int
route_match_one(const char *tmpl, const char *path, char *param,
    size_t paramlen)
{
	const char	*open, *close, *end;
	size_t		 pre, len;

	if ((open = strchr(tmpl, '{')) == NULL)
		return strcmp(tmpl, path) == 0;
	close = strchr(open, '}');
	pre = (size_t)(open - tmpl);
	if (close == NULL || strncmp(tmpl, path, pre) != 0)
		return 0;
	path += pre;
	if ((end = strchr(path, '/')) == NULL)
		end = path + strlen(path);
	len = (size_t)(end - path);
	if (len == 0 || len >= paramlen || strcmp(close + 1, end) != 0)
		return 0;
	memcpy(param, path, len);
	param[len] = '\0';
	return 1;
}

const struct httpd_route *
httpd_route_match(const char *path, char *param, size_t paramlen)
{
	size_t	 i;

	param[0] = '\0';
	for (i = 0; i < nitems(httpd_routes); i++)
		if (route_match_one(httpd_routes[i].rt_template, path, param,
		    paramlen))
			return &httpd_routes[i];
	param[0] = '\0';
	return NULL;
}

const char *
httpd_route_allow(int methods)
{
	static const char *const names[] = {
		"", "GET, HEAD", "POST", "GET, HEAD, POST", "DELETE",
		"GET, HEAD, DELETE", "POST, DELETE", "GET, HEAD, POST, DELETE"
	};

	return names[methods & 7];
}

/* Compares against every token, so the time says nothing about which. */
int
httpd_token_ok(const struct strlist *tokens, const char *authorization)
{
	const char	*given;
	size_t		 i;
	int		 ok = 0;

	if (authorization == NULL || strncasecmp(authorization, "Bearer ",
	    7) != 0)
		return 0;
	given = authorization + 7;
	while (*given == ' ')
		given++;
	if (*given == '\0')
		return 0;
	for (i = 0; i < tokens->sl_count; i++)
		ok |= timingsafe_streq(given, tokens->sl_items[i]);
	return ok;
}

const char *
httpd_cors_origin(const struct strlist *origins, const char *origin)
{
	size_t	 i;

	if (origin == NULL || *origin == '\0')
		return NULL;
	for (i = 0; i < origins->sl_count; i++) {
		if (strcmp(origins->sl_items[i], "*") == 0)
			return "*";
		if (strcasecmp(origins->sl_items[i], origin) == 0)
			return origin;
	}
	return NULL;
}

static int
addr_parse(const char *s, int *family, uint8_t *out)
{
	if (inet_pton(AF_INET, s, out) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

int
netmask_parse(const char *s, struct netmask *nm)
{
	char		 addr[INET6_ADDRSTRLEN + 1];
	const char	*slash = strchr(s, '/'), *why;
	size_t		 len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	uint64_t	 bits;

	memset(nm, 0, sizeof(*nm));
	if (len == 0 || len >= sizeof(addr))
		return -1;
	memcpy(addr, s, len);
	addr[len] = '\0';
	if (addr_parse(addr, &nm->nm_family, nm->nm_addr) == -1)
		return -1;
	nm->nm_bits = nm->nm_family == AF_INET ? 32 : 128;
	if (slash == NULL)
		return 0;
	if (parse_u64(slash + 1, 0, nm->nm_bits, &bits, &why) == -1)
		return -1;
	nm->nm_bits = (unsigned int)bits;
	return 0;
}

/* An IPv4 address written as ::ffff:a.b.c.d counts as IPv4. */
static int
addr_parse_unmapped(const char *s, int *family, uint8_t *out)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	if (addr_parse(s, family, out) == -1)
		return -1;
	if (*family == AF_INET6 && memcmp(out, mapped, 12) == 0) {
		memmove(out, out + 12, 4);
		*family = AF_INET;
	}
	return 0;
}

int
netmask_match(const struct netmask *nm, const char *s)
{
	uint8_t		 addr[16];
	unsigned int	 full = nm->nm_bits / 8, rest = nm->nm_bits % 8;
	int		 family;

	if (addr_parse_unmapped(s, &family, addr) == -1 ||
	    family != nm->nm_family)
		return 0;
	if (memcmp(addr, nm->nm_addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((addr[full] ^ nm->nm_addr[full]) &
	    (uint8_t)(0xff << (8 - rest))) == 0;
}

static int
addr_trusted(const struct netmask *proxies, size_t n, const char *addr)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (netmask_match(&proxies[i], addr))
			return 1;
	return 0;
}

/* Copies the hop that ends at end (exclusive), trimmed; 0 if an address. */
static int
xff_hop(const char *start, const char *end, char *out, size_t outlen)
{
	uint8_t	 tmp[16];
	int	 family;
	size_t	 len;

	while (start < end && isspace((unsigned char)*start))
		start++;
	while (end > start && isspace((unsigned char)end[-1]))
		end--;
	len = (size_t)(end - start);
	if (len == 0 || len >= outlen)
		return -1;
	memcpy(out, start, len);
	out[len] = '\0';
	return addr_parse(out, &family, tmp);
}

void
httpd_client_addr(const struct netmask *proxies, size_t nproxies,
    const char *peer, const char *xff, char *out, size_t outlen)
{
	char		 hop[INET6_ADDRSTRLEN + 1];
	const char	*end, *comma;

	strlcpy(out, peer, outlen);
	if (xff == NULL || !addr_trusted(proxies, nproxies, peer))
		return;
	end = xff + strlen(xff);
	while (end > xff) {
		comma = end;
		while (comma > xff && comma[-1] != ',')
			comma--;
		if (xff_hop(comma, end, hop, sizeof(hop)) == -1)
			return;
		strlcpy(out, hop, outlen);
		if (!addr_trusted(proxies, nproxies, hop))
			return;
		end = comma > xff ? comma - 1 : xff;
	}
}

static size_t
rl_hash(const struct ratelimit *rl, const char *s)
{
	uint32_t	 h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h % rl->rl_nbuckets;
}

void
ratelimit_init(struct ratelimit *rl, uint32_t rate, uint32_t burst,
    size_t max)
{
	memset(rl, 0, sizeof(*rl));
	rl->rl_max = max;
	rl->rl_nbuckets = max < 16 ? 16 : max;
	rl->rl_buckets = xcalloc(rl->rl_nbuckets, sizeof(*rl->rl_buckets));
	TAILQ_INIT(&rl->rl_lru);
	ratelimit_set(rl, rate, burst);
}

void
ratelimit_set(struct ratelimit *rl, uint32_t rate, uint32_t burst)
{
	rl->rl_rate = rate;
	rl->rl_burst = burst < 1 ? 1 : burst;
}

void
ratelimit_free(struct ratelimit *rl)
{
	struct rl_client	*rc;

	while ((rc = TAILQ_FIRST(&rl->rl_lru)) != NULL) {
		TAILQ_REMOVE(&rl->rl_lru, rc, rc_lru);
		free(rc);
	}
	free(rl->rl_buckets);
	rl->rl_buckets = NULL;
	rl->rl_count = 0;
}

static void
ratelimit_unlink(struct ratelimit *rl, struct rl_client *victim)
{
	struct rl_client	**pp;

	pp = &rl->rl_buckets[rl_hash(rl, victim->rc_addr)];
	while (*pp != victim)
		pp = &(*pp)->rc_next;
	*pp = victim->rc_next;
	TAILQ_REMOVE(&rl->rl_lru, victim, rc_lru);
	rl->rl_count--;
}

static struct rl_client *
ratelimit_lookup(struct ratelimit *rl, const char *addr, uint64_t now_ms)
{
	struct rl_client	*rc;
	size_t			 h = rl_hash(rl, addr);

	for (rc = rl->rl_buckets[h]; rc != NULL; rc = rc->rc_next)
		if (strcmp(rc->rc_addr, addr) == 0) {
			TAILQ_REMOVE(&rl->rl_lru, rc, rc_lru);
			TAILQ_INSERT_TAIL(&rl->rl_lru, rc, rc_lru);
			return rc;
		}

	if (rl->rl_count >= rl->rl_max) {
		rc = TAILQ_FIRST(&rl->rl_lru);
		ratelimit_unlink(rl, rc);
	} else
		rc = xmalloc(sizeof(*rc));
	memset(rc, 0, sizeof(*rc));
	strlcpy(rc->rc_addr, addr, sizeof(rc->rc_addr));
	rc->rc_tokens = rl->rl_burst;
	rc->rc_last_ms = now_ms;
	rc->rc_next = rl->rl_buckets[h];
	rl->rl_buckets[h] = rc;
	TAILQ_INSERT_TAIL(&rl->rl_lru, rc, rc_lru);
	rl->rl_count++;
	return rc;
}

int
ratelimit_take(struct ratelimit *rl, const char *addr, uint64_t now_ms,
    unsigned int *retry_after)
{
	struct rl_client	*rc = ratelimit_lookup(rl, addr, now_ms);
	double			 wait;

	if (now_ms > rc->rc_last_ms) {
		rc->rc_tokens += (double)(now_ms - rc->rc_last_ms) *
		    rl->rl_rate / 1000.0;
		if (rc->rc_tokens > rl->rl_burst)
			rc->rc_tokens = rl->rl_burst;
		rc->rc_last_ms = now_ms;
	}
	if (rc->rc_tokens >= 1.0) {
		rc->rc_tokens -= 1.0;
		return 0;
	}
	wait = rl->rl_rate > 0 ? (1.0 - rc->rc_tokens) / rl->rl_rate : 1.0;
	*retry_after = (unsigned int)wait;
	if ((double)*retry_after < wait || *retry_after == 0)
		(*retry_after)++;
	return -1;
}

void
httpd_create_request_free(struct create_request *cr)
{
	size_t	 i;

	free(cr->cr_scope);
	free(cr->cr_scope_name);
	free(cr->cr_runner_name);
	free(cr->cr_runner_group);
	for (i = 0; i < cr->cr_labels.sl_count; i++)
		free(cr->cr_labels.sl_items[i]);
	free(cr->cr_labels.sl_items);
}

/* GitHub's names: letters, digits and "-" (accounts), also "_." (repos). */
static int
github_name_valid(const char *s, size_t max, int repo)
{
	size_t	 len = strlen(s), i;

	if (len == 0 || len > max)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' ||
		    (repo && (c == '_' || c == '.'))))
			return 0;
	}
	return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int
scope_name_valid(const char *scope, const char *name)
{
	const char	*slash = strchr(name, '/');
	char		 owner[40];
	size_t		 len;

	if (strcmp(scope, "org") == 0)
		return slash == NULL && github_name_valid(name, 39, 0);
	if (slash == NULL || (len = (size_t)(slash - name)) == 0 ||
	    len >= sizeof(owner))
		return 0;
	memcpy(owner, name, len);
	owner[len] = '\0';
	return github_name_valid(owner, 39, 0) &&
	    github_name_valid(slash + 1, 100, 1);
}

static int
label_valid(const char *s)
{
	size_t	 len = strlen(s), i;

	if (len == 0 || len > LABEL_LEN_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || s[i] == ',' ||
		    s[i] == 0x7f)
			return 0;
	return 1;
}

static int
create_parse_labels(const struct json_doc *doc, int tok,
    struct create_request *cr, char *err, size_t errlen)
{
	int	 i, n, el;
	char	*label;

	if (json_type(doc, tok) != JSON_ARRAY) {
		snprintf(err, errlen, "'labels' must be an array of strings");
		return -1;
	}
	if ((n = json_size(doc, tok)) > REQUEST_LABELS_MAX) {
		snprintf(err, errlen, "'labels' may hold at most %d labels",
		    REQUEST_LABELS_MAX);
		return -1;
	}
	cr->cr_labels.sl_items = xcalloc((size_t)n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		el = json_array_get(doc, tok, i);
		if ((label = json_get_str(doc, el)) == NULL ||
		    !label_valid(label)) {
			free(label);
			snprintf(err, errlen, "'labels[%d]' must be a string "
			    "of 1 to %d printable characters without spaces "
			    "or commas", i, LABEL_LEN_MAX);
			return -1;
		}
		cr->cr_labels.sl_items[cr->cr_labels.sl_count++] = label;
	}
	return 0;
}

static int
create_parse_string(const struct json_doc *doc, int tok, const char *key,
    char **out, char *err, size_t errlen)
{
	if (json_type(doc, tok) != JSON_STRING ||
	    (*out = json_get_str(doc, tok)) == NULL) {
		snprintf(err, errlen, "'%s' must be a string", key);
		return -1;
	}
	return 0;
}

/* Takes each member once; unknown members are refused by name. */
static int
create_parse_member(const struct json_doc *doc, int key, int val,
    struct create_request *cr, char *err, size_t errlen)
{
	char	*name = json_get_str(doc, key);
	int	 rc = -1;

	if (name == NULL)
		snprintf(err, errlen, "malformed member name");
	else if ((strcmp(name, "scope") == 0 && cr->cr_scope != NULL) ||
	    (strcmp(name, "scope_name") == 0 && cr->cr_scope_name != NULL) ||
	    (strcmp(name, "count") == 0 && cr->cr_count != 0) ||
	    (strcmp(name, "runner_name") == 0 && cr->cr_runner_name != NULL) ||
	    (strcmp(name, "runner_group") == 0 &&
	    cr->cr_runner_group != NULL) ||
	    (strcmp(name, "labels") == 0 && cr->cr_labels.sl_items != NULL))
		snprintf(err, errlen, "field '%s' is given twice", name);
	else if (strcmp(name, "scope") == 0)
		rc = create_parse_string(doc, val, name, &cr->cr_scope, err,
		    errlen);
	else if (strcmp(name, "scope_name") == 0)
		rc = create_parse_string(doc, val, name, &cr->cr_scope_name,
		    err, errlen);
	else if (strcmp(name, "runner_name") == 0)
		rc = create_parse_string(doc, val, name, &cr->cr_runner_name,
		    err, errlen);
	else if (strcmp(name, "runner_group") == 0)
		rc = create_parse_string(doc, val, name, &cr->cr_runner_group,
		    err, errlen);
	else if (strcmp(name, "labels") == 0)
		rc = create_parse_labels(doc, val, cr, err, errlen);
	else if (strcmp(name, "count") == 0) {
		if (json_type(doc, val) != JSON_NUMBER ||
		    json_get_i64(doc, val, &cr->cr_count) == -1 ||
		    cr->cr_count == 0)
			cr->cr_count = -1;
		rc = 0;
	} else
		snprintf(err, errlen, "unknown field '%.64s'", name);
	free(name);
	return rc;
}

static int
create_check(struct create_request *cr, uint32_t max, char *err,
    size_t errlen)
{
	if (cr->cr_scope == NULL || (strcmp(cr->cr_scope, "repo") != 0 &&
	    strcmp(cr->cr_scope, "org") != 0)) {
		snprintf(err, errlen, "'scope' must be \"repo\" or \"org\"");
		return -1;
	}
	if (cr->cr_scope_name == NULL ||
	    !scope_name_valid(cr->cr_scope, cr->cr_scope_name)) {
		snprintf(err, errlen, "'scope_name' must be %s",
		    strcmp(cr->cr_scope, "repo") == 0 ?
		    "\"owner/repository\" with GitHub's name characters" :
		    "an organization name of GitHub's name characters");
		return -1;
	}
	if (cr->cr_count == 0)
		cr->cr_count = 1;
	if (cr->cr_count < 1 || cr->cr_count > (int64_t)max) {
		snprintf(err, errlen, "'count' must be an integer from 1 to "
		    "%u", max);
		return -1;
	}
	if (cr->cr_runner_name != NULL && (!runner_name_valid(
	    cr->cr_runner_name) || strlen(cr->cr_runner_name) >
	    RUNNER_NAME_MAX - 6)) {
		snprintf(err, errlen, "'runner_name' must be 1 to %d "
		    "characters of letters, digits, '-', '_' and '.', "
		    "starting with a letter or digit", RUNNER_NAME_MAX - 6);
		return -1;
	}
	if (cr->cr_runner_group != NULL && (strlen(cr->cr_runner_group) >
	    LABEL_LEN_MAX || !label_valid(cr->cr_runner_group))) {
		snprintf(err, errlen, "'runner_group' must be a group name of "
		    "1 to %d characters", LABEL_LEN_MAX);
		return -1;
	}
	return 0;
}

int
httpd_create_parse(const char *body, size_t len, uint32_t max,
    struct create_request *cr, char *err, size_t errlen)
{
	struct json_doc	 doc;
	const char	*why;
	int		 key, i, n, rc = 0;

	memset(cr, 0, sizeof(*cr));
	if (json_parse(&doc, body, len, &why) == -1) {
		snprintf(err, errlen, "malformed JSON: %s", why);
		return -1;
	}
	if (json_type(&doc, 0) != JSON_OBJECT) {
		snprintf(err, errlen, "the body must be a JSON object");
		json_free(&doc);
		return -1;
	}
	n = json_size(&doc, 0);
	for (i = 0, key = 1; i < n && rc == 0; i++) {
		rc = create_parse_member(&doc, key, key + 1, cr, err, errlen);
		key = json_skip(&doc, key + 1);
	}
	json_free(&doc);
	if (rc == 0)
		rc = create_check(cr, max, err, errlen);
	return rc;
}

/* "true", "false", "1" or "0"; -1 for anything else. */
static int
dry_run_value(const char *s)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
		return 1;
	if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
		return 0;
	return -1;
}

int
httpd_dry_run_query(const char *q)
{
	struct evkeyvalq	 query;
	struct evkeyval		*kv;
	int			 dry = 0, seen = 0, bad = 0;

	memset(&query, 0, sizeof(query));
	if (q != NULL && evhttp_parse_query_str(q, &query) == -1)
		return -2;
	TAILQ_FOREACH(kv, &query, next) {
		if (strcmp(kv->key, "dry_run") != 0 || seen++ > 0 ||
		    (dry = dry_run_value(kv->value)) == -1)
			bad = 1;
	}
	evhttp_clear_headers(&query);
	return bad ? -1 : dry;
}
