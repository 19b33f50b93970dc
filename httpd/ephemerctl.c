/*
 * ephemerctl: the command-line client of ephemerd's REST API.
 *
 * Each command is one blocking libcurl request.  Every answer of the API
 * is the envelope {"status","data","message","timestamp"}: by default the
 * data is printed as an aligned table for people, --json passes the
 * server's JSON through unchanged for scripts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "buf.h"
#include "json.h"
#include "json_write.h"
#include "log.h"
#include "util.h"

#define CTL_DEFAULT_URL		"http://127.0.0.1:8080"
#define CTL_MAX_LABELS		32
#define CTL_MAX_ANSWER		(16 * 1024 * 1024)
#define CTL_CONNECT_TIMEOUT	10L
/* Creating many runners waits for Docker and GitHub; give it time. */
#define CTL_TIMEOUT		300L

/* Exit statuses; ephemerctl(1) documents them. */
#define CTL_EXIT_OK		0
#define CTL_EXIT_API		1
#define CTL_EXIT_USAGE		2
#define CTL_EXIT_CONNECT	3

enum ctl_cmd {
	CMD_NONE,
	CMD_LIST,
	CMD_SHOW,
	CMD_CREATE,
	CMD_DESTROY,
	CMD_LOGS,
	CMD_CLEANUP,
	CMD_HEALTH,
	CMD_HELP
};

#define CMDBIT(c)	(1U << (c))
#define ALLCMDS		0xffffU

enum ctl_optid {
	OPT_URL,
	OPT_TOKEN,
	OPT_JSON,
	OPT_HELP,
	OPT_SCOPE,
	OPT_SCOPE_NAME,
	OPT_COUNT,
	OPT_NAME,
	OPT_GROUP,
	OPT_LABEL,
	OPT_TAIL,
	OPT_LIVE
};

struct ctl_opts {
	const char	*co_url;
	const char	*co_token;
	int		 co_json;
	int		 co_help;
	int		 co_live;
	enum ctl_cmd	 co_cmd;
	const char	*co_cmdname;
	const char	*co_arg;	/* runner id, or the topic of help */
	const char	*co_scope;
	const char	*co_scope_name;
	int64_t		 co_count;	/* 0: not given */
	const char	*co_name;
	const char	*co_group;
	const char	*co_labels[CTL_MAX_LABELS];
	int		 co_nlabels;
	int64_t		 co_tail;	/* 0: the server's default */
	unsigned int	 co_seen;	/* options given, by enum ctl_optid */
};

struct ctl_command {
	const char	*cc_name;
	enum ctl_cmd	 cc_cmd;
	const char	*cc_arg;	/* name of the argument, or NULL */
	const char	*cc_usage;
	const char	*cc_help;
};

static const struct ctl_command ctl_commands[] = {
	{ "list", CMD_LIST, NULL, "list",
	    "List the runners: name, status, pool, scope, age, container." },
	{ "show", CMD_SHOW, "ID", "show ID",
	    "Show every field of one runner." },
	{ "create", CMD_CREATE, NULL,
	    "create --scope repo|org --scope-name NAME [--count N]\n"
	    "                  [--name NAME] [--group GROUP] [--label L]...",
	    "Create runners for a repository (OWNER/REPO) or an organization.\n"
	    "--count is how many (default 1), --name the runner's name,\n"
	    "--group the organization's runner group, --label a label\n"
	    "(repeatable)." },
	{ "destroy", CMD_DESTROY, "ID", "destroy ID",
	    "Remove a runner's container and its GitHub registration." },
	{ "logs", CMD_LOGS, "ID", "logs ID [--tail N]",
	    "Print the tail of a runner container's log (N lines)." },
	{ "cleanup", CMD_CLEANUP, NULL, "cleanup",
	    "Remove exited and timed-out runners." },
	{ "health", CMD_HEALTH, NULL, "health [--live]",
	    "Show the health of every process, Docker and GitHub; exits 1\n"
	    "when something is down.  --live only asks whether httpd\n"
	    "answers (for container health checks)." },
	{ "help", CMD_HELP, "COMMAND", "help [COMMAND]",
	    "Show the usage of ephemerctl or of one command." }
};

struct ctl_option {
	const char	*cp_name;
	enum ctl_optid	 cp_id;
	int		 cp_has_arg;
	unsigned int	 cp_cmds;	/* commands that accept it */
};

