/*
 * ephemerd's configuration: the whole of it as the supervisor loads it,
 * and the parts each child receives over the wire.
 */
#ifndef EPHEMERD_CONFIG_H
#define EPHEMERD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum registration_mode {
	REG_AUTO = 0,		/* not given: decided from the environment */
	REG_JIT,
	REG_TOKEN
};

enum discovery_mode {
	DISCOVERY_ALL = 0,
	DISCOVERY_ORGANIZATION
};

struct env_var {
	char	*ev_name;
	char	*ev_value;
};

struct strlist {
	char	**sl_items;
	size_t	  sl_count;
};

struct pool {
	char			*pl_name;
	struct strlist		 pl_labels;
	char			*pl_image;
	char			*pl_command;
	enum registration_mode	 pl_registration;
	uint32_t		 pl_max_runners;
	uint32_t		 pl_min_idle;
	char			*pl_scope;	/* of idle runners: repo, org */
	char			*pl_scope_name;
	uint32_t		 pl_idle_timeout;
	uint32_t		 pl_bootstrap_timeout;
	char			*pl_runner_group;
	int			 pl_no_default_labels;
	char			*pl_network;
	uint64_t		 pl_memory;	/* bytes, 0 = no limit */
	uint64_t		 pl_nano_cpus;		/* 1e9 = one CPU */
	uint64_t		 pl_pids_limit;		/* 0 = no limit */
	int			 pl_docker_in_docker;
	struct env_var		*pl_env;
	size_t			 pl_nenv;
	int			 pl_line;	/* where it was defined */
};

struct config {
	char			*c_file;

	char			*c_user;
	char			*c_chroot;
	char			*c_instance;	/* names this host's runners */

	int			 c_log_level;		/* syslog priority */
	int			 c_log_facility;

	char			*c_api_url;
	char			*c_token;		/* secret */
	char			*c_token_file;
	int			 c_token_file_set;	/* named in the file */
	char			*c_webhook_secret;	/* secret */
	char			*c_webhook_secret_file;
	uint64_t		 c_app_id;
	char			*c_private_key_file;
	char			*c_private_key;		/* secret: PEM */
	uint64_t		 c_installation_id;
	char			*c_ca_file;
	uint32_t		 c_mutation_interval_ms;

	int			 c_auto_create;
	enum discovery_mode	 c_discovery_mode;
	char			*c_organization;
	uint32_t		 c_interval;
	uint32_t		 c_purge_interval;
	int			 c_cleanup_github;

	char			*c_docker_socket;

	char			*c_listen;		/* "host:port" */
	char			*c_api_tokens_file;
	struct strlist		 c_api_tokens;		/* secret */
	struct strlist		 c_cors_origins;
	struct strlist		 c_trusted_proxies;
	uint32_t		 c_rate;
	uint32_t		 c_burst;

	struct pool		*c_pools;
	size_t			 c_npools;
};

#define CONFIG_INSTANCE_MAX	12

/* Placeholders allowed in a pool's environment values. */
extern const char *const config_placeholders[];

/* Fills in every default of DESIGN.md. */
void	 config_init(struct config *);
/* Frees everything, wiping secrets first. */
void	 config_free(struct config *);

/*
 * Loads a file, applies the environment overrides from envp (NULL-
 * terminated "NAME=value" strings, as environ), reads the secret files and
 * validates everything.  It initializes the struct itself, and on failure
 * leaves it empty (config_free() is then harmless).  Returns 0, or -1
 * with a message such as
 * "ephemerd.yaml:12: unknown key 'imgae' in pool" in err.
 */
int	 config_load(struct config *, const char *, char *const *, char *,
	    size_t);
/* Parses YAML text only, without environment or secret files. */
int	 config_parse_yaml(struct config *, const char *, const char *,
	    size_t, char *, size_t);
int	 config_apply_env(struct config *, char *const *, char *, size_t);
int	 config_read_secrets(struct config *, char *, size_t);
int	 config_validate(struct config *, char *, size_t);

struct pool *config_find_pool(struct config *, const char *);

/* Helpers shared by lib/config*.c. */
void	 config_pool_init(struct pool *, const char *);
void	 config_pool_free(struct pool *);
struct pool *config_add_pool(struct config *, const char *);
void	 config_clear_pools(struct config *);
void	 config_pool_setenv(struct pool *, const char *, const char *);
void	 strlist_add(struct strlist *, const char *);
void	 strlist_clear(struct strlist *, int);
/* Appends a copy of every item of the second list to the first. */
void	 strlist_copy(struct strlist *, const struct strlist *);
/* Returns 0 for a valid environment variable name, -1 otherwise. */
int	 config_check_envname(const char *);

/*
 * The parts of the configuration each child receives.  A role gets only
 * what it needs: httpd no GitHub secret, the docker worker no token at
 * all.  The decoder is strict and returns -1 with a reason on bad input.
 */
void	 config_encode(const struct config *, int, struct buf *);
int	 config_decode(struct config *, int, const void *, size_t,
	    const char **);

#endif
