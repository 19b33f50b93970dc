/*
 * Unit tests of the configuration: defaults, every key, every environment
 * variable, the errors and their lines, secret files, and each role's
 * part on the wire.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "config.h"
#include "ipc.h"

#ifndef TEST_DATA_DIR
#define TEST_DATA_DIR	"tests/unit/data"
#endif
#define SAMPLE_FILE	TEST_DATA_DIR "/../../../etc/ephemerd.yaml"
#define FULL_FILE	TEST_DATA_DIR "/full.yaml"
/* The wire carries the key's text; only its presence matters here. */
#define WIRE_KEY	"-----BEGIN PRIVATE KEY-----\nKEY-SECRET\n" \
	"-----END PRIVATE KEY-----\n"

#define ERRLEN		512

/* Test plumbing. */

static int
parse_text(struct config *cfg, const char *text, char *err)
{
	config_init(cfg);
	cfg->c_file = strdup("t.yaml");
	assert_non_null(cfg->c_file);
	err[0] = '\0';
	return config_parse_yaml(cfg, "t.yaml", text, strlen(text), err,
	    ERRLEN);
}

static char *
read_whole(const char *path, size_t *lenp)
{
	FILE	*fp;
	char	*data;
	long	 len;

	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	len = ftell(fp);
	assert_true(len >= 0);
	rewind(fp);
	data = malloc((size_t)len + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)len, fp), (size_t)len);
	data[len] = '\0';
	fclose(fp);
	*lenp = (size_t)len;
	return data;
}

static int
parse_file(struct config *cfg, const char *path, char *err)
{
	char	*text;
	size_t	 len;
	int	 rc;

	text = read_whole(path, &len);
	config_init(cfg);
	rc = config_parse_yaml(cfg, path, text, len, err, ERRLEN);
	free(text);
	return rc;
}

static void
assert_list(const struct strlist *sl, const char *const *want)
{
	size_t	 n;

	for (n = 0; want[n] != NULL; n++) {
		assert_true(n < sl->sl_count);
		assert_string_equal(sl->sl_items[n], want[n]);
	}
	assert_int_equal(sl->sl_count, n);
}

static const char *
pool_env(const struct pool *pl, const char *name)
{
	size_t	 i;

	for (i = 0; i < pl->pl_nenv; i++)
		if (strcmp(pl->pl_env[i].ev_name, name) == 0)
			return pl->pl_env[i].ev_value;
	return NULL;
}

/* Writes a file of the given mode in a fresh directory; returns its path. */
static char *
write_file(const char *name, const char *content, mode_t mode)
{
	char	 dirtmpl[] = "/tmp/test_config.XXXXXX";
	char	*dir, *path;
	int	 fd;

	dir = mkdtemp(dirtmpl);
	assert_non_null(dir);
	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)),
	    (ssize_t)strlen(content));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

/* A fresh RSA private key as PEM text, for a GitHub App's key file. */
static char *
make_pem(void)
{
	EVP_PKEY	*pkey;
	BIO		*bio;
	char		*data, *pem;
	long		 len;

	pkey = EVP_RSA_gen(1024);
	assert_non_null(pkey);
	bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0,
	    NULL, NULL), 1);
	len = BIO_get_mem_data(bio, &data);
	pem = strndup(data, (size_t)len);
	assert_non_null(pem);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return pem;
}

static void
remove_file(char *path)
{
	char	*slash;

	unlink(path);
	slash = strrchr(path, '/');
	*slash = '\0';
	rmdir(path);
	free(path);
}

/* Every default of DESIGN.md, for config_init() and the sample file. */
static void
assert_defaults(const struct config *cfg)
{
	static const char *const self_hosted[] = { "self-hosted", NULL };
	static const char *const star[] = { "*", NULL };
	static const char *const none[] = { NULL };
	const struct pool	*pl;

	assert_string_equal(cfg->c_user, "_ephemerd");
	assert_string_equal(cfg->c_chroot, "/var/empty");
	assert_int_equal(cfg->c_log_level, LOG_INFO);
	assert_int_equal(cfg->c_log_facility, LOG_DAEMON);
	assert_string_equal(cfg->c_api_url, "https://api.github.com");
	assert_null(cfg->c_token);
	assert_string_equal(cfg->c_token_file, "/etc/ephemerd/token");
	assert_int_equal(cfg->c_token_file_set, 0);
	assert_null(cfg->c_webhook_secret);
	assert_string_equal(cfg->c_webhook_secret_file, "");
	assert_int_equal(cfg->c_app_id, 0);
	assert_string_equal(cfg->c_private_key_file, "");
	assert_int_equal(cfg->c_installation_id, 0);
	assert_string_equal(cfg->c_ca_file, "");
	assert_int_equal(cfg->c_auto_create, 0);
	assert_int_equal(cfg->c_discovery_mode, DISCOVERY_ALL);
	assert_string_equal(cfg->c_organization, "");
	assert_int_equal(cfg->c_interval, 60);
	assert_int_equal(cfg->c_purge_interval, 300);
	assert_int_equal(cfg->c_cleanup_github, 0);
	assert_string_equal(cfg->c_docker_socket, "/var/run/docker.sock");
	assert_string_equal(cfg->c_listen, "127.0.0.1:8080");
	assert_string_equal(cfg->c_api_tokens_file, "");
	assert_list(&cfg->c_api_tokens, none);
	assert_list(&cfg->c_cors_origins, star);
	assert_list(&cfg->c_trusted_proxies, none);
	assert_int_equal(cfg->c_rate, 20);
	assert_int_equal(cfg->c_burst, 40);

	assert_int_equal(cfg->c_npools, 1);
	pl = &cfg->c_pools[0];
	assert_string_equal(pl->pl_name, "default");
	assert_list(&pl->pl_labels, self_hosted);
	assert_string_equal(pl->pl_image, "myoung34/github-runner:latest");
	assert_string_equal(pl->pl_command, "");
	assert_int_equal(pl->pl_registration, REG_AUTO);
	assert_int_equal(pl->pl_max_runners, 10);
	assert_int_equal(pl->pl_min_idle, 0);
	assert_string_equal(pl->pl_scope, "");
	assert_string_equal(pl->pl_scope_name, "");
	assert_int_equal(pl->pl_idle_timeout, 900);
	assert_int_equal(pl->pl_bootstrap_timeout, 300);
	assert_string_equal(pl->pl_runner_group, "");
	assert_int_equal(pl->pl_no_default_labels, 0);
	assert_string_equal(pl->pl_network, "bridge");
	assert_int_equal(pl->pl_memory, 0);
	assert_int_equal(pl->pl_nano_cpus, 0);
	assert_int_equal(pl->pl_pids_limit, 0);
	assert_int_equal(pl->pl_docker_in_docker, 0);
	assert_int_equal(pl->pl_nenv, 0);
}

/* Defaults and the sample. */

