/*
 * The YAML configuration file, read with libyaml's document API, and the
 * checks that config_validate() makes.  Each key is described by a row of
 * a table, so that unknown keys, duplicate keys and wrong types are
 * reported the same way everywhere, with the line they are on.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define MAX_POOLS		256
#define MAX_LIST_ITEMS		1024
#define MAX_ENV_VARS		1024
#define MAX_ENV_NAME		255
#define MAX_POOL_NAME		32
#define MAX_LABEL		100
#define MAX_CPUS		4096
#define MIN_MEMORY		(6 * 1024 * 1024)	/* Docker's minimum */
#define MAX_STRING		8192	/* well within the wire's u16 */

typedef int (*check_fn)(const char *, char *, size_t);

struct parser {
	struct config	*p_cfg;
	const char	*p_file;
	yaml_document_t	*p_doc;
	unsigned char	*p_visited;	/* by node id, to refuse aliases */
	size_t		 p_nnodes;
	const char	*p_where;	/* "github", "pools[2]", ... */
	char		 p_poolwhere[32];
	yaml_node_t	*p_env;		/* the current pool's env mapping */
	char		*p_err;
	size_t		 p_errlen;
};

enum key_kind {
	K_STR,
	K_SECRET,
	K_U32,
	K_U64,
	K_BOOL,
	K_LIST,
	K_FUNC
};

struct key_rule;
typedef int (*parse_fn)(struct parser *, const struct key_rule *,
    yaml_node_t *, void *);

struct key_rule {
	const char	*kr_name;
	enum key_kind	 kr_kind;
	size_t		 kr_off;
	uint64_t	 kr_min;
	uint64_t	 kr_max;
	check_fn	 kr_check;
	parse_fn	 kr_parse;
};

static int	 check_nonempty(const char *, char *, size_t);
static int	 check_chroot(const char *, char *, size_t);
static int	 check_instance(const char *, char *, size_t);
static int	 check_abspath(const char *, char *, size_t);
static int	 check_url(const char *, char *, size_t);
static int	 check_org(const char *, char *, size_t);
static int	 check_listen(const char *, char *, size_t);
static int	 check_origin(const char *, char *, size_t);
static int	 check_proxy(const char *, char *, size_t);
static int	 check_pool_name(const char *, char *, size_t);
static int	 check_label(const char *, char *, size_t);
static int	 check_image(const char *, char *, size_t);
static int	 check_scope(const char *, char *, size_t);

static int	 parse_mapping(struct parser *, yaml_node_t *,
		    const struct key_rule *, void *, uint64_t *);

/* Error helpers. */

