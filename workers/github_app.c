/*
 * GitHub App authentication: the JWT, the installations and their
 * tokens.  See github_app.h for the rules; the requests themselves go
 * through github_request(), which puts the JWT on /app/... endpoints.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "github.h"
#include "github_app.h"
#include "json.h"
#include "log.h"
#include "util.h"

struct app_install {
	uint64_t	 ai_id;
	char		*ai_account;	/* lower case; NULL if configured */
	char		*ai_token;	/* secret, or NULL */
	time_t		 ai_issued;
	time_t		 ai_expires;
	int		 ai_exchanging;	/* a token request is out */
};

/* A request waiting for its installation or its token. */
struct app_waiter {
	TAILQ_ENTRY(app_waiter)	 aw_entry;
	char			*aw_account;	/* NULL: the default */
	uint64_t		 aw_want;	/* asked for by id, or 0 */
	uint64_t		 aw_installation; /* 0 until known */
	github_app_token_fn	 aw_fn;
	void			*aw_arg;
};

TAILQ_HEAD(app_waiters, app_waiter);

struct github_app {
	struct github		*ga_gh;
	const struct config	*ga_conf;
	uint64_t		 ga_app_id;	/* the state below is its */
	uint64_t		 ga_conf_install;
	struct app_install	*ga_installs;
	size_t			 ga_ninstalls;
	int			 ga_listed;	/* the installation list came */
	time_t			 ga_listed_at;
	int			 ga_listing;	/* it is being asked for */
	int			 ga_busy;	/* requests of ours are out */
	struct app_waiters	 ga_waiters;
};

/* What an answer to one of our own requests is about. */
struct app_call {
	struct github_app	*ac_app;
	uint64_t		 ac_installation;	/* 0: the list */
};

int
github_app_configured(const struct config *conf)
{
	return conf->c_app_id != 0 && conf->c_private_key != NULL &&
	    conf->c_private_key[0] != '\0';
}

/* ---- the JWT ----------------------------------------------------------- */

char *
github_app_base64url(const unsigned char *in, size_t len)
{
	static const char	 abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	char			*out, *p;
	uint32_t		 v;
	size_t			 i;

	out = p = xmalloc(len / 3 * 4 + 5);
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		*p++ = abc[v >> 18];
		*p++ = abc[(v >> 12) & 63];
		*p++ = abc[(v >> 6) & 63];
		*p++ = abc[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*p++ = abc[v >> 18];
		*p++ = abc[(v >> 12) & 63];
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*p++ = abc[v >> 18];
		*p++ = abc[(v >> 12) & 63];
		*p++ = abc[(v >> 6) & 63];
	}
	*p = '\0';
	return out;
}

static EVP_PKEY *
app_read_key(const char *pem)
{
	EVP_PKEY	*pkey;
	BIO		*bio;

	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
		fatalx("BIO_new_mem_buf");
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return pkey;
}

/* An RS256 signature of data, base64url; NULL if libcrypto refuses. */
static char *
app_sign(EVP_PKEY *pkey, const char *data)
{
	EVP_MD_CTX	*md;
	unsigned char	*sig = NULL;
	size_t		 siglen = 0;
	char		*out = NULL;

	if ((md = EVP_MD_CTX_new()) == NULL)
		fatalx("EVP_MD_CTX_new");
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)data,
	    strlen(data)) != 1)
		goto done;
	sig = xmalloc(siglen);
	if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)data,
	    strlen(data)) != 1)
		goto done;
	out = github_app_base64url(sig, siglen);

done:
	free(sig);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return out;
}

