/*
 * Unit tests of the wire protocol: the codec on its own, and channels
 * over a real socketpair driven by a real event base.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "buf.h"
#include "ipc.h"

#define WAIT_MS		3000

struct tctx {
	struct event_base	*t_base;
	int			 t_sv[2];
	struct ipc_channel	*t_a;		/* on t_sv[0] */
	struct ipc_channel	*t_b;		/* on t_sv[1], if used */
	int			 t_closes;
	char			 t_reason[160];
	int			 t_handled;
	int			 t_replies;
	int			 t_null_replies;
	int			 t_reply_before_close;
	uint32_t		 t_ids[8];
	uint32_t		 t_pids[8];
	int			 t_fds[8];
	int			 t_free_in_handler;
	int			 t_free_in_close;
	int			 t_handler_fails;
	int			 t_big_ok;
};

/* Test plumbing. */

static int
setup(void **state)
{
	struct tctx	*t;
	int		 i;

	t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->t_base = event_base_new();
	assert_non_null(t->t_base);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, t->t_sv), 0);
	for (i = 0; i < 8; i++)
		t->t_fds[i] = -1;
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx	*t = *state;
	int		 i;

	/* A channel owns its socket; close only the ends without one. */
	if (t->t_a != NULL)
		ipc_channel_free(t->t_a);
	else if (t->t_sv[0] != -1)
		close(t->t_sv[0]);
	if (t->t_b != NULL)
		ipc_channel_free(t->t_b);
	else if (t->t_sv[1] != -1)
		close(t->t_sv[1]);
	for (i = 0; i < 8; i++)
		if (t->t_fds[i] != -1)
			close(t->t_fds[i]);
	event_base_free(t->t_base);
	free(t);
	return 0;
}

static void
guard_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	*(int *)arg = 1;
}

/* Runs the loop until *counter reaches target; -1 after WAIT_MS. */
static int
run_until(struct tctx *t, const int *counter, int target)
{
	struct event	*guard;
	struct timeval	 tv = { WAIT_MS / 1000, 0 };
	int		 expired = 0;

	guard = evtimer_new(t->t_base, guard_cb, &expired);
	evtimer_add(guard, &tv);
	while (*counter < target && !expired)
		event_base_loop(t->t_base, EVLOOP_ONCE);
	event_free(guard);
	return *counter >= target ? 0 : -1;
}

/* Runs the loop for a while, to show that nothing more happens. */
static void
run_for(struct tctx *t, int ms)
{
	struct timeval	 tv = { 0, ms * 1000 };

	event_base_loopexit(t->t_base, &tv);
	event_base_dispatch(t->t_base);
}

static void
on_close(struct ipc_channel *ch, const char *reason, void *arg)
{
	struct tctx	*t = arg;

	t->t_closes++;
	snprintf(t->t_reason, sizeof(t->t_reason), "%s", reason);
	if (t->t_free_in_close) {
		ipc_channel_free(ch);
		if (ch == t->t_a)
			t->t_a = NULL;
		if (ch == t->t_b)
			t->t_b = NULL;
	}
}

static size_t
encode_msg(uint8_t *out, uint8_t version, uint8_t flags, uint16_t type,
    uint32_t len, uint32_t id, const void *payload, size_t plen)
{
	struct ipc_header	 h;

	h.ih_version = version;
	h.ih_flags = flags;
	h.ih_type = type;
	h.ih_len = len;
	h.ih_id = id;
	h.ih_pid = 4242;
	ipc_header_encode(&h, out);
	if (plen > 0)
		memcpy(out + IPC_HEADER_SIZE, payload, plen);
	return IPC_HEADER_SIZE + plen;
}

static void
write_all(int fd, const void *data, size_t len)
{
	const uint8_t	*p = data;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, p, len);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void
send_with_fds(int s, const void *data, size_t len, const int *fds, int nfds)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	union {
		struct cmsghdr	 hdr;
		char		 buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;

	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	iov.iov_base = (void *)(uintptr_t)data;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
	assert_int_equal(sendmsg(s, &msg, 0), (ssize_t)len);
}

/* A pipe whose read end never blocks, so a missing EOF fails a test. */
static void
open_pipe(int p[2])
{
	assert_int_equal(pipe(p), 0);
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
}

/* Codec tests. */

static void
test_put_get_roundtrip(void **state)
{
	struct ipc_reader	 r;
	struct buf		 b;
	const uint8_t		*blob;
	uint8_t			 raw[3] = { 0, 0xff, 7 };
	size_t			 len;
	char			*s;

	(void)state;
	buf_init(&b);
	ipc_put_u8(&b, 0xab);
	ipc_put_u16(&b, 0xbeef);
	ipc_put_u32(&b, 0x01020304);
	ipc_put_u64(&b, UINT64_C(0xfedcba9876543210));
	ipc_put_u8(&b, 1);
	ipc_put_u8(&b, 0);
	ipc_put_str(&b, "pool-a");
	ipc_put_str(&b, NULL);
	ipc_put_blob(&b, raw, sizeof(raw));
	ipc_put_blob(&b, NULL, 0);

	/* Network byte order, field by field. */
	assert_int_equal(b.b_len, 1 + 2 + 4 + 8 + 1 + 1 + 8 + 2 + 7 + 4);
	assert_memory_equal(b.b_data, "\xab\xbe\xef\x01\x02\x03\x04", 7);
	assert_memory_equal(b.b_data + 17, "\x00\x06pool-a", 8);

	ipc_reader_init(&r, b.b_data, b.b_len);
	assert_int_equal(ipc_get_u8(&r), 0xab);
	assert_int_equal(ipc_get_u16(&r), 0xbeef);
	assert_int_equal(ipc_get_u32(&r), 0x01020304);
	assert_true(ipc_get_u64(&r) == UINT64_C(0xfedcba9876543210));
	assert_int_equal(ipc_get_bool(&r), 1);
	assert_int_equal(ipc_get_bool(&r), 0);
	s = ipc_get_str(&r);
	assert_string_equal(s, "pool-a");
	free(s);
	s = ipc_get_str(&r);
	assert_string_equal(s, "");
	free(s);
	blob = ipc_get_blob(&r, &len);
	assert_int_equal(len, sizeof(raw));
	assert_memory_equal(blob, raw, sizeof(raw));
	blob = ipc_get_blob(&r, &len);
	assert_non_null(blob);
	assert_int_equal(len, 0);
	assert_int_equal(ipc_reader_done(&r), 0);
	assert_null(ipc_reader_error(&r));
	buf_free(&b);
}

