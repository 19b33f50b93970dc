/*
 * The wire format: message headers, payload writers and the strict
 * payload reader.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "ipc.h"
#include "log.h"
#include "util.h"

static const char *const ipc_role_names[ROLE_COUNT] = {
	"supervisor", "httpd", "poller", "docker"
};

static const char *const ipc_type_names[MSG_TYPE_MAX] = {
	"NONE", "CONFIG", "CONFIG_ACK", "STATUS_REQ", "STATUS_REPLY", "LOG",
	"SHUTDOWN", "PEER_FD", "LISTEN_FD", "HEALTH_REQ", "HEALTH_REPLY",
	"RUNNER_CREATE", "RUNNER_CREATE_REPLY", "RUNNER_START",
	"RUNNER_START_REPLY", "RUNNER_REMOVE", "RUNNER_REMOVE_REPLY",
	"RUNNER_LOGS", "RUNNER_LOGS_REPLY", "RUNNER_CLEANUP",
	"RUNNER_CLEANUP_REPLY", "RUNNER_TABLE", "RUNNER_GONE", "RUNNER_GITHUB",
	"METRICS_REQ", "METRICS_REPLY", "WEBHOOK", "WEBHOOK_REPLY",
	"GITHUB_CLEANUP", "GITHUB_CLEANUP_REPLY"
};

/* Any read of an empty payload points here, never at NULL. */
static const uint8_t ipc_empty[1];

const char *
ipc_role_name(enum ipc_role role)
{
	if ((unsigned int)role >= ROLE_COUNT)
		return "unknown";
	return ipc_role_names[role];
}

/* The supervisor is nobody's peer, so only the children have a name here. */
int
ipc_role_from_name(const char *name)
{
	int	 role;

	if (name == NULL)
		return -1;
	for (role = ROLE_HTTPD; role < ROLE_COUNT; role++)
		if (strcmp(name, ipc_role_names[role]) == 0)
			return role;
	return -1;
}

const char *
ipc_type_name(uint16_t type)
{
	if (type == MSG_NONE || type >= MSG_TYPE_MAX)
		return "unknown";
	return ipc_type_names[type];
}

static void
ipc_store16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
ipc_store32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t
ipc_load16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
ipc_load32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

void
ipc_header_encode(const struct ipc_header *h, uint8_t *out)
{
	out[0] = h->ih_version;
	out[1] = h->ih_flags;
	ipc_store16(out + 2, h->ih_type);
	ipc_store32(out + 4, h->ih_len);
	ipc_store32(out + 8, h->ih_id);
	ipc_store32(out + 12, h->ih_pid);
}

/*
 * On failure *h still holds the raw fields that could be read, so that a
 * caller can say which version or type it refused.
 */
int
ipc_header_decode(const uint8_t *in, size_t len, struct ipc_header *h,
    const char **why)
{
	memset(h, 0, sizeof(*h));
	if (len < IPC_HEADER_SIZE) {
		*why = "short header";
		return -1;
	}

	h->ih_version = in[0];
	h->ih_flags = in[1];
	h->ih_type = ipc_load16(in + 2);
	h->ih_len = ipc_load32(in + 4);
	h->ih_id = ipc_load32(in + 8);
	h->ih_pid = ipc_load32(in + 12);

	if (h->ih_version != IPC_VERSION) {
		*why = "unsupported version";
		return -1;
	}
	if ((h->ih_flags & ~IPC_F_ALL) != 0) {
		*why = "unknown flags";
		return -1;
	}
	if (h->ih_type == MSG_NONE || h->ih_type >= MSG_TYPE_MAX) {
		*why = "unknown type";
		return -1;
	}
	if (h->ih_len > IPC_MAX_PAYLOAD) {
		*why = "payload too long";
		return -1;
	}
	return 0;
}

void
ipc_put_u8(struct buf *b, uint8_t v)
{
	buf_add(b, &v, 1);
}

void
ipc_put_u16(struct buf *b, uint16_t v)
{
	uint8_t	 p[2];

	ipc_store16(p, v);
	buf_add(b, p, sizeof(p));
}

void
ipc_put_u32(struct buf *b, uint32_t v)
{
	uint8_t	 p[4];

	ipc_store32(p, v);
	buf_add(b, p, sizeof(p));
}

void
ipc_put_u64(struct buf *b, uint64_t v)
{
	uint8_t	 p[8];

	ipc_store32(p, (uint32_t)(v >> 32));
	ipc_store32(p + 4, (uint32_t)v);
	buf_add(b, p, sizeof(p));
}