static int
parse_error(struct parser *p, const yaml_node_t *node, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	n = snprintf(p->p_err, p->p_errlen, "%s:%lu: ", p->p_file,
	    (unsigned long)node->start_mark.line + 1);
	if (n < 0 || (size_t)n >= p->p_errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->p_err + n, p->p_errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Describes a node for "must be X, not Y" messages. */
static const char *
node_desc(const yaml_node_t *node, char *buf, size_t len)
{
	if (node->type == YAML_SEQUENCE_NODE)
		return "a sequence";
	if (node->type == YAML_MAPPING_NODE)
		return "a mapping";
	snprintf(buf, len, "'%.60s%s'", (const char *)node->data.scalar.value,
	    node->data.scalar.length > 60 ? "..." : "");
	return buf;
}

static int
type_error(struct parser *p, const char *key, const char *what,
    yaml_node_t *value)
{
	char	 buf[80];

	return parse_error(p, value, "'%s' must be %s, not %s", key, what,
	    node_desc(value, buf, sizeof(buf)));
}

/*
 * Returns a node by id.  libyaml's document API resolves an alias into a
 * second reference to its anchor's node; seeing a node twice means an
 * alias, which is refused (it would also allow "billion laughs").
 */
static yaml_node_t *
get_node(struct parser *p, int id, const yaml_node_t *context)
{
	yaml_node_t	*node;

	if ((node = yaml_document_get_node(p->p_doc, id)) == NULL) {
		parse_error(p, context, "internal YAML error");
		return NULL;
	}
	if (p->p_visited[id]) {
		parse_error(p, context, "YAML aliases (*name) are not "
		    "supported; repeat the value");
		return NULL;
	}
	p->p_visited[id] = 1;
	return node;
}

static int
is_null(const yaml_node_t *node)
{
	const char	*s = (const char *)node->data.scalar.value;

	if (node->type != YAML_SCALAR_NODE ||
	    node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* Returns a scalar's text, or NULL with an error; a null is "". */
static const char *
scalar_text(struct parser *p, const char *key, yaml_node_t *node,
    const char *what)
{
	if (node->type != YAML_SCALAR_NODE) {
		type_error(p, key, what, node);
		return NULL;
	}
	if (memchr(node->data.scalar.value, '\0',
	    node->data.scalar.length) != NULL) {
		parse_error(p, node, "'%s' contains a NUL character", key);
		return NULL;
	}
	if (node->data.scalar.length > MAX_STRING) {
		parse_error(p, node, "'%s' is longer than %d bytes", key,
		    MAX_STRING);
		return NULL;
	}
	if (is_null(node))
		return "";
	return (const char *)node->data.scalar.value;
}

static void *
field(void *obj, size_t off)
{
	return (char *)obj + off;
}

/* Generic values. */

static int
parse_str(struct parser *p, const struct key_rule *kr, yaml_node_t *node,
    void *obj)
{
	const char	*s;
	char		**dst = field(obj, kr->kr_off);
	char		 why[128];

	if ((s = scalar_text(p, kr->kr_name, node, "a string")) == NULL)
		return -1;
	if (kr->kr_check != NULL && kr->kr_check(s, why, sizeof(why)) == -1)
		return parse_error(p, node, "bad %s '%.100s': %s", kr->kr_name,
		    s, why);
	free(*dst);
	*dst = xstrdup(s);
	return 0;
}

/* A secret is never quoted back in a message. */
static int
parse_secret(struct parser *p, const struct key_rule *kr, yaml_node_t *node,
    void *obj)
{
	char	**dst = field(obj, kr->kr_off);

	if (node->type != YAML_SCALAR_NODE)
		return parse_error(p, node, "'%s' must be a string",
		    kr->kr_name);
	if (memchr(node->data.scalar.value, '\0',
	    node->data.scalar.length) != NULL || is_null(node) ||
	    node->data.scalar.length == 0 ||
	    node->data.scalar.length > MAX_STRING)
		return parse_error(p, node, "'%s' must be a non-empty string "
		    "of at most %d bytes without NUL characters", kr->kr_name,
		    MAX_STRING);
	freezero_str(*dst);
	*dst = xstrdup((const char *)node->data.scalar.value);
	return 0;
}

static int
parse_uint(struct parser *p, const struct key_rule *kr, yaml_node_t *node,
    uint64_t *out)
{
	const char	*s, *why;

	if ((s = scalar_text(p, kr->kr_name, node, "an integer")) == NULL)
		return -1;
	if (parse_u64(s, kr->kr_min, kr->kr_max, out, &why) == 0)
		return 0;
	if (strcmp(why, "too small") == 0)
		return parse_error(p, node, "'%s' must be at least %llu, not "
		    "'%s'", kr->kr_name, (unsigned long long)kr->kr_min, s);
	if (strcmp(why, "too large") == 0)
		return parse_error(p, node, "'%s' must be at most %llu, not "
		    "'%.40s'", kr->kr_name, (unsigned long long)kr->kr_max, s);
	return type_error(p, kr->kr_name, "an integer", node);
}

static int
parse_bool_value(struct parser *p, const struct key_rule *kr,
    yaml_node_t *node, int *out)
{
	const char	*s;
	int		 b;

	if ((s = scalar_text(p, kr->kr_name, node, "true or false")) == NULL)
		return -1;
	if ((b = parse_bool(s)) == -1)
		return type_error(p, kr->kr_name, "true or false", node);
	*out = b;
	return 0;
}

/* A sequence of strings; a null is the empty list. */
static int
parse_list_into(struct parser *p, const char *key, yaml_node_t *node,
    struct strlist *sl, check_fn check, int secret)
{
	yaml_node_item_t	*it;
	yaml_node_t		*item;
	const char		*s;
	char			 why[128];

	if (is_null(node)) {
		strlist_clear(sl, secret);
		return 0;
	}
	if (node->type != YAML_SEQUENCE_NODE)
		return type_error(p, key, "a sequence", node);
	if (node->data.sequence.items.top - node->data.sequence.items.start >
	    MAX_LIST_ITEMS)
		return parse_error(p, node, "'%s' has more than %d items", key,
		    MAX_LIST_ITEMS);

	strlist_clear(sl, secret);
	for (it = node->data.sequence.items.start;
	    it < node->data.sequence.items.top; it++) {
		if ((item = get_node(p, *it, node)) == NULL)
			return -1;
		if (item->type != YAML_SCALAR_NODE)
			return parse_error(p, item, "'%s' items must be "
			    "strings", key);
		if ((s = scalar_text(p, key, item, "a string")) == NULL)
			return -1;
		if (check != NULL && check(s, why, sizeof(why)) == -1)
			return parse_error(p, item, "bad %s item '%.100s': %s",
			    key, s, why);
		strlist_add(sl, s);
	}
	return 0;
}

static int
parse_value(struct parser *p, const struct key_rule *kr, yaml_node_t *node,
    void *obj)
{
	uint64_t	 v;

	switch (kr->kr_kind) {
	case K_STR:
		return parse_str(p, kr, node, obj);
	case K_SECRET:
		return parse_secret(p, kr, node, obj);
	case K_U32:
		if (parse_uint(p, kr, node, &v) == -1)
			return -1;
		*(uint32_t *)field(obj, kr->kr_off) = (uint32_t)v;
		return 0;
	case K_U64:
		return parse_uint(p, kr, node, field(obj, kr->kr_off));
	case K_BOOL:
		return parse_bool_value(p, kr, node, field(obj, kr->kr_off));
	case K_LIST:
		return parse_list_into(p, kr->kr_name, node,
		    field(obj, kr->kr_off), kr->kr_check, 0);
	case K_FUNC:
		return kr->kr_parse(p, kr, node, obj);
	}
	return parse_error(p, node, "internal error: key kind");
}

static int
rule_index(const struct key_rule *rules, const char *name)
{
	int	 i;

	for (i = 0; rules[i].kr_name != NULL; i++)
		if (strcmp(rules[i].kr_name, name) == 0)
			return i;
	return -1;
}

/*
 * Walks a mapping, dispatching each key to its rule.  The keys seen are
 * returned as a bit mask of rule indexes, for "required" and "not both"
 * checks.
 */
static int
parse_mapping(struct parser *p, yaml_node_t *node,
    const struct key_rule *rules, void *obj, uint64_t *seenp)
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*key, *value;
	const char		*name;
	uint64_t		 seen = 0;
	int			 i;

	for (pair = node->data.mapping.pairs.start;
	    pair < node->data.mapping.pairs.top; pair++) {
		if ((key = get_node(p, pair->key, node)) == NULL ||
		    (value = get_node(p, pair->value, key)) == NULL)
			return -1;
		if (key->type != YAML_SCALAR_NODE)
			return parse_error(p, key, "keys must be strings");
		name = (const char *)key->data.scalar.value;
		if ((i = rule_index(rules, name)) == -1)
			return parse_error(p, key, "unknown key '%.60s'%s%s",
			    name, p->p_where == NULL ? "" : " in ",
			    p->p_where == NULL ? "" : p->p_where);
		if (seen & ((uint64_t)1 << i))
			return parse_error(p, key, "duplicate key '%s'", name);
		seen |= (uint64_t)1 << i;
		if (parse_value(p, &rules[i], value, obj) == -1)
			return -1;
	}
	if (seenp != NULL)
		*seenp = seen;
	return 0;
}

static int
both_given(struct parser *p, yaml_node_t *node, const struct key_rule *rules,
    uint64_t seen, const char *a, const char *b)
{
	uint64_t	 mask;

	mask = ((uint64_t)1 << rule_index(rules, a)) |
	    ((uint64_t)1 << rule_index(rules, b));
	if ((seen & mask) == mask)
		return parse_error(p, node, "'%s' and '%s' are both given in "
		    "%s; keep one", a, b, p->p_where);
	return 0;
}

/* Special values. */

static int
parse_log_level(struct parser *p, const struct key_rule *kr,
    yaml_node_t *node, void *obj)
{
	struct config	*cfg = obj;
	const char	*s;
	int		 level;

	if ((s = scalar_text(p, kr->kr_name, node, "a log level")) == NULL)
		return -1;
	if ((level = log_level_from_name(s)) == -1)
		return type_error(p, kr->kr_name,
		    "debug, info, warning or error", node);
	cfg->c_log_level = level;
	return 0;
}

static int
parse_log_facility(struct parser *p, const struct key_rule *kr,
    yaml_node_t *node, void *obj)
{
	struct config	*cfg = obj;
	const char	*s;
	int		 facility;

	if ((s = scalar_text(p, kr->kr_name, node, "a facility")) == NULL)
		return -1;
	if ((facility = log_facility_from_name(s)) == -1)
		return type_error(p, kr->kr_name,
		    "a syslog facility such as daemon or local0", node);
	cfg->c_log_facility = facility;
	return 0;
}

static int
parse_discovery_mode(struct parser *p, const struct key_rule *kr,
    yaml_node_t *node, void *obj)
{
	struct config	*cfg = obj;
	const char	*s;

	if ((s = scalar_text(p, kr->kr_name, node, "a mode")) == NULL)
		return -1;
	if (strcasecmp(s, "all") == 0)
		cfg->c_discovery_mode = DISCOVERY_ALL;
	else if (strcasecmp(s, "organization") == 0)
		cfg->c_discovery_mode = DISCOVERY_ORGANIZATION;
	else
		return type_error(p, kr->kr_name, "all or organization", node);
	return 0;
}

static int
parse_api_tokens(struct parser *p, const struct key_rule *kr,
    yaml_node_t *node, void *obj)
{
	struct config	*cfg = obj;

	return parse_list_into(p, kr->kr_name, node, &cfg->c_api_tokens,
	    NULL, 1);
}

/* cors_origins is a sequence or, as CORS_ORIGINS, a comma string. */
static int
parse_cors(struct parser *p, const struct key_rule *kr, yaml_node_t *node,
    void *obj)
{
	struct config	*cfg = obj;
	const char	*s, *end;
	char		*item, why[128];
	size_t		 len;

	if (node->type != YAML_SCALAR_NODE || is_null(node))
		return parse_list_into(p, kr->kr_name, node,
		    &cfg->c_cors_origins, check_origin, 0);

	if ((s = scalar_text(p, kr->kr_name, node, "a list")) == NULL)
		return -1;
	strlist_clear(&cfg->c_cors_origins, 0);
	for (; *s != '\0'; s = *end == ',' ? end + 1 : end) {
		s += strspn(s, " \t");
		end = s + strcspn(s, ",");
		for (len = (size_t)(end - s); len > 0 &&
		    (s[len - 1] == ' ' || s[len - 1] == '\t'); len--)
			;
		if (len == 0)
			continue;
		item = xstrndup(s, len);
		if (check_origin(item, why, sizeof(why)) == -1) {
			parse_error(p, node, "bad cors_origins item '%.100s': "
			    "%s", item, why);
			free(item);
			return -1;
		}
		strlist_add(&cfg->c_cors_origins, item);
		free(item);
	}
	return 0;
}

static int
parse_registration(struct parser *p, const struct key_rule *kr,
    yaml_node_t *node, void *obj)
{
	struct pool	*pl = obj;
	const char	*s;

	if ((s = scalar_text(p, kr->kr_name, node, "a mode")) == NULL)
		return -1;
	if (strcmp(s, "jit") == 0)
		pl->pl_registration = REG_JIT;
	else if (strcmp(s, "token") == 0)
		pl->pl_registration = REG_TOKEN;
	else if (strcmp(s, "auto") == 0)
		pl->pl_registration = REG_AUTO;
	else
		return type_error(p, kr->kr_name, "jit, token or auto", node);
	return 0;
}

/* A number of CPUs with up to nine decimals, as Docker's NanoCpus. */
static int
parse_cpus(struct parser *p, const struct key_rule *kr, yaml_node_t *node,
    void *obj)
{
	struct pool	*pl = obj;
	const char	*s, *c;
	uint64_t	 whole = 0, frac = 0, scale = 1000000000;

	if ((s = scalar_text(p, kr->kr_name, node, "a number")) == NULL)
		return -1;
	for (c = s; isdigit((unsigned char)*c) && c - s < 5; c++)
		whole = whole * 10 + (uint64_t)(*c - '0');
	if (c == s)
		goto bad;
	if (*c == '.') {
		for (c++; isdigit((unsigned char)*c) && scale > 1; c++) {
			scale /= 10;
			frac += (uint64_t)(*c - '0') * scale;
		}
	}
	if (*c != '\0' || whole > MAX_CPUS ||
	    (whole == MAX_CPUS && frac > 0))
		goto bad;
	pl->pl_nano_cpus = whole * 1000000000 + frac;
	return 0;

bad:
	return type_error(p, kr->kr_name, "a number of CPUs such as 1.5 "
	    "(at most 4096)", node);
}

/*
 * A pool's environment: a mapping of variable names to strings.  Its
 * placeholders are checked once the whole pool, and so its name and
 * registration mode, are known.
 */
static int
parse_env(struct parser *p, const struct key_rule *kr, yaml_node_t *node,
    void *obj)
{
	struct pool		*pl = obj;
	yaml_node_pair_t	*pair;
	yaml_node_t		*key, *value;
	const char		*name, *s;
	size_t			 i;

	if (is_null(node))
		return 0;
	if (node->type != YAML_MAPPING_NODE)
		return type_error(p, kr->kr_name, "a mapping", node);

	for (pair = node->data.mapping.pairs.start;
	    pair < node->data.mapping.pairs.top; pair++) {
		if ((key = get_node(p, pair->key, node)) == NULL ||
		    (value = get_node(p, pair->value, key)) == NULL)
			return -1;
		if (key->type != YAML_SCALAR_NODE)
			return parse_error(p, key, "keys must be strings");
		name = (const char *)key->data.scalar.value;
		if (config_check_envname(name) == -1)
			return parse_error(p, key, "'%.60s' is not a valid "
			    "environment variable name in %s.env", name,
			    p->p_where);
		for (i = 0; i < pl->pl_nenv; i++)
			if (strcmp(pl->pl_env[i].ev_name, name) == 0)
				return parse_error(p, key, "duplicate key "
				    "'%s'", name);
		if (pl->pl_nenv >= MAX_ENV_VARS)
			return parse_error(p, key, "more than %d variables "
			    "in %s.env", MAX_ENV_VARS, p->p_where);
		if ((s = scalar_text(p, name, value, "a string")) == NULL)
			return -1;
		config_pool_setenv(pl, name, s);
	}
	p->p_env = node;
	return 0;
}

/*
 * Checks the placeholders of one value: each must be known, and one that
 * the registration mode does not produce is refused.  Text in braces that
 * is not a word, as in a JSON value, is left alone.
 */
static int
check_placeholders(const char *value, enum registration_mode mode,
    char *why, size_t whylen)
{
	const char	*s, *end, *name;
	size_t		 i, len;

	for (s = value; (s = strchr(s, '{')) != NULL; s++) {
		for (end = s + 1; isalnum((unsigned char)*end) ||
		    *end == '_'; end++)
			;
		if (*end != '}' || end == s + 1)
			continue;
		len = (size_t)(end - s - 1);
		for (i = 0; config_placeholders[i] != NULL; i++)
			if (strlen(config_placeholders[i]) == len &&
			    strncmp(config_placeholders[i], s + 1, len) == 0)
				break;
		if (config_placeholders[i] == NULL) {
			snprintf(why, whylen, "unknown placeholder '{%.*s}'",
			    (int)(len > 60 ? 60 : len), s + 1);
			return -1;
		}
		name = config_placeholders[i];
		if ((mode == REG_TOKEN && strcmp(name, "jit_config") == 0) ||
		    (mode == REG_JIT &&
		    strcmp(name, "registration_token") == 0)) {
			snprintf(why, whylen, "placeholder '{%s}' is not "
			    "available with registration %s", name,
			    mode == REG_JIT ? "jit" : "token");
			return -1;
		}
	}
	return 0;
}

/* Second pass over a pool's env mapping, with the lines of the values. */
static int
check_env_node(struct parser *p, struct pool *pl, yaml_node_t *env)
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*key, *value;
	char			 why[128];

	for (pair = env->data.mapping.pairs.start;
	    pair < env->data.mapping.pairs.top; pair++) {
		key = yaml_document_get_node(p->p_doc, pair->key);
		value = yaml_document_get_node(p->p_doc, pair->value);
		if (key == NULL || value == NULL)
			return parse_error(p, env, "internal YAML error");
		if (check_placeholders((const char *)value->data.scalar.value,
		    pl->pl_registration, why, sizeof(why)) == -1)
			return parse_error(p, value, "pool '%s': env %s: %s",
			    pl->pl_name, (const char *)key->data.scalar.value,
			    why);
	}
	return 0;
}

/* Sections. */

#define C(m)	offsetof(struct config, m)
#define PL(m)	offsetof(struct pool, m)

static const struct key_rule log_rules[] = {
	{ "level", K_FUNC, 0, 0, 0, NULL, parse_log_level },
	{ "facility", K_FUNC, 0, 0, 0, NULL, parse_log_facility },
	{ NULL, K_STR, 0, 0, 0, NULL, NULL }
};

static const struct key_rule github_rules[] = {
	{ "api_url", K_STR, C(c_api_url), 0, 0, check_url, NULL },
	{ "token", K_SECRET, C(c_token), 0, 0, NULL, NULL },
	{ "token_file", K_STR, C(c_token_file), 0, 0, NULL, NULL },
	{ "webhook_secret", K_SECRET, C(c_webhook_secret), 0, 0, NULL, NULL },
	{ "webhook_secret_file", K_STR, C(c_webhook_secret_file), 0, 0, NULL,
	    NULL },
	{ "app_id", K_U64, C(c_app_id), 0, UINT64_MAX, NULL, NULL },
	{ "private_key_file", K_STR, C(c_private_key_file), 0, 0, NULL, NULL },
	{ "installation_id", K_U64, C(c_installation_id), 0, UINT64_MAX, NULL,
	    NULL },
	{ "ca_file", K_STR, C(c_ca_file), 0, 0, NULL, NULL },
	{ "mutation_interval_ms", K_U32, C(c_mutation_interval_ms), 0, 60000,
	    NULL, NULL },
	{ NULL, K_STR, 0, 0, 0, NULL, NULL }
};

static const struct key_rule discovery_rules[] = {
	{ "auto_create", K_BOOL, C(c_auto_create), 0, 0, NULL, NULL },
	{ "mode", K_FUNC, 0, 0, 0, NULL, parse_discovery_mode },
	{ "organization", K_STR, C(c_organization), 0, 0, check_org, NULL },
	{ "interval", K_U32, C(c_interval), 1, UINT32_MAX, NULL, NULL },
	{ "purge_interval", K_U32, C(c_purge_interval), 1, UINT32_MAX, NULL,
	    NULL },
	{ "cleanup_github", K_BOOL, C(c_cleanup_github), 0, 0, NULL, NULL },
	{ NULL, K_STR, 0, 0, 0, NULL, NULL }
};

static const struct key_rule docker_rules[] = {
	{ "socket", K_STR, C(c_docker_socket), 0, 0, check_abspath, NULL },
	{ NULL, K_STR, 0, 0, 0, NULL, NULL }
};

static const struct key_rule rate_rules[] = {
	{ "rate", K_U32, C(c_rate), 1, UINT32_MAX, NULL, NULL },
	{ "burst", K_U32, C(c_burst), 1, UINT32_MAX, NULL, NULL },
	{ NULL, K_STR, 0, 0, 0, NULL, NULL }
};

static int	 parse_rate_limit(struct parser *, const struct key_rule *,
		    yaml_node_t *, void *);

static const struct key_rule httpd_rules[] = {
	{ "listen", K_STR, C(c_listen), 0, 0, check_listen, NULL },
	{ "api_tokens_file", K_STR, C(c_api_tokens_file), 0, 0, NULL, NULL },
	{ "api_tokens", K_FUNC, 0, 0, 0, NULL, parse_api_tokens },
	{ "cors_origins", K_FUNC, 0, 0, 0, NULL, parse_cors },
	{ "trusted_proxies", K_LIST, C(c_trusted_proxies), 0, 0, check_proxy,
	    NULL },
	{ "rate_limit", K_FUNC, 0, 0, 0, NULL, parse_rate_limit },
	{ NULL, K_STR, 0, 0, 0, NULL, NULL }
};

static const struct key_rule pool_rules[] = {
	{ "name", K_STR, PL(pl_name), 0, 0, check_pool_name, NULL },
	{ "labels", K_LIST, PL(pl_labels), 0, 0, check_label, NULL },
	{ "image", K_STR, PL(pl_image), 0, 0, check_image, NULL },
	{ "command", K_STR, PL(pl_command), 0, 0, NULL, NULL },
	{ "registration", K_FUNC, 0, 0, 0, NULL, parse_registration },
	{ "max_runners", K_U32, PL(pl_max_runners), 1, UINT32_MAX, NULL,
	    NULL },
	{ "min_idle", K_U32, PL(pl_min_idle), 0, UINT32_MAX, NULL, NULL },
	{ "scope", K_STR, PL(pl_scope), 0, 0, check_scope, NULL },
	{ "scope_name", K_STR, PL(pl_scope_name), 0, 0, NULL, NULL },
	{ "idle_timeout", K_U32, PL(pl_idle_timeout), 1, UINT32_MAX, NULL,
	    NULL },
	{ "bootstrap_timeout", K_U32, PL(pl_bootstrap_timeout), 1,
	    UINT32_MAX, NULL, NULL },
	{ "runner_group", K_STR, PL(pl_runner_group), 0, 0, NULL, NULL },
	{ "no_default_labels", K_BOOL, PL(pl_no_default_labels), 0, 0, NULL,
	    NULL },
	{ "network", K_STR, PL(pl_network), 0, 0, check_nonempty, NULL },
	{ "memory", K_U64, PL(pl_memory), 0, INT64_MAX, NULL, NULL },
	{ "cpus", K_FUNC, 0, 0, 0, NULL, parse_cpus },
	{ "pids_limit", K_U64, PL(pl_pids_limit), 0, INT64_MAX, NULL, NULL },
	{ "docker_in_docker", K_BOOL, PL(pl_docker_in_docker), 0, 0, NULL,
	    NULL },
	{ "env", K_FUNC, 0, 0, 0, NULL, parse_env },
	{ NULL, K_STR, 0, 0, 0, NULL, NULL }
};

/* Parses a nested mapping such as github: or httpd.rate_limit:. */
static int
parse_section(struct parser *p, const char *where, yaml_node_t *node,
    const struct key_rule *rules, uint64_t *seenp)
{
	const char	*saved = p->p_where;
	int		 rc;

	if (seenp != NULL)
		*seenp = 0;
	if (is_null(node))
		return 0;
	if (node->type != YAML_MAPPING_NODE)
		return type_error(p, where, "a mapping", node);
	p->p_where = where;
	rc = parse_mapping(p, node, rules, p->p_cfg, seenp);
	p->p_where = saved;
	return rc;
}

static int
parse_log(struct parser *p, const struct key_rule *kr, yaml_node_t *node,
    void *obj)
{
	(void)obj;
	return parse_section(p, kr->kr_name, node, log_rules, NULL);
}

static int
parse_github(struct parser *p, const struct key_rule *kr, yaml_node_t *node,
    void *obj)
{
	struct config	*cfg = obj;
	uint64_t	 seen;

	if (parse_section(p, kr->kr_name, node, github_rules, &seen) == -1)
		return -1;
	if (seen & ((uint64_t)1 << rule_index(github_rules, "token_file")))
		cfg->c_token_file_set = 1;
	p->p_where = kr->kr_name;
	if (both_given(p, node, github_rules, seen, "token",
	    "token_file") == -1 ||
	    both_given(p, node, github_rules, seen, "webhook_secret",
	    "webhook_secret_file") == -1)
		return -1;
	p->p_where = NULL;
	return 0;
}

static int
parse_discovery(struct parser *p, const struct key_rule *kr,
    yaml_node_t *node, void *obj)
{
	(void)obj;
	return parse_section(p, kr->kr_name, node, discovery_rules, NULL);
}

static int
parse_docker(struct parser *p, const struct key_rule *kr, yaml_node_t *node,
    void *obj)
{
	(void)obj;
	return parse_section(p, kr->kr_name, node, docker_rules, NULL);
}

static int
parse_httpd(struct parser *p, const struct key_rule *kr, yaml_node_t *node,
    void *obj)
{
	uint64_t	 seen;

	(void)obj;
	if (parse_section(p, kr->kr_name, node, httpd_rules, &seen) == -1)
		return -1;
	p->p_where = kr->kr_name;
	if (both_given(p, node, httpd_rules, seen, "api_tokens",
	    "api_tokens_file") == -1)
		return -1;
	p->p_where = NULL;
	return 0;
}

static int
parse_rate_limit(struct parser *p, const struct key_rule *kr,
    yaml_node_t *node, void *obj)
{
	(void)kr;
	(void)obj;
	return parse_section(p, "httpd.rate_limit", node, rate_rules, NULL);
}

/* One item of pools: a mapping with at least a name. */
static int
parse_pool(struct parser *p, yaml_node_t *node, size_t index)
{
	struct config	*cfg = p->p_cfg;
	struct pool	*pl;
	uint64_t	 seen;
	size_t		 i;

	snprintf(p->p_poolwhere, sizeof(p->p_poolwhere), "pools[%zu]", index);
	if (node->type != YAML_MAPPING_NODE)
		return type_error(p, p->p_poolwhere, "a mapping", node);

	pl = config_add_pool(cfg, "");
	pl->pl_line = (int)node->start_mark.line + 1;
	p->p_where = p->p_poolwhere;
	p->p_env = NULL;
	if (parse_mapping(p, node, pool_rules, pl, &seen) == -1)
		return -1;
	if ((seen & ((uint64_t)1 << rule_index(pool_rules, "name"))) == 0)
		return parse_error(p, node, "'name' is missing in %s",
		    p->p_poolwhere);

	for (i = 0; i + 1 < cfg->c_npools; i++)
		if (strcmp(cfg->c_pools[i].pl_name, pl->pl_name) == 0)
			return parse_error(p, node, "duplicate pool name '%s'",
			    pl->pl_name);
	if (p->p_env != NULL && check_env_node(p, pl, p->p_env) == -1)
		return -1;
	p->p_where = NULL;
	return 0;
}

/* pools: replaces the built-in default pool. */
static int
parse_pools(struct parser *p, const struct key_rule *kr, yaml_node_t *node,
    void *obj)
{
	yaml_node_item_t	*it;
	yaml_node_t		*item;
	size_t			 index = 0;

	(void)obj;
	config_clear_pools(p->p_cfg);
	if (is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return type_error(p, kr->kr_name, "a sequence of mappings",
		    node);
	if (node->data.sequence.items.top - node->data.sequence.items.start >
	    MAX_POOLS)
		return parse_error(p, node, "more than %d pools", MAX_POOLS);

	for (it = node->data.sequence.items.start;
	    it < node->data.sequence.items.top; it++, index++) {
		if ((item = get_node(p, *it, node)) == NULL ||
		    parse_pool(p, item, index) == -1)
			return -1;
	}
	return 0;
}

static const struct key_rule top_rules[] = {
	{ "user", K_STR, C(c_user), 0, 0, check_nonempty, NULL },
	{ "chroot", K_STR, C(c_chroot), 0, 0, check_chroot, NULL },
	{ "instance", K_STR, C(c_instance), 0, 0, check_instance, NULL },
	{ "log", K_FUNC, 0, 0, 0, NULL, parse_log },
	{ "github", K_FUNC, 0, 0, 0, NULL, parse_github },
	{ "discovery", K_FUNC, 0, 0, 0, NULL, parse_discovery },
	{ "docker", K_FUNC, 0, 0, 0, NULL, parse_docker },
	{ "httpd", K_FUNC, 0, 0, 0, NULL, parse_httpd },
	{ "pools", K_FUNC, 0, 0, 0, NULL, parse_pools },
	{ NULL, K_STR, 0, 0, 0, NULL, NULL }
};

static int
yaml_syntax_error(struct parser *p, yaml_parser_t *yp)
{
	if (yp->error == YAML_MEMORY_ERROR)
		fatalx("libyaml: out of memory");
	if (yp->error == YAML_READER_ERROR) {
		snprintf(p->p_err, p->p_errlen, "%s: %s at byte %lu",
		    p->p_file, yp->problem != NULL ? yp->problem :
		    "unreadable input", (unsigned long)yp->problem_offset);
		return -1;
	}
	snprintf(p->p_err, p->p_errlen, "%s:%lu: YAML syntax error: %s%s%s",
	    p->p_file, (unsigned long)yp->problem_mark.line + 1,
	    yp->problem != NULL ? yp->problem : "unknown problem",
	    yp->context != NULL ? " " : "",
	    yp->context != NULL ? yp->context : "");
	return -1;
}

/* Loads the one document of the text, refusing a second one. */
static int
yaml_load_one(struct parser *p, const char *text, size_t len,
    yaml_document_t *doc)
{
	yaml_parser_t	 yp;
	yaml_document_t	 extra;
	yaml_node_t	*root;
	int		 rc = -1;

	if (!yaml_parser_initialize(&yp))
		fatalx("libyaml: out of memory");
	yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
	if (!yaml_parser_load(&yp, doc)) {
		yaml_syntax_error(p, &yp);
		yaml_parser_delete(&yp);
		return -1;
	}

	if (!yaml_parser_load(&yp, &extra))
		yaml_syntax_error(p, &yp);
	else {
		if ((root = yaml_document_get_root_node(&extra)) != NULL)
			parse_error(p, root, "more than one YAML document");
		else
			rc = 0;
		yaml_document_delete(&extra);
	}
	if (rc == -1)
		yaml_document_delete(doc);
	yaml_parser_delete(&yp);
	return rc;
}

/* Deletes a document after wiping its scalars, which may hold secrets. */
static void
yaml_wipe_delete(yaml_document_t *doc)
{
	yaml_node_t	*node;

	for (node = doc->nodes.start; node < doc->nodes.top; node++)
		if (node->type == YAML_SCALAR_NODE)
			explicit_bzero(node->data.scalar.value,
			    node->data.scalar.length);
	yaml_document_delete(doc);
}

int
config_parse_yaml(struct config *cfg, const char *file, const char *text,
    size_t len, char *err, size_t errlen)
{
	struct parser	 p;
	yaml_document_t	 doc;
	yaml_node_t	*root;
	int		 rc = -1;

	memset(&p, 0, sizeof(p));
	p.p_cfg = cfg;
	p.p_file = file;
	p.p_doc = &doc;
	p.p_err = err;
	p.p_errlen = errlen;
	if (yaml_load_one(&p, text, len, &doc) == -1)
		return -1;

	/* An empty file is all defaults. */
	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		yaml_document_delete(&doc);
		return 0;
	}
	p.p_nnodes = (size_t)(doc.nodes.top - doc.nodes.start);
	p.p_visited = xcalloc(p.p_nnodes + 1, 1);
	p.p_visited[1] = 1;

	if (root->type != YAML_MAPPING_NODE)
		parse_error(&p, root, "the top level must be a mapping of "
		    "keys, not %s", root->type == YAML_SEQUENCE_NODE ?
		    "a sequence" : "a single value");
	else
		rc = parse_mapping(&p, root, top_rules, cfg, NULL);

	free(p.p_visited);
	yaml_wipe_delete(&doc);
	return rc;
}

/* Checks of single values, shared by the parser and config_validate(). */

static int
check_nonempty(const char *s, char *why, size_t whylen)
{
	if (*s != '\0')
		return 0;
	snprintf(why, whylen, "must not be empty");
	return -1;
}

static int
check_chroot(const char *s, char *why, size_t whylen)
{
	if (*s == '\0' || *s == '/')
		return 0;
	snprintf(why, whylen, "must be an absolute path, or \"\" for none");
	return -1;
}

/* It goes into runner and container names, so it must suit both. */
static int
check_instance(const char *s, char *why, size_t whylen)
{
	size_t	 len = strlen(s);

	if (len <= CONFIG_INSTANCE_MAX && strspn(s,
	    "abcdefghijklmnopqrstuvwxyz0123456789-") == len &&
	    s[0] != '-')
		return 0;
	snprintf(why, whylen, "must be up to %d characters of a-z, 0-9 and "
	    "'-', not starting with '-'", CONFIG_INSTANCE_MAX);
	return -1;
}

/* The default instance name: the host's short name, made valid. */
static void
config_default_instance(struct config *cfg)
{
	char	 host[256], name[CONFIG_INSTANCE_MAX + 1];
	size_t	 i, n = 0;

	if (gethostname(host, sizeof(host)) == -1)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0' && host[i] != '.' &&
	    n < CONFIG_INSTANCE_MAX; i++) {
		char c = (char)tolower((unsigned char)host[i]);

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (c == '-' && n > 0))
			name[n++] = c;
	}
	name[n] = '\0';
	free(cfg->c_instance);
	cfg->c_instance = xstrdup(n > 0 ? name : "host");
}

