/*
 * Each child's part of the configuration, as the supervisor sends it in
 * MSG_CONFIG.  A role gets only what it needs: httpd no GitHub secret, the
 * docker worker no token.  The payload starts with the role it is for.
 */
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "config.h"
#include "ipc.h"
#include "log.h"
#include "util.h"

#define WIRE_MAX_POOLS		256
#define WIRE_MAX_ITEMS		1024

static void
put_list(struct buf *b, const struct strlist *sl)
{
	size_t	 i;

	if (sl->sl_count > WIRE_MAX_ITEMS)
		fatalx("config_encode: list of %zu items", sl->sl_count);
	ipc_put_u16(b, (uint16_t)sl->sl_count);
	for (i = 0; i < sl->sl_count; i++)
		ipc_put_str(b, sl->sl_items[i]);
}

static void
encode_common(const struct config *cfg, struct buf *b)
{
	ipc_put_str(b, cfg->c_user);
	ipc_put_str(b, cfg->c_chroot);
	ipc_put_str(b, cfg->c_instance);
	ipc_put_u32(b, (uint32_t)cfg->c_log_level);
	ipc_put_u32(b, (uint32_t)cfg->c_log_facility);
}

static void
encode_httpd(const struct config *cfg, struct buf *b)
{
	const struct pool	*pl;
	size_t			 i;

	ipc_put_str(b, cfg->c_listen);
	put_list(b, &cfg->c_api_tokens);
	put_list(b, &cfg->c_cors_origins);
	put_list(b, &cfg->c_trusted_proxies);
	ipc_put_u32(b, cfg->c_rate);
	ipc_put_u32(b, cfg->c_burst);

	ipc_put_u16(b, (uint16_t)cfg->c_npools);
	for (i = 0; i < cfg->c_npools; i++) {
		pl = &cfg->c_pools[i];
		ipc_put_str(b, pl->pl_name);
		put_list(b, &pl->pl_labels);
		ipc_put_u32(b, pl->pl_max_runners);
	}
}

static void
encode_poller(const struct config *cfg, struct buf *b)
{
	const struct pool	*pl;
	size_t			 i;

	ipc_put_str(b, cfg->c_api_url);
	ipc_put_str(b, cfg->c_token);
	ipc_put_str(b, cfg->c_webhook_secret);
	ipc_put_u64(b, cfg->c_app_id);
	ipc_put_str(b, cfg->c_private_key_file);
	ipc_put_str(b, cfg->c_private_key);
	ipc_put_u64(b, cfg->c_installation_id);
	ipc_put_str(b, cfg->c_ca_file);
	ipc_put_u32(b, cfg->c_mutation_interval_ms);
	ipc_put_u8(b, cfg->c_auto_create != 0);
	ipc_put_u8(b, (uint8_t)cfg->c_discovery_mode);
	ipc_put_str(b, cfg->c_organization);
	ipc_put_u32(b, cfg->c_interval);
	ipc_put_u32(b, cfg->c_purge_interval);
	ipc_put_u8(b, cfg->c_cleanup_github != 0);

	ipc_put_u16(b, (uint16_t)cfg->c_npools);
	for (i = 0; i < cfg->c_npools; i++) {
		pl = &cfg->c_pools[i];
		ipc_put_str(b, pl->pl_name);
		put_list(b, &pl->pl_labels);
		ipc_put_u8(b, (uint8_t)pl->pl_registration);
		ipc_put_u32(b, pl->pl_max_runners);
		ipc_put_u32(b, pl->pl_min_idle);
		ipc_put_str(b, pl->pl_scope);
		ipc_put_str(b, pl->pl_scope_name);
		ipc_put_u32(b, pl->pl_idle_timeout);
		ipc_put_u32(b, pl->pl_bootstrap_timeout);
		ipc_put_str(b, pl->pl_runner_group);
		ipc_put_u8(b, pl->pl_no_default_labels != 0);
	}
}