static void
test_header_roundtrip(void **state)
{
	struct ipc_header	 h, back;
	uint8_t			 raw[IPC_HEADER_SIZE];
	const char		*why = NULL;

	(void)state;
	h.ih_version = IPC_VERSION;
	h.ih_flags = IPC_F_ALL;
	h.ih_type = MSG_HEALTH_REPLY;
	h.ih_len = IPC_MAX_PAYLOAD;
	h.ih_id = 0xdeadbeef;
	h.ih_pid = 0x00012345;
	ipc_header_encode(&h, raw);
	assert_memory_equal(raw, "\x01\x07\x00\x0a\x00\x10\x00\x00"
	    "\xde\xad\xbe\xef\x00\x01\x23\x45", IPC_HEADER_SIZE);

	assert_int_equal(ipc_header_decode(raw, sizeof(raw), &back, &why), 0);
	assert_int_equal(back.ih_version, h.ih_version);
	assert_int_equal(back.ih_flags, h.ih_flags);
	assert_int_equal(back.ih_type, h.ih_type);
	assert_int_equal(back.ih_len, h.ih_len);
	assert_int_equal(back.ih_id, h.ih_id);
	assert_int_equal(back.ih_pid, h.ih_pid);
}

static void
expect_header_error(uint8_t version, uint8_t flags, uint16_t type,
    uint32_t len, size_t avail, const char *want)
{
	struct ipc_header	 h;
	uint8_t			 raw[IPC_HEADER_SIZE];
	const char		*why = NULL;

	encode_msg(raw, version, flags, type, len, 1, NULL, 0);
	assert_int_equal(ipc_header_decode(raw, avail, &h, &why), -1);
	assert_non_null(why);
	assert_string_equal(why, want);
}

static void
test_header_rejections(void **state)
{
	(void)state;
	expect_header_error(1, 0, MSG_LOG, 0, IPC_HEADER_SIZE - 1,
	    "short header");
	expect_header_error(1, 0, MSG_LOG, 0, 0, "short header");
	expect_header_error(0, 0, MSG_LOG, 0, IPC_HEADER_SIZE,
	    "unsupported version");
	expect_header_error(2, 0, MSG_LOG, 0, IPC_HEADER_SIZE,
	    "unsupported version");
	expect_header_error(1, 0x08, MSG_LOG, 0, IPC_HEADER_SIZE,
	    "unknown flags");
	expect_header_error(1, 0x80 | IPC_F_FD, MSG_LOG, 0, IPC_HEADER_SIZE,
	    "unknown flags");
	expect_header_error(1, 0, MSG_NONE, 0, IPC_HEADER_SIZE,
	    "unknown type");
	expect_header_error(1, 0, MSG_TYPE_MAX, 0, IPC_HEADER_SIZE,
	    "unknown type");
	expect_header_error(1, 0, 0xffff, 0, IPC_HEADER_SIZE, "unknown type");
	expect_header_error(1, 0, MSG_LOG, IPC_MAX_PAYLOAD + 1,
	    IPC_HEADER_SIZE, "payload too long");
	expect_header_error(1, 0, MSG_LOG, UINT32_MAX, IPC_HEADER_SIZE,
	    "payload too long");
}

static void
test_reader_errors(void **state)
{
	struct ipc_reader	 r;
	size_t			 len = 99;
	uint8_t			 data[8] = { 0, 3, 'a', 0, 'b', 2, 9, 9 };

	(void)state;
	ipc_reader_init(&r, NULL, 0);
	assert_int_equal(ipc_get_u8(&r), 0);
	assert_non_null(ipc_reader_error(&r));
	assert_int_equal(ipc_reader_done(&r), -1);

	ipc_reader_init(&r, data, 3);
	assert_int_equal(ipc_get_u32(&r), 0);
	assert_non_null(ipc_reader_error(&r));

	/* The first error sticks, though later reads would fit. */
	ipc_reader_init(&r, data, sizeof(data));
	assert_int_equal(ipc_get_u16(&r), 3);
	assert_int_equal(ipc_get_u64(&r), 0);
	assert_string_equal(ipc_reader_error(&r),
	    "payload too short for a u64");
	assert_int_equal(ipc_get_u8(&r), 0);
	assert_string_equal(ipc_reader_error(&r),
	    "payload too short for a u64");

	ipc_reader_init(&r, data, sizeof(data));
	assert_null(ipc_get_str(&r));
	assert_string_equal(ipc_reader_error(&r),
	    "string contains a NUL byte");
	assert_int_equal(ipc_reader_done(&r), -1);

	ipc_reader_init(&r, data + 5, 1);
	assert_int_equal(ipc_get_bool(&r), 0);
	assert_string_equal(ipc_reader_error(&r), "bool is neither 0 nor 1");

	ipc_reader_init(&r, "\x00\x00\x00\x05" "abcd", 8);
	assert_null(ipc_get_blob(&r, &len));
	assert_int_equal(len, 0);
	assert_string_equal(ipc_reader_error(&r),
	    "blob runs past the payload");

	ipc_reader_init(&r, data, sizeof(data));
	assert_int_equal(ipc_get_u8(&r), 0);
	assert_int_equal(ipc_get_u32(&r), 0x03610062);
	assert_int_equal(ipc_reader_done(&r), -1);
	assert_string_equal(ipc_reader_error(&r), "3 trailing bytes");

	ipc_reader_init(&r, data, 2);
	assert_int_equal(ipc_get_u8(&r), 0);
	assert_int_equal(ipc_reader_done(&r), -1);
	assert_string_equal(ipc_reader_error(&r), "1 trailing byte");
}