static int
check_abspath(const char *s, char *why, size_t whylen)
{
	if (*s == '/')
		return 0;
	snprintf(why, whylen, "must be an absolute path");
	return -1;
}

static int
has_space(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 1;
	return 0;
}

static int
check_url(const char *s, char *why, size_t whylen)
{
	size_t	 skip;

	if (strncmp(s, "https://", 8) == 0)
		skip = 8;
	else if (strncmp(s, "http://", 7) == 0)
		skip = 7;
	else {
		snprintf(why, whylen, "must start with https:// or http://");
		return -1;
	}
	if (s[skip] == '\0' || s[skip] == '/' || has_space(s)) {
		snprintf(why, whylen, "must name a host, without spaces");
		return -1;
	}
	return 0;
}

/* GitHub account names: letters, digits and single hyphens, up to 39. */
static int
check_org(const char *s, char *why, size_t whylen)
{
	size_t	 len = strlen(s);

	if (len == 0)
		return 0;
	if (len > 39 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-") != len || *s == '-') {
		snprintf(why, whylen, "not a GitHub organization name");
		return -1;
	}
	return 0;
}

static int
check_scope(const char *s, char *why, size_t whylen)
{
	if (*s == '\0' || strcmp(s, "repo") == 0 || strcmp(s, "org") == 0)
		return 0;
	snprintf(why, whylen, "must be repo or org");
	return -1;
}