static void
encode_docker_pool(const struct pool *pl, struct buf *b)
{
	size_t	 i;

	ipc_put_str(b, pl->pl_name);
	put_list(b, &pl->pl_labels);
	ipc_put_str(b, pl->pl_image);
	ipc_put_str(b, pl->pl_command);
	ipc_put_u8(b, (uint8_t)pl->pl_registration);
	ipc_put_u32(b, pl->pl_max_runners);
	ipc_put_u32(b, pl->pl_idle_timeout);
	ipc_put_u32(b, pl->pl_bootstrap_timeout);
	ipc_put_str(b, pl->pl_network);
	ipc_put_u64(b, pl->pl_memory);
	ipc_put_u64(b, pl->pl_nano_cpus);
	ipc_put_u64(b, pl->pl_pids_limit);
	ipc_put_u8(b, pl->pl_docker_in_docker != 0);

	if (pl->pl_nenv > WIRE_MAX_ITEMS)
		fatalx("config_encode: %zu environment variables",
		    pl->pl_nenv);
	ipc_put_u16(b, (uint16_t)pl->pl_nenv);
	for (i = 0; i < pl->pl_nenv; i++) {
		ipc_put_str(b, pl->pl_env[i].ev_name);
		ipc_put_str(b, pl->pl_env[i].ev_value);
	}
}

/*
 * Appends the part of a validated configuration that a role receives.  An
 * unknown role, or a configuration beyond the wire's bounds (which
 * config_validate() refuses), is a bug.
 */
void
config_encode(const struct config *cfg, int role, struct buf *b)
{
	size_t	 i;

	if (cfg->c_npools > WIRE_MAX_POOLS)
		fatalx("config_encode: %zu pools", cfg->c_npools);
	ipc_put_u8(b, (uint8_t)role);
	encode_common(cfg, b);

	switch (role) {
	case ROLE_HTTPD:
		encode_httpd(cfg, b);
		break;
	case ROLE_POLLER:
		encode_poller(cfg, b);
		break;
	case ROLE_DOCKER:
		ipc_put_str(b, cfg->c_docker_socket);
		ipc_put_u16(b, (uint16_t)cfg->c_npools);
		for (i = 0; i < cfg->c_npools; i++)
			encode_docker_pool(&cfg->c_pools[i], b);
		break;
	default:
		fatalx("config_encode: no configuration for role %d", role);
	}
}

/* Decoding.  Every field is read; the reader's error is checked once. */

static void
get_str(struct ipc_reader *r, char **dst)
{
	free(*dst);
	*dst = ipc_get_str(r);
}

/* A secret that was not configured travels as "" and arrives as NULL. */
static void
get_secret(struct ipc_reader *r, char **dst)
{
	freezero_str(*dst);
	if ((*dst = ipc_get_str(r)) != NULL && **dst == '\0') {
		free(*dst);
		*dst = NULL;
	}
}

static int
get_list(struct ipc_reader *r, struct strlist *sl, int secret,
    const char **why)
{
	uint16_t	 n, i;
	char		*s;

	strlist_clear(sl, secret);
	if ((n = ipc_get_u16(r)) > WIRE_MAX_ITEMS) {
		*why = "config: too many list items";
		return -1;
	}
	for (i = 0; i < n && ipc_reader_error(r) == NULL; i++) {
		if ((s = ipc_get_str(r)) == NULL)
			break;
		strlist_add(sl, s);
		if (secret)
			freezero_str(s);
		else
			free(s);
	}
	return 0;
}

static int
get_registration(struct ipc_reader *r, struct pool *pl, const char **why)
{
	uint8_t	 mode = ipc_get_u8(r);

	if (ipc_reader_error(r) != NULL)
		return 0;
	if (mode != REG_JIT && mode != REG_TOKEN) {
		*why = "config: bad registration mode";
		return -1;
	}
	pl->pl_registration = mode;
	return 0;
}