static void
test_string_limits(void **state)
{
	struct ipc_reader	 r;
	struct buf		 b;
	char			*big, *s;

	(void)state;
	big = malloc(IPC_MAX_STRING + 1);
	assert_non_null(big);
	memset(big, 'x', IPC_MAX_STRING);
	big[IPC_MAX_STRING] = '\0';

	buf_init(&b);
	ipc_put_str(&b, big);
	assert_int_equal(b.b_len, 2 + IPC_MAX_STRING);
	ipc_reader_init(&r, b.b_data, b.b_len);
	s = ipc_get_str(&r);
	assert_non_null(s);
	assert_int_equal(strlen(s), IPC_MAX_STRING);
	assert_string_equal(s, big);
	assert_int_equal(ipc_reader_done(&r), 0);
	free(s);

	/* One byte short of what the length claims. */
	ipc_reader_init(&r, b.b_data, b.b_len - 1);
	assert_null(ipc_get_str(&r));
	assert_string_equal(ipc_reader_error(&r),
	    "string runs past the payload");

	buf_free(&b);
	free(big);
}

static void
test_names(void **state)
{
	int	 role;

	(void)state;
	for (role = ROLE_HTTPD; role < ROLE_COUNT; role++)
		assert_int_equal(ipc_role_from_name(ipc_role_name(role)),
		    role);
	assert_string_equal(ipc_role_name(ROLE_SUPERVISOR), "supervisor");
	assert_string_equal(ipc_role_name(ROLE_DOCKER), "docker");
	assert_int_equal(ipc_role_from_name("poller"), ROLE_POLLER);
	assert_int_equal(ipc_role_from_name("supervisor"), -1);
	assert_int_equal(ipc_role_from_name("HTTPD"), -1);
	assert_int_equal(ipc_role_from_name(""), -1);
	assert_int_equal(ipc_role_from_name(NULL), -1);
	assert_string_equal(ipc_role_name(ROLE_COUNT), "unknown");

	assert_string_equal(ipc_type_name(MSG_CONFIG), "CONFIG");
	assert_string_equal(ipc_type_name(MSG_HEALTH_REPLY), "HEALTH_REPLY");
	assert_string_equal(ipc_type_name(MSG_NONE), "unknown");
	assert_string_equal(ipc_type_name(MSG_TYPE_MAX), "unknown");
}

/* Channel tests: handlers. */

static int
h_status(struct ipc_channel *ch, struct ipc_msg *m, void *arg)
{
	struct tctx	*t = arg;
	struct buf	 b;

	if (t->t_handled < 8) {
		t->t_ids[t->t_handled] = m->m_hdr.ih_id;
		t->t_pids[t->t_handled] = m->m_hdr.ih_pid;
	}
	t->t_handled++;

	buf_init(&b);
	buf_add(&b, m->m_data, m->m_hdr.ih_len);
	buf_add(&b, "-ok", 3);
	assert_int_equal(ipc_reply(ch, m, MSG_STATUS_REPLY, b.b_data,
	    b.b_len), 0);
	buf_free(&b);
	return 0;
}

static int
h_log(struct ipc_channel *ch, struct ipc_msg *m, void *arg)
{
	struct tctx		*t = arg;
	struct ipc_reader	 r;
	uint32_t		 seq;

	seq = 0;
	if (m->m_hdr.ih_len == 4) {
		ipc_reader_init(&r, m->m_data, m->m_hdr.ih_len);
		seq = ipc_get_u32(&r);
		assert_int_equal(ipc_reader_done(&r), 0);
	}
	if (t->t_handler_fails)
		return -1;
	/* Messages arrive whole and in order. */
	assert_int_equal(seq, (uint32_t)t->t_handled);
	t->t_handled++;
	if (t->t_free_in_handler) {
		ipc_channel_free(ch);
		if (ch == t->t_a)
			t->t_a = NULL;
		if (ch == t->t_b)
			t->t_b = NULL;
	}
	return 0;
}