int
github_app_jwt(const char *pem, uint64_t app_id, time_t now, char **jwt,
    char *err, size_t errlen)
{
	EVP_PKEY	*pkey;
	char		*header, *claims, *input, *sig;
	char		 text[128];

	*jwt = NULL;
	if (pem == NULL || (pkey = app_read_key(pem)) == NULL ||
	    EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		if (pem != NULL)
			EVP_PKEY_free(pkey);
		snprintf(err, errlen, "the GitHub App's private key is not a "
		    "PEM RSA private key");
		return -1;
	}

	strlcpy(text, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", sizeof(text));
	header = github_app_base64url((unsigned char *)text, strlen(text));
	snprintf(text, sizeof(text), "{\"iat\":%lld,\"exp\":%lld,"
	    "\"iss\":\"%" PRIu64 "\"}",
	    (long long)now - GITHUB_APP_JWT_BACKDATE,
	    (long long)now + GITHUB_APP_JWT_LIFETIME, app_id);
	claims = github_app_base64url((unsigned char *)text, strlen(text));
	xasprintf(&input, "%s.%s", header, claims);
	free(header);
	free(claims);

	sig = app_sign(pkey, input);
	EVP_PKEY_free(pkey);
	if (sig == NULL) {
		free(input);
		snprintf(err, errlen, "cannot sign the GitHub App's JWT");
		return -1;
	}
	xasprintf(jwt, "%s.%s", input, sig);
	free(input);
	free(sig);
	return 0;
}

/* ---- URLs -------------------------------------------------------------- */

/* The path of url under api ("/repos/..."), or NULL if it is not under. */
static const char *
app_url_path(const char *api, const char *url)
{
	size_t	 len = strlen(api);

	if (strncmp(url, api, len) != 0 || url[len] != '/')
		return NULL;
	return url + len;
}

int
github_app_url_is_app(const char *api, const char *url)
{
	const char	*path = app_url_path(api, url);

	return path != NULL && (strncmp(path, "/app/", 5) == 0 ||
	    strcmp(path, "/app") == 0);
}

static void
app_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

char *
github_app_url_account(const char *api, const char *url)
{
	static const char *const prefixes[] = { "/repos/", "/orgs/",
	    "/users/" };
	const char	*path, *name;
	char		*out;
	size_t		 i, len;

	if ((path = app_url_path(api, url)) == NULL)
		return NULL;
	for (i = 0; i < nitems(prefixes); i++)
		if (strncmp(path, prefixes[i], strlen(prefixes[i])) == 0)
			break;
	if (i == nitems(prefixes))
		return NULL;
	name = path + strlen(prefixes[i]);
	if ((len = strcspn(name, "/?#")) == 0)
		return NULL;
	out = xstrndup(name, len);
	app_lower(out);
	return out;
}

time_t
github_app_renew_at(time_t issued, time_t expires)
{
	time_t	 margin = GITHUB_APP_RENEW_MARGIN;

	if (expires > issued && (expires - issued) / 2 < margin)
		margin = (expires - issued) / 2;
	return expires - margin;
}

/* ---- state ------------------------------------------------------------- */

static void
app_install_clear(struct app_install *ai)
{
	free(ai->ai_account);
	freezero_str(ai->ai_token);
	memset(ai, 0, sizeof(*ai));
}

static void
app_installs_clear(struct github_app *ga)
{
	size_t	 i;

	for (i = 0; i < ga->ga_ninstalls; i++)
		app_install_clear(&ga->ga_installs[i]);
	free(ga->ga_installs);
	ga->ga_installs = NULL;
	ga->ga_ninstalls = 0;
	ga->ga_listed = 0;
}

static struct app_install *
app_install_find(struct github_app *ga, uint64_t id)
{
	size_t	 i;

	for (i = 0; i < ga->ga_ninstalls; i++)
		if (ga->ga_installs[i].ai_id == id)
			return &ga->ga_installs[i];
	return NULL;
}

static struct app_install *
app_install_add(struct github_app *ga, uint64_t id, const char *account)
{
	struct app_install	*ai;

	ga->ga_installs = xreallocarray(ga->ga_installs, ga->ga_ninstalls + 1,
	    sizeof(*ga->ga_installs));
	ai = &ga->ga_installs[ga->ga_ninstalls++];
	memset(ai, 0, sizeof(*ai));
	ai->ai_id = id;
	ai->ai_account = account != NULL ? xstrdup(account) : NULL;
	return ai;
}

/* A reload that changed the App or its installation starts afresh. */
static void
app_follow_config(struct github_app *ga)
{
	const struct config	*conf = ga->ga_conf;

	if (ga->ga_busy > 0 || (ga->ga_app_id == conf->c_app_id &&
	    ga->ga_conf_install == conf->c_installation_id))
		return;
	app_installs_clear(ga);
	ga->ga_app_id = conf->c_app_id;
	ga->ga_conf_install = conf->c_installation_id;
}

struct github_app *
github_app_new(struct github *gh, const struct config *conf)
{
	struct github_app	*ga = xcalloc(1, sizeof(*ga));

	ga->ga_gh = gh;
	ga->ga_conf = conf;
	TAILQ_INIT(&ga->ga_waiters);
	return ga;
}

static void
app_waiter_free(struct app_waiter *aw)
{
	free(aw->aw_account);
	free(aw);
}

void
github_app_free(struct github_app *ga)
{
	struct app_waiter	*aw;

	if (ga == NULL)
		return;
	while ((aw = TAILQ_FIRST(&ga->ga_waiters)) != NULL) {
		TAILQ_REMOVE(&ga->ga_waiters, aw, aw_entry);
		app_waiter_free(aw);
	}
	app_installs_clear(ga);
	free(ga);
}

/*
 * Calls back the waiters for one installation (or, with installation 0,
 * the ones still without one).  They are taken off first: a callback may
 * start requests that wait anew.
 */
static void
app_wake(struct github_app *ga, uint64_t installation, const char *token,
    const char *err)
{
	struct app_waiters	 woken;
	struct app_waiter	*aw, *next;

	TAILQ_INIT(&woken);
	for (aw = TAILQ_FIRST(&ga->ga_waiters); aw != NULL; aw = next) {
		next = TAILQ_NEXT(aw, aw_entry);
		if (aw->aw_installation != installation)
			continue;
		TAILQ_REMOVE(&ga->ga_waiters, aw, aw_entry);
		TAILQ_INSERT_TAIL(&woken, aw, aw_entry);
	}
	while ((aw = TAILQ_FIRST(&woken)) != NULL) {
		TAILQ_REMOVE(&woken, aw, aw_entry);
		aw->aw_fn(token, installation, err, aw->aw_arg);
		app_waiter_free(aw);
	}
}

/* ---- the installations ------------------------------------------------- */

static void	 app_on_token(struct http_response *, void *);
static void	 app_on_list(struct http_response *, void *);

static struct app_call *
app_call_new(struct github_app *ga, uint64_t installation)
{
	struct app_call	*ac = xcalloc(1, sizeof(*ac));

	ac->ac_app = ga;
	ac->ac_installation = installation;
	ga->ga_busy++;
	return ac;
}

static void
app_list_start(struct github_app *ga)
{
	struct app_call	*ac;
	char		*url;

	if (ga->ga_listing)
		return;
	ga->ga_listing = 1;
	ac = app_call_new(ga, 0);
	xasprintf(&url, "%s/app/installations?per_page=%d",
	    ga->ga_conf->c_api_url, GITHUB_APP_INSTALLATIONS_MAX);
	if (github_request(ga->ga_gh, "GET", url, NULL, NULL, 0, app_on_list,
	    ac) == -1)
		fatalx("cannot start a GitHub request");
	free(url);
}

static void
app_exchange_start(struct github_app *ga, struct app_install *ai)
{
	struct app_call	*ac;
	char		*url;

	if (ai->ai_exchanging)
		return;
	ai->ai_exchanging = 1;
	ac = app_call_new(ga, ai->ai_id);
	xasprintf(&url, "%s/app/installations/%" PRIu64 "/access_tokens",
	    ga->ga_conf->c_api_url, ai->ai_id);
	if (github_request(ga->ga_gh, "POST", url, NULL, NULL, 0,
	    app_on_token, ac) == -1)
		fatalx("cannot start a GitHub request");
	free(url);
}

/*
 * The installation asked for by id (want), or else the one for an account
 * (NULL: the default).  Returns it, or NULL with a reason in err.
 */
static struct app_install *
app_resolve(struct github_app *ga, const char *account, uint64_t want,
    char *err, size_t errlen)
{
	struct app_install	*ai;
	size_t			 i;

	if (want != 0 && want != ga->ga_conf_install) {
		if (ga->ga_conf_install == 0 &&
		    (ai = app_install_find(ga, want)) != NULL)
			return ai;
		snprintf(err, errlen, "the GitHub App has no installation %"
		    PRIu64, want);
		return NULL;
	}
	if (ga->ga_conf_install != 0) {
		if ((ai = app_install_find(ga, ga->ga_conf_install)) == NULL)
			ai = app_install_add(ga, ga->ga_conf_install, NULL);
		return ai;
	}
	if (ga->ga_ninstalls == 0) {
		snprintf(err, errlen, "the GitHub App has no installation");
		return NULL;
	}
	if (account == NULL)
		return &ga->ga_installs[0];
	for (i = 0; i < ga->ga_ninstalls; i++)
		if (strcmp(ga->ga_installs[i].ai_account, account) == 0)
			return &ga->ga_installs[i];
	snprintf(err, errlen, "the GitHub App is not installed for %s",
	    account);
	return NULL;
}

static int
app_fresh(const struct app_install *ai, time_t now)
{
	return ai->ai_token != NULL &&
	    now < github_app_renew_at(ai->ai_issued, ai->ai_expires);
}

static void
app_wait(struct github_app *ga, const char *account, uint64_t want,
    uint64_t installation, github_app_token_fn fn, void *arg)
{
	struct app_waiter	*aw = xcalloc(1, sizeof(*aw));

	aw->aw_account = account != NULL ? xstrdup(account) : NULL;
	aw->aw_want = want;
	aw->aw_installation = installation;
	aw->aw_fn = fn;
	aw->aw_arg = arg;
	TAILQ_INSERT_TAIL(&ga->ga_waiters, aw, aw_entry);
}

/* The list came: each waiter learns its installation or why there is none. */
static void
app_resolve_waiters(struct github_app *ga)
{
	struct app_waiter	*aw, *next;
	struct app_install	*ai;
	char			 err[256];

	for (aw = TAILQ_FIRST(&ga->ga_waiters); aw != NULL; aw = next) {
		next = TAILQ_NEXT(aw, aw_entry);
		if (aw->aw_installation != 0)
			continue;
		if ((ai = app_resolve(ga, aw->aw_account, aw->aw_want, err,
		    sizeof(err))) == NULL) {
			TAILQ_REMOVE(&ga->ga_waiters, aw, aw_entry);
			aw->aw_fn(NULL, 0, err, aw->aw_arg);
			app_waiter_free(aw);
			/* The callback may have changed the list. */
			next = TAILQ_FIRST(&ga->ga_waiters);
			continue;
		}
		aw->aw_installation = ai->ai_id;
		app_exchange_start(ga, ai);
	}
}

static int
app_parse_list(struct github_app *ga, const struct http_response *res,
    const char **why)
{
	struct json_doc	 doc;
	char		*login;
	int64_t		 id;
	int		 i, n, obj, account;

	if (github_json(&doc, res, why) == -1)
		return -1;
	if (json_type(&doc, 0) != JSON_ARRAY) {
		json_free(&doc);
		*why = "the answer is not a JSON array";
		return -1;
	}
	app_installs_clear(ga);
	n = json_size(&doc, 0);
	for (i = 0; i < n; i++) {
		obj = json_array_get(&doc, 0, i);
		account = json_object_get(&doc, obj, "account");
		if (json_type(&doc, obj) != JSON_OBJECT ||
		    json_member_i64(&doc, obj, "id", &id) == -1 || id <= 0 ||
		    account == -1 || json_type(&doc, account) != JSON_OBJECT ||
		    (login = json_member_str(&doc, account, "login")) == NULL)
			continue;
		app_lower(login);
		app_install_add(ga, (uint64_t)id, login);
		free(login);
	}
	json_free(&doc);
	return 0;
}

static void
app_on_list(struct http_response *res, void *arg)
{
	struct app_call		*ac = arg;
	struct github_app	*ga = ac->ac_app;
	const char		*why = NULL;
	char			*text, err[512];

	free(ac);
	ga->ga_busy--;
	ga->ga_listing = 0;
	if (res->hr_status == 200 && app_parse_list(ga, res, &why) == 0) {
		ga->ga_listed = 1;
		ga->ga_listed_at = time(NULL);
		log_info(LC_INFO, "GitHub App %" PRIu64 ": %zu installation%s",
		    ga->ga_app_id, ga->ga_ninstalls,
		    ga->ga_ninstalls == 1 ? "" : "s");
		app_resolve_waiters(ga);
		return;
	}

	text = why != NULL ? xstrdup(why) : github_error_text(res);
	snprintf(err, sizeof(err), "cannot list the GitHub App's "
	    "installations: %s", text);
	free(text);
	log_warnx(LC_WARNING, "%s", err);
	app_wake(ga, 0, NULL, err);
}

static void
app_on_token(struct http_response *res, void *arg)
{
	struct app_call		*ac = arg;
	struct github_app	*ga = ac->ac_app;
	struct app_install	*ai;
	uint64_t		 id = ac->ac_installation;
	const char		*why = NULL;
	char			*token = NULL, *text, err[512], when[32];
	time_t			 expires;

	free(ac);
	ga->ga_busy--;
	if ((ai = app_install_find(ga, id)) != NULL)
		ai->ai_exchanging = 0;
	if (res->hr_status == 201 && github_parse_token(
	    (const char *)res->hr_body.b_data, res->hr_body.b_len, &token,
	    &expires, &why) == 0 && ai != NULL) {
		freezero_str(ai->ai_token);
		ai->ai_token = token;
		ai->ai_issued = time(NULL);
		ai->ai_expires = expires;
		iso8601_utc(expires, when, sizeof(when));
		log_info(LC_INFO, "GitHub App: new token for installation "
		    "%" PRIu64 ", valid until %s", id, when);
		app_wake(ga, id, ai->ai_token, NULL);
		return;
	}

	if (token != NULL)
		freezero_str(token);
	if (ai == NULL)
		why = "the installation is no longer known";
	text = why != NULL ? xstrdup(why) : github_error_text(res);
	snprintf(err, sizeof(err), "cannot get a token for GitHub App "
	    "installation %" PRIu64 ": %s", id, text);
	free(text);
	log_warnx(LC_WARNING, "%s", err);
	app_wake(ga, id, NULL, err);
}

/* ---- the token of a request -------------------------------------------- */

int
github_app_token(struct github_app *ga, const char *url, uint64_t want,
    const char **token, uint64_t *installation, char *err, size_t errlen,
    github_app_token_fn fn, void *arg)
{
	struct app_install	*ai;
	char			*account = NULL;
	time_t			 now = time(NULL);
	int			 rc = 0;

	app_follow_config(ga);
	if (want == 0)
		account = github_app_url_account(ga->ga_conf->c_api_url, url);
	if (ga->ga_conf_install == 0 && (!ga->ga_listed ||
	    ((account != NULL || want != 0) &&
	    app_resolve(ga, account, want, err, errlen) == NULL &&
	    now - ga->ga_listed_at >= GITHUB_APP_RELIST_S))) {
		app_wait(ga, account, want, 0, fn, arg);
		app_list_start(ga);
		goto done;
	}

	if ((ai = app_resolve(ga, account, want, err, errlen)) == NULL) {
		rc = -1;
		goto done;
	}
	if (app_fresh(ai, now)) {
		*token = ai->ai_token;
		*installation = ai->ai_id;
		rc = 1;
		goto done;
	}
	app_wait(ga, account, want, ai->ai_id, fn, arg);
	app_exchange_start(ga, ai);

done:
	free(account);
	return rc;
}

void
github_app_cancel(struct github_app *ga, void *arg)
{
	struct app_waiter	*aw;

	TAILQ_FOREACH(aw, &ga->ga_waiters, aw_entry)
		if (aw->aw_arg == arg)
			break;
	if (aw == NULL)
		return;
	TAILQ_REMOVE(&ga->ga_waiters, aw, aw_entry);
	app_waiter_free(aw);
}

void
github_app_forget(struct github_app *ga, uint64_t installation)
{
	struct app_install	*ai;

	if ((ai = app_install_find(ga, installation)) == NULL)
		return;
	freezero_str(ai->ai_token);
	ai->ai_token = NULL;
}
