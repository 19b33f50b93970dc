/*
 * Unit tests for the GitHub App's pure parts: base64url, the JWT (its
 * header and claims, and its signature checked with the public key by
 * libcrypto), the account a URL acts on and when a token is renewed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "github_app.h"
#include "util.h"

#define ERRLEN		256
#define API		"https://api.example.com/v3"

/* A fresh 2048-bit RSA key, as PEM text in *pem. */
static EVP_PKEY *
make_key(char **pem)
{
	EVP_PKEY	*pkey;
	BIO		*bio;
	char		*data;
	long		 len;

	pkey = EVP_RSA_gen(2048);
	assert_non_null(pkey);
	bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0,
	    NULL, NULL), 1);
	len = BIO_get_mem_data(bio, &data);
	*pem = xstrndup(data, (size_t)len);
	BIO_free(bio);
	return pkey;
}

static unsigned char *
base64url_decode(const char *in, size_t len, size_t *outlen)
{
	unsigned char	*out = xmalloc(len + 1);
	uint32_t	 v = 0;
	size_t		 i, n = 0;
	int		 bits = 0;
	const char	*abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_", *p;

	for (i = 0; i < len; i++) {
		p = strchr(abc, in[i]);
		assert_non_null(p);
		assert_true(in[i] != '\0');
		v = v << 6 | (uint32_t)(p - abc);
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(v >> bits);
		}
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

static void
test_base64url(void **state)
{
	static const struct {
		const char	*in;
		const char	*out;
	} cases[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
		{ "\xfb\xff\xbf", "-_-_" },
	};
	size_t	 i;
	char	*s;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		s = github_app_base64url((const unsigned char *)cases[i].in,
		    strlen(cases[i].in));
		assert_string_equal(s, cases[i].out);
		free(s);
	}
}

static void
test_jwt_signed(void **state)
{
	EVP_PKEY	*pkey;
	EVP_MD_CTX	*md;
	unsigned char	*header, *claims, *sig;
	char		*pem, *jwt, *dot1, *dot2, err[ERRLEN], want[128];
	size_t		 hlen, clen, slen;

	(void)state;
	pkey = make_key(&pem);
	assert_int_equal(github_app_jwt(pem, 123456, 1700000000, &jwt, err,
	    sizeof(err)), 0);
	dot1 = strchr(jwt, '.');
	assert_non_null(dot1);
	dot2 = strchr(dot1 + 1, '.');
	assert_non_null(dot2);
	assert_null(strchr(dot2 + 1, '.'));
	assert_null(strchr(jwt, '='));

	header = base64url_decode(jwt, dot1 - jwt, &hlen);
	assert_string_equal(header, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
	claims = base64url_decode(dot1 + 1, dot2 - dot1 - 1, &clen);
	snprintf(want, sizeof(want), "{\"iat\":%d,\"exp\":%d,\"iss\":"
	    "\"123456\"}", 1700000000 - 60, 1700000000 + 540);
	assert_string_equal(claims, want);

	/* The signature covers "header.claims" and the public key checks it. */
	sig = base64url_decode(dot2 + 1, strlen(dot2 + 1), &slen);
	assert_int_equal(slen, 256);
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
	    pkey), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, slen,
	    (unsigned char *)jwt, dot2 - jwt), 1);
	/* One byte changed in the claims and it no longer holds. */
	dot1[1] ^= 1;
	EVP_MD_CTX_reset(md);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
	    pkey), 1);
	assert_int_not_equal(EVP_DigestVerify(md, sig, slen,
	    (unsigned char *)jwt, dot2 - jwt), 1);

	EVP_MD_CTX_free(md);
	free(header);
	free(claims);
	free(sig);
	free(jwt);
	free(pem);
	EVP_PKEY_free(pkey);
}

static void
test_jwt_bad_key(void **state)
{
	char	*jwt = (char *)"x", err[ERRLEN];
	const char *secret = "-----BEGIN PRIVATE KEY-----\nSECRETSTUFF\n"
	    "-----END PRIVATE KEY-----\n";

	(void)state;
	assert_int_equal(github_app_jwt(secret, 1, 1700000000, &jwt, err,
	    sizeof(err)), -1);
	assert_null(jwt);
	assert_string_equal(err, "the GitHub App's private key is not a PEM "
	    "RSA private key");
	assert_int_equal(github_app_jwt(NULL, 1, 1700000000, &jwt, err,
	    sizeof(err)), -1);
}

static void
test_url_account(void **state)
{
	static const struct {
		const char	*url;
		const char	*account;
	} cases[] = {
		{ API "/repos/Octo-Org/hello/actions/runners", "octo-org" },
		{ API "/repos/me/x", "me" },
		{ API "/orgs/ACME/actions/runners?per_page=100", "acme" },
		{ API "/users/alice/installation", "alice" },
		{ API "/installation/repositories?per_page=100", NULL },
		{ API "/rate_limit", NULL },
		{ API "/repos/", NULL },
		{ "https://elsewhere.example/repos/a/b", NULL },
		{ API "x/repos/a/b", NULL },
	};
	size_t	 i;
	char	*a;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		a = github_app_url_account(API, cases[i].url);
		if (cases[i].account == NULL)
			assert_null(a);
		else
			assert_string_equal(a, cases[i].account);
		free(a);
	}
	assert_true(github_app_url_is_app(API, API "/app/installations"));
	assert_true(github_app_url_is_app(API,
	    API "/app/installations/7/access_tokens"));
	assert_false(github_app_url_is_app(API, API "/apps/x"));
	assert_false(github_app_url_is_app(API, API "/repos/app/x"));
	assert_false(github_app_url_is_app(API,
	    "https://elsewhere.example/app/installations"));
}

static void
test_renew_at(void **state)
{
	(void)state;
	/* An hour's token: five minutes before it ends. */
	assert_int_equal(github_app_renew_at(1000, 1000 + 3600),
	    1000 + 3600 - 300);
	/* A short one: half way. */
	assert_int_equal(github_app_renew_at(1000, 1008), 1004);
	/* Already expired when it came: at once. */
	assert_int_equal(github_app_renew_at(1000, 900), 600);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64url),
		cmocka_unit_test(test_jwt_signed),
		cmocka_unit_test(test_jwt_bad_key),
		cmocka_unit_test(test_url_account),
		cmocka_unit_test(test_renew_at),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