static int
h_peer_fd(struct ipc_channel *ch, struct ipc_msg *m, void *arg)
{
	struct tctx	*t = arg;
	int		 flags;

	(void)ch;
	assert_true(m->m_hdr.ih_flags & IPC_F_FD);
	assert_true(m->m_fd >= 0);
	flags = fcntl(m->m_fd, F_GETFD);
	assert_true(flags != -1 && (flags & FD_CLOEXEC));

	/* The payload says whether to keep the descriptor. */
	assert_int_equal(m->m_hdr.ih_len, 1);
	if (m->m_data[0] == 'k' && t->t_handled < 8) {
		t->t_fds[t->t_handled] = m->m_fd;
		m->m_fd = -1;
	}
	t->t_handled++;
	return 0;
}

static int
h_big(struct ipc_channel *ch, struct ipc_msg *m, void *arg)
{
	struct tctx	*t = arg;
	uint32_t	 i;

	(void)ch;
	t->t_handled++;
	if (m->m_hdr.ih_len != IPC_MAX_PAYLOAD)
		return 0;
	for (i = 0; i < m->m_hdr.ih_len; i++)
		if (m->m_data[i] != (uint8_t)(i * 7 + 3))
			return 0;
	t->t_big_ok = 1;
	return 0;
}

/* A reply argument: the context and the payload the reply must carry. */
struct rarg {
	struct tctx	*ra_t;
	char		 ra_want[32];
};

static void
r_record(struct ipc_channel *ch, struct ipc_msg *m, void *arg)
{
	struct rarg	*ra = arg;
	struct tctx	*t = ra->ra_t;

	(void)ch;
	if (m == NULL) {
		t->t_null_replies++;
		if (t->t_closes == 0)
			t->t_reply_before_close = 1;
		return;
	}
	assert_int_equal(m->m_hdr.ih_type, MSG_STATUS_REPLY);
	assert_int_equal(m->m_hdr.ih_len, strlen(ra->ra_want));
	assert_memory_equal(m->m_data, ra->ra_want, strlen(ra->ra_want));
	t->t_replies++;
}

static const struct ipc_dispatch table_client[] = {
	{ MSG_STATUS_REPLY, NULL },
	{ MSG_NONE, NULL }
};

static const struct ipc_dispatch table_server[] = {
	{ MSG_STATUS_REQ, h_status },
	{ MSG_LOG, h_log },
	{ MSG_PEER_FD, h_peer_fd },
	{ MSG_CONFIG, h_big },
	{ MSG_NONE, NULL }
};

static void
open_pair(struct tctx *t)
{
	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_client,
	    on_close, t);
	t->t_b = ipc_channel_new(t->t_base, t->t_sv[1], "b", table_server,
	    on_close, t);
	assert_non_null(t->t_a);
	assert_non_null(t->t_b);
	assert_string_equal(ipc_channel_name(t->t_a), "a");
	assert_int_equal(ipc_channel_fd(t->t_b), t->t_sv[1]);
}

/* Channel tests. */

static void
test_request_reply(void **state)
{
	struct tctx	*t = *state;
	struct rarg	 r1 = { t, "one-ok" }, r2 = { t, "second-ok" };

	open_pair(t);
	assert_int_equal(ipc_request(t->t_a, MSG_STATUS_REQ, "one", 3, 2000,
	    r_record, &r1), 0);
	assert_int_equal(ipc_request(t->t_a, MSG_STATUS_REQ, "second", 6,
	    2000, r_record, &r2), 0);
	assert_int_equal(run_until(t, &t->t_replies, 2), 0);

	assert_int_equal(t->t_handled, 2);
	assert_int_equal(t->t_ids[0], 1);
	assert_int_equal(t->t_ids[1], 2);
	assert_int_equal(t->t_pids[0], (uint32_t)getpid());
	assert_int_equal(t->t_null_replies, 0);
	assert_int_equal(t->t_closes, 0);

	/* Each reply went once: nothing is left to time out. */
	run_for(t, 50);
	assert_int_equal(t->t_replies, 2);
	assert_int_equal(t->t_null_replies, 0);
}

static void
test_request_timeout(void **state)
{
	struct tctx	*t = *state;
	struct rarg	 r1 = { t, "never" };
	uint8_t		 raw[64];
	size_t		 n;

	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_client,
	    on_close, t);
	assert_int_equal(ipc_request(t->t_a, MSG_STATUS_REQ, NULL, 0, 30,
	    r_record, &r1), 0);
	assert_int_equal(run_until(t, &t->t_null_replies, 1), 0);
	assert_int_equal(t->t_replies, 0);
	assert_int_equal(t->t_closes, 0);

	/* A late reply to the timed-out request is dropped quietly. */
	n = encode_msg(raw, 1, IPC_F_REPLY, MSG_STATUS_REPLY, 5, 1, "never", 5);
	write_all(t->t_sv[1], raw, n);
	run_for(t, 50);
	assert_int_equal(t->t_closes, 0);
	assert_int_equal(t->t_replies, 0);
	assert_int_equal(t->t_null_replies, 1);
	assert_int_equal(ipc_send(t->t_a, MSG_LOG, 0, -1, "x", 1), 0);

	/* A reply nobody asked for closes the channel. */
	n = encode_msg(raw, 1, IPC_F_REPLY, MSG_STATUS_REPLY, 0, 9, NULL, 0);
	write_all(t->t_sv[1], raw, n);
	assert_int_equal(run_until(t, &t->t_closes, 1), 0);
	assert_string_equal(t->t_reason,
	    "bad message: unexpected STATUS_REPLY (id 9)");
}

/*
 * Only a message flagged as a reply answers a request: a request of the
 * peer's that happens to carry the same id must not be taken for one.
 */