static const struct ctl_option ctl_options[] = {
	{ "url", OPT_URL, 1, ALLCMDS },
	{ "token", OPT_TOKEN, 1, ALLCMDS },
	{ "json", OPT_JSON, 0, ALLCMDS },
	{ "help", OPT_HELP, 0, ALLCMDS },
	{ "scope", OPT_SCOPE, 1, CMDBIT(CMD_CREATE) },
	{ "scope-name", OPT_SCOPE_NAME, 1, CMDBIT(CMD_CREATE) },
	{ "count", OPT_COUNT, 1, CMDBIT(CMD_CREATE) },
	{ "name", OPT_NAME, 1, CMDBIT(CMD_CREATE) },
	{ "group", OPT_GROUP, 1, CMDBIT(CMD_CREATE) },
	{ "label", OPT_LABEL, 1, CMDBIT(CMD_CREATE) },
	{ "tail", OPT_TAIL, 1, CMDBIT(CMD_LOGS) },
	{ "live", OPT_LIVE, 0, CMDBIT(CMD_HEALTH) }
};

/* An answer of the server, read as the envelope. */
struct ctl_answer {
	long		 ca_http;	/* HTTP status */
	struct buf	 ca_body;
	struct json_doc	 ca_doc;
	int		 ca_parsed;
	int		 ca_data;	/* token of "data", or -1 */
	char		*ca_message;	/* "message", or NULL */
	int		 ca_ok;		/* 2xx and status "success" */
};

/* A table of text cells, printed with aligned columns. */
struct ctl_table {
	int		 ct_ncols;
	int		 ct_nrows;
	char		**ct_cells;
};

static const struct ctl_command *
ctl_command_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < nitems(ctl_commands); i++)
		if (strcmp(ctl_commands[i].cc_name, name) == 0)
			return &ctl_commands[i];
	return NULL;
}

static const struct ctl_command *
ctl_command_of(enum ctl_cmd cmd)
{
	size_t	 i;

	for (i = 0; i < nitems(ctl_commands); i++)
		if (ctl_commands[i].cc_cmd == cmd)
			return &ctl_commands[i];
	return NULL;
}

/* Empty variables count as unset, as they do for ephemerd. */
static void
ctl_opts_init(struct ctl_opts *o, const char *env_url, const char *env_token)
{
	memset(o, 0, sizeof(*o));
	o->co_url = env_url != NULL && *env_url != '\0' ? env_url :
	    CTL_DEFAULT_URL;
	o->co_token = env_token != NULL && *env_token != '\0' ? env_token :
	    NULL;
}

static int
ctl_parse_int(const char *opt, const char *s, int64_t *out, char *err,
    size_t errlen)
{
	uint64_t	 v;
	const char	*why;

	if (parse_u64(s, 1, INT32_MAX, &v, &why) == -1) {
		snprintf(err, errlen, "--%s: '%s' is not a positive integer "
		    "(%s)", opt, s, why);
		return -1;
	}
	*out = (int64_t)v;
	return 0;
}

static int
ctl_set_option(struct ctl_opts *o, const struct ctl_option *cp,
    const char *val, char *err, size_t errlen)
{
	o->co_seen |= 1U << cp->cp_id;
	switch (cp->cp_id) {
	case OPT_URL:
		o->co_url = val;
		break;
	case OPT_TOKEN:
		o->co_token = *val != '\0' ? val : NULL;
		break;
	case OPT_JSON:
		o->co_json = 1;
		break;
	case OPT_HELP:
		o->co_help = 1;
		break;
	case OPT_SCOPE:
		o->co_scope = val;
		break;
	case OPT_SCOPE_NAME:
		o->co_scope_name = val;
		break;
	case OPT_COUNT:
		return ctl_parse_int(cp->cp_name, val, &o->co_count, err,
		    errlen);
	case OPT_NAME:
		o->co_name = val;
		break;
	case OPT_GROUP:
		o->co_group = val;
		break;
	case OPT_LABEL:
		if (o->co_nlabels == CTL_MAX_LABELS) {
			snprintf(err, errlen, "at most %d labels",
			    CTL_MAX_LABELS);
			return -1;
		}
		o->co_labels[o->co_nlabels++] = val;
		break;
	case OPT_TAIL:
		return ctl_parse_int(cp->cp_name, val, &o->co_tail, err,
		    errlen);
	case OPT_LIVE:
		o->co_live = 1;
		break;
	}
	return 0;
}

