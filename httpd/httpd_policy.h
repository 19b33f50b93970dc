/*
 * The parts of httpd's request policy that need no event loop: the route
 * table, bearer tokens, CORS origins, the client address behind trusted
 * proxies, the per-client token buckets and the checks of the runner
 * endpoints' input.  Unit tests and fuzzers link them alone.
 */
#ifndef EPHEMERD_HTTPD_POLICY_H
#define EPHEMERD_HTTPD_POLICY_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Methods a route takes, as a mask. */
#define RM_GET		0x01	/* HEAD as well */
#define RM_POST		0x02
#define RM_DELETE	0x04

/* What a route needs or skips. */
#define RF_AUTH		0x01	/* a bearer token, when tokens are set */
#define RF_NOLOG	0x02	/* health checks: no REQUEST/RESPONSE line */
#define RF_NOLIMIT	0x04	/* not rate limited */

enum route_id {
	ROUTE_HEALTH = 0,
	ROUTE_HEALTHZ,
	ROUTE_API_HEALTH,
	ROUTE_RUNNERS,
	ROUTE_RUNNERS_CLEANUP,
	ROUTE_RUNNERS_CLEANUP_GITHUB,
	ROUTE_RUNNERS_GITHUB_STATUS,
	ROUTE_RUNNER,
	ROUTE_RUNNER_LOGS,
	ROUTE_WEBHOOK,
	ROUTE_METRICS,
	ROUTE_OPENAPI,
	ROUTE_DOCS,
	ROUTE_REDOC,
	ROUTE_ASSET,
	ROUTE_COUNT
};

struct httpd_route {
	enum route_id	 rt_id;
	const char	*rt_template;	/* "{id}" stands for a runner name */
	int		 rt_methods;
	int		 rt_flags;
	int		 rt_documented;	/* in openapi.json */
};

extern const struct httpd_route httpd_routes[ROUTE_COUNT];

/*
 * Finds the route of a path.  For a template with "{id}" or a static
 * asset, the variable part is copied into param (NUL-terminated, at most
 * paramlen - 1 bytes; a longer one does not match).  Returns NULL when no
 * route matches.
 */
const struct httpd_route *httpd_route_match(const char *, char *, size_t);
/* "GET, HEAD, POST" for a mask. */
const char *httpd_route_allow(int);

/*
 * Checks "Bearer <token>" against every configured token, in time that
 * does not depend on where they differ.  Returns 1 if one matches.
 */
int	 httpd_token_ok(const struct strlist *, const char *);

/* Returns the origin to echo, "*" for any, or NULL when not allowed. */
const char *httpd_cors_origin(const struct strlist *, const char *);

/* An address or a CIDR network, IPv4 or IPv6. */
struct netmask {
	int		 nm_family;
	uint8_t		 nm_addr[16];
	unsigned int	 nm_bits;
};

/* Parses "10.0.0.0/8", "::1", "127.0.0.1".  Returns 0 or -1. */
int	 netmask_parse(const char *, struct netmask *);
/* Returns 1 if the numeric address text is inside the network. */
int	 netmask_match(const struct netmask *, const char *);

/*
 * The client of a request: the peer, or, when the peer is a trusted
 * proxy, the rightmost X-Forwarded-For hop that is not itself a trusted
 * proxy.  A malformed hop stops the walk at the last address believed.
 * Writes the address into out.
 */
void	 httpd_client_addr(const struct netmask *, size_t, const char *,
	    const char *, char *, size_t);

/*
 * Token buckets per client address, refilled continuously at rl_rate per
 * second up to rl_burst.  The table holds at most rl_max clients; a new
 * client evicts the one idle the longest.
 */
struct rl_client {
	char			 rc_addr[48];
	double			 rc_tokens;
	uint64_t		 rc_last_ms;
	TAILQ_ENTRY(rl_client)	 rc_lru;
	struct rl_client	*rc_next;	/* hash chain */
};

TAILQ_HEAD(rl_lru, rl_client);

struct ratelimit {
	double			 rl_rate;
	double			 rl_burst;
	size_t			 rl_max;
	size_t			 rl_count;
	size_t			 rl_nbuckets;
	struct rl_client	**rl_buckets;
	struct rl_lru		 rl_lru;		/* idlest first */
};

void	 ratelimit_init(struct ratelimit *, uint32_t, uint32_t, size_t);
void	 ratelimit_set(struct ratelimit *, uint32_t, uint32_t);
void	 ratelimit_free(struct ratelimit *);
/*
 * Takes one token for the client at time now_ms.  Returns 0, or -1 with
 * the whole seconds to wait in *retry_after.
 */
int	 ratelimit_take(struct ratelimit *, const char *, uint64_t,
	    unsigned int *);

/* The body of POST /api/v1/runners, checked field by field. */
struct create_request {
	char		*cr_scope;
	char		*cr_scope_name;
	int64_t		 cr_count;
	char		*cr_runner_name;
	char		*cr_runner_group;
	struct strlist	 cr_labels;
};

/*
 * Reads and checks the body of POST /api/v1/runners; count may be at
 * most max (the largest pool's max_runners).  Returns 0, or -1 with a
 * message in err; either way cr is then freed with
 * httpd_create_request_free().
 */
int	 httpd_create_parse(const char *, size_t, uint32_t,
	    struct create_request *, char *, size_t);
void	 httpd_create_request_free(struct create_request *);

/*
 * The query of POST /api/v1/runners/cleanup-github (NULL for none):
 * 1 or 0 for dry_run given once as true, false, 1 or 0 (0 without it);
 * -1 for any other parameter or value, -2 for a malformed query.
 */
int	 httpd_dry_run_query(const char *);

#endif
