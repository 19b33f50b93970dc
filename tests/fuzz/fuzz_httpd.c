/*
 * libFuzzer harness for what httpd reads itself in a request (libevent's
 * evhttp does the HTTP framing).  The input is lines: the path, the
 * query string, the Authorization header, the peer address, the
 * X-Forwarded-For header; the rest is the body of POST /api/v1/runners.
 * Each reader must keep its promise: a route's parameter is a non-empty
 * segment of the path, a bearer token is accepted exactly when it is
 * one of the configured ones, the client address is the peer or a hop of
 * X-Forwarded-For, and an accepted runner request holds valid fields.
 */
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd_policy.h"

#define NLINES	5

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char		*token_items[] = { "s3cret-token", "other" };
static const struct strlist tokens = { token_items, 2 };

/* Splits off NLINES lines (missing ones are empty); returns the rest. */
static const uint8_t *
split_lines(const uint8_t *data, size_t size, char **lines, size_t *rest)
{
	const uint8_t	*p = data, *end = data + size, *nl;
	size_t		 i, len;

	for (i = 0; i < NLINES; i++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl == NULL ? (size_t)(end - p) : (size_t)(nl - p);
		if ((lines[i] = malloc(len + 1)) == NULL)
			abort();
		memcpy(lines[i], p, len);
		lines[i][len] = '\0';
		p = nl == NULL ? end : nl + 1;
	}
	*rest = (size_t)(end - p);
	return p;
}

static void
check_route(const char *path)
{
	const struct httpd_route	*rt;
	char				 param[64];

	rt = httpd_route_match(path, param, sizeof(param));
	if (rt == NULL) {
		if (param[0] != '\0')
			abort();
		return;
	}
	if (strchr(rt->rt_template, '{') == NULL) {
		if (strcmp(rt->rt_template, path) != 0 || param[0] != '\0')
			abort();
	} else if (param[0] == '\0' || strchr(param, '/') != NULL ||
	    strstr(path, param) == NULL)
		abort();
}

static void
check_token(const char *auth)
{
	const char	*given;
	size_t		 i;
	int		 want = 0;

	if (strncasecmp(auth, "Bearer ", 7) == 0) {
		for (given = auth + 7; *given == ' '; given++)
			;
		for (i = 0; i < tokens.sl_count; i++)
			if (strcmp(given, tokens.sl_items[i]) == 0)
				want = 1;
	}
	if (httpd_token_ok(&tokens, auth) != want)
		abort();
}

static void
check_client(const char *peer, const char *xff)
{
	struct netmask	 proxies[2];
	char		 out[64];
	uint8_t		 tmp[16];

	if (netmask_parse("127.0.0.0/8", &proxies[0]) == -1 ||
	    netmask_parse("fd00::/8", &proxies[1]) == -1)
		abort();
	httpd_client_addr(proxies, 2, peer, xff, out, sizeof(out));
	if (strncmp(out, peer, sizeof(out) - 1) == 0)
		return;
	/* Not the peer: a whole address taken from the header. */
	if (strstr(xff, out) == NULL || (inet_pton(AF_INET, out, tmp) != 1 &&
	    inet_pton(AF_INET6, out, tmp) != 1))
		abort();
}

static void
check_create(const char *body, size_t len, uint32_t max)
{
	struct create_request	 cr;
	char			 err[256];
	size_t			 i;

	err[0] = '\0';
	if (httpd_create_parse(body, len, max, &cr, err, sizeof(err)) == 0) {
		if (cr.cr_scope == NULL || (strcmp(cr.cr_scope, "repo") != 0 &&
		    strcmp(cr.cr_scope, "org") != 0) ||
		    cr.cr_scope_name == NULL || cr.cr_count < 1 ||
		    cr.cr_count > (int64_t)max)
			abort();
		for (i = 0; i < cr.cr_labels.sl_count; i++)
			if (cr.cr_labels.sl_items[i][0] == '\0' ||
			    strchr(cr.cr_labels.sl_items[i], ',') != NULL)
				abort();
	} else if (err[0] == '\0')
		abort();
	httpd_create_request_free(&cr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*body;
	char		*lines[NLINES];
	size_t		 len, i;
	int		 dry;

	body = split_lines(data, size, lines, &len);
	check_route(lines[0]);
	dry = httpd_dry_run_query(lines[1][0] == '\0' ? NULL : lines[1]);
	if (dry < -2 || dry > 1)
		abort();
	check_token(lines[2]);
	check_client(lines[3], lines[4]);
	check_create((const char *)body, len, 1 + size % 16);
	for (i = 0; i < NLINES; i++)
		free(lines[i]);
	return 0;
}