/* One "--name", "--name=value" or "--name value" at argv[*i]. */
static int
ctl_parse_option(struct ctl_opts *o, int argc, char *argv[], int *i,
    char *err, size_t errlen)
{
	const struct ctl_option	*cp = NULL;
	const char		*arg = argv[*i] + 2, *eq, *val = NULL;
	size_t			 n, k;

	eq = strchr(arg, '=');
	n = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	for (k = 0; k < nitems(ctl_options); k++) {
		if (strlen(ctl_options[k].cp_name) == n &&
		    strncmp(ctl_options[k].cp_name, arg, n) == 0)
			cp = &ctl_options[k];
	}
	if (cp == NULL) {
		snprintf(err, errlen, "unknown option --%.*s", (int)n, arg);
		return -1;
	}
	if (!cp->cp_has_arg && eq != NULL) {
		snprintf(err, errlen, "--%s takes no value", cp->cp_name);
		return -1;
	}
	if (cp->cp_has_arg) {
		if (eq != NULL)
			val = eq + 1;
		else if (*i + 1 < argc)
			val = argv[++*i];
		else {
			snprintf(err, errlen, "--%s needs a value",
			    cp->cp_name);
			return -1;
		}
	}
	return ctl_set_option(o, cp, val, err, errlen);
}

static int
ctl_parse_word(struct ctl_opts *o, const char *word, char *err,
    size_t errlen)
{
	const struct ctl_command	*cc;

	if (o->co_cmd == CMD_NONE) {
		if ((cc = ctl_command_find(word)) == NULL) {
			snprintf(err, errlen, "unknown command '%s'", word);
			return -1;
		}
		o->co_cmd = cc->cc_cmd;
		o->co_cmdname = cc->cc_name;
		return 0;
	}
	cc = ctl_command_of(o->co_cmd);
	if (cc->cc_arg == NULL || o->co_arg != NULL) {
		snprintf(err, errlen, "%s: unexpected argument '%s'",
		    o->co_cmdname, word);
		return -1;
	}
	o->co_arg = word;
	return 0;
}

/* What no single option can check: the options against the command. */
static int
ctl_check_opts(struct ctl_opts *o, char *err, size_t errlen)
{
	const struct ctl_command	*cc;
	size_t				 k;

	if (o->co_cmd == CMD_NONE) {
		if (o->co_help)
			return 0;
		snprintf(err, errlen, "no command given");
		return -1;
	}
	for (k = 0; k < nitems(ctl_options); k++) {
		if ((o->co_seen & (1U << ctl_options[k].cp_id)) != 0 &&
		    (ctl_options[k].cp_cmds & CMDBIT(o->co_cmd)) == 0) {
			snprintf(err, errlen, "%s does not take --%s",
			    o->co_cmdname, ctl_options[k].cp_name);
			return -1;
		}
	}
	if (o->co_help)
		return 0;
	if (strncmp(o->co_url, "http://", 7) != 0 &&
	    strncmp(o->co_url, "https://", 8) != 0) {
		snprintf(err, errlen, "the URL must begin with http:// or "
		    "https://: %s", o->co_url);
		return -1;
	}
	cc = ctl_command_of(o->co_cmd);
	if (o->co_cmd == CMD_HELP) {
		if (o->co_arg != NULL && ctl_command_find(o->co_arg) == NULL) {
			snprintf(err, errlen, "no such command '%s'",
			    o->co_arg);
			return -1;
		}
		return 0;
	}
	if (cc->cc_arg != NULL && (o->co_arg == NULL || *o->co_arg == '\0')) {
		snprintf(err, errlen, "%s needs a runner %s", cc->cc_name,
		    cc->cc_arg);
		return -1;
	}
	if (o->co_cmd != CMD_CREATE)
		return 0;
	if (o->co_scope == NULL || (strcmp(o->co_scope, "repo") != 0 &&
	    strcmp(o->co_scope, "org") != 0)) {
		snprintf(err, errlen, "create needs --scope repo or --scope "
		    "org");
		return -1;
	}
	if (o->co_scope_name == NULL) {
		snprintf(err, errlen, "create needs --scope-name");
		return -1;
	}
	return 0;
}

/*
 * Parses the command line.  Options may come before or after the
 * command; "--" ends them.  Returns 0, or -1 with a message in err.
 */
static int
ctl_parse_args(struct ctl_opts *o, int argc, char *argv[], char *err,
    size_t errlen)
{
	int	 i, words_only = 0;

	for (i = 1; i < argc; i++) {
		if (!words_only && strcmp(argv[i], "--") == 0)
			words_only = 1;
		else if (!words_only && strcmp(argv[i], "-h") == 0)
			o->co_help = 1;
		else if (!words_only && strncmp(argv[i], "--", 2) == 0) {
			if (ctl_parse_option(o, argc, argv, &i, err,
			    errlen) == -1)
				return -1;
		} else if (!words_only && argv[i][0] == '-' &&
		    argv[i][1] != '\0') {
			snprintf(err, errlen, "unknown option %s", argv[i]);
			return -1;
		} else if (ctl_parse_word(o, argv[i], err, errlen) == -1)
			return -1;
	}
	return ctl_check_opts(o, err, errlen);
}