static void
test_reply_needs_flag(void **state)
{
	struct tctx	*t = *state;
	struct rarg	 r1 = { t, "never" };
	uint8_t		 raw[64];
	size_t		 n;

	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_client,
	    on_close, t);
	assert_int_equal(ipc_request(t->t_a, MSG_STATUS_REQ, NULL, 0, 5000,
	    r_record, &r1), 0);
	n = encode_msg(raw, 1, 0, MSG_STATUS_REPLY, 5, 1, "never", 5);
	write_all(t->t_sv[1], raw, n);
	assert_int_equal(run_until(t, &t->t_closes, 1), 0);
	assert_int_equal(t->t_replies, 0);
	assert_int_equal(t->t_null_replies, 1);
	assert_string_equal(t->t_reason,
	    "bad message: unexpected STATUS_REPLY (id 1)");
}

static void
test_pending_fail_on_close(void **state)
{
	struct tctx	*t = *state;
	struct rarg	 r1 = { t, "x" };

	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_client,
	    on_close, t);
	assert_int_equal(ipc_request(t->t_a, MSG_STATUS_REQ, NULL, 0, 0,
	    r_record, &r1), 0);
	close(t->t_sv[1]);
	t->t_sv[1] = -1;

	assert_int_equal(run_until(t, &t->t_closes, 1), 0);
	assert_string_equal(t->t_reason, "peer closed");
	assert_int_equal(t->t_null_replies, 1);
	assert_int_equal(t->t_reply_before_close, 1);
	assert_int_equal(ipc_send(t->t_a, MSG_LOG, 0, -1, NULL, 0), -1);
	assert_int_equal(ipc_request(t->t_a, MSG_STATUS_REQ, NULL, 0, 0,
	    r_record, &r1), -1);

	run_for(t, 30);
	assert_int_equal(t->t_closes, 1);
	assert_int_equal(t->t_null_replies, 1);
}

static void
test_pending_fail_on_free(void **state)
{
	struct tctx	*t = *state;
	struct rarg	 r1 = { t, "x" };

	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_client,
	    on_close, t);
	assert_int_equal(ipc_request(t->t_a, MSG_STATUS_REQ, NULL, 0, 1000,
	    r_record, &r1), 0);
	ipc_channel_free(t->t_a);
	t->t_a = NULL;
	t->t_sv[0] = -1;
	assert_int_equal(t->t_null_replies, 1);
	assert_int_equal(t->t_closes, 0);
	run_for(t, 30);
	assert_int_equal(t->t_null_replies, 1);
}

/* Feeds raw bytes to a server channel and expects it to close. */
static void
expect_close(struct tctx *t, const void *data, size_t len, int eof,
    const char *want)
{
	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_server,
	    on_close, t);
	if (len > 0)
		write_all(t->t_sv[1], data, len);
	if (eof)
		shutdown(t->t_sv[1], SHUT_WR);

	assert_int_equal(run_until(t, &t->t_closes, 1), 0);
	assert_string_equal(t->t_reason, want);
	assert_int_equal(ipc_send(t->t_a, MSG_LOG, 0, -1, NULL, 0), -1);
	run_for(t, 20);
	assert_int_equal(t->t_closes, 1);
}

static void
test_close_garbage(void **state)
{
	struct tctx	*t = *state;

	expect_close(t, "this is not a message at all", 28, 0,
	    "bad message: unsupported version 116");
	assert_int_equal(t->t_handled, 0);
}

static void
test_close_bad_version(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[32];

	encode_msg(raw, 2, 0, MSG_LOG, 0, 0, NULL, 0);
	expect_close(t, raw, IPC_HEADER_SIZE, 0,
	    "bad message: unsupported version 2");
}

static void
test_close_bad_flags(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[32];

	encode_msg(raw, 1, 0x40, MSG_LOG, 0, 0, NULL, 0);
	expect_close(t, raw, IPC_HEADER_SIZE, 0,
	    "bad message: unknown flags 0x40");
}

static void
test_close_unknown_type(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[32];

	encode_msg(raw, 1, 0, 77, 0, 0, NULL, 0);
	expect_close(t, raw, IPC_HEADER_SIZE, 0,
	    "bad message: unknown type 77");
}

/* Refused on the header alone, before the payload could arrive. */
static void
test_close_too_long(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[32];

	encode_msg(raw, 1, 0, MSG_LOG, IPC_MAX_PAYLOAD + 1, 0, NULL, 0);
	expect_close(t, raw, IPC_HEADER_SIZE, 0,
	    "bad message: payload too long (1048577 bytes)");
}

static void
test_close_not_permitted(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[32];

	encode_msg(raw, 1, 0, MSG_SHUTDOWN, 0, 0, NULL, 0);
	expect_close(t, raw, IPC_HEADER_SIZE, 0,
	    "bad message: SHUTDOWN not permitted on this channel");
}

static void
test_close_fd_flag_without_fd(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[32];
	size_t		 n;

	n = encode_msg(raw, 1, IPC_F_FD, MSG_PEER_FD, 1, 0, "k", 1);
	expect_close(t, raw, n, 0,
	    "bad message: PEER_FD without its file descriptor");
	assert_int_equal(t->t_handled, 0);
}

static void
test_close_truncated(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[32];

	encode_msg(raw, 1, 0, MSG_LOG, 10, 0, "abcd", 4);
	expect_close(t, raw, IPC_HEADER_SIZE + 4, 1,
	    "peer closed in the middle of a message");
	assert_int_equal(t->t_handled, 0);
}