/* Our own strings are never that long, so one that is means a bug. */
void
ipc_put_str(struct buf *b, const char *s)
{
	size_t	 len;

	if (s == NULL)
		s = "";
	len = strlen(s);
	if (len > IPC_MAX_STRING)
		fatalx("ipc: string of %zu bytes is too long to send", len);

	ipc_put_u16(b, (uint16_t)len);
	buf_add(b, s, len);
}

void
ipc_put_blob(struct buf *b, const void *data, size_t len)
{
	if (len > IPC_MAX_PAYLOAD)
		fatalx("ipc: blob of %zu bytes is too long to send", len);

	ipc_put_u32(b, (uint32_t)len);
	if (len > 0)
		buf_add(b, data, len);
}

void
ipc_reader_init(struct ipc_reader *r, const void *data, size_t len)
{
	r->ir_data = data == NULL ? ipc_empty : data;
	r->ir_len = data == NULL ? 0 : len;
	r->ir_off = 0;
	r->ir_error = NULL;
}

/* Returns the next n bytes, or NULL once anything failed. */
static const uint8_t *
ipc_reader_take(struct ipc_reader *r, size_t n, const char *what)
{
	const uint8_t	*p;

	if (r->ir_error != NULL)
		return NULL;
	if (n > r->ir_len - r->ir_off) {
		r->ir_error = what;
		return NULL;
	}

	p = r->ir_data + r->ir_off;
	r->ir_off += n;
	return p;
}

uint8_t
ipc_get_u8(struct ipc_reader *r)
{
	const uint8_t	*p;

	if ((p = ipc_reader_take(r, 1, "payload too short for a u8")) == NULL)
		return 0;
	return p[0];
}

uint16_t
ipc_get_u16(struct ipc_reader *r)
{
	const uint8_t	*p;

	if ((p = ipc_reader_take(r, 2, "payload too short for a u16")) == NULL)
		return 0;
	return ipc_load16(p);
}

uint32_t
ipc_get_u32(struct ipc_reader *r)
{
	const uint8_t	*p;

	if ((p = ipc_reader_take(r, 4, "payload too short for a u32")) == NULL)
		return 0;
	return ipc_load32(p);
}

uint64_t
ipc_get_u64(struct ipc_reader *r)
{
	const uint8_t	*p;

	if ((p = ipc_reader_take(r, 8, "payload too short for a u64")) == NULL)
		return 0;
	return ((uint64_t)ipc_load32(p) << 32) | ipc_load32(p + 4);
}

int
ipc_get_bool(struct ipc_reader *r)
{
	const uint8_t	*p;

	if ((p = ipc_reader_take(r, 1, "payload too short for a bool")) == NULL)
		return 0;
	if (p[0] > 1) {
		r->ir_error = "bool is neither 0 nor 1";
		return 0;
	}
	return p[0];
}

char *
ipc_get_str(struct ipc_reader *r)
{
	const uint8_t	*p;
	uint16_t	 len;

	len = ipc_get_u16(r);
	if ((p = ipc_reader_take(r, len, "string runs past the payload")) ==
	    NULL)
		return NULL;
	if (memchr(p, '\0', len) != NULL) {
		r->ir_error = "string contains a NUL byte";
		return NULL;
	}
	return xstrndup((const char *)p, len);
}

const uint8_t *
ipc_get_blob(struct ipc_reader *r, size_t *lenp)
{
	const uint8_t	*p;
	uint32_t	 len;

	*lenp = 0;
	len = ipc_get_u32(r);
	if ((p = ipc_reader_take(r, len, "blob runs past the payload")) ==
	    NULL)
		return NULL;
	*lenp = len;
	return p;
}

/*
 * The processes are single-threaded, so one static buffer is enough for
 * the only reason that carries a number.
 */
int
ipc_reader_done(struct ipc_reader *r)
{
	static char	 trailing[64];
	size_t		 left;

	if (r->ir_error != NULL)
		return -1;

	left = r->ir_len - r->ir_off;
	if (left == 0)
		return 0;
	snprintf(trailing, sizeof(trailing), "%zu trailing byte%s", left,
	    left == 1 ? "" : "s");
	r->ir_error = trailing;
	return -1;
}

const char *
ipc_reader_error(const struct ipc_reader *r)
{
	return r->ir_error;
}