static void
ctl_usage(FILE *f)
{
	size_t	 i;

	fprintf(f, "usage: ephemerctl [--url URL] [--token TOKEN] [--json] "
	    "COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < nitems(ctl_commands); i++)
		fprintf(f, "  %s\n", ctl_commands[i].cc_usage);
	fprintf(f, "\nThe URL defaults to $EPHEMERD_URL or %s; the token to "
	    "$EPHEMERD_TOKEN.\n'ephemerctl help COMMAND' describes a "
	    "command.  Exit status: 0 ok, 1 error\nanswered by the API, "
	    "2 usage, 3 cannot reach the API.\n", CTL_DEFAULT_URL);
}

static void
ctl_usage_command(FILE *f, const struct ctl_command *cc)
{
	fprintf(f, "usage: ephemerctl [--url URL] [--token TOKEN] [--json] "
	    "%s\n\n%s\n", cc->cc_usage, cc->cc_help);
}

/* Percent-encodes all but RFC 3986's unreserved characters. */
static void
ctl_path_escape(struct buf *b, const char *s)
{
	static const char	 hex[] = "0123456789ABCDEF";
	unsigned char		 c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			buf_add_char(b, (char)c);
		else {
			buf_add_char(b, '%');
			buf_add_char(b, hex[c >> 4]);
			buf_add_char(b, hex[c & 0xf]);
		}
	}
}

static void
ctl_create_body(const struct ctl_opts *o, struct buf *body)
{
	struct json_writer	 jw;
	int			 i;

	jw_init(&jw, body);
	jw_object_begin(&jw);
	jw_kv_str(&jw, "scope", o->co_scope);
	jw_kv_str(&jw, "scope_name", o->co_scope_name);
	if (o->co_count != 0)
		jw_kv_int(&jw, "count", o->co_count);
	if (o->co_name != NULL)
		jw_kv_str(&jw, "runner_name", o->co_name);
	if (o->co_group != NULL)
		jw_kv_str(&jw, "runner_group", o->co_group);
	if (o->co_nlabels > 0) {
		jw_key(&jw, "labels");
		jw_array_begin(&jw);
		for (i = 0; i < o->co_nlabels; i++)
			jw_str(&jw, o->co_labels[i]);
		jw_array_end(&jw);
	}
	jw_object_end(&jw);
}

/*
 * The request a command makes: its method, the path under the base URL,
 * and a JSON body (left empty when there is none).
 */
static const char *
ctl_build_request(const struct ctl_opts *o, struct buf *path,
    struct buf *body)
{
	const char	*method = "GET";

	switch (o->co_cmd) {
	case CMD_LIST:
		buf_add_str(path, "/api/v1/runners");
		break;
	case CMD_CREATE:
		method = "POST";
		buf_add_str(path, "/api/v1/runners");
		ctl_create_body(o, body);
		break;
	case CMD_SHOW:
	case CMD_DESTROY:
	case CMD_LOGS:
		buf_add_str(path, "/api/v1/runners/");
		ctl_path_escape(path, o->co_arg);
		if (o->co_cmd == CMD_DESTROY)
			method = "DELETE";
		if (o->co_cmd == CMD_LOGS)
			buf_add_str(path, "/logs");
		if (o->co_cmd == CMD_LOGS && o->co_tail != 0)
			buf_printf(path, "?tail=%lld", (long long)o->co_tail);
		break;
	case CMD_CLEANUP:
		method = "POST";
		buf_add_str(path, "/api/v1/runners/cleanup");
		break;
	case CMD_HEALTH:
		buf_add_str(path, o->co_live ? "/healthz" : "/api/v1/health");
		break;
	case CMD_NONE:
	case CMD_HELP:
		fatalx("ctl_build_request: no request for this command");
	}
	return method;
}

/* ---- reading answers ---------------------------------------------- */

/* Reads the envelope of a body; a body that is no envelope is left so. */
static void
ctl_answer_parse(struct ctl_answer *a)
{
	const char	*why;
	char		*status;
	int		 tok;

	a->ca_data = -1;
	if (json_parse(&a->ca_doc, (const char *)a->ca_body.b_data,
	    a->ca_body.b_len, &why) == -1 ||
	    json_type(&a->ca_doc, 0) != JSON_OBJECT) {
		a->ca_ok = 0;
		return;
	}
	a->ca_parsed = 1;
	a->ca_data = json_object_get(&a->ca_doc, 0, "data");
	tok = json_object_get(&a->ca_doc, 0, "message");
	if (tok != -1)
		a->ca_message = json_get_str(&a->ca_doc, tok);
	status = json_member_str(&a->ca_doc, 0, "status");
	a->ca_ok = a->ca_http >= 200 && a->ca_http < 300 && status != NULL &&
	    strcmp(status, "success") == 0;
	free(status);
}