static void
test_defaults(void **state)
{
	struct config	 cfg;
	char		 err[ERRLEN];

	(void)state;
	config_init(&cfg);
	assert_defaults(&cfg);
	assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.c_pools[0].pl_registration, REG_JIT);
	assert_ptr_equal(config_find_pool(&cfg, "default"), &cfg.c_pools[0]);
	assert_null(config_find_pool(&cfg, "nope"));
	config_free(&cfg);
}

static void
test_sample_is_defaults(void **state)
{
	struct config	 cfg;
	char		 err[ERRLEN] = "";

	(void)state;
	if (parse_file(&cfg, SAMPLE_FILE, err) == -1)
		fail_msg("%s", err);
	assert_defaults(&cfg);
	config_free(&cfg);
}

static void
test_sample_loads(void **state)
{
	struct config	 cfg;
	char		 err[ERRLEN] = "";
	char		*envp[] = { "LOG_LEVEL=debug", NULL };

	(void)state;
	if (access("/etc/ephemerd/token", F_OK) == 0)
		skip();
	if (config_load(&cfg, SAMPLE_FILE, envp, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_null(cfg.c_token);
	assert_int_equal(cfg.c_log_level, LOG_DEBUG);
	assert_int_equal(cfg.c_pools[0].pl_registration, REG_JIT);
	assert_string_equal(cfg.c_file, SAMPLE_FILE);
	config_free(&cfg);
}

static void
test_empty_file_is_defaults(void **state)
{
	struct config	 cfg;
	char		 err[ERRLEN];

	(void)state;
	assert_int_equal(parse_text(&cfg, "# nothing\n", err), 0);
	assert_defaults(&cfg);
	config_free(&cfg);
}

/* The instance name: given, checked with its line, or the host's. */
static void
test_instance(void **state)
{
	struct config	 cfg;
	char		 err[ERRLEN], host[256];

	(void)state;
	assert_int_equal(parse_text(&cfg, "instance: ci-7\n", err), 0);
	assert_int_equal(config_validate(&cfg, err, ERRLEN), 0);
	assert_string_equal(cfg.c_instance, "ci-7");
	config_free(&cfg);

	assert_int_equal(parse_text(&cfg, "user: x\ninstance: Bad_Name\n",
	    err), -1);
	assert_non_null(strstr(err, "t.yaml:2:"));
	config_free(&cfg);

	assert_int_equal(parse_text(&cfg, "# nothing\n", err), 0);
	assert_int_equal(config_validate(&cfg, err, ERRLEN), 0);
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	assert_true(strlen(cfg.c_instance) >= 1 &&
	    strlen(cfg.c_instance) <= CONFIG_INSTANCE_MAX);
	assert_int_equal(strspn(cfg.c_instance,
	    "abcdefghijklmnopqrstuvwxyz0123456789-"), strlen(cfg.c_instance));
	assert_int_equal(strncasecmp(cfg.c_instance, host,
	    strlen(cfg.c_instance)) == 0 || strcmp(cfg.c_instance, "host") == 0,
	    1);
	config_free(&cfg);
}

/* Every key. */

static void
test_every_key(void **state)
{
	static const char *const tokens[] = { "apitoken-alpha-1",
	    "apitoken-beta-2", NULL };
	static const char *const cors[] = { "https://a.example",
	    "https://b.example", NULL };
	static const char *const proxies[] = { "10.0.0.0/8", "::1", NULL };
	static const char *const gpu_labels[] = { "self-hosted", "linux",
	    "gpu", NULL };
	struct config	 cfg;
	struct pool	*pl;
	char		 err[ERRLEN] = "";

	(void)state;
	if (parse_file(&cfg, FULL_FILE, err) == -1 ||
	    config_validate(&cfg, err, sizeof(err)) == -1)
		fail_msg("%s", err);

	assert_string_equal(cfg.c_user, "runner");
	assert_string_equal(cfg.c_chroot, "");
	assert_int_equal(cfg.c_log_level, LOG_DEBUG);
	assert_int_equal(cfg.c_log_facility, LOG_LOCAL3);
	assert_string_equal(cfg.c_api_url, "https://ghe.example.com/api/v3");
	assert_string_equal(cfg.c_token, "inline-token-123");
	assert_string_equal(cfg.c_webhook_secret, "hook secret");
	assert_int_equal(cfg.c_app_id, 4242);
	assert_string_equal(cfg.c_private_key_file, "/etc/ephemerd/app.pem");
	assert_int_equal(cfg.c_installation_id, 99);
	assert_string_equal(cfg.c_ca_file, "/etc/ssl/ghe.pem");
	assert_int_equal(cfg.c_auto_create, 1);
	assert_int_equal(cfg.c_discovery_mode, DISCOVERY_ORGANIZATION);
	assert_string_equal(cfg.c_organization, "acme-corp");
	assert_int_equal(cfg.c_interval, 15);
	assert_int_equal(cfg.c_purge_interval, 600);
	assert_int_equal(cfg.c_cleanup_github, 1);
	assert_string_equal(cfg.c_docker_socket, "/run/docker.sock");
	assert_string_equal(cfg.c_listen, "[::1]:9090");
	assert_list(&cfg.c_api_tokens, tokens);
	assert_list(&cfg.c_cors_origins, cors);
	assert_list(&cfg.c_trusted_proxies, proxies);
	assert_int_equal(cfg.c_rate, 5);
	assert_int_equal(cfg.c_burst, 7);

	assert_int_equal(cfg.c_npools, 2);
	assert_null(config_find_pool(&cfg, "default"));
	pl = config_find_pool(&cfg, "gpu");
	assert_non_null(pl);
	assert_int_equal(pl->pl_line, 31);
	assert_list(&pl->pl_labels, gpu_labels);
	assert_string_equal(pl->pl_image,
	    "ghcr.io/actions/actions-runner:2.320.0");
	assert_string_equal(pl->pl_command, "/home/runner/run.sh");
	assert_int_equal(pl->pl_registration, REG_TOKEN);
	assert_int_equal(pl->pl_max_runners, 3);
	assert_int_equal(pl->pl_min_idle, 1);
	assert_string_equal(pl->pl_scope, "repo");
	assert_string_equal(pl->pl_scope_name, "acme-corp/builds");
	assert_int_equal(pl->pl_idle_timeout, 120);
	assert_int_equal(pl->pl_bootstrap_timeout, 60);
	assert_string_equal(pl->pl_runner_group, "builders");
	assert_int_equal(pl->pl_no_default_labels, 1);
	assert_string_equal(pl->pl_network, "host");
	assert_int_equal(pl->pl_memory, 2147483648ULL);
	assert_int_equal(pl->pl_nano_cpus, 1500000000ULL);
	assert_int_equal(pl->pl_pids_limit, 512);
	assert_int_equal(pl->pl_docker_in_docker, 1);
	assert_int_equal(pl->pl_nenv, 3);
	assert_string_equal(pool_env(pl, "REPO_URL"),
	    "https://github.com/{scope_name}");
	assert_string_equal(pool_env(pl, "RUNNER_TOKEN"),
	    "{registration_token}");
	assert_string_equal(pool_env(pl, "EMPTY"), "");

	pl = config_find_pool(&cfg, "small.x_1");
	assert_non_null(pl);
	assert_int_equal(pl->pl_line, 53);
	assert_int_equal(pl->pl_registration, REG_JIT);
	assert_int_equal(pl->pl_max_runners, 10);
	config_free(&cfg);
}

static void
test_cpus_and_lists(void **state)
{
	static const char *const one[] = { "https://x.example", NULL };
	static const char *const none[] = { NULL };
	struct config	 cfg;
	char		 err[ERRLEN];

	(void)state;
	assert_int_equal(parse_text(&cfg, "pools:\n  - name: a\n"
	    "    cpus: 0.000000001\n  - name: b\n    cpus: 4096\n"
	    "  - name: c\n    cpus: 2.25\n"
	    "httpd:\n  cors_origins: [https://x.example]\n"
	    "  trusted_proxies:\n", err), 0);
	assert_int_equal(cfg.c_pools[0].pl_nano_cpus, 1);
	assert_int_equal(cfg.c_pools[1].pl_nano_cpus, 4096000000000ULL);
	assert_int_equal(cfg.c_pools[2].pl_nano_cpus, 2250000000ULL);
	assert_list(&cfg.c_cors_origins, one);
	assert_list(&cfg.c_trusted_proxies, none);
	config_free(&cfg);
}

/* Errors, each with its line. */

struct error_case {
	const char	*ec_name;
	const char	*ec_yaml;
	const char	*ec_error;
};

static const struct error_case error_cases[] = {
	{ "unknown top key", "user: x\nimgae: y\n",
	    "t.yaml:2: unknown key 'imgae'" },
	{ "unknown section key", "github:\n  api_url: https://x\n  tokn: a\n",
	    "t.yaml:3: unknown key 'tokn' in github" },
	{ "unknown pool key", "pools:\n  - name: a\n\n    imgae: x\n",
	    "t.yaml:4: unknown key 'imgae' in pools[0]" },
	{ "unknown rate key", "httpd:\n  rate_limit:\n    rate: 1\n"
	    "    brust: 2\n",
	    "t.yaml:4: unknown key 'brust' in httpd.rate_limit" },
	{ "bad env name", "pools:\n  - name: a\n    env:\n      BAD-NAME: x\n",
	    "t.yaml:4: 'BAD-NAME' is not a valid environment variable name "
	    "in pools[0].env" },
	{ "env not a mapping", "pools:\n  - name: a\n    env: [A]\n",
	    "t.yaml:3: 'env' must be a mapping, not a sequence" },
	{ "integer word", "discovery:\n  mode: all\n  interval: sixty\n",
	    "t.yaml:3: 'interval' must be an integer, not 'sixty'" },
	{ "integer sign", "discovery:\n  interval: +5\n",
	    "t.yaml:2: 'interval' must be an integer, not '+5'" },
	{ "integer junk", "discovery:\n  interval: 10s\n",
	    "t.yaml:2: 'interval' must be an integer, not '10s'" },
	{ "integer empty", "discovery:\n  interval:\n",
	    "t.yaml:2: 'interval' must be an integer, not ''" },
	{ "integer too large", "discovery:\n  interval: 4294967296\n",
	    "t.yaml:2: 'interval' must be at most 4294967295, not "
	    "'4294967296'" },
	{ "integer zero", "discovery:\n  purge_interval: 0\n",
	    "t.yaml:2: 'purge_interval' must be at least 1, not '0'" },
	{ "string is mapping", "user:\n  name: x\n",
	    "t.yaml:2: 'user' must be a string, not a mapping" },
	{ "bool", "discovery:\n  auto_create: maybe\n",
	    "t.yaml:2: 'auto_create' must be true or false, not 'maybe'" },
	{ "list is mapping", "pools:\n  - name: a\n    labels: {a: b}\n",
	    "t.yaml:3: 'labels' must be a sequence, not a mapping" },
	{ "list item", "pools:\n  - name: a\n    labels:\n      - x\n"
	    "      - [y]\n", "t.yaml:5: 'labels' items must be strings" },
	{ "section is scalar", "github: yes\n",
	    "t.yaml:1: 'github' must be a mapping, not 'yes'" },
	{ "duplicate key", "user: a\nchroot: \"\"\nuser: b\n",
	    "t.yaml:3: duplicate key 'user'" },
	{ "duplicate env key", "pools:\n  - name: a\n    env:\n      A: 1\n"
	    "      A: 2\n", "t.yaml:5: duplicate key 'A'" },
	{ "duplicate pool", "pools:\n  - name: a\n  - name: a\n",
	    "t.yaml:3: duplicate pool name 'a'" },
	{ "bad listen port", "httpd:\n  rate_limit: {rate: 1, burst: 1}\n"
	    "  listen: 127.0.0.1:0\n",
	    "t.yaml:3: bad listen '127.0.0.1:0': the port must be a number "
	    "from 1 to 65535" },
	{ "bad listen v6", "httpd:\n  listen: ::1:80\n",
	    "t.yaml:2: bad listen '::1:80': an IPv6 address needs brackets, "
	    "as in [::1]:8080" },
	{ "bad listen v4", "httpd:\n  listen: 300.1.2.3:80\n",
	    "t.yaml:2: bad listen '300.1.2.3:80': bad IPv4 address" },
	{ "bad listen form", "httpd:\n  listen: localhost\n",
	    "t.yaml:2: bad listen 'localhost': expected host:port" },
	{ "bad placeholder", "pools:\n  - name: web\n    env:\n"
	    "      A: https://github.com/{scope_name}\n"
	    "      NAME: \"{runner_nme}-x\"\n",
	    "t.yaml:5: pool 'web': env NAME: unknown placeholder "
	    "'{runner_nme}'" },
	{ "jit mode with token placeholder", "pools:\n  - name: a\n"
	    "    registration: jit\n    env:\n"
	    "      T: \"{registration_token}\"\n",
	    "t.yaml:5: pool 'a': env T: placeholder '{registration_token}' is "
	    "not available with registration jit" },
	{ "token mode with jit placeholder", "pools:\n  - name: a\n"
	    "    env:\n      J: \"{jit_config}\"\n    registration: token\n",
	    "t.yaml:4: pool 'a': env J: placeholder '{jit_config}' is not "
	    "available with registration token" },
	{ "auto mode with both", "\npools:\n  - name: a\n    env:\n"
	    "      T: \"{registration_token}\"\n      J: \"{jit_config}\"\n",
	    "t.yaml:3: pool 'a': env J: placeholder '{jit_config}' is not "
	    "available with registration token" },
	{ "bad registration", "pools:\n  - name: a\n    registration: pat\n",
	    "t.yaml:3: 'registration' must be jit, token or auto, not 'pat'" },
	{ "syntax error", "user: a\n  chroot: b\n",
	    "t.yaml:2: YAML syntax error: mapping values are not allowed in "
	    "this context" },
	{ "unclosed flow", "user: a\npools: [a\n",
	    "t.yaml:3: YAML syntax error: did not find expected ',' or ']' "
	    "while parsing a flow sequence" },
	{ "alias", "user: &u bob\nchroot: *u\n",
	    "t.yaml:2: YAML aliases (*name) are not supported; repeat the "
	    "value" },
	{ "top is sequence", "- a\n- b\n",
	    "t.yaml:1: the top level must be a mapping of keys, not a "
	    "sequence" },
	{ "two documents", "user: a\n---\nuser: b\n",
	    "t.yaml:3: more than one YAML document" },
	{ "bad pool name", "pools:\n  - name: \"a b\"\n",
	    "t.yaml:2: bad name 'a b': must be 1 to 32 letters, digits, '_', "
	    "'.' or '-'" },
	{ "pool without name", "pools:\n  - labels: [x]\n",
	    "t.yaml:2: 'name' is missing in pools[0]" },
	{ "pool not a mapping", "pools:\n  - a\n",
	    "t.yaml:2: 'pools[0]' must be a mapping, not 'a'" },
	{ "label comma", "pools:\n  - name: a\n    labels: [\"x,y\"]\n",
	    "t.yaml:3: bad labels item 'x,y': must not contain commas or "
	    "control characters" },
	{ "min_idle", "pools:\n  - name: a\n    max_runners: 2\n"
	    "    min_idle: 3\n",
	    "t.yaml:2: pool 'a': min_idle 3 is more than max_runners 2" },
	{ "min_idle without scope", "pools:\n  - name: a\n    min_idle: 1\n",
	    "t.yaml:2: pool 'a': min_idle needs scope and scope_name, or "
	    "discovery mode organization" },
	{ "scope", "pools:\n  - name: a\n    scope: team\n",
	    "t.yaml:3: bad scope 'team': must be repo or org" },
	{ "scope without name", "pools:\n  - name: a\n    scope: org\n",
	    "t.yaml:2: pool 'a': scope needs scope_name" },
	{ "scope_name without scope", "pools:\n  - name: a\n"
	    "    scope_name: x\n",
	    "t.yaml:2: pool 'a': scope_name needs scope (repo or org)" },
	{ "scope_name of a repo", "pools:\n  - name: a\n    scope: repo\n"
	    "    scope_name: acme\n",
	    "t.yaml:2: pool 'a': bad scope_name 'acme': not a repository's "
	    "owner/name" },
	{ "scope_name of an org", "pools:\n  - name: a\n    scope: org\n"
	    "    scope_name: a/b\n",
	    "t.yaml:2: pool 'a': bad scope_name 'a/b': not a GitHub "
	    "organization name" },
	{ "empty labels", "pools:\n  - name: a\n    labels: []\n",
	    "t.yaml:2: pool 'a': labels must not be empty" },
	{ "memory", "pools:\n  - name: a\n    memory: 1000\n",
	    "t.yaml:2: pool 'a': memory must be 0 or at least 6291456 bytes" },
	{ "cpus", "pools:\n  - name: a\n    cpus: 1.5x\n",
	    "t.yaml:3: 'cpus' must be a number of CPUs such as 1.5 (at most "
	    "4096), not '1.5x'" },
	{ "no pools", "pools: []\n",
	    "t.yaml: no pools: define at least one, or leave 'pools' out for "
	    "the default" },
	{ "organization missing", "discovery:\n  mode: organization\n",
	    "t.yaml: discovery mode organization needs discovery.organization "
	    "(GITHUB_ORGANIZATION)" },
	{ "bad mode", "discovery:\n  mode: some\n",
	    "t.yaml:2: 'mode' must be all or organization, not 'some'" },
	{ "burst below rate", "httpd:\n  rate_limit: {rate: 10, burst: 5}\n",
	    "t.yaml: httpd.rate_limit burst 5 is less than rate 10" },
	{ "api_url", "github:\n  api_url: ftp://x\n",
	    "t.yaml:2: bad api_url 'ftp://x': must start with https:// or "
	    "http://" },
	{ "socket", "docker:\n  socket: docker.sock\n",
	    "t.yaml:2: bad socket 'docker.sock': must be an absolute path" },
	{ "chroot", "chroot: var/empty\n",
	    "t.yaml:1: bad chroot 'var/empty': must be an absolute path, or "
	    "\"\" for none" },
	{ "user empty", "user: \"\"\n",
	    "t.yaml:1: bad user '': must not be empty" },
	{ "log level", "log:\n  level: loud\n",
	    "t.yaml:2: 'level' must be debug, info, warning or error, not "
	    "'loud'" },
	{ "log facility", "log:\n  facility: kern\n",
	    "t.yaml:2: 'facility' must be a syslog facility such as daemon or "
	    "local0, not 'kern'" },
	{ "token and token_file", "github:\n  token: a\n  token_file: /x\n",
	    "t.yaml:2: 'token' and 'token_file' are both given in github; "
	    "keep one" },
	{ "api_tokens both", "httpd:\n  api_tokens: [a]\n"
	    "  api_tokens_file: /x\n",
	    "t.yaml:2: 'api_tokens' and 'api_tokens_file' are both given in "
	    "httpd; keep one" },
	{ "token is a list", "github:\n  token: [ghp_x]\n",
	    "t.yaml:2: 'token' must be a string" },
	{ "app without key", "github:\n  app_id: 5\n",
	    "t.yaml: github.app_id needs github.private_key_file" },
	{ "proxy", "httpd:\n  trusted_proxies: [10.0.0.0/33]\n",
	    "t.yaml:2: bad trusted_proxies item '10.0.0.0/33': must be an IP "
	    "address or a network such as 10.0.0.0/8" },
	{ "nul in string", "user: \"a\\0b\"\n",
	    "t.yaml:1: 'user' contains a NUL character" },
};

static void
test_errors(void **state)
{
	const struct error_case	*ec;
	struct config		 cfg;
	char			 err[ERRLEN];
	size_t			 i;
	int			 failed = 0;

	(void)state;
	for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		ec = &error_cases[i];
		if (parse_text(&cfg, ec->ec_yaml, err) == 0 &&
		    config_validate(&cfg, err, sizeof(err)) == 0) {
			print_error("%s: accepted\n", ec->ec_name);
			failed++;
		} else if (strcmp(err, ec->ec_error) != 0) {
			print_error("%s:\n  got  %s\n  want %s\n", ec->ec_name,
			    err, ec->ec_error);
			failed++;
		}
		config_free(&cfg);
	}
	assert_int_equal(failed, 0);
}

static void
test_error_files(void **state)
{
	struct config	 cfg;
	char		 err[ERRLEN], want[ERRLEN];
	char		*envp[] = { NULL };
	const char	*path;

	(void)state;
	path = TEST_DATA_DIR "/unknown_pool_key.yaml";
	assert_int_equal(config_load(&cfg, path, envp, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:8: unknown key 'imgae' in pools[1]",
	    path);
	assert_string_equal(err, want);
	config_free(&cfg);

	path = TEST_DATA_DIR "/bad_placeholder.yaml";
	assert_int_equal(config_load(&cfg, path, envp, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:5: pool 'web': env NAME: unknown "
	    "placeholder '{runner_nme}'", path);
	assert_string_equal(err, want);
	config_free(&cfg);

	path = TEST_DATA_DIR "/does-not-exist.yaml";
	assert_int_equal(config_load(&cfg, path, envp, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);
	config_free(&cfg);
}

/* Values must fit the wire, whether from the file or the environment. */
static void
test_length_limits(void **state)
{
	struct config	 cfg;
	char		 err[ERRLEN], *yaml, *var, *envp[2];
	size_t		 len = 8193;

	(void)state;
	yaml = malloc(len + 32);
	assert_non_null(yaml);
	memcpy(yaml, "user: ", 6);
	memset(yaml + 6, 'u', len);
	strcpy(yaml + 6 + len, "\n");
	assert_int_equal(parse_text(&cfg, yaml, err), -1);
	assert_string_equal(err, "t.yaml:1: 'user' is longer than 8192 bytes");
	config_free(&cfg);

	yaml[6 + len - 1] = '\n';
	yaml[6 + len] = '\0';
	assert_int_equal(parse_text(&cfg, yaml, err), 0);
	assert_int_equal(strlen(cfg.c_user), 8192);
	assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
	config_free(&cfg);
	free(yaml);

	var = malloc(len + 16);
	assert_non_null(var);
	memcpy(var, "runnerenv_A=", 12);
	memset(var + 12, 'v', len);
	var[12 + len] = '\0';
	envp[0] = var;
	envp[1] = NULL;
	config_init(&cfg);
	assert_int_equal(config_apply_env(&cfg, envp, err, sizeof(err)), 0);
	assert_int_equal(config_validate(&cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "pool 'default': a value is longer than "
	    "8192 bytes, or there are more than 1024 labels or variables");
	config_free(&cfg);
	free(var);
}

/* Placeholders: braces that are not a word are left alone. */
static void
test_placeholders(void **state)
{
	struct config	 cfg;
	char		 err[ERRLEN];
	size_t		 i, n;

	(void)state;
	assert_int_equal(parse_text(&cfg, "pools:\n  - name: a\n    env:\n"
	    "      J: '{\"a\": 1} {} {x'\n"
	    "      ALL: \"{scope_name}{runner_name}{registration_token}"
	    "{repo_owner}{repo_name}{repo_full_name}{hostname}{timestamp}"
	    "{timestamp_iso}{labels}{pool}\"\n", err), 0);
	assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.c_pools[0].pl_registration, REG_TOKEN);
	config_free(&cfg);

	for (n = 0; config_placeholders[n] != NULL; n++)
		for (i = 0; i < n; i++)
			assert_string_not_equal(config_placeholders[i],
			    config_placeholders[n]);
	assert_int_equal(n, 12);
}

/* Environment. */

static void
test_env_every_variable(void **state)
{
	static const char *const cors[] = { "https://a.example",
	    "https://b.example", NULL };
	char		*envp[] = {
		"GITHUB_RUNNER_TOKEN=ghp_envtoken",
		"RUNNER_IMAGE=example/runner:2",
		"AUTO_CREATE_RUNNERS=true",
		"RUNNER_CHECK_INTERVAL=30",
		"RUNNER_PURGE_INTERVAL=120",
		"DISCOVERY_MODE=Organization",
		"GITHUB_ORGANIZATION=acme",
		"GITHUB_CLEANUP_ENABLED=True",
		"RUNNER_COMMAND=/run.sh --once",
		"runnerenv_REPO_URL=https://github.com/{scope_name}",
		"runnerenv_RUNNER_TOKEN={registration_token}",
		"runnerenv_EMPTY=",
		"CORS_ORIGINS= https://a.example ,https://b.example,, ",
		"API_GATEWAY_PORT=9000",
		"LOG_LEVEL=warning",
		"REGISTRY=ghcr.io/x",
		"IMAGE_VERSION=1.2",
		"RUNNERENV_UPPER=not ours",
		"PATH=/usr/bin",
		"NOEQUALS",
		NULL
	};
	struct config	 cfg;
	struct pool	*pl;
	char		 err[ERRLEN] = "";

	(void)state;
	config_init(&cfg);
	if (config_apply_env(&cfg, envp, err, sizeof(err)) == -1 ||
	    config_validate(&cfg, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_string_equal(cfg.c_token, "ghp_envtoken");
	assert_int_equal(cfg.c_auto_create, 1);
	assert_int_equal(cfg.c_interval, 30);
	assert_int_equal(cfg.c_purge_interval, 120);
	assert_int_equal(cfg.c_discovery_mode, DISCOVERY_ORGANIZATION);
	assert_string_equal(cfg.c_organization, "acme");
	assert_int_equal(cfg.c_cleanup_github, 1);
	assert_list(&cfg.c_cors_origins, cors);
	assert_string_equal(cfg.c_listen, "127.0.0.1:9000");
	assert_int_equal(cfg.c_log_level, LOG_WARNING);

	assert_int_equal(cfg.c_npools, 1);
	pl = &cfg.c_pools[0];
	assert_string_equal(pl->pl_image, "example/runner:2");
	assert_string_equal(pl->pl_command, "/run.sh --once");
	assert_int_equal(pl->pl_nenv, 3);
	assert_string_equal(pool_env(pl, "REPO_URL"),
	    "https://github.com/{scope_name}");
	assert_string_equal(pool_env(pl, "EMPTY"), "");
	assert_null(pool_env(pl, "UPPER"));
	assert_int_equal(pl->pl_registration, REG_TOKEN);
	config_free(&cfg);
}

static void
test_env_overrides_file(void **state)
{
	char		*envp[] = { "LOG_LEVEL=ERROR", "API_GATEWAY_PORT=81",
	    "RUNNER_CHECK_INTERVAL=", "runnerenv_A=env", NULL };
	struct config	 cfg;
	char		 err[ERRLEN] = "";

	(void)state;
	assert_int_equal(parse_text(&cfg, "log: {level: debug}\n"
	    "httpd:\n  listen: \"[::]:8080\"\ndiscovery:\n  interval: 7\n"
	    "pools:\n  - name: default\n    env: {A: file, B: file}\n",
	    err), 0);
	if (config_apply_env(&cfg, envp, err, sizeof(err)) == -1 ||
	    config_validate(&cfg, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_int_equal(cfg.c_log_level, LOG_ERR);
	assert_string_equal(cfg.c_listen, "[::]:81");
	assert_int_equal(cfg.c_interval, 7);
	assert_string_equal(pool_env(&cfg.c_pools[0], "A"), "env");
	assert_string_equal(pool_env(&cfg.c_pools[0], "B"), "file");
	assert_int_equal(cfg.c_pools[0].pl_nenv, 2);
	config_free(&cfg);
}

static void
test_env_default_pool(void **state)
{
	char		*none[] = { "LOG_LEVEL=info", NULL };
	char		*image[] = { "RUNNER_IMAGE=x/y:1", NULL };
	char		*var[] = { "runnerenv_A=1", NULL };
	const char	*yaml = "pools:\n  - name: gpu\n";
	struct config	 cfg;
	char		 err[ERRLEN];

	(void)state;
	assert_int_equal(parse_text(&cfg, yaml, err), 0);
	assert_int_equal(config_apply_env(&cfg, none, err, sizeof(err)), 0);
	assert_int_equal(cfg.c_npools, 1);
	assert_null(config_find_pool(&cfg, "default"));
	config_free(&cfg);

	assert_int_equal(parse_text(&cfg, yaml, err), 0);
	assert_int_equal(config_apply_env(&cfg, image, err, sizeof(err)), 0);
	assert_int_equal(cfg.c_npools, 2);
	assert_string_equal(config_find_pool(&cfg, "default")->pl_image,
	    "x/y:1");
	assert_string_equal(config_find_pool(&cfg, "gpu")->pl_image,
	    "myoung34/github-runner:latest");
	config_free(&cfg);

	assert_int_equal(parse_text(&cfg, yaml, err), 0);
	assert_int_equal(config_apply_env(&cfg, var, err, sizeof(err)), 0);
	assert_int_equal(cfg.c_npools, 2);
	assert_string_equal(pool_env(config_find_pool(&cfg, "default"), "A"),
	    "1");
	assert_int_equal(config_find_pool(&cfg, "gpu")->pl_nenv, 0);
	config_free(&cfg);
}

static void
test_env_errors(void **state)
{
	static const char *const cases[][2] = {
		{ "RUNNER_CHECK_INTERVAL=abc", "RUNNER_CHECK_INTERVAL: must be "
		    "an integer from 1 to 4294967295, not 'abc'" },
		{ "RUNNER_PURGE_INTERVAL=0", "RUNNER_PURGE_INTERVAL: must be "
		    "an integer from 1 to 4294967295, not '0'" },
		{ "AUTO_CREATE_RUNNERS=maybe", "AUTO_CREATE_RUNNERS: must be "
		    "true or false, not 'maybe'" },
		{ "GITHUB_CLEANUP_ENABLED=2", "GITHUB_CLEANUP_ENABLED: must be "
		    "true or false, not '2'" },
		{ "DISCOVERY_MODE=some", "DISCOVERY_MODE: must be 'all' or "
		    "'organization', not 'some'" },
		{ "API_GATEWAY_PORT=70000", "API_GATEWAY_PORT: must be a port "
		    "from 1 to 65535, not '70000'" },
		{ "LOG_LEVEL=LOUD", "LOG_LEVEL: must be DEBUG, INFO, WARNING "
		    "or ERROR, not 'LOUD'" },
		{ "runnerenv_BAD-NAME=x", "runnerenv_BAD-NAME: 'BAD-NAME' is "
		    "not a valid variable name" },
		{ "GITHUB_RUNNER_TOKEN=ghp_abc def", "GITHUB_RUNNER_TOKEN: "
		    "contains white space or control characters" },
	};
	struct config	 cfg;
	char		*envp[2];
	char		 err[ERRLEN];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		envp[0] = (char *)cases[i][0];
		envp[1] = NULL;
		config_init(&cfg);
		assert_int_equal(config_apply_env(&cfg, envp, err,
		    sizeof(err)), -1);
		assert_string_equal(err, cases[i][1]);
		assert_null(strstr(err, "ghp_abc"));
		config_free(&cfg);
	}
}

static void
test_env_listen_error(void **state)
{
	char		*envp[] = { "API_GATEWAY_PORT=8081", NULL };
	struct config	 cfg;
	char		 err[ERRLEN];

	(void)state;
	config_init(&cfg);
	free(cfg.c_listen);
	cfg.c_listen = strdup("localhost:1");
	assert_int_equal(config_apply_env(&cfg, envp, err, sizeof(err)), 0);
	assert_string_equal(cfg.c_listen, "localhost:8081");
	assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
	config_free(&cfg);
}

/* Secret files. */

static void
test_secret_mode_refused(void **state)
{
	struct config	 cfg;
	char		 err[ERRLEN], want[ERRLEN], yaml[256];
	char		*path;

	(void)state;
	path = write_file("token", "ghp_SECRET_in_file\n", 0644);
	snprintf(yaml, sizeof(yaml), "github:\n  token_file: %s\n", path);
	assert_int_equal(parse_text(&cfg, yaml, err), 0);
	assert_int_equal(cfg.c_token_file_set, 1);
	assert_int_equal(config_read_secrets(&cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: readable by others; chmod 600",
	    path);
	assert_string_equal(err, want);
	assert_null(strstr(err, "SECRET"));
	assert_null(cfg.c_token);

	assert_int_equal(chmod(path, 0620), 0);
	assert_int_equal(config_read_secrets(&cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: writable by others; chmod 600",
	    path);
	assert_string_equal(err, want);

	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(config_read_secrets(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.c_token, "ghp_SECRET_in_file");
	config_free(&cfg);
	remove_file(path);
}

static void
test_secret_token_file_rules(void **state)
{
	struct config	 cfg;
	char		 err[ERRLEN], want[ERRLEN];
	char		*path;

	(void)state;
	/* A missing default is fine, a missing explicit file is not. */
	config_init(&cfg);
	free(cfg.c_token_file);
	cfg.c_token_file = strdup("/nonexistent/ephemerd/token");
	assert_int_equal(config_read_secrets(&cfg, err, sizeof(err)), 0);
	assert_null(cfg.c_token);
	cfg.c_token_file_set = 1;
	assert_int_equal(config_read_secrets(&cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/ephemerd/token: No such file "
	    "or directory");
	config_free(&cfg);

	/* A token from the environment wins over the file. */
	path = write_file("token", "from-file\n", 0644);
	config_init(&cfg);
	free(cfg.c_token_file);
	cfg.c_token_file = strdup(path);
	cfg.c_token = strdup("from-env");
	assert_int_equal(config_read_secrets(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.c_token, "from-env");
	config_free(&cfg);
	remove_file(path);

	/* Two lines, or white space, are refused without quoting them. */
	path = write_file("token", "ghp_one\nghp_two\n", 0600);
	config_init(&cfg);
	free(cfg.c_token_file);
	cfg.c_token_file = strdup(path);
	assert_int_equal(config_read_secrets(&cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: more than one line", path);
	assert_string_equal(err, want);
	config_free(&cfg);
	remove_file(path);

	path = write_file("token", "\n", 0600);
	config_init(&cfg);
	free(cfg.c_token_file);
	cfg.c_token_file = strdup(path);
	assert_int_equal(config_read_secrets(&cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: empty", path);
	assert_string_equal(err, want);
	config_free(&cfg);
	remove_file(path);
}

static void
test_secret_other_files(void **state)
{
	static const char *const tokens[] = { "tok1", "tok2", NULL };
	struct config	 cfg;
	char		 err[ERRLEN], want[ERRLEN];
	char		*hook, *toks, *key, *bad, *pem;

	(void)state;
	hook = write_file("hook", "my hook secret\r\n", 0600);
	toks = write_file("tokens", "# comment\n\n  tok1  \ntok2\r\n", 0400);
	pem = make_pem();
	key = write_file("key.pem", pem, 0600);
	config_init(&cfg);
	free(cfg.c_token_file);
	cfg.c_token_file = strdup("");
	free(cfg.c_webhook_secret_file);
	cfg.c_webhook_secret_file = strdup(hook);
	free(cfg.c_api_tokens_file);
	cfg.c_api_tokens_file = strdup(toks);
	free(cfg.c_private_key_file);
	cfg.c_private_key_file = strdup(key);
	cfg.c_app_id = 1;
	if (config_read_secrets(&cfg, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_string_equal(cfg.c_webhook_secret, "my hook secret");
	assert_list(&cfg.c_api_tokens, tokens);
	assert_string_equal(cfg.c_private_key, pem);
	assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);

	assert_int_equal(chmod(key, 0640), 0);
	assert_int_equal(config_read_secrets(&cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: the private key is accessible by "
	    "group or others (mode 640); chmod 600", key);
	assert_string_equal(err, want);
	assert_int_equal(chmod(key, 0601), 0);
	assert_int_equal(config_read_secrets(&cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "(mode 601); chmod 600"));
	config_free(&cfg);
	remove_file(key);
	free(pem);

	/* Text that is no key is refused, and not quoted. */
	key = write_file("key.pem", "-----BEGIN PRIVATE KEY-----\nSECRET\n"
	    "-----END PRIVATE KEY-----\n", 0600);
	config_init(&cfg);
	free(cfg.c_private_key_file);
	cfg.c_private_key_file = strdup(key);
	cfg.c_app_id = 1;
	assert_int_equal(config_read_secrets(&cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: not a PEM RSA private key", key);
	assert_string_equal(err, want);
	assert_null(cfg.c_private_key);
	config_free(&cfg);

	bad = write_file("tokens", "good\nbad token-SECRET\n", 0600);
	config_init(&cfg);
	free(cfg.c_api_tokens_file);
	cfg.c_api_tokens_file = strdup(bad);
	assert_int_equal(config_read_secrets(&cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: the token contains white space "
	    "or control characters", bad);
	assert_string_equal(err, want);
	assert_null(strstr(err, "SECRET"));
	config_free(&cfg);

	remove_file(hook);
	remove_file(toks);
	remove_file(key);
	remove_file(bad);
}

/* The wire. */

static void
load_full(struct config *cfg)
{
	char	 err[ERRLEN] = "";

	if (parse_file(cfg, FULL_FILE, err) == -1 ||
	    config_validate(cfg, err, sizeof(err)) == -1)
		fail_msg("%s", err);
}

static void
encode(const struct config *cfg, int role, struct buf *b)
{
	buf_init(b);
	config_encode(cfg, role, b);
	assert_true(b->b_len > 1);
	assert_int_equal(b->b_data[0], role);
}

static int
contains(const struct buf *b, const char *s)
{
	return memmem(b->b_data, b->b_len, s, strlen(s)) != NULL;
}

static void
assert_same_lists(const struct strlist *a, const struct strlist *b)
{
	size_t	 i;

	assert_int_equal(a->sl_count, b->sl_count);
	for (i = 0; i < a->sl_count; i++)
		assert_string_equal(a->sl_items[i], b->sl_items[i]);
}

static void
decode_ok(struct config *out, int role, const struct buf *b)
{
	const char	*why = NULL;

	config_init(out);
	if (config_decode(out, role, b->b_data, b->b_len, &why) == -1)
		fail_msg("decode: %s", why);
	assert_null(out->c_file);
}

static void
assert_common(const struct config *a, const struct config *b)
{
	assert_string_equal(a->c_user, b->c_user);
	assert_string_equal(a->c_chroot, b->c_chroot);
	assert_int_equal(a->c_log_level, b->c_log_level);
	assert_int_equal(a->c_log_facility, b->c_log_facility);
	assert_int_equal(a->c_npools, b->c_npools);
}

static void
test_wire_httpd(void **state)
{
	struct config	 cfg, out;
	struct buf	 b;
	size_t		 i;

	(void)state;
	load_full(&cfg);
	cfg.c_private_key = strdup(WIRE_KEY);
	encode(&cfg, ROLE_HTTPD, &b);
	assert_false(contains(&b, "inline-token-123"));
	assert_false(contains(&b, "hook secret"));
	assert_false(contains(&b, "KEY-SECRET"));
	assert_false(contains(&b, "/run/docker.sock"));
	assert_false(contains(&b, "{scope_name}"));
	assert_true(contains(&b, "apitoken-alpha-1"));

	decode_ok(&out, ROLE_HTTPD, &b);
	assert_common(&cfg, &out);
	assert_string_equal(out.c_listen, "[::1]:9090");
	assert_same_lists(&cfg.c_api_tokens, &out.c_api_tokens);
	assert_same_lists(&cfg.c_cors_origins, &out.c_cors_origins);
	assert_same_lists(&cfg.c_trusted_proxies, &out.c_trusted_proxies);
	assert_int_equal(out.c_rate, 5);
	assert_int_equal(out.c_burst, 7);
	assert_null(out.c_token);
	assert_null(out.c_webhook_secret);
	assert_null(out.c_private_key);
	for (i = 0; i < cfg.c_npools; i++) {
		assert_string_equal(out.c_pools[i].pl_name,
		    cfg.c_pools[i].pl_name);
		assert_same_lists(&out.c_pools[i].pl_labels,
		    &cfg.c_pools[i].pl_labels);
		assert_int_equal(out.c_pools[i].pl_max_runners,
		    cfg.c_pools[i].pl_max_runners);
		assert_int_equal(out.c_pools[i].pl_nenv, 0);
	}
	config_free(&out);
	buf_free(&b);
	config_free(&cfg);
}

static void
test_wire_poller(void **state)
{
	const struct pool	*a, *o;
	struct config		 cfg, out;
	struct buf		 b;
	size_t			 i;

	(void)state;
	load_full(&cfg);
	cfg.c_private_key = strdup(WIRE_KEY);
	encode(&cfg, ROLE_POLLER, &b);
	assert_true(contains(&b, "inline-token-123"));
	assert_true(contains(&b, "KEY-SECRET"));
	assert_false(contains(&b, "apitoken-alpha-1"));
	assert_false(contains(&b, "{scope_name}"));

	decode_ok(&out, ROLE_POLLER, &b);
	assert_common(&cfg, &out);
	assert_string_equal(out.c_api_url, cfg.c_api_url);
	assert_string_equal(out.c_token, "inline-token-123");
	assert_string_equal(out.c_webhook_secret, "hook secret");
	assert_int_equal(out.c_app_id, 4242);
	assert_string_equal(out.c_private_key_file, cfg.c_private_key_file);
	assert_string_equal(out.c_private_key, WIRE_KEY);
	assert_int_equal(out.c_installation_id, 99);
	assert_string_equal(out.c_ca_file, cfg.c_ca_file);
	assert_int_equal(out.c_auto_create, 1);
	assert_int_equal(out.c_discovery_mode, DISCOVERY_ORGANIZATION);
	assert_string_equal(out.c_organization, "acme-corp");
	assert_int_equal(out.c_interval, 15);
	assert_int_equal(out.c_purge_interval, 600);
	assert_int_equal(out.c_cleanup_github, 1);
	assert_int_equal(out.c_api_tokens.sl_count, 0);
	for (i = 0; i < cfg.c_npools; i++) {
		a = &cfg.c_pools[i];
		o = &out.c_pools[i];
		assert_string_equal(o->pl_name, a->pl_name);
		assert_same_lists(&o->pl_labels, &a->pl_labels);
		assert_int_equal(o->pl_registration, a->pl_registration);
		assert_int_equal(o->pl_max_runners, a->pl_max_runners);
		assert_int_equal(o->pl_min_idle, a->pl_min_idle);
		assert_string_equal(o->pl_scope, a->pl_scope);
		assert_string_equal(o->pl_scope_name, a->pl_scope_name);
		assert_int_equal(o->pl_idle_timeout, a->pl_idle_timeout);
		assert_int_equal(o->pl_bootstrap_timeout,
		    a->pl_bootstrap_timeout);
		assert_string_equal(o->pl_runner_group, a->pl_runner_group);
		assert_int_equal(o->pl_no_default_labels,
		    a->pl_no_default_labels);
		assert_int_equal(o->pl_nenv, 0);
	}
	config_free(&out);
	buf_free(&b);
	config_free(&cfg);
}

static void
assert_docker_pool(const struct pool *o, const struct pool *a)
{
	size_t	 i;

	assert_string_equal(o->pl_name, a->pl_name);
	assert_same_lists(&o->pl_labels, &a->pl_labels);
	assert_string_equal(o->pl_image, a->pl_image);
	assert_string_equal(o->pl_command, a->pl_command);
	assert_int_equal(o->pl_registration, a->pl_registration);
	assert_int_equal(o->pl_max_runners, a->pl_max_runners);
	assert_int_equal(o->pl_idle_timeout, a->pl_idle_timeout);
	assert_int_equal(o->pl_bootstrap_timeout, a->pl_bootstrap_timeout);
	assert_string_equal(o->pl_network, a->pl_network);
	assert_int_equal(o->pl_memory, a->pl_memory);
	assert_int_equal(o->pl_nano_cpus, a->pl_nano_cpus);
	assert_int_equal(o->pl_pids_limit, a->pl_pids_limit);
	assert_int_equal(o->pl_docker_in_docker, a->pl_docker_in_docker);
	assert_int_equal(o->pl_nenv, a->pl_nenv);
	for (i = 0; i < a->pl_nenv; i++) {
		assert_string_equal(o->pl_env[i].ev_name,
		    a->pl_env[i].ev_name);
		assert_string_equal(o->pl_env[i].ev_value,
		    a->pl_env[i].ev_value);
	}
}

static void
test_wire_docker(void **state)
{
	struct config	 cfg, out;
	struct buf	 b;
	size_t		 i;

	(void)state;
	load_full(&cfg);
	cfg.c_private_key = strdup(WIRE_KEY);
	encode(&cfg, ROLE_DOCKER, &b);
	assert_false(contains(&b, "inline-token-123"));
	assert_false(contains(&b, "KEY-SECRET"));
	assert_false(contains(&b, "hook secret"));
	assert_false(contains(&b, "apitoken-alpha-1"));
	assert_true(contains(&b, "{scope_name}"));

	decode_ok(&out, ROLE_DOCKER, &b);
	assert_common(&cfg, &out);
	assert_string_equal(out.c_docker_socket, "/run/docker.sock");
	assert_null(out.c_token);
	assert_null(out.c_private_key);
	for (i = 0; i < cfg.c_npools; i++)
		assert_docker_pool(&out.c_pools[i], &cfg.c_pools[i]);
	config_free(&out);
	buf_free(&b);
	config_free(&cfg);
}

/* Every prefix, one byte more, and another role's payload are refused. */
static void
test_wire_rejects(void **state)
{
	static const int roles[] = { ROLE_HTTPD, ROLE_POLLER, ROLE_DOCKER };
	struct config	 cfg, out;
	struct buf	 b;
	const char	*why;
	size_t		 r, len;
	int		 other;

	(void)state;
	load_full(&cfg);
	for (r = 0; r < 3; r++) {
		encode(&cfg, roles[r], &b);
		for (len = 0; len < b.b_len; len++) {
			config_init(&out);
			why = NULL;
			assert_int_equal(config_decode(&out, roles[r],
			    b.b_data, len, &why), -1);
			assert_non_null(why);
			config_free(&out);
		}

		buf_add_char(&b, 0);
		config_init(&out);
		why = NULL;
		assert_int_equal(config_decode(&out, roles[r], b.b_data,
		    b.b_len, &why), -1);
		assert_string_equal(why, "1 trailing byte");
		config_free(&out);
		b.b_len--;

		other = roles[(r + 1) % 3];
		config_init(&out);
		assert_int_equal(config_decode(&out, other, b.b_data,
		    b.b_len, &why), -1);
		assert_string_equal(why, "config: payload for another process");
		config_free(&out);
		buf_free(&b);
	}
	config_free(&cfg);
}

static void
test_wire_bad_values(void **state)
{
	struct config	 cfg, out;
	struct buf	 b;
	const char	*why;

	(void)state;
	config_init(&cfg);
	cfg.c_pools[0].pl_registration = REG_JIT;
	encode(&cfg, ROLE_DOCKER, &b);
	config_init(&out);
	assert_int_equal(config_decode(&out, ROLE_DOCKER, b.b_data, b.b_len,
	    &why), 0);
	assert_int_equal(out.c_npools, 1);
	config_free(&out);
	buf_free(&b);

	/* An unresolved registration mode is never sent. */
	cfg.c_pools[0].pl_registration = REG_AUTO;
	encode(&cfg, ROLE_DOCKER, &b);
	config_init(&out);
	assert_int_equal(config_decode(&out, ROLE_DOCKER, b.b_data, b.b_len,
	    &why), -1);
	assert_string_equal(why, "config: bad registration mode");
	config_free(&out);
	buf_free(&b);
	config_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_sample_is_defaults),
		cmocka_unit_test(test_sample_loads),
		cmocka_unit_test(test_empty_file_is_defaults),
		cmocka_unit_test(test_instance),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_cpus_and_lists),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_files),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_placeholders),
		cmocka_unit_test(test_env_every_variable),
		cmocka_unit_test(test_env_overrides_file),
		cmocka_unit_test(test_env_default_pool),
		cmocka_unit_test(test_env_errors),
		cmocka_unit_test(test_env_listen_error),
		cmocka_unit_test(test_secret_mode_refused),
		cmocka_unit_test(test_secret_token_file_rules),
		cmocka_unit_test(test_secret_other_files),
		cmocka_unit_test(test_wire_httpd),
		cmocka_unit_test(test_wire_poller),
		cmocka_unit_test(test_wire_docker),
		cmocka_unit_test(test_wire_rejects),
		cmocka_unit_test(test_wire_bad_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
