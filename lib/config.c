/*
 * The configuration: defaults, environment overrides, secret files and
 * loading.  The YAML parser and the checks are in config_parse.c, the
 * wire encoding in config_wire.c.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define CONFIG_FILE_MAX		(1024 * 1024)
#define SECRET_FILE_MAX		(64 * 1024)
#define ENV_PREFIX		"runnerenv_"

const char *const config_placeholders[] = {
	"scope_name", "runner_name", "registration_token", "jit_config",
	"repo_owner", "repo_name", "repo_full_name", "hostname", "timestamp",
	"timestamp_iso", "labels", "pool", NULL
};

static void
config_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
strlist_add(struct strlist *sl, const char *s)
{
	sl->sl_items = xreallocarray(sl->sl_items, sl->sl_count + 1,
	    sizeof(*sl->sl_items));
	sl->sl_items[sl->sl_count++] = xstrdup(s);
}

/* Empties a list; a list of secrets is wiped first. */
void
strlist_clear(struct strlist *sl, int secret)
{
	size_t	 i;

	for (i = 0; i < sl->sl_count; i++) {
		if (secret)
			freezero_str(sl->sl_items[i]);
		else
			free(sl->sl_items[i]);
	}
	free(sl->sl_items);
	sl->sl_items = NULL;
	sl->sl_count = 0;
}

void
strlist_copy(struct strlist *to, const struct strlist *from)
{
	size_t	 i;

	for (i = 0; i < from->sl_count; i++)
		strlist_add(to, from->sl_items[i]);
}

void
config_pool_init(struct pool *pl, const char *name)
{
	memset(pl, 0, sizeof(*pl));
	pl->pl_name = xstrdup(name);
	strlist_add(&pl->pl_labels, "self-hosted");
	pl->pl_image = xstrdup("myoung34/github-runner:latest");
	pl->pl_command = xstrdup("");
	pl->pl_registration = REG_AUTO;
	pl->pl_max_runners = 10;
	pl->pl_min_idle = 0;
	pl->pl_scope = xstrdup("");
	pl->pl_scope_name = xstrdup("");
	pl->pl_idle_timeout = 900;
	pl->pl_bootstrap_timeout = 300;
	pl->pl_runner_group = xstrdup("");
	pl->pl_network = xstrdup("bridge");
}

void
config_pool_free(struct pool *pl)
{
	size_t	 i;

	free(pl->pl_name);
	strlist_clear(&pl->pl_labels, 0);
	free(pl->pl_image);
	free(pl->pl_command);
	free(pl->pl_runner_group);
	free(pl->pl_scope);
	free(pl->pl_scope_name);
	free(pl->pl_network);
	for (i = 0; i < pl->pl_nenv; i++) {
		free(pl->pl_env[i].ev_name);
		freezero_str(pl->pl_env[i].ev_value);
	}
	free(pl->pl_env);
	memset(pl, 0, sizeof(*pl));
}

struct pool *
config_add_pool(struct config *cfg, const char *name)
{
	struct pool	*pl;

	cfg->c_pools = xreallocarray(cfg->c_pools, cfg->c_npools + 1,
	    sizeof(*cfg->c_pools));
	pl = &cfg->c_pools[cfg->c_npools++];
	config_pool_init(pl, name);
	return pl;
}

void
config_clear_pools(struct config *cfg)
{
	size_t	 i;

	for (i = 0; i < cfg->c_npools; i++)
		config_pool_free(&cfg->c_pools[i]);
	free(cfg->c_pools);
	cfg->c_pools = NULL;
	cfg->c_npools = 0;
}

/* Sets a variable of a pool's environment, replacing an earlier value. */
void
config_pool_setenv(struct pool *pl, const char *name, const char *value)
{
	size_t	 i;

	for (i = 0; i < pl->pl_nenv; i++) {
		if (strcmp(pl->pl_env[i].ev_name, name) == 0) {
			freezero_str(pl->pl_env[i].ev_value);
			pl->pl_env[i].ev_value = xstrdup(value);
			return;
		}
	}

	pl->pl_env = xreallocarray(pl->pl_env, pl->pl_nenv + 1,
	    sizeof(*pl->pl_env));
	pl->pl_env[pl->pl_nenv].ev_name = xstrdup(name);
	pl->pl_env[pl->pl_nenv].ev_value = xstrdup(value);
	pl->pl_nenv++;
}