static void
ctl_answer_free(struct ctl_answer *a)
{
	if (a->ca_parsed)
		json_free(&a->ca_doc);
	buf_free(&a->ca_body);
	free(a->ca_message);
	a->ca_message = NULL;
	a->ca_parsed = 0;
}

/*
 * A value as one line of text: strings unescaped, numbers and booleans as
 * they are, arrays of scalars joined by commas, null and absent as "-",
 * anything else as its JSON.
 */
static char *
ctl_value_text(const struct json_doc *doc, int tok)
{
	struct buf	 b;
	const char	*raw;
	char		*s;
	size_t		 len;
	int		 i, n, el;

	switch (json_type(doc, tok)) {
	case JSON_INVALID:
	case JSON_NULL:
		return xstrdup("-");
	case JSON_STRING:
		s = json_get_str(doc, tok);
		return s != NULL ? s : xstrdup("?");
	case JSON_ARRAY:
		buf_init(&b);
		n = json_size(doc, tok);
		for (i = 0; i < n; i++) {
			el = json_array_get(doc, tok, i);
			s = ctl_value_text(doc, el);
			buf_printf(&b, "%s%s", i > 0 ? "," : "", s);
			free(s);
		}
		s = xstrdup(n > 0 ? buf_cstr(&b) : "-");
		buf_free(&b);
		return s;
	default:
		raw = json_raw(doc, tok, &len);
		return xstrndup(raw, len);
	}
}

static char *
ctl_member_text(const struct json_doc *doc, int obj, const char *key)
{
	return ctl_value_text(doc, json_object_get(doc, obj, key));
}

/* ---- tables ----------------------------------------------------------- */

static void
ctl_table_init(struct ctl_table *t, int ncols)
{
	t->ct_ncols = ncols;
	t->ct_nrows = 0;
	t->ct_cells = NULL;
}

/*
 * Adds a row of ct_ncols cells.  Control characters become '?' and so
 * does ill-formed UTF-8: a server's strings must not drive the terminal.
 */
static void
ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	struct buf	 b;
	const char	*s;
	size_t		 len, n, bad, k;
	int		 c, base;

	t->ct_cells = xreallocarray(t->ct_cells,
	    (size_t)(t->ct_nrows + 1) * (size_t)t->ct_ncols, sizeof(char *));
	base = t->ct_nrows * t->ct_ncols;
	for (c = 0; c < t->ct_ncols; c++) {
		buf_init(&b);
		s = cells[c] != NULL ? cells[c] : "-";
		len = strlen(s);
		for (k = 0; k < len; k += n) {
			n = json_utf8_len(s + k, len - k, &bad);
			if (n == 0) {
				buf_add_char(&b, '?');
				n = bad > 0 ? bad : 1;
			} else if (n == 1 && ((unsigned char)s[k] < 0x20 ||
			    s[k] == 0x7f))
				buf_add_char(&b, '?');
			else
				buf_add(&b, s + k, n);
		}
		t->ct_cells[base + c] = xstrdup(buf_cstr(&b));
		buf_free(&b);
	}
	t->ct_nrows++;
}