/* Adds the pools one by one, so a failure leaves a freeable config. */
static int
get_pool_count(struct ipc_reader *r, size_t *n, const char **why)
{
	*n = ipc_get_u16(r);
	if (*n > WIRE_MAX_POOLS) {
		*why = "config: too many pools";
		return -1;
	}
	return 0;
}

static int
decode_common(struct config *cfg, struct ipc_reader *r, const char **why)
{
	get_str(r, &cfg->c_user);
	get_str(r, &cfg->c_chroot);
	get_str(r, &cfg->c_instance);
	cfg->c_log_level = (int)ipc_get_u32(r);
	cfg->c_log_facility = (int)ipc_get_u32(r);
	if (ipc_reader_error(r) == NULL && (cfg->c_log_level < LOG_EMERG ||
	    cfg->c_log_level > LOG_DEBUG ||
	    (cfg->c_log_facility & ~LOG_FACMASK) != 0 ||
	    cfg->c_log_facility > LOG_LOCAL7)) {
		*why = "config: bad log level or facility";
		return -1;
	}
	return 0;
}

static int
decode_httpd(struct config *cfg, struct ipc_reader *r, const char **why)
{
	struct pool	*pl;
	size_t		 i, n;

	get_str(r, &cfg->c_listen);
	if (get_list(r, &cfg->c_api_tokens, 1, why) == -1 ||
	    get_list(r, &cfg->c_cors_origins, 0, why) == -1 ||
	    get_list(r, &cfg->c_trusted_proxies, 0, why) == -1)
		return -1;
	cfg->c_rate = ipc_get_u32(r);
	cfg->c_burst = ipc_get_u32(r);

	if (get_pool_count(r, &n, why) == -1)
		return -1;
	for (i = 0; i < n && ipc_reader_error(r) == NULL; i++) {
		pl = config_add_pool(cfg, "");
		get_str(r, &pl->pl_name);
		if (get_list(r, &pl->pl_labels, 0, why) == -1)
			return -1;
		pl->pl_max_runners = ipc_get_u32(r);
	}
	return 0;
}

static int
decode_poller_pool(struct pool *pl, struct ipc_reader *r, const char **why)
{
	get_str(r, &pl->pl_name);
	if (get_list(r, &pl->pl_labels, 0, why) == -1 ||
	    get_registration(r, pl, why) == -1)
		return -1;
	pl->pl_max_runners = ipc_get_u32(r);
	pl->pl_min_idle = ipc_get_u32(r);
	get_str(r, &pl->pl_scope);
	get_str(r, &pl->pl_scope_name);
	pl->pl_idle_timeout = ipc_get_u32(r);
	pl->pl_bootstrap_timeout = ipc_get_u32(r);
	get_str(r, &pl->pl_runner_group);
	pl->pl_no_default_labels = ipc_get_bool(r);
	return 0;
}

static int
decode_poller(struct config *cfg, struct ipc_reader *r, const char **why)
{
	uint8_t	 mode;
	size_t	 i, n;

	get_str(r, &cfg->c_api_url);
	get_secret(r, &cfg->c_token);
	get_secret(r, &cfg->c_webhook_secret);
	cfg->c_app_id = ipc_get_u64(r);
	get_str(r, &cfg->c_private_key_file);
	get_secret(r, &cfg->c_private_key);
	cfg->c_installation_id = ipc_get_u64(r);
	get_str(r, &cfg->c_ca_file);
	cfg->c_mutation_interval_ms = ipc_get_u32(r);
	cfg->c_auto_create = ipc_get_bool(r);
	mode = ipc_get_u8(r);
	if (mode != DISCOVERY_ALL && mode != DISCOVERY_ORGANIZATION) {
		*why = "config: bad discovery mode";
		return -1;
	}
	cfg->c_discovery_mode = mode;
	get_str(r, &cfg->c_organization);
	cfg->c_interval = ipc_get_u32(r);
	cfg->c_purge_interval = ipc_get_u32(r);
	cfg->c_cleanup_github = ipc_get_bool(r);

	if (get_pool_count(r, &n, why) == -1)
		return -1;
	for (i = 0; i < n && ipc_reader_error(r) == NULL; i++)
		if (decode_poller_pool(config_add_pool(cfg, ""), r, why) == -1)
			return -1;
	return 0;
}

