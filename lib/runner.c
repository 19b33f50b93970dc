/*
 * Runner records: their wire form and their JSON form.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "json_write.h"
#include "runner.h"
#include "util.h"

static const char *const runner_status_names[RUNNER_STATUS_COUNT] = {
	"starting", "idle", "busy", "exited", "removing"
};

const char *
runner_status_name(enum runner_status st)
{
	if ((int)st < 0 || st >= RUNNER_STATUS_COUNT)
		return "unknown";
	return runner_status_names[st];
}

static void
strlist_free_items(struct strlist *sl)
{
	size_t	 i;

	for (i = 0; i < sl->sl_count; i++)
		free(sl->sl_items[i]);
	free(sl->sl_items);
	sl->sl_items = NULL;
	sl->sl_count = 0;
}

void
runner_free(struct runner *rn)
{
	free(rn->rn_name);
	free(rn->rn_container_id);
	free(rn->rn_pool);
	free(rn->rn_image);
	free(rn->rn_scope);
	free(rn->rn_scope_name);
	free(rn->rn_origin);
	free(rn->rn_job);
	strlist_free_items(&rn->rn_labels);
	memset(rn, 0, sizeof(*rn));
}

static char *
dup_or_empty(const char *s)
{
	return xstrdup(s != NULL ? s : "");
}

void
runner_copy(struct runner *dst, const struct runner *src)
{
	size_t	 i;

	*dst = *src;
	dst->rn_name = dup_or_empty(src->rn_name);
	dst->rn_container_id = dup_or_empty(src->rn_container_id);
	dst->rn_pool = dup_or_empty(src->rn_pool);
	dst->rn_image = dup_or_empty(src->rn_image);
	dst->rn_scope = dup_or_empty(src->rn_scope);
	dst->rn_scope_name = dup_or_empty(src->rn_scope_name);
	dst->rn_origin = dup_or_empty(src->rn_origin);
	dst->rn_job = dup_or_empty(src->rn_job);
	dst->rn_labels.sl_items = xcalloc(src->rn_labels.sl_count + 1,
	    sizeof(char *));
	for (i = 0; i < src->rn_labels.sl_count; i++)
		dst->rn_labels.sl_items[i] =
		    xstrdup(src->rn_labels.sl_items[i]);
}

int
runner_name_valid(const char *name)
{
	size_t	 i, len = strlen(name);

	if (len == 0 || len > RUNNER_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.'))
			return 0;
	}
	/* Docker wants an alphanumeric first character. */
	return name[0] != '-' && name[0] != '_' && name[0] != '.';
}

void
runner_encode(const struct runner *rn, struct buf *b)
{
	size_t	 i;

	ipc_put_str(b, rn->rn_name);
	ipc_put_str(b, rn->rn_container_id);
	ipc_put_str(b, rn->rn_pool);
	ipc_put_str(b, rn->rn_image);
	ipc_put_str(b, rn->rn_scope);
	ipc_put_str(b, rn->rn_scope_name);
	ipc_put_str(b, rn->rn_origin);
	ipc_put_u64(b, rn->rn_github_id);
	ipc_put_u16(b, (uint16_t)rn->rn_labels.sl_count);
	for (i = 0; i < rn->rn_labels.sl_count; i++)
		ipc_put_str(b, rn->rn_labels.sl_items[i]);
	ipc_put_u8(b, (uint8_t)rn->rn_status);
	ipc_put_u64(b, (uint64_t)rn->rn_created);
	ipc_put_u32(b, (uint32_t)rn->rn_exit_code);
	ipc_put_str(b, rn->rn_job);
}

#define RUNNER_LABELS_MAX	128

int
runner_decode(struct ipc_reader *r, struct runner *rn)
{
	size_t	 i, n;

	memset(rn, 0, sizeof(*rn));
	rn->rn_name = ipc_get_str(r);
	rn->rn_container_id = ipc_get_str(r);
	rn->rn_pool = ipc_get_str(r);
	rn->rn_image = ipc_get_str(r);
	rn->rn_scope = ipc_get_str(r);
	rn->rn_scope_name = ipc_get_str(r);
	rn->rn_origin = ipc_get_str(r);
	rn->rn_github_id = ipc_get_u64(r);
	n = ipc_get_u16(r);
	if (n > RUNNER_LABELS_MAX) {
		r->ir_error = "too many runner labels";
		n = 0;
	}
	rn->rn_labels.sl_items = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n && r->ir_error == NULL; i++) {
		rn->rn_labels.sl_items[i] = ipc_get_str(r);
		rn->rn_labels.sl_count++;
	}
	rn->rn_status = (enum runner_status)ipc_get_u8(r);
	rn->rn_created = (int64_t)ipc_get_u64(r);
	rn->rn_exit_code = (int32_t)ipc_get_u32(r);
	rn->rn_job = ipc_get_str(r);
	if (r->ir_error == NULL && rn->rn_status >= RUNNER_STATUS_COUNT)
		r->ir_error = "unknown runner status";
	if (r->ir_error != NULL) {
		runner_free(rn);
		return -1;
	}
	return 0;
}