/* Characters, not bytes: cells hold well-formed UTF-8 only. */
static size_t
ctl_text_width(const char *s)
{
	size_t	 w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Columns two spaces apart; the last one is not padded. */
static void
ctl_table_render(const struct ctl_table *t, struct buf *out)
{
	size_t		*width;
	const char	*cell;
	int		 r, c;

	width = xcalloc((size_t)t->ct_ncols, sizeof(*width));
	for (r = 0; r < t->ct_nrows; r++)
		for (c = 0; c < t->ct_ncols; c++) {
			cell = t->ct_cells[r * t->ct_ncols + c];
			if (ctl_text_width(cell) > width[c])
				width[c] = ctl_text_width(cell);
		}

	for (r = 0; r < t->ct_nrows; r++) {
		for (c = 0; c < t->ct_ncols; c++) {
			cell = t->ct_cells[r * t->ct_ncols + c];
			buf_add_str(out, cell);
			if (c == t->ct_ncols - 1)
				break;
			buf_printf(out, "%*s", (int)(width[c] + 2 -
			    ctl_text_width(cell)), "");
		}
		/* Padding before empty cells at the end is no use. */
		while (out->b_len > 0 && out->b_data[out->b_len - 1] == ' ')
			out->b_len--;
		buf_add_char(out, '\n');
	}
	free(width);
}

static void
ctl_table_free(struct ctl_table *t)
{
	int	 i;

	for (i = 0; i < t->ct_nrows * t->ct_ncols; i++)
		free(t->ct_cells[i]);
	free(t->ct_cells);
	t->ct_cells = NULL;
	t->ct_nrows = 0;
}

/*
 * Adds one row per element of the array arr: the members named in keys,
 * each cut to at most maxw[i] characters when maxw[i] is not 0.
 */
static void
ctl_table_add_objects(struct ctl_table *t, const struct json_doc *doc,
    int arr, const char *const *keys, const size_t *maxw)
{
	char	*cells[8];
	int	 i, n, el, c;

	n = json_size(doc, arr);
	for (i = 0; i < n; i++) {
		el = json_array_get(doc, arr, i);
		for (c = 0; c < t->ct_ncols && c < 8; c++) {
			cells[c] = ctl_member_text(doc, el, keys[c]);
			if (maxw[c] != 0 && strlen(cells[c]) > maxw[c])
				cells[c][maxw[c]] = '\0';
		}
		ctl_table_add(t, (const char *const *)cells);
		for (c = 0; c < t->ct_ncols && c < 8; c++)
			free(cells[c]);
	}
}

/* ---- printing answers ------------------------------------------------ */

static int
ctl_format_list(const struct json_doc *doc, int data, struct buf *out)
{
	static const char *const head[] = { "RUNNER", "STATUS", "POOL",
	    "SCOPE", "CREATED", "CONTAINER" };
	static const char *const keys[] = { "runner_id", "status", "pool",
	    "scope_name", "created", "container_id" };
	static const size_t maxw[] = { 0, 0, 0, 0, 0, 12 };
	struct ctl_table	 t;

	if (json_type(doc, data) != JSON_ARRAY)
		return -1;
	if (json_size(doc, data) == 0) {
		buf_add_str(out, "no runners\n");
		return 0;
	}
	ctl_table_init(&t, nitems(head));
	ctl_table_add(&t, head);
	ctl_table_add_objects(&t, doc, data, keys, maxw);
	ctl_table_render(&t, out);
	ctl_table_free(&t);
	return 0;
}

static int
ctl_format_created(const struct json_doc *doc, int data, struct buf *out)
{
	static const char *const head[] = { "RUNNER", "STATUS", "MESSAGE" };
	static const char *const keys[] = { "runner_id", "status", "message" };
	static const size_t maxw[] = { 0, 0, 0 };
	struct ctl_table	 t;

	if (json_type(doc, data) != JSON_ARRAY)
		return -1;
	ctl_table_init(&t, nitems(head));
	ctl_table_add(&t, head);
	ctl_table_add_objects(&t, doc, data, keys, maxw);
	ctl_table_render(&t, out);
	ctl_table_free(&t);
	return 0;
}

/* Members one a line, objects one level deep with indented members. */
static int
ctl_format_show(const struct json_doc *doc, int data, struct buf *out)
{
	struct ctl_table	 t;
	const char		*cells[2];
	char			*key, *val, *sub;
	int			 i, n, k, v, j, m, sk;

	if (json_type(doc, data) != JSON_OBJECT)
		return -1;
	ctl_table_init(&t, 2);
	n = json_size(doc, data);
	for (i = 0, k = data + 1; i < n; i++, k = json_skip(doc, k)) {
		v = k + 1;
		key = json_get_str(doc, k);
		xasprintf(&sub, "%s:", key != NULL ? key : "?");
		val = json_type(doc, v) == JSON_OBJECT ? xstrdup("") :
		    ctl_value_text(doc, v);
		cells[0] = sub;
		cells[1] = val;
		ctl_table_add(&t, cells);
		free(key);
		free(sub);
		free(val);
		if (json_type(doc, v) != JSON_OBJECT)
			continue;
		m = json_size(doc, v);
		for (j = 0, sk = v + 1; j < m; j++, sk = json_skip(doc, sk)) {
			key = json_get_str(doc, sk);
			xasprintf(&sub, "  %s:", key != NULL ? key : "?");
			val = ctl_value_text(doc, sk + 1);
			cells[0] = sub;
			cells[1] = val;
			ctl_table_add(&t, cells);
			free(key);
			free(sub);
			free(val);
		}
	}
	ctl_table_render(&t, out);
	ctl_table_free(&t);
	return 0;
}

/* The line that says what a process depends on: GitHub or Docker. */
static char *
ctl_health_detail(const struct json_doc *doc, int part)
{
	char	*s, *a, *b;
	int	 gh, en, reach = 0;

	gh = json_object_get(doc, part, "github");
	en = json_object_get(doc, part, "engine");
	if (gh != -1) {
		json_get_bool(doc, json_object_get(doc, gh, "reachable"),
		    &reach);
		a = ctl_member_text(doc, gh, "api_url");
		b = ctl_member_text(doc, gh, "remaining");
		xasprintf(&s, "GitHub %s %s, %s requests left", a,
		    reach ? "reachable" : "UNREACHABLE", b);
	} else if (en != -1) {
		json_get_bool(doc, json_object_get(doc, en, "reachable"),
		    &reach);
		a = ctl_member_text(doc, en, "socket");
		b = ctl_member_text(doc, en, "version");
		xasprintf(&s, "Docker %s %s, version %s", a,
		    reach ? "reachable" : "UNREACHABLE", b);
	} else {
		a = ctl_member_text(doc, part, "uptime");
		b = NULL;
		xasprintf(&s, "up %s s", a);
	}
	free(a);
	free(b);
	return s;
}

static int
ctl_format_health(const struct json_doc *doc, int data, struct buf *out)
{
	static const char *const head[] = { "PROCESS", "STATUS", "PID",
	    "DETAIL" };
	struct ctl_table	 t;
	char			*cells[4];
	int			 procs, i, n, k, c, healthy = 0;

	procs = json_object_get(doc, data, "processes");
	if (json_type(doc, procs) != JSON_OBJECT) {
		/* /healthz: only httpd answers. */
		if (json_type(doc, data) != JSON_OBJECT)
			return -1;
		cells[0] = ctl_member_text(doc, data, "pid");
		buf_printf(out, "httpd is alive (pid %s)\n", cells[0]);
		free(cells[0]);
		return 0;
	}
	ctl_table_init(&t, nitems(head));
	ctl_table_add(&t, head);
	n = json_size(doc, procs);
	for (i = 0, k = procs + 1; i < n; i++, k = json_skip(doc, k)) {
		cells[0] = ctl_value_text(doc, k);
		cells[1] = ctl_member_text(doc, k + 1, "status");
		cells[2] = ctl_member_text(doc, k + 1, "pid");
		cells[3] = ctl_health_detail(doc, k + 1);
		ctl_table_add(&t, (const char *const *)cells);
		for (c = 0; c < 4; c++)
			free(cells[c]);
	}
	ctl_table_render(&t, out);
	ctl_table_free(&t);
	json_get_bool(doc, json_object_get(doc, data, "healthy"), &healthy);
	buf_add_str(out, healthy ? "healthy\n" : "UNHEALTHY\n");
	return 0;
}

/* What a command prints from a successful (or partly failed) answer. */
static int
ctl_format_answer(const struct ctl_opts *o, const struct ctl_answer *a,
    struct buf *out)
{
	char	*s;
	int	 logs;

	switch (o->co_cmd) {
	case CMD_LIST:
		return ctl_format_list(&a->ca_doc, a->ca_data, out);
	case CMD_SHOW:
		return ctl_format_show(&a->ca_doc, a->ca_data, out);
	case CMD_CREATE:
		return ctl_format_created(&a->ca_doc, a->ca_data, out);
	case CMD_HEALTH:
		return ctl_format_health(&a->ca_doc, a->ca_data, out);
	case CMD_LOGS:
		logs = json_object_get(&a->ca_doc, a->ca_data, "logs");
		if ((s = json_get_str(&a->ca_doc, logs)) == NULL)
			return -1;
		buf_add_str(out, s);
		if (*s != '\0' && s[strlen(s) - 1] != '\n')
			buf_add_char(out, '\n');
		free(s);
		return 0;
	default:
		if (a->ca_message == NULL)
			return -1;
		buf_printf(out, "%s\n", a->ca_message);
		return 0;
	}
}

/* ---- talking to the server ------------------------------------------- */

static size_t
ctl_on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf	*b = arg;
	size_t		 n = size * nmemb;

	if (b->b_len + n > CTL_MAX_ANSWER)
		return 0;
	buf_add(b, ptr, n);
	return n;
}

