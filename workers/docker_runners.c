/*
 * Runner containers on paper: decoding the start request, resolving the
 * placeholders of the environment, writing the create call, and reading
 * runners back from the labels of listed containers.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker_runners.h"
#include "ipc.h"
#include "json.h"
#include "json_write.h"
#include "util.h"

static void
strlist_wipe(struct strlist *sl)
{
	size_t	 i;

	for (i = 0; i < sl->sl_count; i++)
		free(sl->sl_items[i]);
	free(sl->sl_items);
	sl->sl_items = NULL;
	sl->sl_count = 0;
}

void
docker_start_free(struct start_request *sr)
{
	free(sr->sr_pool);
	free(sr->sr_name);
	free(sr->sr_scope);
	free(sr->sr_scope_name);
	free(sr->sr_origin);
	strlist_wipe(&sr->sr_labels);
	if (sr->sr_token != NULL)
		freezero_str(sr->sr_token);
	if (sr->sr_jit != NULL)
		freezero_str(sr->sr_jit);
	memset(sr, 0, sizeof(*sr));
}

/* A scope name: "owner/repo" for a repository, a bare name for an org. */
static int
docker_scope_name_valid(const char *scope, const char *name)
{
	const char	*slash = strchr(name, '/');
	size_t		 i;

	for (i = 0; name[i] != '\0'; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-' &&
		    name[i] != '_' && name[i] != '.' && name[i] != '/')
			return 0;
	if (i == 0 || i > 200)
		return 0;
	if (strcmp(scope, "org") == 0)
		return slash == NULL;
	return slash != NULL && slash != name && slash[1] != '\0' &&
	    strchr(slash + 1, '/') == NULL;
}

static const char *
docker_start_check(const struct start_request *sr)
{
	size_t	 i;

	if (sr->sr_pool[0] == '\0')
		return "empty pool name";
	if (strcmp(sr->sr_scope, "repo") != 0 &&
	    strcmp(sr->sr_scope, "org") != 0)
		return "scope is neither repo nor org";
	if (!docker_scope_name_valid(sr->sr_scope, sr->sr_scope_name))
		return "malformed scope name";
	if (strcmp(sr->sr_origin, "api") != 0 &&
	    strcmp(sr->sr_origin, "auto") != 0)
		return "origin is neither api nor auto";
	for (i = 0; i < sr->sr_labels.sl_count; i++)
		if (sr->sr_labels.sl_items[i][0] == '\0' ||
		    strchr(sr->sr_labels.sl_items[i], ',') != NULL)
			return "empty label or label with a comma";
	return NULL;
}

int
docker_start_decode(const void *data, size_t len, struct start_request *sr,
    const char **why)
{
	struct ipc_reader	 r;
	size_t			 i, n;

	memset(sr, 0, sizeof(*sr));
	ipc_reader_init(&r, data, len);
	sr->sr_pool = ipc_get_str(&r);
	sr->sr_name = ipc_get_str(&r);
	sr->sr_scope = ipc_get_str(&r);
	sr->sr_scope_name = ipc_get_str(&r);
	sr->sr_origin = ipc_get_str(&r);
	sr->sr_github_id = ipc_get_u64(&r);
	n = ipc_get_u16(&r);
	if (n > DOCKER_START_LABELS_MAX && r.ir_error == NULL) {
		r.ir_error = "too many runner labels";
		n = 0;
	}
	sr->sr_labels.sl_items = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n && r.ir_error == NULL; i++)
		sr->sr_labels.sl_items[sr->sr_labels.sl_count++] =
		    ipc_get_str(&r);
	sr->sr_token = ipc_get_str(&r);
	sr->sr_jit = ipc_get_str(&r);

	if (ipc_reader_done(&r) == -1) {
		*why = ipc_reader_error(&r);
		goto fail;
	}
	if ((*why = docker_start_check(sr)) != NULL)
		goto fail;
	return 0;

fail:
	docker_start_free(sr);
	return -1;
}