static void
test_close_half_header(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[32];

	encode_msg(raw, 1, 0, MSG_LOG, 0, 0, NULL, 0);
	expect_close(t, raw, 7, 1, "peer closed in the middle of a message");
}

static void
test_close_handler_fails(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[64];
	size_t		 n;

	t->t_handler_fails = 1;
	n = encode_msg(raw, 1, 0, MSG_LOG, 4, 0, "\0\0\0\0", 4);
	n += encode_msg(raw + n, 1, 0, MSG_LOG, 4, 0, "\0\0\0\1", 4);
	expect_close(t, raw, n, 0, "bad message: malformed LOG");
}

static void
test_close_stray_fd(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[32];
	size_t		 n;
	int		 p[2];

	open_pipe(p);
	n = encode_msg(raw, 1, 0, MSG_LOG, 4, 0, "\0\0\0\0", 4);
	send_with_fds(t->t_sv[1], raw, n, &p[1], 1);
	close(p[1]);
	expect_close(t, NULL, 0, 0,
	    "bad message: file descriptor without a message");
	assert_int_equal(t->t_handled, 1);

	/* The channel closed the stray descriptor: the pipe sees EOF. */
	assert_int_equal(read(p[0], raw, 1), 0);
	close(p[0]);
}

/*
 * Our sender puts a descriptor on the first byte of its message, so one
 * that comes with a later part of the message is refused.
 */
static void
test_close_fd_arrives_late(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[32];
	int		 p[2];

	open_pipe(p);
	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_server,
	    on_close, t);
	encode_msg(raw, 1, IPC_F_FD, MSG_PEER_FD, 1, 0, "k", 1);
	write_all(t->t_sv[1], raw, IPC_HEADER_SIZE);
	run_for(t, 20);
	assert_int_equal(t->t_closes, 0);

	send_with_fds(t->t_sv[1], raw + IPC_HEADER_SIZE, 1, &p[1], 1);
	close(p[1]);
	assert_int_equal(run_until(t, &t->t_closes, 1), 0);
	assert_string_equal(t->t_reason,
	    "bad message: PEER_FD without its file descriptor");
	assert_int_equal(t->t_handled, 0);
	assert_int_equal(read(p[0], raw, 1), 0);
	close(p[0]);
}

static void
test_close_two_fds(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[32];
	size_t		 n;
	int		 p[2], fds[2];

	open_pipe(p);
	fds[0] = fds[1] = p[1];
	n = encode_msg(raw, 1, IPC_F_FD, MSG_PEER_FD, 1, 0, "k", 1);
	send_with_fds(t->t_sv[1], raw, n, fds, 2);
	close(p[1]);
	expect_close(t, NULL, 0, 0, "bad message: too many file descriptors");
	assert_int_equal(t->t_handled, 0);
	assert_int_equal(read(p[0], raw, 1), 0);
	close(p[0]);
}

static void
test_close_free_in_close_cb(void **state)
{
	struct tctx	*t = *state;

	t->t_free_in_close = 1;
	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_server,
	    on_close, t);
	write_all(t->t_sv[1], "\x09", 1);
	shutdown(t->t_sv[1], SHUT_WR);
	assert_int_equal(run_until(t, &t->t_closes, 1), 0);
	assert_null(t->t_a);
	t->t_sv[0] = -1;
	run_for(t, 20);
	assert_int_equal(t->t_closes, 1);
}

static void
test_fd_passing(void **state)
{
	struct tctx	*t = *state;
	char		 got[16];
	int		 p1[2], p2[2];

	open_pair(t);
	open_pipe(p1);
	open_pipe(p2);

	/* Kept, then dropped (closed by the channel), then kept again. */
	assert_int_equal(ipc_send(t->t_a, MSG_PEER_FD, 0, p1[1], "k", 1), 0);
	assert_int_equal(ipc_send(t->t_a, MSG_PEER_FD, 0, p2[1], "d", 1), 0);
	assert_int_equal(run_until(t, &t->t_handled, 2), 0);
	assert_int_equal(t->t_closes, 0);

	/* The received end works, and the sender's copies are closed. */
	assert_int_equal(write(t->t_fds[0], "hello", 5), 5);
	close(t->t_fds[0]);
	t->t_fds[0] = -1;
	assert_int_equal(read(p1[0], got, sizeof(got)), 5);
	assert_memory_equal(got, "hello", 5);
	assert_int_equal(read(p1[0], got, sizeof(got)), 0);
	assert_int_equal(read(p2[0], got, sizeof(got)), 0);
	close(p1[0]);
	close(p2[0]);
}