/*
 * Makes the request and keeps the answer in a.  Returns 0 when an HTTP
 * answer came, whatever its status, or -1 with err set when none did.
 */
static int
ctl_http(const struct ctl_opts *o, const char *method, const char *path,
    const struct buf *body, struct ctl_answer *a, char *err, size_t errlen)
{
	struct curl_slist	*hdrs = NULL;
	CURL			*curl;
	CURLcode		 rc;
	char			*url, *auth = NULL, cerr[CURL_ERROR_SIZE];
	size_t			 baselen = strlen(o->co_url);

	while (baselen > 0 && o->co_url[baselen - 1] == '/')
		baselen--;
	xasprintf(&url, "%.*s%s", (int)baselen, o->co_url, path);
	if ((curl = curl_easy_init()) == NULL)
		fatalx("curl_easy_init failed");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body->b_len > 0)
		hdrs = curl_slist_append(hdrs,
		    "Content-Type: application/json");
	if (o->co_token != NULL) {
		xasprintf(&auth, "Authorization: Bearer %s", o->co_token);
		hdrs = curl_slist_append(hdrs, auth);
		freezero_str(auth);
	}
	cerr[0] = '\0';
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "ephemerctl/" VERSION);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS,
		    body->b_len > 0 ? (const char *)body->b_data : "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE,
		    (long)body->b_len);
	}
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ctl_on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a->ca_body);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CTL_CONNECT_TIMEOUT);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, CTL_TIMEOUT);

	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a->ca_http);
	else
		snprintf(err, errlen, "cannot reach %.*s: %s", (int)baselen,
		    o->co_url, cerr[0] != '\0' ? cerr :
		    curl_easy_strerror(rc));
	curl_easy_cleanup(curl);
	/* The list holds a copy of the token. */
	curl_slist_free_all(hdrs);
	free(url);
	return rc == CURLE_OK ? 0 : -1;
}