void
docker_start_encode(const struct start_request *sr, struct buf *b)
{
	size_t	 i;

	ipc_put_str(b, sr->sr_pool);
	ipc_put_str(b, sr->sr_name);
	ipc_put_str(b, sr->sr_scope);
	ipc_put_str(b, sr->sr_scope_name);
	ipc_put_str(b, sr->sr_origin);
	ipc_put_u64(b, sr->sr_github_id);
	ipc_put_u16(b, (uint16_t)sr->sr_labels.sl_count);
	for (i = 0; i < sr->sr_labels.sl_count; i++)
		ipc_put_str(b, sr->sr_labels.sl_items[i]);
	ipc_put_str(b, sr->sr_token);
	ipc_put_str(b, sr->sr_jit);
}

void
docker_join(const struct strlist *sl, struct buf *b)
{
	size_t	 i;

	for (i = 0; i < sl->sl_count; i++) {
		if (i > 0)
			buf_add_char(b, ',');
		buf_add_str(b, sl->sl_items[i]);
	}
}

/* The value of one placeholder; returns -1 for an unknown name. */
static int
docker_placeholder(const char *name, size_t len, const struct expand_ctx *ex,
    struct buf *out)
{
	const struct start_request	*sr = ex->ex_req;
	const char			*slash, *sn = sr->sr_scope_name;
	char				 iso[32];

	slash = strcmp(sr->sr_scope, "repo") == 0 ? strchr(sn, '/') : NULL;
#define IS(s)	(len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
	if (IS("scope_name") || IS("repo_full_name"))
		buf_add_str(out, sn);
	else if (IS("runner_name"))
		buf_add_str(out, sr->sr_name);
	else if (IS("registration_token"))
		buf_add_str(out, sr->sr_token);
	else if (IS("jit_config"))
		buf_add_str(out, sr->sr_jit);
	else if (IS("repo_owner"))
		buf_add(out, sn, slash != NULL ? (size_t)(slash - sn) :
		    strlen(sn));
	else if (IS("repo_name")) {
		if (slash != NULL)
			buf_add_str(out, slash + 1);
	} else if (IS("hostname"))
		buf_add_str(out, ex->ex_hostname);
	else if (IS("timestamp"))
		buf_printf(out, "%lld", (long long)ex->ex_now);
	else if (IS("timestamp_iso")) {
		iso8601_utc(ex->ex_now, iso, sizeof(iso));
		buf_add_str(out, iso);
	} else if (IS("labels"))
		docker_join(&sr->sr_labels, out);
	else if (IS("pool"))
		buf_add_str(out, sr->sr_pool);
	else
		return -1;
#undef IS
	return 0;
}

void
docker_expand(const char *value, const struct expand_ctx *ex,
    struct buf *out)
{
	const char	*s = value, *open, *end;

	while ((open = strchr(s, '{')) != NULL) {
		buf_add(out, s, (size_t)(open - s));
		for (end = open + 1; isalnum((unsigned char)*end) ||
		    *end == '_'; end++)
			;
		if (*end == '}' && end > open + 1 &&
		    docker_placeholder(open + 1, (size_t)(end - open - 1), ex,
		    out) == 0) {
			s = end + 1;
			continue;
		}
		buf_add_char(out, '{');
		s = open + 1;
	}
	buf_add_str(out, s);
}

static void
docker_body_labels(const struct create_spec *cs, struct json_writer *jw)
{
	const struct start_request	*sr = cs->cs_req;
	struct buf			 b;
	char				 id[32];

	snprintf(id, sizeof(id), "%llu",
	    (unsigned long long)sr->sr_github_id);
	buf_init(&b);
	docker_join(&sr->sr_labels, &b);
	jw_key(jw, "Labels");
	jw_object_begin(jw);
	jw_kv_str(jw, LABEL_MANAGED, "true");
	jw_kv_str(jw, LABEL_INSTANCE, cs->cs_instance);
	jw_kv_str(jw, LABEL_POOL, sr->sr_pool);
	jw_kv_str(jw, LABEL_RUNNER, sr->sr_name);
	jw_kv_str(jw, LABEL_SCOPE, sr->sr_scope);
	jw_kv_str(jw, LABEL_SCOPE_NAME, sr->sr_scope_name);
	jw_kv_str(jw, LABEL_GITHUB_ID, id);
	jw_kv_str(jw, LABEL_ORIGIN, sr->sr_origin);
	jw_kv_str(jw, LABEL_RUNNER_LABELS, buf_cstr(&b));
	jw_object_end(jw);
	buf_free(&b);
}