static void
test_fd_passing_interleaved(void **state)
{
	struct tctx	*t = *state;
	char		 got[8];
	int		 p[8][2], i;
	uint8_t		 seq[4] = { 0, 0, 0, 1 };	/* 2nd message */

	/*
	 * Three, then five more: the queue of descriptors to send wraps
	 * around and grows while it does.
	 */
	open_pair(t);
	for (i = 0; i < 8; i++) {
		open_pipe(p[i]);
		assert_int_equal(ipc_send(t->t_a, MSG_PEER_FD, 0, p[i][1],
		    "k", 1), 0);
		if (i == 2)
			assert_int_equal(run_until(t, &t->t_handled, 3), 0);
	}
	assert_int_equal(run_until(t, &t->t_handled, 8), 0);
	assert_int_equal(t->t_closes, 0);

	/* Each message got its own descriptor, in order. */
	for (i = 0; i < 8; i++) {
		assert_int_equal(write(t->t_fds[i], &"abcdefgh"[i], 1), 1);
		assert_int_equal(read(p[i][0], got, 1), 1);
		assert_int_equal(got[0], "abcdefgh"[i]);
		close(p[i][0]);
	}

	/* Messages without a descriptor in between are fine too. */
	t->t_handled = 0;
	for (i = 0; i < 8; i++)
		if (t->t_fds[i] != -1) {
			close(t->t_fds[i]);
			t->t_fds[i] = -1;
		}
	open_pipe(p[0]);
	assert_int_equal(ipc_send(t->t_a, MSG_PEER_FD, 0, p[0][1], "k", 1),
	    0);
	assert_int_equal(run_until(t, &t->t_handled, 1), 0);
	assert_int_equal(ipc_send(t->t_a, MSG_LOG, 0, -1, seq, 4), 0);
	open_pipe(p[1]);
	assert_int_equal(ipc_send(t->t_a, MSG_PEER_FD, 0, p[1][1], "k", 1),
	    0);
	assert_int_equal(run_until(t, &t->t_handled, 3), 0);
	assert_int_equal(t->t_closes, 0);
	assert_int_equal(write(t->t_fds[2], "z", 1), 1);
	assert_int_equal(read(p[1][0], got, 1), 1);
	assert_int_equal(got[0], 'z');
	close(p[0][0]);
	close(p[1][0]);
}

static void
test_many_in_one_write(void **state)
{
	struct tctx	*t = *state;
	uint8_t		*raw, seq[4];
	size_t		 n = 0;
	int		 i, count = 500;

	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_server,
	    on_close, t);
	raw = malloc((size_t)count * (IPC_HEADER_SIZE + 4));
	assert_non_null(raw);
	for (i = 0; i < count; i++) {
		seq[0] = (uint8_t)(i >> 24);
		seq[1] = (uint8_t)(i >> 16);
		seq[2] = (uint8_t)(i >> 8);
		seq[3] = (uint8_t)i;
		n += encode_msg(raw + n, 1, 0, MSG_LOG, 4, 0, seq, 4);
	}
	write_all(t->t_sv[1], raw, n);
	assert_int_equal(run_until(t, &t->t_handled, count), 0);
	assert_int_equal(t->t_closes, 0);
	free(raw);
}

static void
test_split_header(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[64];
	size_t		 n, i;

	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_server,
	    on_close, t);
	n = encode_msg(raw, 1, 0, MSG_LOG, 4, 0, "\0\0\0\0", 4);

	/* Byte by byte: nothing is dispatched before the last one. */
	for (i = 0; i < n - 1; i++) {
		write_all(t->t_sv[1], raw + i, 1);
		run_for(t, 2);
		assert_int_equal(t->t_handled, 0);
		assert_int_equal(t->t_closes, 0);
	}
	write_all(t->t_sv[1], raw + n - 1, 1);
	assert_int_equal(run_until(t, &t->t_handled, 1), 0);
}

static void
test_big_payload(void **state)
{
	struct tctx	*t = *state;
	uint8_t		*big;
	uint32_t	 i;

	open_pair(t);
	big = malloc(IPC_MAX_PAYLOAD + 1);
	assert_non_null(big);
	for (i = 0; i < IPC_MAX_PAYLOAD + 1; i++)
		big[i] = (uint8_t)(i * 7 + 3);

	assert_int_equal(ipc_send(t->t_a, MSG_CONFIG, 0, -1, big,
	    IPC_MAX_PAYLOAD + 1), -1);
	assert_int_equal(ipc_send(t->t_a, MSG_CONFIG, 0, -1, big,
	    IPC_MAX_PAYLOAD), 0);
	assert_int_equal(run_until(t, &t->t_handled, 1), 0);
	assert_int_equal(t->t_big_ok, 1);
	assert_int_equal(t->t_closes, 0);
	free(big);
}

static void
test_output_cap(void **state)
{
	struct tctx	*t = *state;
	uint8_t		*big;
	int		 i;

	/* Nobody reads the other end, so the queue can only grow. */
	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_client,
	    on_close, t);
	big = calloc(1, IPC_MAX_PAYLOAD);
	assert_non_null(big);
	for (i = 0; i < 64; i++)
		if (ipc_send(t->t_a, MSG_CONFIG, 0, -1, big,
		    IPC_MAX_PAYLOAD) == -1)
			break;
	assert_true(i >= 1 && i <= 8);
	free(big);
}

/* Flush must block until a slow reader took everything. */
static void
test_flush_blocking(void **state)
{
	struct tctx	*t = *state;
	uint8_t		*big, chunk[4096];
	size_t		 total = 0, want;
	ssize_t		 n;
	pid_t		 pid;
	int		 i, status;

	big = calloc(1, IPC_MAX_PAYLOAD);
	assert_non_null(big);
	want = 3 * ((size_t)IPC_MAX_PAYLOAD + IPC_HEADER_SIZE);
	if ((pid = fork()) == 0) {
		close(t->t_sv[0]);
		usleep(100 * 1000);
		while ((n = read(t->t_sv[1], chunk, sizeof(chunk))) > 0)
			total += (size_t)n;
		_exit(total == want ? 0 : 1);
	}
	assert_true(pid > 0);

	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_client,
	    on_close, t);
	for (i = 0; i < 3; i++)
		assert_int_equal(ipc_send(t->t_a, MSG_CONFIG, 0, -1, big,
		    IPC_MAX_PAYLOAD), 0);
	ipc_flush(t->t_a);
	ipc_channel_free(t->t_a);
	t->t_a = NULL;
	t->t_sv[0] = -1;
	close(t->t_sv[1]);
	t->t_sv[1] = -1;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	free(big);
}