void
runner_table_encode(const struct runner *rns, size_t n, struct buf *b)
{
	size_t	 i;

	ipc_put_u32(b, (uint32_t)n);
	for (i = 0; i < n; i++)
		runner_encode(&rns[i], b);
}

int
runner_table_decode(const void *data, size_t len, struct runner **out,
    size_t *nout, const char **why)
{
	struct ipc_reader	 r;
	struct runner		*rns;
	size_t			 i, n;

	ipc_reader_init(&r, data, len);
	n = ipc_get_u32(&r);
	if (n > RUNNER_TABLE_MAX) {
		*why = "runner table too large";
		return -1;
	}
	rns = xcalloc(n + 1, sizeof(*rns));
	for (i = 0; i < n; i++)
		if (runner_decode(&r, &rns[i]) == -1)
			break;
	if (i < n || ipc_reader_done(&r) == -1) {
		*why = ipc_reader_error(&r);
		runner_table_free(rns, i);
		return -1;
	}
	*out = rns;
	*nout = n;
	return 0;
}

void
runner_table_free(struct runner *rns, size_t n)
{
	size_t	 i;

	if (rns == NULL)
		return;
	for (i = 0; i < n; i++)
		runner_free(&rns[i]);
	free(rns);
}

static void
runner_write_container_labels(const struct runner *rn,
    struct json_writer *jw)
{
	char	 id[32];

	snprintf(id, sizeof(id), "%llu",
	    (unsigned long long)rn->rn_github_id);
	jw_object_begin(jw);
	jw_kv_str(jw, LABEL_MANAGED, "true");
	jw_kv_str(jw, LABEL_POOL, rn->rn_pool);
	jw_kv_str(jw, LABEL_RUNNER, rn->rn_name);
	jw_kv_str(jw, LABEL_SCOPE, rn->rn_scope);
	jw_kv_str(jw, LABEL_SCOPE_NAME, rn->rn_scope_name);
	jw_kv_str(jw, LABEL_GITHUB_ID, id);
	jw_kv_str(jw, LABEL_ORIGIN, rn->rn_origin);
	jw_object_end(jw);
}

void
runner_write_json(const struct runner *rn, struct json_writer *jw)
{
	char	 created[32];
	size_t	 i;

	iso8601_utc((time_t)rn->rn_created, created, sizeof(created));
	jw_object_begin(jw);
	jw_kv_str(jw, "runner_id", rn->rn_name);
	jw_kv_str(jw, "status", runner_status_name(rn->rn_status));
	jw_kv_str(jw, "container_id", rn->rn_container_id);
	jw_kv_str(jw, "image", rn->rn_image);
	jw_kv_str(jw, "created", created);
	jw_key(jw, "labels");
	runner_write_container_labels(rn, jw);
	jw_kv_str(jw, "pool", rn->rn_pool);
	jw_kv_str(jw, "scope", rn->rn_scope);
	jw_kv_str(jw, "scope_name", rn->rn_scope_name);
	jw_key(jw, "github_runner_id");
	if (rn->rn_github_id != 0)
		jw_uint(jw, rn->rn_github_id);
	else
		jw_null(jw);
	jw_key(jw, "runner_labels");
	jw_array_begin(jw);
	for (i = 0; i < rn->rn_labels.sl_count; i++)
		jw_str(jw, rn->rn_labels.sl_items[i]);
	jw_array_end(jw);
	jw_key(jw, "job");
	if (rn->rn_job != NULL && rn->rn_job[0] != '\0')
		jw_str(jw, rn->rn_job);
	else
		jw_null(jw);
	if (rn->rn_status == RUNNER_EXITED)
		jw_kv_int(jw, "exit_code", rn->rn_exit_code);
	jw_object_end(jw);
}