/* Limits, network, and the engine's socket only for Docker-in-Docker. */
static void
docker_body_host(const struct create_spec *cs, struct json_writer *jw)
{
	const struct pool	*pl = cs->cs_pool;
	struct buf		 bind;

	jw_key(jw, "HostConfig");
	jw_object_begin(jw);
	if (pl->pl_memory != 0) {
		jw_key(jw, "Memory");
		jw_uint(jw, pl->pl_memory);
	}
	if (pl->pl_nano_cpus != 0) {
		jw_key(jw, "NanoCpus");
		jw_uint(jw, pl->pl_nano_cpus);
	}
	if (pl->pl_pids_limit != 0) {
		jw_key(jw, "PidsLimit");
		jw_uint(jw, pl->pl_pids_limit);
	}
	jw_kv_str(jw, "NetworkMode", pl->pl_network != NULL &&
	    pl->pl_network[0] != '\0' ? pl->pl_network : "bridge");
	jw_kv_bool(jw, "Privileged", pl->pl_docker_in_docker);
	jw_kv_bool(jw, "AutoRemove", 0);
	if (pl->pl_docker_in_docker) {
		buf_init(&bind);
		buf_printf(&bind, "%s:/var/run/docker.sock", cs->cs_socket);
		jw_key(jw, "Binds");
		jw_array_begin(jw);
		jw_str(jw, buf_cstr(&bind));
		jw_array_end(jw);
		buf_free(&bind);
	}
	jw_object_end(jw);
}

void
docker_create_body(const struct create_spec *cs, struct buf *out)
{
	const struct pool	*pl = cs->cs_pool;
	struct json_writer	 jw;
	struct expand_ctx	 ex;
	struct buf		 env;
	size_t			 i;

	ex.ex_req = cs->cs_req;
	ex.ex_hostname = cs->cs_hostname;
	ex.ex_now = cs->cs_now;

	/* Room up front, so that no secret is left behind by a realloc. */
	buf_reserve(out, 64 * 1024);
	buf_init(&env);
	buf_reserve(&env, 16 * 1024);
	jw_init(&jw, out);
	jw_object_begin(&jw);
	jw_kv_str(&jw, "Image", pl->pl_image);
	if (pl->pl_command != NULL && pl->pl_command[0] != '\0') {
		jw_key(&jw, "Cmd");
		jw_array_begin(&jw);
		jw_str(&jw, "/bin/sh");
		jw_str(&jw, "-c");
		jw_str(&jw, pl->pl_command);
		jw_array_end(&jw);
	}
	jw_key(&jw, "Env");
	jw_array_begin(&jw);
	for (i = 0; i < pl->pl_nenv; i++) {
		explicit_bzero(env.b_data, env.b_len);
		buf_reset(&env);
		buf_printf(&env, "%s=", pl->pl_env[i].ev_name);
		docker_expand(pl->pl_env[i].ev_value, &ex, &env);
		jw_strn(&jw, (const char *)env.b_data, env.b_len);
	}
	jw_array_end(&jw);
	explicit_bzero(env.b_data, env.b_cap);
	buf_free(&env);

	docker_body_labels(cs, &jw);
	docker_body_host(cs, &jw);
	jw_object_end(&jw);
}

int
docker_status_exit_code(const char *status)
{
	uint64_t	 v;
	const char	*why;
	char		 num[8];
	size_t		 n;

	if (status == NULL || strncmp(status, "Exited (", 8) != 0)
		return -1;
	status += 8;
	n = strspn(status, "0123456789");
	if (n == 0 || n >= sizeof(num) || status[n] != ')')
		return -1;
	memcpy(num, status, n);
	num[n] = '\0';
	if (parse_u64(num, 0, 255, &v, &why) == -1)
		return -1;
	return (int)v;
}

static char *
label_or_empty(const struct json_doc *doc, int labels, const char *key)
{
	char	*s = NULL;

	if (labels != -1)
		s = json_member_str(doc, labels, key);
	return s != NULL ? s : xstrdup("");
}