/* owner/name, as GitHub allows them. */
static int
check_repo_name(const char *s, char *why, size_t whylen)
{
	const char	*slash = strchr(s, '/');
	size_t		 owner, name;

	if (slash == NULL)
		goto bad;
	owner = (size_t)(slash - s);
	name = strlen(slash + 1);
	if (owner == 0 || owner > 39 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-") != owner || *s == '-' ||
	    name == 0 || name > 100 || strspn(slash + 1,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	    "-_.") != name)
		goto bad;
	return 0;

bad:
	snprintf(why, whylen, "not a repository's owner/name");
	return -1;
}

static int
check_hostname(const char *host)
{
	size_t	 len = strlen(host);

	if (len == 0 || len > 253 || *host == '-' || *host == '.')
		return -1;
	if (strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789.-") != len)
		return -1;
	return 0;
}

/* "host:port" with an IPv4 address, a [bracketed] IPv6 one or a name. */
static int
check_listen(const char *s, char *why, size_t whylen)
{
	struct in6_addr	 a6;
	struct in_addr	 a4;
	const char	*end, *port, *reason;
	char		 host[256];
	size_t		 hostlen;
	uint64_t	 v;

	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':') {
			snprintf(why, whylen, "expected [address]:port");
			return -1;
		}
		hostlen = (size_t)(end - s - 1);
		port = end + 2;
	} else {
		if ((end = strrchr(s, ':')) == NULL) {
			snprintf(why, whylen, "expected host:port");
			return -1;
		}
		hostlen = (size_t)(end - s);
		port = end + 1;
	}
	if (hostlen == 0 || hostlen >= sizeof(host)) {
		snprintf(why, whylen, "the host is missing or too long");
		return -1;
	}
	memcpy(host, *s == '[' ? s + 1 : s, hostlen);
	host[hostlen] = '\0';

	if (*s == '[') {
		if (inet_pton(AF_INET6, host, &a6) != 1) {
			snprintf(why, whylen, "bad IPv6 address");
			return -1;
		}
	} else if (strchr(host, ':') != NULL) {
		snprintf(why, whylen, "an IPv6 address needs brackets, as "
		    "in [::1]:8080");
		return -1;
	} else if (strspn(host, "0123456789.") == hostlen) {
		if (inet_pton(AF_INET, host, &a4) != 1) {
			snprintf(why, whylen, "bad IPv4 address");
			return -1;
		}
	} else if (check_hostname(host) == -1) {
		snprintf(why, whylen, "bad host name");
		return -1;
	}

	if (parse_u64(port, 1, 65535, &v, &reason) == -1) {
		snprintf(why, whylen, "the port must be a number from 1 to "
		    "65535");
		return -1;
	}
	return 0;
}