void
config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->c_user = xstrdup("_ephemerd");
	cfg->c_chroot = xstrdup("/var/empty");
	cfg->c_instance = xstrdup("");
	cfg->c_log_level = LOG_INFO;
	cfg->c_log_facility = LOG_DAEMON;

	cfg->c_api_url = xstrdup("https://api.github.com");
	cfg->c_token_file = xstrdup("/etc/ephemerd/token");
	cfg->c_webhook_secret_file = xstrdup("");
	cfg->c_private_key_file = xstrdup("");
	cfg->c_ca_file = xstrdup("");
	cfg->c_mutation_interval_ms = 1000;

	cfg->c_discovery_mode = DISCOVERY_ALL;
	cfg->c_organization = xstrdup("");
	cfg->c_interval = 60;
	cfg->c_purge_interval = 300;

	cfg->c_docker_socket = xstrdup("/var/run/docker.sock");

	cfg->c_listen = xstrdup("127.0.0.1:8080");
	cfg->c_api_tokens_file = xstrdup("");
	strlist_add(&cfg->c_cors_origins, "*");
	cfg->c_rate = 20;
	cfg->c_burst = 40;

	config_add_pool(cfg, "default");
}

void
config_free(struct config *cfg)
{
	free(cfg->c_file);
	free(cfg->c_user);
	free(cfg->c_chroot);
	free(cfg->c_instance);
	free(cfg->c_api_url);
	freezero_str(cfg->c_token);
	free(cfg->c_token_file);
	freezero_str(cfg->c_webhook_secret);
	free(cfg->c_webhook_secret_file);
	free(cfg->c_private_key_file);
	freezero_str(cfg->c_private_key);
	free(cfg->c_ca_file);
	free(cfg->c_organization);
	free(cfg->c_docker_socket);
	free(cfg->c_listen);
	free(cfg->c_api_tokens_file);
	strlist_clear(&cfg->c_api_tokens, 1);
	strlist_clear(&cfg->c_cors_origins, 0);
	strlist_clear(&cfg->c_trusted_proxies, 0);
	config_clear_pools(cfg);
	explicit_bzero(cfg, sizeof(*cfg));
}

struct pool *
config_find_pool(struct config *cfg, const char *name)
{
	size_t	 i;

	for (i = 0; i < cfg->c_npools; i++)
		if (strcmp(cfg->c_pools[i].pl_name, name) == 0)
			return &cfg->c_pools[i];
	return NULL;
}

static void
set_str(char **dst, const char *value)
{
	free(*dst);
	*dst = xstrdup(value);
}

/* Splits a comma-separated list, trimming spaces around each item. */
static void
split_commas(struct strlist *sl, const char *s)
{
	const char	*end;
	size_t		 len;
	char		*item;

	strlist_clear(sl, 0);
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		end = strchr(s, ',');
		len = end == NULL ? strlen(s) : (size_t)(end - s);
		while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (len > 0) {
			item = xstrndup(s, len);
			strlist_add(sl, item);
			free(item);
		}
		if (end == NULL)
			break;
		s = end + 1;
	}
}

static int
env_u32(uint32_t *dst, const char *name, const char *value, char *err,
    size_t errlen)
{
	uint64_t	 v;
	const char	*why;

	if (parse_u64(value, 1, UINT32_MAX, &v, &why) == -1) {
		config_err(err, errlen, "%s: must be an integer from 1 to "
		    "%u, not '%s'", name, UINT32_MAX, value);
		return -1;
	}
	*dst = (uint32_t)v;
	return 0;
}

static int
env_bool(int *dst, const char *name, const char *value, char *err,
    size_t errlen)
{
	int	 b;

	if ((b = parse_bool(value)) == -1) {
		config_err(err, errlen, "%s: must be true or false, not '%s'",
		    name, value);
		return -1;
	}
	*dst = b;
	return 0;
}

/* API_GATEWAY_PORT keeps the host of httpd.listen and replaces its port. */
static int
env_port(struct config *cfg, const char *value, char *err, size_t errlen)
{
	uint64_t	 port;
	const char	*why, *colon;
	char		*listen;
	int		 hostlen;

	if (parse_u64(value, 1, 65535, &port, &why) == -1) {
		config_err(err, errlen, "API_GATEWAY_PORT: must be a port "
		    "from 1 to 65535, not '%s'", value);
		return -1;
	}

	if ((colon = strrchr(cfg->c_listen, ':')) == NULL ||
	    (cfg->c_listen[0] == '[' && strchr(colon, ']') != NULL))
		hostlen = (int)strlen(cfg->c_listen);
	else
		hostlen = (int)(colon - cfg->c_listen);
	xasprintf(&listen, "%.*s:%llu", hostlen, cfg->c_listen,
	    (unsigned long long)port);
	free(cfg->c_listen);
	cfg->c_listen = listen;
	return 0;
}