static void
docker_split_labels(const char *s, struct strlist *sl)
{
	const char	*comma;

	sl->sl_items = xcalloc(1, sizeof(char *));
	while (*s != '\0') {
		comma = strchr(s, ',');
		if (comma == NULL)
			comma = s + strlen(s);
		if (comma > s) {
			sl->sl_items = xreallocarray(sl->sl_items,
			    sl->sl_count + 2, sizeof(char *));
			sl->sl_items[sl->sl_count++] =
			    xstrndup(s, (size_t)(comma - s));
			sl->sl_items[sl->sl_count] = NULL;
		}
		s = *comma == ',' ? comma + 1 : comma;
	}
}

/* One element of the list; what the labels say becomes the runner. */
static void
docker_list_entry(const struct json_doc *doc, int tok,
    struct listed_container *lc)
{
	struct runner	*rn = &lc->lc_runner;
	int		 labels;
	int64_t		 created = 0;
	uint64_t	 gid = 0;
	const char	*why;
	char		*s, *status;

	labels = json_object_get(doc, tok, "Labels");
	if (labels != -1 && json_type(doc, labels) != JSON_OBJECT)
		labels = -1;
	lc->lc_id = json_member_str(doc, tok, "Id");
	lc->lc_state = json_member_str(doc, tok, "State");
	status = json_member_str(doc, tok, "Status");
	lc->lc_exit_code = docker_status_exit_code(status);
	free(status);

	rn->rn_name = label_or_empty(doc, labels, LABEL_RUNNER);
	rn->rn_container_id = xstrdup(lc->lc_id != NULL ? lc->lc_id : "");
	rn->rn_pool = label_or_empty(doc, labels, LABEL_POOL);
	if ((rn->rn_image = json_member_str(doc, tok, "Image")) == NULL)
		rn->rn_image = xstrdup("");
	rn->rn_scope = label_or_empty(doc, labels, LABEL_SCOPE);
	rn->rn_scope_name = label_or_empty(doc, labels, LABEL_SCOPE_NAME);
	rn->rn_origin = label_or_empty(doc, labels, LABEL_ORIGIN);
	s = label_or_empty(doc, labels, LABEL_GITHUB_ID);
	if (parse_u64(s, 0, UINT64_MAX, &gid, &why) == 0)
		rn->rn_github_id = gid;
	free(s);
	s = label_or_empty(doc, labels, LABEL_RUNNER_LABELS);
	docker_split_labels(s, &rn->rn_labels);
	free(s);
	(void)json_member_i64(doc, tok, "Created", &created);
	rn->rn_created = created;
	rn->rn_status = RUNNER_STARTING;
	rn->rn_exit_code = -1;
	rn->rn_job = xstrdup("");
	lc->lc_valid = lc->lc_id != NULL && lc->lc_id[0] != '\0' &&
	    lc->lc_state != NULL && runner_name_valid(rn->rn_name);
}

int
docker_list_parse(const char *body, size_t len,
    struct listed_container **out, size_t *nout, const char **why)
{
	struct json_doc		 doc;
	struct listed_container	*lcs;
	int			 i, n, tok;

	if (json_parse(&doc, body, len, why) == -1)
		return -1;
	if (json_type(&doc, 0) != JSON_ARRAY) {
		*why = "container list is not an array";
		json_free(&doc);
		return -1;
	}
	n = json_size(&doc, 0);
	lcs = xcalloc((size_t)n + 1, sizeof(*lcs));
	for (i = 0; i < n; i++) {
		tok = json_array_get(&doc, 0, i);
		if (tok != -1 && json_type(&doc, tok) == JSON_OBJECT)
			docker_list_entry(&doc, tok, &lcs[i]);
	}
	json_free(&doc);
	*out = lcs;
	*nout = (size_t)n;
	return 0;
}

void
docker_list_free(struct listed_container *lcs, size_t n)
{
	size_t	 i;

	if (lcs == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(lcs[i].lc_id);
		free(lcs[i].lc_state);
		runner_free(&lcs[i].lc_runner);
	}
	free(lcs);
}
