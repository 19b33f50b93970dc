/*
 * httpd's request policy without the event loop: routes, tokens, CORS,
 * client addresses and rate limiting.
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd_policy.h"
#include "util.h"

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