static int
env_token(struct config *cfg, const char *value, char *err, size_t errlen)
{
	const char	*p;

	for (p = value; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			config_err(err, errlen, "GITHUB_RUNNER_TOKEN: contains "
			    "white space or control characters");
			return -1;
		}
	}
	freezero_str(cfg->c_token);
	cfg->c_token = xstrdup(value);
	return 0;
}

/*
 * The pool that RUNNER_IMAGE, RUNNER_COMMAND and runnerenv_* fill in: the
 * one named "default", added with every default if the file has none.
 */
static struct pool *
env_default_pool(struct config *cfg)
{
	struct pool	*pl;

	if ((pl = config_find_pool(cfg, "default")) != NULL)
		return pl;
	return config_add_pool(cfg, "default");
}

static int
env_apply_one(struct config *cfg, const char *name, const char *value,
    char *err, size_t errlen)
{
	int	 level;

	if (strcmp(name, "GITHUB_RUNNER_TOKEN") == 0)
		return env_token(cfg, value, err, errlen);
	if (strcmp(name, "RUNNER_IMAGE") == 0)
		set_str(&env_default_pool(cfg)->pl_image, value);
	else if (strcmp(name, "RUNNER_COMMAND") == 0)
		set_str(&env_default_pool(cfg)->pl_command, value);
	else if (strcmp(name, "AUTO_CREATE_RUNNERS") == 0)
		return env_bool(&cfg->c_auto_create, name, value, err, errlen);
	else if (strcmp(name, "GITHUB_CLEANUP_ENABLED") == 0)
		return env_bool(&cfg->c_cleanup_github, name, value, err,
		    errlen);
	else if (strcmp(name, "RUNNER_CHECK_INTERVAL") == 0)
		return env_u32(&cfg->c_interval, name, value, err, errlen);
	else if (strcmp(name, "RUNNER_PURGE_INTERVAL") == 0)
		return env_u32(&cfg->c_purge_interval, name, value, err,
		    errlen);
	else if (strcmp(name, "DISCOVERY_MODE") == 0) {
		if (strcasecmp(value, "all") == 0)
			cfg->c_discovery_mode = DISCOVERY_ALL;
		else if (strcasecmp(value, "organization") == 0)
			cfg->c_discovery_mode = DISCOVERY_ORGANIZATION;
		else {
			config_err(err, errlen, "DISCOVERY_MODE: must be 'all' "
			    "or 'organization', not '%s'", value);
			return -1;
		}
	} else if (strcmp(name, "GITHUB_ORGANIZATION") == 0)
		set_str(&cfg->c_organization, value);
	else if (strcmp(name, "CORS_ORIGINS") == 0)
		split_commas(&cfg->c_cors_origins, value);
	else if (strcmp(name, "API_GATEWAY_PORT") == 0)
		return env_port(cfg, value, err, errlen);
	else if (strcmp(name, "LOG_LEVEL") == 0) {
		if ((level = log_level_from_name(value)) == -1) {
			config_err(err, errlen, "LOG_LEVEL: must be DEBUG, "
			    "INFO, WARNING or ERROR, not '%s'", value);
			return -1;
		}
		cfg->c_log_level = level;
	}
	/* Anything else, REGISTRY and IMAGE_VERSION included, is not ours. */
	return 0;
}

/* runnerenv_NAME sets NAME in the default pool's environment. */
static int
env_runner_var(struct config *cfg, const char *name, const char *value,
    char *err, size_t errlen)
{
	const char	*var = name + strlen(ENV_PREFIX);

	if (config_check_envname(var) == -1) {
		config_err(err, errlen, "%s: '%s' is not a valid variable "
		    "name", name, var);
		return -1;
	}
	config_pool_setenv(env_default_pool(cfg), var, value);
	return 0;
}

/*
 * Applies the variables of the original Python system.  An empty value is
 * treated as unset, as a blank line of a .env file means, except for
 * runnerenv_NAME where an empty value is a value.
 */