/* Prints the answer as the user asked; returns the exit status. */
static int
ctl_report(const struct ctl_opts *o, struct ctl_answer *a)
{
	struct buf	 out;
	int		 formatted = -1;

	ctl_answer_parse(a);
	if (o->co_json) {
		fwrite(a->ca_body.b_data, 1, a->ca_body.b_len, stdout);
		if (a->ca_body.b_len > 0 &&
		    a->ca_body.b_data[a->ca_body.b_len - 1] != '\n')
			putchar('\n');
	} else if (a->ca_parsed && (a->ca_ok || (o->co_cmd == CMD_CREATE &&
	    json_type(&a->ca_doc, a->ca_data) == JSON_ARRAY &&
	    json_size(&a->ca_doc, a->ca_data) > 0))) {
		buf_init(&out);
		formatted = ctl_format_answer(o, a, &out);
		fwrite(out.b_data, 1, out.b_len, stdout);
		buf_free(&out);
	}

	if (!a->ca_parsed) {
		fprintf(stderr, "ephemerctl: HTTP %ld: the answer is not the "
		    "API's JSON\n", a->ca_http);
		return CTL_EXIT_API;
	}
	if (!a->ca_ok) {
		fprintf(stderr, "ephemerctl: %s (HTTP %ld)\n",
		    a->ca_message != NULL ? a->ca_message : "error",
		    a->ca_http);
		return CTL_EXIT_API;
	}
	if (!o->co_json && formatted == -1) {
		fprintf(stderr, "ephemerctl: unexpected data in the answer\n");
		return CTL_EXIT_API;
	}
	return CTL_EXIT_OK;
}

static int
ctl_main(int argc, char *argv[])
{
	struct ctl_opts			 o;
	struct ctl_answer		 a;
	struct buf			 path, body;
	const struct ctl_command	*cc;
	const char			*method;
	char				 err[512];
	int				 status;

	ctl_opts_init(&o, getenv("EPHEMERD_URL"), getenv("EPHEMERD_TOKEN"));
	if (ctl_parse_args(&o, argc, argv, err, sizeof(err)) == -1) {
		fprintf(stderr, "ephemerctl: %s\n", err);
		if (o.co_cmd != CMD_NONE && o.co_cmd != CMD_HELP)
			ctl_usage_command(stderr, ctl_command_of(o.co_cmd));
		else
			ctl_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (o.co_cmd == CMD_HELP || o.co_help) {
		if (o.co_cmd != CMD_HELP)
			cc = ctl_command_of(o.co_cmd);
		else
			cc = o.co_arg != NULL ? ctl_command_find(o.co_arg) :
			    NULL;
		if (cc != NULL)
			ctl_usage_command(stdout, cc);
		else
			ctl_usage(stdout);
		return CTL_EXIT_OK;
	}

	buf_init(&path);
	buf_init(&body);
	memset(&a, 0, sizeof(a));
	buf_init(&a.ca_body);
	method = ctl_build_request(&o, &path, &body);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		fatalx("curl_global_init failed");
	if (ctl_http(&o, method, buf_cstr(&path), &body, &a, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "ephemerctl: %s\n", err);
		status = CTL_EXIT_CONNECT;
	} else
		status = ctl_report(&o, &a);
	fflush(stdout);
	ctl_answer_free(&a);
	buf_free(&path);
	buf_free(&body);
	curl_global_cleanup();
	return status;
}

#ifndef EPHEMERCTL_TEST
int
main(int argc, char *argv[])
{
	return ctl_main(argc, argv);
}
#endif