static int
decode_docker_pool(struct pool *pl, struct ipc_reader *r, const char **why)
{
	size_t	 i, n;
	char	*name, *value;

	get_str(r, &pl->pl_name);
	if (get_list(r, &pl->pl_labels, 0, why) == -1)
		return -1;
	get_str(r, &pl->pl_image);
	get_str(r, &pl->pl_command);
	if (get_registration(r, pl, why) == -1)
		return -1;
	pl->pl_max_runners = ipc_get_u32(r);
	pl->pl_idle_timeout = ipc_get_u32(r);
	pl->pl_bootstrap_timeout = ipc_get_u32(r);
	get_str(r, &pl->pl_network);
	pl->pl_memory = ipc_get_u64(r);
	pl->pl_nano_cpus = ipc_get_u64(r);
	pl->pl_pids_limit = ipc_get_u64(r);
	pl->pl_docker_in_docker = ipc_get_bool(r);

	if ((n = ipc_get_u16(r)) > WIRE_MAX_ITEMS) {
		*why = "config: too many environment variables";
		return -1;
	}
	for (i = 0; i < n && ipc_reader_error(r) == NULL; i++) {
		name = ipc_get_str(r);
		value = ipc_get_str(r);
		if (name != NULL && value != NULL)
			config_pool_setenv(pl, name, value);
		free(name);
		freezero_str(value);
	}
	return 0;
}

static int
decode_docker(struct config *cfg, struct ipc_reader *r, const char **why)
{
	size_t	 i, n;

	get_str(r, &cfg->c_docker_socket);
	if (get_pool_count(r, &n, why) == -1)
		return -1;
	for (i = 0; i < n && ipc_reader_error(r) == NULL; i++)
		if (decode_docker_pool(config_add_pool(cfg, ""), r, why) == -1)
			return -1;
	return 0;
}

/*
 * Decodes a role's configuration into a config_init()ed struct, replacing
 * all of it.  On failure the struct is only fit for config_free(): the
 * caller decodes into a fresh one and keeps its old one until this works.
 */
int
config_decode(struct config *cfg, int role, const void *data, size_t len,
    const char **why)
{
	struct ipc_reader	 r;
	int			 rc;

	config_free(cfg);
	config_init(cfg);
	config_clear_pools(cfg);
	free(cfg->c_token_file);
	cfg->c_token_file = xstrdup("");

	ipc_reader_init(&r, data, len);
	if (ipc_get_u8(&r) != role || ipc_reader_error(&r) != NULL) {
		*why = ipc_reader_error(&r) != NULL ? ipc_reader_error(&r) :
		    "config: payload for another process";
		return -1;
	}
	if (decode_common(cfg, &r, why) == -1)
		return -1;

	switch (role) {
	case ROLE_HTTPD:
		rc = decode_httpd(cfg, &r, why);
		break;
	case ROLE_POLLER:
		rc = decode_poller(cfg, &r, why);
		break;
	case ROLE_DOCKER:
		rc = decode_docker(cfg, &r, why);
		break;
	default:
		*why = "config: no configuration for this role";
		return -1;
	}
	if (rc == -1)
		return -1;

	if (ipc_reader_done(&r) != 0) {
		*why = ipc_reader_error(&r) != NULL ? ipc_reader_error(&r) :
		    "config: payload not consumed exactly";
		return -1;
	}
	return 0;
}