int
config_apply_env(struct config *cfg, char *const *envp, char *err,
    size_t errlen)
{
	const char	*eq, *value;
	char		*name;
	size_t		 i;
	int		 rc;

	if (envp == NULL)
		return 0;

	for (i = 0; envp[i] != NULL; i++) {
		if ((eq = strchr(envp[i], '=')) == NULL)
			continue;
		name = xstrndup(envp[i], (size_t)(eq - envp[i]));
		value = eq + 1;
		if (strncmp(name, ENV_PREFIX, strlen(ENV_PREFIX)) == 0)
			rc = env_runner_var(cfg, name, value, err, errlen);
		else if (*value == '\0')
			rc = 0;
		else
			rc = env_apply_one(cfg, name, value, err, errlen);
		free(name);
		if (rc == -1)
			return -1;
	}
	return 0;
}

/*
 * Reads a whole secret file into a new NUL-terminated buffer.  A file that
 * others may read or write is refused, as sshd refuses a private key.
 * Returns 0, 1 if the file is missing and that is allowed, or -1.
 */
static int
secret_read_file(const char *path, int missing_ok, char **out, char *err,
    size_t errlen)
{
	struct stat	 st;
	char		*data = NULL;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT && missing_ok)
			return 1;
		config_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}

	if (fstat(fd, &st) == -1) {
		config_err(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		config_err(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if ((st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
		config_err(err, errlen, "%s: readable by others; chmod 600",
		    path);
		goto fail;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		config_err(err, errlen, "%s: writable by others; chmod 600",
		    path);
		goto fail;
	}

	data = xmalloc(SECRET_FILE_MAX + 1);
	while ((n = read(fd, data + len, SECRET_FILE_MAX + 1 - len)) > 0)
		if ((len += (size_t)n) > SECRET_FILE_MAX)
			break;
	if (n == -1) {
		config_err(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (len > SECRET_FILE_MAX) {
		config_err(err, errlen, "%s: larger than %d bytes", path,
		    SECRET_FILE_MAX);
		goto fail;
	}
	if (memchr(data, '\0', len) != NULL) {
		config_err(err, errlen, "%s: contains a NUL byte", path);
		goto fail;
	}
	data[len] = '\0';
	close(fd);
	*out = data;
	return 0;

fail:
	if (data != NULL) {
		explicit_bzero(data, SECRET_FILE_MAX + 1);
		free(data);
	}
	close(fd);
	return -1;
}

static void
strip_newlines(char *s)
{
	size_t	 len = strlen(s);

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
}

static int
has_space_or_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 1;
	return 0;
}

/*
 * Reads a one-line secret.  A token may not contain white space; a
 * webhook secret may, but not a line break.
 */
static int
secret_read_line(const char *path, int missing_ok, int spaces_ok,
    char **dst, char *err, size_t errlen)
{
	char	*data;
	int	 rc;

	if ((rc = secret_read_file(path, missing_ok, &data, err, errlen)) != 0)
		return rc == 1 ? 0 : -1;

	strip_newlines(data);
	if (*data == '\0')
		config_err(err, errlen, "%s: empty", path);
	else if (strpbrk(data, "\r\n") != NULL)
		config_err(err, errlen, "%s: more than one line", path);
	else if (!spaces_ok && has_space_or_control(data))
		config_err(err, errlen, "%s: the token contains white space "
		    "or control characters", path);
	else {
		freezero_str(*dst);
		*dst = data;
		return 0;
	}
	freezero_str(data);
	return -1;
}

/* One bearer token a line; blank lines and lines starting with # skipped. */
static int
secret_read_tokens(struct config *cfg, const char *path, char *err,
    size_t errlen)
{
	char	*data, *line, *next, *end;
	int	 lineno = 0, rc = -1;

	if (secret_read_file(path, 0, &data, err, errlen) == -1)
		return -1;

	for (line = data; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		end = line + strlen(line);
		while (end > line && (end[-1] == ' ' || end[-1] == '\t' ||
		    end[-1] == '\r'))
			*--end = '\0';
		if (*line == '\0' || *line == '#')
			continue;
		if (has_space_or_control(line)) {
			config_err(err, errlen, "%s:%d: the token contains "
			    "white space or control characters", path, lineno);
			goto fail;
		}
		strlist_add(&cfg->c_api_tokens, line);
	}
	rc = 0;

fail:
	explicit_bzero(data, SECRET_FILE_MAX + 1);
	free(data);
	return rc;
}

/*
 * A GitHub App's private key: PEM text that libcrypto must read, in a file
 * that neither group nor others may read, write or run.  The poller signs
 * with the text; the file itself may be out of its chroot.
 */
static int
secret_read_key(const char *path, char **dst, char *err, size_t errlen)
{
	struct stat	 st;
	EVP_PKEY	*pkey;
	BIO		*bio;
	char		*data;

	if (stat(path, &st) == -1) {
		config_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISREG(st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		config_err(err, errlen, "%s: the private key is accessible by "
		    "group or others (mode %03o); chmod 600", path,
		    (unsigned int)(st.st_mode & 0777));
		return -1;
	}
	if (secret_read_file(path, 0, &data, err, errlen) == -1)
		return -1;

	if ((bio = BIO_new_mem_buf(data, -1)) == NULL)
		fatalx("BIO_new_mem_buf");
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		config_err(err, errlen, "%s: not a PEM RSA private key", path);
		EVP_PKEY_free(pkey);
		freezero_str(data);
		return -1;
	}
	EVP_PKEY_free(pkey);
	freezero_str(*dst);
	*dst = data;
	return 0;
}

/*
 * Reads the secret files.  A token given inline or in GITHUB_RUNNER_TOKEN
 * wins over token_file, and the default token_file may be missing.
 */
int
config_read_secrets(struct config *cfg, char *err, size_t errlen)
{
	if (cfg->c_token == NULL && cfg->c_token_file != NULL &&
	    *cfg->c_token_file != '\0' &&
	    secret_read_line(cfg->c_token_file, !cfg->c_token_file_set, 0,
	    &cfg->c_token, err, errlen) == -1)
		return -1;

	if (cfg->c_webhook_secret == NULL &&
	    cfg->c_webhook_secret_file != NULL &&
	    *cfg->c_webhook_secret_file != '\0' &&
	    secret_read_line(cfg->c_webhook_secret_file, 0, 1,
	    &cfg->c_webhook_secret, err, errlen) == -1)
		return -1;

	if (cfg->c_api_tokens_file != NULL && *cfg->c_api_tokens_file != '\0' &&
	    secret_read_tokens(cfg, cfg->c_api_tokens_file, err, errlen) == -1)
		return -1;

	if (cfg->c_private_key_file != NULL &&
	    *cfg->c_private_key_file != '\0' &&
	    secret_read_key(cfg->c_private_key_file, &cfg->c_private_key, err,
	    errlen) == -1)
		return -1;
	return 0;
}

static int
config_read_file(const char *path, char **out, size_t *outlen, char *err,
    size_t errlen)
{
	struct stat	 st;
	char		*data = NULL;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		config_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		config_err(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		config_err(err, errlen, "%s: not a regular file", path);
		goto fail;
	}

	data = xmalloc(CONFIG_FILE_MAX + 1);
	while ((n = read(fd, data + len, CONFIG_FILE_MAX + 1 - len)) > 0)
		if ((len += (size_t)n) > CONFIG_FILE_MAX)
			break;
	if (n == -1) {
		config_err(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (len > CONFIG_FILE_MAX) {
		config_err(err, errlen, "%s: larger than %d bytes", path,
		    CONFIG_FILE_MAX);
		goto fail;
	}
	close(fd);
	*out = data;
	*outlen = len;
	return 0;

fail:
	free(data);
	close(fd);
	return -1;
}

int
config_load(struct config *cfg, const char *path, char *const *envp,
    char *err, size_t errlen)
{
	char	*text = NULL;
	size_t	 len = 0;
	int	 rc = -1;

	config_init(cfg);
	cfg->c_file = xstrdup(path);
	if (config_read_file(path, &text, &len, err, errlen) == -1)
		goto fail;

	if (config_parse_yaml(cfg, path, text, len, err, errlen) == -1 ||
	    config_apply_env(cfg, envp, err, errlen) == -1 ||
	    config_read_secrets(cfg, err, errlen) == -1 ||
	    config_validate(cfg, err, errlen) == -1)
		goto fail;
	rc = 0;

fail:
	if (text != NULL) {
		explicit_bzero(text, len);
		free(text);
	}
	if (rc == -1)
		config_free(cfg);
	return rc;
}
