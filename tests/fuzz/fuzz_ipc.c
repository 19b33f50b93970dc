/*
 * libFuzzer harness for the wire protocol.  Each input is decoded twice:
 * as a stream of headers and payloads read field by field, and as bytes
 * arriving on a real channel whose handlers read them strictly.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "ipc.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FZ_SCRIPT_MAX	8
#define FZ_READS_MAX	64

static struct event_base	*fz_base;
static struct ipc_channel	*fz_ch;
static int			 fz_closed;

/* Reads one field of the kind the script byte names. */
static void
fz_read_field(struct ipc_reader *r, uint8_t op)
{
	const uint8_t	*blob;
	size_t		 len;
	char		*s;

	switch (op % 7) {
	case 0:
		(void)ipc_get_u8(r);
		break;
	case 1:
		(void)ipc_get_u16(r);
		break;
	case 2:
		(void)ipc_get_u32(r);
		break;
	case 3:
		(void)ipc_get_u64(r);
		break;
	case 4:
		(void)ipc_get_bool(r);
		break;
	case 5:
		s = ipc_get_str(r);
		free(s);
		break;
	default:
		blob = ipc_get_blob(r, &len);
		if (blob != NULL && len > 0)
			(void)blob[len - 1];
		break;
	}
}

static int
fz_read_payload(const uint8_t *data, size_t len, const uint8_t *script,
    size_t nscript)
{
	struct ipc_reader	 r;
	size_t			 i;

	ipc_reader_init(&r, data, len);
	for (i = 0; i < FZ_READS_MAX && nscript > 0; i++) {
		fz_read_field(&r, script[i % nscript]);
		if (ipc_reader_error(&r) != NULL || r.ir_off == r.ir_len)
			break;
	}
	return ipc_reader_done(&r);
}

static void
fz_decode_stream(const uint8_t *data, size_t size)
{
	struct ipc_header	 h;
	const char		*why;
	size_t			 off = 0, plen, nscript;

	nscript = size < FZ_SCRIPT_MAX ? size : FZ_SCRIPT_MAX;
	while (ipc_header_decode(data + off, size - off, &h, &why) == 0) {
		off += IPC_HEADER_SIZE;
		plen = h.ih_len < size - off ? h.ih_len : size - off;
		(void)fz_read_payload(data + off, plen, data, nscript);
		off += plen;
	}
}

static int
fz_handle(struct ipc_channel *ch, struct ipc_msg *m, void *arg)
{
	(void)arg;
	if (m->m_hdr.ih_len > 0 && m->m_data[0] == 0xee) {
		ipc_channel_free(ch);
		fz_ch = NULL;
		return 0;
	}
	if (m->m_hdr.ih_type == MSG_STATUS_REQ)
		(void)ipc_reply(ch, m, MSG_STATUS_REPLY, m->m_data,
		    m->m_hdr.ih_len);
	return fz_read_payload(m->m_data, m->m_hdr.ih_len, m->m_data,
	    m->m_hdr.ih_len < FZ_SCRIPT_MAX ? m->m_hdr.ih_len : FZ_SCRIPT_MAX);
}

static void
fz_reply(struct ipc_channel *ch, struct ipc_msg *m, void *arg)
{
	(void)ch;
	(void)arg;
	if (m != NULL && m->m_hdr.ih_len > 0)
		(void)m->m_data[m->m_hdr.ih_len - 1];
}

static void
fz_close(struct ipc_channel *ch, const char *reason, void *arg)
{
	(void)ch;
	(void)reason;
	(void)arg;
	fz_closed = 1;
}

static const struct ipc_dispatch fz_table[] = {
	{ MSG_CONFIG, fz_handle },
	{ MSG_STATUS_REQ, fz_handle },
	{ MSG_STATUS_REPLY, NULL },
	{ MSG_LOG, fz_handle },
	{ MSG_SHUTDOWN, fz_handle },
	{ MSG_PEER_FD, fz_handle },
	{ MSG_HEALTH_REPLY, NULL },
	{ MSG_NONE, NULL }
};

static void
fz_channel(const uint8_t *data, size_t size)
{
	ssize_t	 n;
	size_t	 off = 0;
	int	 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	fz_closed = 0;
	fz_ch = ipc_channel_new(fz_base, sv[0], "fuzz", fz_table, fz_close,
	    NULL);
	if (fz_ch == NULL)
		abort();
	(void)ipc_request(fz_ch, MSG_STATUS_REQ, NULL, 0, 60000, fz_reply,
	    NULL);
	(void)ipc_request(fz_ch, MSG_HEALTH_REQ, "x", 1, 0, fz_reply, NULL);

	while (off < size && fz_ch != NULL && !fz_closed) {
		n = send(sv[1], data + off, size - off,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			off += (size_t)n;
		else if (n == -1 && errno != EAGAIN && errno != EINTR)
			break;
		event_base_loop(fz_base, EVLOOP_NONBLOCK);
	}
	shutdown(sv[1], SHUT_WR);
	while (fz_ch != NULL && !fz_closed)
		event_base_loop(fz_base, EVLOOP_ONCE);

	ipc_channel_free(fz_ch);
	fz_ch = NULL;
	close(sv[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_base == NULL) {
		signal(SIGPIPE, SIG_IGN);
		if ((fz_base = event_base_new()) == NULL)
			abort();
	}

	fz_decode_stream(data, size);
	fz_channel(data, size);
	return 0;
}