static void
test_free_in_handler(void **state)
{
	struct tctx	*t = *state;
	uint8_t		 raw[128];
	size_t		 n = 0;

	t->t_free_in_handler = 1;
	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_server,
	    on_close, t);
	n += encode_msg(raw + n, 1, 0, MSG_LOG, 4, 0, "\0\0\0\0", 4);
	n += encode_msg(raw + n, 1, 0, MSG_LOG, 4, 0, "\0\0\0\1", 4);
	n += encode_msg(raw + n, 1, 0, MSG_LOG, 4, 0, "\0\0\0\2", 4);
	write_all(t->t_sv[1], raw, n);

	assert_int_equal(run_until(t, &t->t_handled, 1), 0);
	assert_null(t->t_a);
	t->t_sv[0] = -1;
	run_for(t, 20);
	assert_int_equal(t->t_handled, 1);
	assert_int_equal(t->t_closes, 0);

	/* The socket went with the channel. */
	assert_int_equal(read(t->t_sv[1], raw, 1), 0);
}

static void
r_free(struct ipc_channel *ch, struct ipc_msg *m, void *arg)
{
	struct tctx	*t = arg;

	if (m != NULL)
		t->t_replies++;
	else
		t->t_null_replies++;
	ipc_channel_free(ch);
	t->t_a = NULL;
}

static void
test_free_in_reply(void **state)
{
	struct tctx	*t = *state;

	open_pair(t);
	assert_int_equal(ipc_request(t->t_a, MSG_STATUS_REQ, "a", 1, 1000,
	    r_free, t), 0);
	assert_int_equal(ipc_request(t->t_a, MSG_STATUS_REQ, "b", 1, 1000,
	    r_free, t), 0);
	assert_int_equal(run_until(t, &t->t_replies, 1), 0);
	t->t_sv[0] = -1;

	/* The second request failed when the first reply freed it. */
	assert_int_equal(t->t_null_replies, 1);
	run_for(t, 30);
	assert_int_equal(t->t_replies, 1);
	assert_int_equal(t->t_null_replies, 1);
}

static void
test_free_in_timeout(void **state)
{
	struct tctx	*t = *state;

	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_client,
	    on_close, t);
	assert_int_equal(ipc_request(t->t_a, MSG_STATUS_REQ, NULL, 0, 20,
	    r_free, t), 0);
	assert_int_equal(ipc_request(t->t_a, MSG_STATUS_REQ, NULL, 0, 500,
	    r_free, t), 0);
	assert_int_equal(run_until(t, &t->t_null_replies, 1), 0);
	t->t_sv[0] = -1;

	/* Freeing failed the second request at once, and only once. */
	assert_int_equal(t->t_null_replies, 2);
	run_for(t, 30);
	assert_int_equal(t->t_null_replies, 2);
	assert_int_equal(t->t_replies, 0);
	assert_int_equal(t->t_closes, 0);
}

static void
test_flush(void **state)
{
	struct tctx		*t = *state;
	struct ipc_header	 h;
	uint8_t			 raw[64];
	const char		*why;

	t->t_a = ipc_channel_new(t->t_base, t->t_sv[0], "a", table_client,
	    on_close, t);
	assert_int_equal(ipc_send(t->t_a, MSG_SHUTDOWN, 0, -1, "bye", 3), 0);
	ipc_flush(t->t_a);

	/* Without running the loop, the bytes are already there. */
	assert_int_equal(read(t->t_sv[1], raw, sizeof(raw)),
	    IPC_HEADER_SIZE + 3);
	assert_int_equal(ipc_header_decode(raw, IPC_HEADER_SIZE, &h, &why),
	    0);
	assert_int_equal(h.ih_type, MSG_SHUTDOWN);
	assert_int_equal(h.ih_flags, 0);
	assert_int_equal(h.ih_id, 0);
	assert_int_equal(h.ih_len, 3);
	assert_int_equal(h.ih_pid, (uint32_t)getpid());
	assert_memory_equal(raw + IPC_HEADER_SIZE, "bye", 3);
}

#define CT(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_roundtrip),
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_header_rejections),
		cmocka_unit_test(test_reader_errors),
		cmocka_unit_test(test_string_limits),
		cmocka_unit_test(test_names),
		CT(test_request_reply),
		CT(test_request_timeout),
		CT(test_reply_needs_flag),
		CT(test_pending_fail_on_close),
		CT(test_pending_fail_on_free),
		CT(test_close_garbage),
		CT(test_close_bad_version),
		CT(test_close_bad_flags),
		CT(test_close_unknown_type),
		CT(test_close_too_long),
		CT(test_close_not_permitted),
		CT(test_close_fd_flag_without_fd),
		CT(test_close_truncated),
		CT(test_close_half_header),
		CT(test_close_handler_fails),
		CT(test_close_stray_fd),
		CT(test_close_fd_arrives_late),
		CT(test_close_two_fds),
		CT(test_close_free_in_close_cb),
		CT(test_fd_passing),
		CT(test_fd_passing_interleaved),
		CT(test_many_in_one_write),
		CT(test_split_header),
		CT(test_big_payload),
		CT(test_output_cap),
		CT(test_flush_blocking),
		CT(test_free_in_handler),
		CT(test_free_in_reply),
		CT(test_free_in_timeout),
		CT(test_flush),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
