/*
 * GitHub App authentication.  An App proves who it is with a JWT that it
 * signs (RS256) with its private key, and trades that JWT for
 * installation access tokens: each acts for one installation (the App
 * installed on an organization or a user account) and expires after an
 * hour.  Requests to /app/... carry a fresh JWT; every other request
 * carries the token of the installation that owns the account in its
 * URL (/repos/{owner}/..., /orgs/{org}/..., /users/{user}/...), or of
 * the default installation for a URL without an account.
 *
 * The installation is github.installation_id when it is set; otherwise
 * GET /app/installations tells which installation serves which account,
 * and its first entry is the default.  Tokens are kept per installation
 * and renewed when less than GITHUB_APP_RENEW_MARGIN seconds, or half
 * of their lifetime if that is shorter, remain.  Neither the key, the
 * JWTs nor the tokens are ever logged.
 */
#ifndef EPHEMERD_GITHUB_APP_H
#define EPHEMERD_GITHUB_APP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"

#define GITHUB_APP_JWT_BACKDATE	60	/* iat: the clocks may differ */
#define GITHUB_APP_JWT_LIFETIME	540	/* GitHub refuses more than 600 */
#define GITHUB_APP_RENEW_MARGIN	300
/* An account no installation serves asks GitHub again after this. */
#define GITHUB_APP_RELIST_S	60
#define GITHUB_APP_INSTALLATIONS_MAX	100

struct github;
struct github_app;

/* 1 when the configuration authenticates as a GitHub App. */
int	 github_app_configured(const struct config *);

/*
 * A JWT for the App: header {"alg":"RS256","typ":"JWT"}, claims iat
 * (now - 60), exp (now + 540) and iss (the App id), signed with the PEM
 * private key.  Returns 0 with a new string in *jwt, or -1 with a
 * message (that quotes nothing of the key) in err.
 */
int	 github_app_jwt(const char *, uint64_t, time_t, char **, char *,
	    size_t);
/* base64url without padding; a new string. */
char	*github_app_base64url(const unsigned char *, size_t);

/* 1 if url is an /app/... endpoint under api, which takes the JWT. */
int	 github_app_url_is_app(const char *, const char *);
/*
 * The account a URL under api acts on: the owner of /repos/{owner}/...,
 * the org of /orgs/{org}/..., the user of /users/{user}/...; a new
 * string, or NULL for a URL without one.
 */
char	*github_app_url_account(const char *, const char *);
/* When a token issued at issued and expiring at expires is renewed. */
time_t	 github_app_renew_at(time_t, time_t);

/*
 * Called once the token for a waiting request is there (token set, err
 * NULL) or cannot be had (token NULL, err says why without a secret).
 * installation is the id the token acts for, or 0.
 */
typedef void (*github_app_token_fn)(const char *, uint64_t, const char *,
	    void *);

struct github_app *github_app_new(struct github *, const struct config *);
/* Drops the waiting requests without calling them back. */
void	 github_app_free(struct github_app *);
/*
 * The token for a request to url, or with want set, of that installation
 * whatever the url.  Returns 1 with *token (valid until the event loop
 * runs) and *installation set when a fresh one is at hand; 0 when fn
 * will be called with arg later (never from inside this call); -1 with a
 * message in err when none can be had.
 */
int	 github_app_token(struct github_app *, const char *, uint64_t,
	    const char **, uint64_t *, char *, size_t, github_app_token_fn,
	    void *);
/* Forgets a waiting request: its fn will not be called. */
void	 github_app_cancel(struct github_app *, void *);
/* GitHub refused a token (401): the next request asks for a new one. */
void	 github_app_forget(struct github_app *, uint64_t);

#endif