static int
check_origin(const char *s, char *why, size_t whylen)
{
	if (*s == '\0' || has_space(s) || strchr(s, ',') != NULL) {
		snprintf(why, whylen, "must be * or an origin such as "
		    "https://example.com, without spaces or commas");
		return -1;
	}
	return 0;
}

/* An address, or a network as address/prefix. */
static int
check_proxy(const char *s, char *why, size_t whylen)
{
	unsigned char	 addr[sizeof(struct in6_addr)];
	char		 host[INET6_ADDRSTRLEN];
	const char	*slash, *reason;
	size_t		 len;
	uint64_t	 prefix;
	int		 af;

	slash = strchr(s, '/');
	len = slash == NULL ? strlen(s) : (size_t)(slash - s);
	if (len == 0 || len >= sizeof(host))
		goto bad;
	memcpy(host, s, len);
	host[len] = '\0';
	af = strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(af, host, addr) != 1)
		goto bad;
	if (slash != NULL && parse_u64(slash + 1, 0, af == AF_INET ? 32 : 128,
	    &prefix, &reason) == -1)
		goto bad;
	return 0;

bad:
	snprintf(why, whylen, "must be an IP address or a network such as "
	    "10.0.0.0/8");
	return -1;
}

static int
check_pool_name(const char *s, char *why, size_t whylen)
{
	size_t	 len = strlen(s);

	if (len >= 1 && len <= MAX_POOL_NAME && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_.-") == len)
		return 0;
	snprintf(why, whylen, "must be 1 to %d letters, digits, '_', '.' or "
	    "'-'", MAX_POOL_NAME);
	return -1;
}

static int
check_label(const char *s, char *why, size_t whylen)
{
	size_t	 len = strlen(s);
	size_t	 i;

	if (len == 0 || len > MAX_LABEL) {
		snprintf(why, whylen, "must be 1 to %d characters", MAX_LABEL);
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (s[i] == ',' || (unsigned char)s[i] < ' ' || s[i] == 0x7f) {
			snprintf(why, whylen, "must not contain commas or "
			    "control characters");
			return -1;
		}
	}
	return 0;
}

static int
check_image(const char *s, char *why, size_t whylen)
{
	if (*s != '\0' && !has_space(s))
		return 0;
	snprintf(why, whylen, "must be a non-empty image reference without "
	    "spaces");
	return -1;
}

int
config_check_envname(const char *s)
{
	size_t	 len = strlen(s);

	if (len == 0 || len > MAX_ENV_NAME || isdigit((unsigned char)*s))
		return -1;
	if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_") != len)
		return -1;
	return 0;
}

/* Whole-configuration checks, for values from any source. */

static int
validate_error(const struct config *cfg, int line, char *err, size_t errlen,
    const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	if (cfg->c_file != NULL && line > 0)
		n = snprintf(err, errlen, "%s:%d: ", cfg->c_file, line);
	else if (cfg->c_file != NULL)
		n = snprintf(err, errlen, "%s: ", cfg->c_file);
	else
		n = 0;
	if (n < 0 || (size_t)n >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int
validate_value(const struct config *cfg, int line, const char *key,
    const char *value, check_fn check, char *err, size_t errlen)
{
	char	 why[128];

	if (value == NULL)
		value = "";
	if (check(value, why, sizeof(why)) == 0)
		return 0;
	return validate_error(cfg, line, err, errlen, "bad %s '%.100s': %s",
	    key, value, why);
}

static int
pool_uses(const struct pool *pl, const char *placeholder)
{
	size_t	 i;

	for (i = 0; i < pl->pl_nenv; i++)
		if (strstr(pl->pl_env[i].ev_value, placeholder) != NULL)
			return 1;
	return 0;
}

/*
 * A pool whose environment hands a registration token to the runner
 * registers with one; any other gets a just-in-time configuration.
 */
static int
validate_pool_env(const struct config *cfg, struct pool *pl, char *err,
    size_t errlen)
{
	char	 why[128];
	size_t	 i;

	if (pl->pl_registration == REG_AUTO)
		pl->pl_registration = pool_uses(pl, "{registration_token}") ?
		    REG_TOKEN : REG_JIT;

	for (i = 0; i < pl->pl_nenv; i++) {
		if (config_check_envname(pl->pl_env[i].ev_name) == -1)
			return validate_error(cfg, pl->pl_line, err, errlen,
			    "pool '%s': '%.60s' is not a valid environment "
			    "variable name", pl->pl_name,
			    pl->pl_env[i].ev_name);
		if (check_placeholders(pl->pl_env[i].ev_value,
		    pl->pl_registration, why, sizeof(why)) == -1)
			return validate_error(cfg, pl->pl_line, err, errlen,
			    "pool '%s': env %s: %s", pl->pl_name,
			    pl->pl_env[i].ev_name, why);
	}
	return 0;
}

/*
 * Idle runners need a place to register: the pool's scope, or the
 * organization in organization mode.
 */
static int
validate_pool_scope(const struct config *cfg, const struct pool *pl,
    char *err, size_t errlen)
{
	const char	*scope = pl->pl_scope, *name = pl->pl_scope_name;
	char		 why[128];
	int		 rc;

	if (scope == NULL || *scope == '\0') {
		if (name != NULL && *name != '\0')
			return validate_error(cfg, pl->pl_line, err, errlen,
			    "pool '%s': scope_name needs scope (repo or org)",
			    pl->pl_name);
		if (pl->pl_min_idle > 0 &&
		    cfg->c_discovery_mode != DISCOVERY_ORGANIZATION)
			return validate_error(cfg, pl->pl_line, err, errlen,
			    "pool '%s': min_idle needs scope and scope_name, "
			    "or discovery mode organization", pl->pl_name);
		return 0;
	}
	if (check_scope(scope, why, sizeof(why)) == -1)
		return validate_error(cfg, pl->pl_line, err, errlen,
		    "pool '%s': scope %s", pl->pl_name, why);
	if (name == NULL || *name == '\0')
		return validate_error(cfg, pl->pl_line, err, errlen,
		    "pool '%s': scope needs scope_name", pl->pl_name);
	if (strcmp(scope, "org") == 0)
		rc = check_org(name, why, sizeof(why));
	else
		rc = check_repo_name(name, why, sizeof(why));
	if (rc == -1)
		return validate_error(cfg, pl->pl_line, err, errlen,
		    "pool '%s': bad scope_name '%.100s': %s", pl->pl_name,
		    name, why);
	return 0;
}

static int
validate_pool(const struct config *cfg, struct pool *pl, char *err,
    size_t errlen)
{
	const char	*name = pl->pl_name;
	int		 line = pl->pl_line;
	size_t		 i;

	if (validate_value(cfg, line, "pool name", name, check_pool_name,
	    err, errlen) == -1 ||
	    validate_value(cfg, line, "image", pl->pl_image, check_image,
	    err, errlen) == -1 ||
	    validate_value(cfg, line, "network", pl->pl_network,
	    check_nonempty, err, errlen) == -1)
		return -1;
	if (pl->pl_labels.sl_count == 0)
		return validate_error(cfg, line, err, errlen, "pool '%s': "
		    "labels must not be empty", name);
	for (i = 0; i < pl->pl_labels.sl_count; i++)
		if (validate_value(cfg, line, "label",
		    pl->pl_labels.sl_items[i], check_label, err, errlen) == -1)
			return -1;

	if (pl->pl_max_runners < 1)
		return validate_error(cfg, line, err, errlen, "pool '%s': "
		    "max_runners must be at least 1", name);
	if (pl->pl_min_idle > pl->pl_max_runners)
		return validate_error(cfg, line, err, errlen, "pool '%s': "
		    "min_idle %u is more than max_runners %u", name,
		    pl->pl_min_idle, pl->pl_max_runners);
	if (validate_pool_scope(cfg, pl, err, errlen) == -1)
		return -1;
	if (pl->pl_idle_timeout < 1 || pl->pl_bootstrap_timeout < 1)
		return validate_error(cfg, line, err, errlen, "pool '%s': "
		    "idle_timeout and bootstrap_timeout must be at least 1",
		    name);
	if (pl->pl_memory != 0 && pl->pl_memory < MIN_MEMORY)
		return validate_error(cfg, line, err, errlen, "pool '%s': "
		    "memory must be 0 or at least %d bytes", name, MIN_MEMORY);
	if (pl->pl_memory > INT64_MAX || pl->pl_pids_limit > INT64_MAX ||
	    pl->pl_nano_cpus > (uint64_t)MAX_CPUS * 1000000000)
		return validate_error(cfg, line, err, errlen, "pool '%s': "
		    "memory, cpus or pids_limit out of range", name);
	return validate_pool_env(cfg, pl, err, errlen);
}

static int
validate_pools(struct config *cfg, char *err, size_t errlen)
{
	size_t	 i, j;

	if (cfg->c_npools == 0)
		return validate_error(cfg, 0, err, errlen, "no pools: define "
		    "at least one, or leave 'pools' out for the default");
	if (cfg->c_npools > MAX_POOLS)
		return validate_error(cfg, 0, err, errlen, "more than %d "
		    "pools", MAX_POOLS);

	for (i = 0; i < cfg->c_npools; i++) {
		if (validate_pool(cfg, &cfg->c_pools[i], err, errlen) == -1)
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(cfg->c_pools[i].pl_name,
			    cfg->c_pools[j].pl_name) == 0)
				return validate_error(cfg,
				    cfg->c_pools[i].pl_line, err, errlen,
				    "duplicate pool name '%s'",
				    cfg->c_pools[i].pl_name);
	}
	return 0;
}

static int
validate_github(struct config *cfg, char *err, size_t errlen)
{
	if (validate_value(cfg, 0, "github.api_url", cfg->c_api_url,
	    check_url, err, errlen) == -1)
		return -1;
	if (cfg->c_app_id != 0 && (cfg->c_private_key_file == NULL ||
	    *cfg->c_private_key_file == '\0'))
		return validate_error(cfg, 0, err, errlen, "github.app_id "
		    "needs github.private_key_file");
	if (cfg->c_app_id == 0 && cfg->c_private_key_file != NULL &&
	    *cfg->c_private_key_file != '\0')
		return validate_error(cfg, 0, err, errlen,
		    "github.private_key_file needs github.app_id");

	if (cfg->c_discovery_mode != DISCOVERY_ALL &&
	    cfg->c_discovery_mode != DISCOVERY_ORGANIZATION)
		return validate_error(cfg, 0, err, errlen, "bad discovery "
		    "mode");
	if (validate_value(cfg, 0, "discovery.organization",
	    cfg->c_organization, check_org, err, errlen) == -1)
		return -1;
	if (cfg->c_discovery_mode == DISCOVERY_ORGANIZATION &&
	    (cfg->c_organization == NULL || *cfg->c_organization == '\0'))
		return validate_error(cfg, 0, err, errlen, "discovery mode "
		    "organization needs discovery.organization "
		    "(GITHUB_ORGANIZATION)");
	if (cfg->c_interval < 1 || cfg->c_purge_interval < 1)
		return validate_error(cfg, 0, err, errlen, "discovery "
		    "intervals must be at least 1 second");
	return 0;
}

static int
validate_httpd(struct config *cfg, char *err, size_t errlen)
{
	size_t	 i;

	if (validate_value(cfg, 0, "httpd.listen", cfg->c_listen,
	    check_listen, err, errlen) == -1)
		return -1;
	for (i = 0; i < cfg->c_cors_origins.sl_count; i++)
		if (validate_value(cfg, 0, "cors origin",
		    cfg->c_cors_origins.sl_items[i], check_origin, err,
		    errlen) == -1)
			return -1;
	for (i = 0; i < cfg->c_trusted_proxies.sl_count; i++)
		if (validate_value(cfg, 0, "trusted proxy",
		    cfg->c_trusted_proxies.sl_items[i], check_proxy, err,
		    errlen) == -1)
			return -1;
	if (cfg->c_rate < 1)
		return validate_error(cfg, 0, err, errlen, "httpd.rate_limit "
		    "rate must be at least 1");
	if (cfg->c_burst < cfg->c_rate)
		return validate_error(cfg, 0, err, errlen, "httpd.rate_limit "
		    "burst %u is less than rate %u", cfg->c_burst,
		    cfg->c_rate);
	return 0;
}

static int
too_long(const char *s)
{
	return s != NULL && strlen(s) > MAX_STRING;
}

static int
list_too_long(const struct strlist *sl)
{
	size_t	 i;

	if (sl->sl_count > MAX_LIST_ITEMS)
		return 1;
	for (i = 0; i < sl->sl_count; i++)
		if (too_long(sl->sl_items[i]))
			return 1;
	return 0;
}

/*
 * Values from the environment and secret files have no length limit of
 * their own; the wire needs one.  Secrets are not named.
 */
static int
validate_lengths(const struct config *cfg, char *err, size_t errlen)
{
	const struct pool	*pl;
	size_t			 i, j;

	if (too_long(cfg->c_token) || too_long(cfg->c_webhook_secret) ||
	    too_long(cfg->c_private_key) || list_too_long(&cfg->c_api_tokens))
		return validate_error(cfg, 0, err, errlen, "a secret is "
		    "longer than %d bytes, or there are more than %d API "
		    "tokens", MAX_STRING, MAX_LIST_ITEMS);
	if (too_long(cfg->c_organization) || too_long(cfg->c_listen) ||
	    too_long(cfg->c_api_url) || too_long(cfg->c_user) ||
	    list_too_long(&cfg->c_cors_origins) ||
	    list_too_long(&cfg->c_trusted_proxies))
		return validate_error(cfg, 0, err, errlen, "a value is "
		    "longer than %d bytes, or a list has more than %d items",
		    MAX_STRING, MAX_LIST_ITEMS);

	for (i = 0; i < cfg->c_npools; i++) {
		pl = &cfg->c_pools[i];
		if (too_long(pl->pl_image) || too_long(pl->pl_command) ||
		    list_too_long(&pl->pl_labels) ||
		    pl->pl_nenv > MAX_ENV_VARS)
			goto fail;
		for (j = 0; j < pl->pl_nenv; j++)
			if (too_long(pl->pl_env[j].ev_value))
				goto fail;
	}
	return 0;

fail:
	return validate_error(cfg, pl->pl_line, err, errlen, "pool '%.40s': "
	    "a value is longer than %d bytes, or there are more than %d "
	    "labels or variables", pl->pl_name, MAX_STRING, MAX_ENV_VARS);
}

int
config_validate(struct config *cfg, char *err, size_t errlen)
{
	if (validate_lengths(cfg, err, errlen) == -1)
		return -1;

	if (validate_value(cfg, 0, "user", cfg->c_user, check_nonempty, err,
	    errlen) == -1 ||
	    validate_value(cfg, 0, "chroot", cfg->c_chroot, check_chroot, err,
	    errlen) == -1 ||
	    validate_value(cfg, 0, "instance", cfg->c_instance,
	    check_instance, err, errlen) == -1 ||
	    validate_value(cfg, 0, "docker.socket", cfg->c_docker_socket,
	    check_abspath, err, errlen) == -1)
		return -1;
	if (cfg->c_log_level < LOG_ERR || cfg->c_log_level > LOG_DEBUG)
		return validate_error(cfg, 0, err, errlen, "bad log level");
	if ((cfg->c_log_facility & ~LOG_FACMASK) != 0 ||
	    cfg->c_log_facility > LOG_LOCAL7)
		return validate_error(cfg, 0, err, errlen, "bad log facility");

	if (validate_github(cfg, err, errlen) == -1 ||
	    validate_httpd(cfg, err, errlen) == -1 ||
	    validate_pools(cfg, err, errlen) == -1)
		return -1;
	if (cfg->c_instance[0] == '\0')
		config_default_instance(cfg);
	return 0;
}
