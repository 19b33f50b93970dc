/*
 * A message channel over a non-blocking unix stream socket, driven by a
 * libevent base.
 *
 * File descriptors travel with SCM_RIGHTS.  The sender attaches each one
 * to the first byte of its message and never puts two in one sendmsg();
 * Linux hands them out with the recvmsg() that reads that byte.  So every
 * descriptor received must belong to a message that starts within the
 * bytes of the same read, and anything else is a protocol error.
 *
 * Callbacks may free the channel.  Every entry from the event loop holds
 * a reference (ch_busy), ipc_channel_free() only marks the channel when
 * a reference is held, and the last reference frees the memory.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "ipc.h"
#include "log.h"
#include "util.h"

#define IPC_OUT_MAX		(8 * 1024 * 1024)
#define IPC_READ_CHUNK		65536
#define IPC_RECV_FDS		4	/* room in one control message */
#define IPC_IN_FDS_MAX		16	/* received, not yet claimed */
#define IPC_EXPIRED_MAX		32	/* timed-out ids still remembered */
#define IPC_FLUSH_WAIT_MS	5000
#define IPC_COMPACT_MIN		65536

/* A descriptor and the stream positions it belongs to. */
struct ipc_fdent {
	int		 fe_fd;
	uint64_t	 fe_start;	/* first byte it may belong to */
	uint64_t	 fe_end;	/* one past the last (input only) */
};

/* A FIFO of descriptors, as a growable ring. */
struct ipc_fdq {
	struct ipc_fdent *q_ent;
	size_t		 q_head;
	size_t		 q_count;
	size_t		 q_cap;
};

struct ipc_pending {
	TAILQ_ENTRY(ipc_pending) p_entry;
	struct ipc_channel *p_ch;
	uint32_t	 p_id;
	ipc_reply_fn	 p_fn;
	void		*p_arg;
	struct event	*p_timer;
};
TAILQ_HEAD(ipc_pending_list, ipc_pending);

struct ipc_channel {
	struct event_base *ch_base;
	int		 ch_fd;
	char		*ch_name;
	const struct ipc_dispatch *ch_table;
	ipc_close_fn	 ch_close_fn;
	void		*ch_arg;
	struct event	*ch_rev;
	struct event	*ch_wev;

	struct buf	 ch_in;		/* received, not yet dispatched */
	size_t		 ch_in_off;	/* start of the next message */
	uint64_t	 ch_in_base;	/* stream position of ch_in[0] */
	struct ipc_fdq	 ch_in_fds;

	struct buf	 ch_out;	/* queued for the peer */
	size_t		 ch_out_off;	/* already sent */
	uint64_t	 ch_out_base;	/* stream position of ch_out[0] */
	struct ipc_fdq	 ch_out_fds;

	struct ipc_pending_list ch_pending;
	uint32_t	 ch_next_id;
	uint32_t	 ch_expired[IPC_EXPIRED_MAX];
	size_t		 ch_expired_next;

	int		 ch_busy;
	int		 ch_closed;
	int		 ch_freeing;
	char		 ch_reason[160];
};

static void	 ipc_channel_read_cb(evutil_socket_t, short, void *);
static void	 ipc_channel_write_cb(evutil_socket_t, short, void *);
static void	 ipc_pending_timeout_cb(evutil_socket_t, short, void *);

static void
ipc_fdq_push(struct ipc_fdq *q, int fd, uint64_t start, uint64_t end)
{
	struct ipc_fdent	*ent;
	size_t			 i, ncap;

	if (q->q_count == q->q_cap) {
		ncap = q->q_cap == 0 ? 4 : q->q_cap * 2;
		ent = xreallocarray(NULL, ncap, sizeof(*ent));
		for (i = 0; i < q->q_count; i++)
			ent[i] = q->q_ent[(q->q_head + i) % q->q_cap];
		free(q->q_ent);
		q->q_ent = ent;
		q->q_cap = ncap;
		q->q_head = 0;
	}

	ent = &q->q_ent[(q->q_head + q->q_count) % q->q_cap];
	ent->fe_fd = fd;
	ent->fe_start = start;
	ent->fe_end = end;
	q->q_count++;
}

static struct ipc_fdent *
ipc_fdq_at(struct ipc_fdq *q, size_t i)
{
	if (i >= q->q_count)
		return NULL;
	return &q->q_ent[(q->q_head + i) % q->q_cap];
}

static void
ipc_fdq_pop(struct ipc_fdq *q)
{
	q->q_head = (q->q_head + 1) % q->q_cap;
	q->q_count--;
}

static void
ipc_fdq_clear(struct ipc_fdq *q)
{
	struct ipc_fdent	*ent;

	while ((ent = ipc_fdq_at(q, 0)) != NULL) {
		close(ent->fe_fd);
		ipc_fdq_pop(q);
	}
}

static void
ipc_fdq_free(struct ipc_fdq *q)
{
	ipc_fdq_clear(q);
	free(q->q_ent);
	q->q_ent = NULL;
	q->q_cap = 0;
}

static struct ipc_pending *
ipc_pending_find(struct ipc_channel *ch, uint32_t id)
{
	struct ipc_pending	*p;

	TAILQ_FOREACH(p, &ch->ch_pending, p_entry)
		if (p->p_id == id)
			return p;
	return NULL;
}

static void
ipc_pending_unlink(struct ipc_channel *ch, struct ipc_pending *p)
{
	TAILQ_REMOVE(&ch->ch_pending, p, p_entry);
	if (p->p_timer != NULL)
		event_free(p->p_timer);
	p->p_timer = NULL;
}

/* Tells every waiting requester that no reply will come. */
static void
ipc_pending_fail_all(struct ipc_channel *ch)
{
	struct ipc_pending	*p;

	while ((p = TAILQ_FIRST(&ch->ch_pending)) != NULL) {
		ipc_pending_unlink(ch, p);
		p->p_fn(ch, NULL, p->p_arg);
		free(p);
	}
}

static int
ipc_expired_has(const struct ipc_channel *ch, uint32_t id)
{
	size_t	 i;

	for (i = 0; i < IPC_EXPIRED_MAX; i++)
		if (ch->ch_expired[i] == id)
			return 1;
	return 0;
}

static void
ipc_channel_destroy(struct ipc_channel *ch)
{
	event_free(ch->ch_rev);
	event_free(ch->ch_wev);
	close(ch->ch_fd);

	ipc_fdq_free(&ch->ch_in_fds);
	ipc_fdq_free(&ch->ch_out_fds);
	buf_free(&ch->ch_in);
	buf_free(&ch->ch_out);
	free(ch->ch_name);
	free(ch);
}

/*
 * Drops a reference.  Returns -1 if the channel is gone or closed, so the
 * caller must not go on with it.
 */
static int
ipc_channel_release(struct ipc_channel *ch)
{
	if (--ch->ch_busy == 0 && ch->ch_freeing) {
		ipc_channel_destroy(ch);
		return -1;
	}
	return ch->ch_closed ? -1 : 0;
}

/*
 * Closes the channel with a reason.  Only called from event callbacks,
 * which hold a reference, so the memory outlives this call.
 */
static void
ipc_channel_fail(struct ipc_channel *ch, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
ipc_channel_fail(struct ipc_channel *ch, const char *fmt, ...)
{
	va_list	 ap;

	if (ch->ch_closed)
		return;
	ch->ch_closed = 1;
	va_start(ap, fmt);
	vsnprintf(ch->ch_reason, sizeof(ch->ch_reason), fmt, ap);
	va_end(ap);

	event_del(ch->ch_rev);
	event_del(ch->ch_wev);
	ipc_fdq_clear(&ch->ch_in_fds);
	ipc_fdq_clear(&ch->ch_out_fds);

	ipc_pending_fail_all(ch);
	if (!ch->ch_freeing && ch->ch_close_fn != NULL)
		ch->ch_close_fn(ch, ch->ch_reason, ch->ch_arg);
}

struct ipc_channel *
ipc_channel_new(struct event_base *base, int fd, const char *name,
    const struct ipc_dispatch *table, ipc_close_fn close_fn, void *arg)
{
	struct ipc_channel	*ch;
	int			 flags;

	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		return NULL;

	ch = xcalloc(1, sizeof(*ch));
	ch->ch_base = base;
	ch->ch_fd = fd;
	ch->ch_name = xstrdup(name == NULL ? "ipc" : name);
	ch->ch_table = table;
	ch->ch_close_fn = close_fn;
	ch->ch_arg = arg;
	buf_init(&ch->ch_in);
	buf_init(&ch->ch_out);
	TAILQ_INIT(&ch->ch_pending);
	ch->ch_next_id = 1;

	ch->ch_rev = event_new(base, fd, EV_READ | EV_PERSIST,
	    ipc_channel_read_cb, ch);
	ch->ch_wev = event_new(base, fd, EV_WRITE | EV_PERSIST,
	    ipc_channel_write_cb, ch);
	if (ch->ch_rev == NULL || ch->ch_wev == NULL ||
	    event_add(ch->ch_rev, NULL) == -1)
		fatalx("ipc %s: cannot set up its events", ch->ch_name);
	return ch;
}

void
ipc_channel_free(struct ipc_channel *ch)
{
	if (ch == NULL || ch->ch_freeing)
		return;
	ch->ch_freeing = 1;
	ch->ch_closed = 1;
	ch->ch_busy++;

	event_del(ch->ch_rev);
	event_del(ch->ch_wev);
	ipc_pending_fail_all(ch);

	ipc_channel_release(ch);
}

const char *
ipc_channel_name(const struct ipc_channel *ch)
{
	return ch->ch_name;
}

int
ipc_channel_fd(const struct ipc_channel *ch)
{
	return ch->ch_fd;
}

static ssize_t
ipc_sendmsg(int s, const uint8_t *data, size_t len, int fd)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	union {
		struct cmsghdr	 hdr;
		char		 buf[CMSG_SPACE(sizeof(int))];
	} cm;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)(uintptr_t)data;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;

	if (fd != -1) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	return sendmsg(s, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/*
 * Writes what the socket takes.  A message's descriptor goes with its
 * first byte, and a write stops short of the next message that has one.
 * Returns 1 when the queue is empty, 0 when the socket is full, -1 on
 * error with errno set.
 */
static int
ipc_channel_write_some(struct ipc_channel *ch)
{
	struct ipc_fdent	*fe, *next;
	uint64_t		 pos;
	size_t			 len;
	ssize_t			 n;
	int			 fd;

	while (ch->ch_out_off < ch->ch_out.b_len) {
		pos = ch->ch_out_base + ch->ch_out_off;
		len = ch->ch_out.b_len - ch->ch_out_off;
		fd = -1;
		next = fe = ipc_fdq_at(&ch->ch_out_fds, 0);
		if (fe != NULL && fe->fe_start == pos) {
			fd = fe->fe_fd;
			next = ipc_fdq_at(&ch->ch_out_fds, 1);
		}
		if (next != NULL && next->fe_start - pos < len)
			len = next->fe_start - pos;

		n = ipc_sendmsg(ch->ch_fd, ch->ch_out.b_data + ch->ch_out_off,
		    len, fd);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == -1)
			return -1;

		if (fd != -1) {
			close(fd);
			ipc_fdq_pop(&ch->ch_out_fds);
		}
		ch->ch_out_off += (size_t)n;
	}

	if (ch->ch_out_off == ch->ch_out.b_len) {
		ch->ch_out_base += ch->ch_out.b_len;
		ch->ch_out_off = 0;
		buf_reset(&ch->ch_out);
		return 1;
	}
	if (ch->ch_out_off >= IPC_COMPACT_MIN &&
	    ch->ch_out_off >= ch->ch_out.b_len / 2) {
		buf_consume(&ch->ch_out, ch->ch_out_off);
		ch->ch_out_base += ch->ch_out_off;
		ch->ch_out_off = 0;
	}
	return 0;
}

static void
ipc_channel_write_cb(evutil_socket_t fd, short events, void *arg)
{
	struct ipc_channel	*ch = arg;
	int			 rc;

	(void)fd;
	(void)events;
	ch->ch_busy++;

	rc = ipc_channel_write_some(ch);
	if (rc == 1)
		event_del(ch->ch_wev);
	else if (rc == -1 && (errno == EPIPE || errno == ECONNRESET))
		ipc_channel_fail(ch, "peer closed");
	else if (rc == -1)
		ipc_channel_fail(ch, "write: %s", strerror(errno));

	ipc_channel_release(ch);
}

static const struct ipc_dispatch *
ipc_dispatch_find(const struct ipc_dispatch *table, uint16_t type)
{
	if (table == NULL)
		return NULL;
	for (; table->d_type != MSG_NONE; table++)
		if (table->d_type == type)
			return table;
	return NULL;
}

/* Turns a header refusal into a reason that names the offending value. */
static void
ipc_channel_fail_header(struct ipc_channel *ch, const struct ipc_header *h,
    const char *why)
{
	if (strcmp(why, "unsupported version") == 0)
		ipc_channel_fail(ch, "bad message: %s %u", why, h->ih_version);
	else if (strcmp(why, "unknown flags") == 0)
		ipc_channel_fail(ch, "bad message: %s 0x%02x", why,
		    h->ih_flags);
	else if (strcmp(why, "unknown type") == 0)
		ipc_channel_fail(ch, "bad message: %s %u", why, h->ih_type);
	else if (strcmp(why, "payload too long") == 0)
		ipc_channel_fail(ch, "bad message: %s (%u bytes)", why,
		    h->ih_len);
	else
		ipc_channel_fail(ch, "bad message: %s", why);
}

/* Finds the descriptor that travels with a message starting at pos. */
static int
ipc_channel_claim_fd(struct ipc_channel *ch, const struct ipc_header *h,
    uint64_t pos, int *fdp)
{
	struct ipc_fdent	*fe;

	*fdp = -1;
	fe = ipc_fdq_at(&ch->ch_in_fds, 0);
	if (fe != NULL && fe->fe_end <= pos) {
		ipc_channel_fail(ch, "bad message: file descriptor without "
		    "a message");
		return -1;
	}
	if ((h->ih_flags & IPC_F_FD) == 0)
		return 0;

	if (fe == NULL || fe->fe_start > pos) {
		ipc_channel_fail(ch, "bad message: %s without its file "
		    "descriptor", ipc_type_name(h->ih_type));
		return -1;
	}
	*fdp = fe->fe_fd;
	ipc_fdq_pop(&ch->ch_in_fds);
	return 0;
}

/*
 * Hands one complete message to a pending request or to its handler.
 * Returns -1 if the channel was closed or freed meanwhile.
 */
static int
ipc_channel_dispatch(struct ipc_channel *ch, const struct ipc_header *h,
    const struct ipc_dispatch *row, const uint8_t *data)
{
	struct ipc_msg		 msg;
	struct ipc_pending	*p = NULL;
	int			 rc = 0;

	msg.m_hdr = *h;
	msg.m_data = data;
	if (ipc_channel_claim_fd(ch, h, ch->ch_in_base + ch->ch_in_off,
	    &msg.m_fd) == -1)
		return -1;

	if ((h->ih_flags & IPC_F_REPLY) != 0 && h->ih_id != 0)
		p = ipc_pending_find(ch, h->ih_id);
	if (p != NULL) {
		ipc_pending_unlink(ch, p);
		p->p_fn(ch, &msg, p->p_arg);
		free(p);
	} else if ((h->ih_flags & IPC_F_REPLY) != 0) {
		if (h->ih_id != 0 && ipc_expired_has(ch, h->ih_id))
			log_debug(LC_MONITOR, "ipc %s: late %s for id %u "
			    "dropped", ch->ch_name, ipc_type_name(h->ih_type),
			    h->ih_id);
		else
			rc = -2;
	} else if (row->d_handler != NULL)
		rc = row->d_handler(ch, &msg, ch->ch_arg);
	else
		rc = -2;

	if (msg.m_fd != -1)
		close(msg.m_fd);
	if (ch->ch_closed)
		return -1;
	if (rc == -1)
		ipc_channel_fail(ch, "bad message: malformed %s",
		    ipc_type_name(h->ih_type));
	else if (rc == -2)
		ipc_channel_fail(ch, "bad message: unexpected %s (id %u)",
		    ipc_type_name(h->ih_type), h->ih_id);
	return rc == 0 ? 0 : -1;
}

/* Dispatches every complete message in the input buffer. */
static void
ipc_channel_process(struct ipc_channel *ch)
{
	const struct ipc_dispatch	*row;
	struct ipc_header		 h;
	struct ipc_fdent		*fe;
	const uint8_t			*p;
	const char			*why;
	size_t				 avail;

	for (;;) {
		avail = ch->ch_in.b_len - ch->ch_in_off;
		if (avail < IPC_HEADER_SIZE)
			break;
		p = ch->ch_in.b_data + ch->ch_in_off;
		if (ipc_header_decode(p, avail, &h, &why) == -1) {
			ipc_channel_fail_header(ch, &h, why);
			return;
		}
		if ((row = ipc_dispatch_find(ch->ch_table, h.ih_type)) ==
		    NULL) {
			ipc_channel_fail(ch, "bad message: %s not permitted "
			    "on this channel", ipc_type_name(h.ih_type));
			return;
		}
		if (avail - IPC_HEADER_SIZE < h.ih_len)
			break;

		if (ipc_channel_dispatch(ch, &h, row, p + IPC_HEADER_SIZE) ==
		    -1)
			return;
		ch->ch_in_off += IPC_HEADER_SIZE + h.ih_len;
	}

	fe = ipc_fdq_at(&ch->ch_in_fds, 0);
	if (fe != NULL && fe->fe_end <= ch->ch_in_base + ch->ch_in_off) {
		ipc_channel_fail(ch, "bad message: file descriptor without "
		    "a message");
		return;
	}

	buf_consume(&ch->ch_in, ch->ch_in_off);
	ch->ch_in_base += ch->ch_in_off;
	ch->ch_in_off = 0;
}

/*
 * Receives bytes and descriptors.  Returns the byte count, 0 on EOF, -1
 * on error.  *nfds counts every descriptor that arrived, even those
 * beyond max, which are closed.
 */
static ssize_t
ipc_recvmsg(int s, uint8_t *data, size_t len, int *fds, int max, int *nfds,
    int *ctrunc)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	union {
		struct cmsghdr	 hdr;
		char		 buf[CMSG_SPACE(sizeof(int) * IPC_RECV_FDS)];
	} cm;
	ssize_t		 n;
	size_t		 i, count;
	int		 fd;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = data;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	*nfds = 0;
	*ctrunc = 0;

	if ((n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)) == -1)
		return -1;
	*ctrunc = (msg.msg_flags & MSG_CTRUNC) != 0;

	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < count; i++) {
			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int),
			    sizeof(int));
			if (*nfds < max)
				fds[*nfds] = fd;
			else
				close(fd);
			(*nfds)++;
		}
	}
	return n;
}

static void
ipc_channel_read(struct ipc_channel *ch)
{
	uint8_t		 chunk[IPC_READ_CHUNK];
	uint64_t	 start;
	ssize_t		 n;
	int		 fds[IPC_RECV_FDS], nfds, ctrunc, i;

	n = ipc_recvmsg(ch->ch_fd, chunk, sizeof(chunk), fds, IPC_RECV_FDS,
	    &nfds, &ctrunc);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n == -1) {
		if (errno == ECONNRESET)
			ipc_channel_fail(ch, "peer closed");
		else
			ipc_channel_fail(ch, "read: %s", strerror(errno));
		return;
	}

	if (ctrunc || nfds > 1 || (nfds == 1 &&
	    (n == 0 || ch->ch_in_fds.q_count >= IPC_IN_FDS_MAX))) {
		for (i = 0; i < nfds && i < IPC_RECV_FDS; i++)
			close(fds[i]);
		ipc_channel_fail(ch, "bad message: too many file descriptors");
		return;
	}
	if (n == 0) {
		ipc_channel_fail(ch, ch->ch_in.b_len > ch->ch_in_off ?
		    "peer closed in the middle of a message" : "peer closed");
		return;
	}

	start = ch->ch_in_base + ch->ch_in.b_len;
	buf_add(&ch->ch_in, chunk, (size_t)n);
	if (nfds == 1)
		ipc_fdq_push(&ch->ch_in_fds, fds[0], start, start + (size_t)n);
	ipc_channel_process(ch);
}

static void
ipc_channel_read_cb(evutil_socket_t fd, short events, void *arg)
{
	struct ipc_channel	*ch = arg;

	(void)fd;
	(void)events;
	ch->ch_busy++;
	ipc_channel_read(ch);
	ipc_channel_release(ch);
}

/*
 * The channel takes the descriptor in every case: it is closed once sent,
 * or at once if the message cannot be queued.
 */
static int
ipc_send_flags(struct ipc_channel *ch, uint16_t type, uint32_t id,
    uint8_t flags, int fd, const void *data, size_t len)
{
	struct ipc_header	 h;
	uint8_t			 hdr[IPC_HEADER_SIZE];
	size_t			 queued;

	queued = ch->ch_out.b_len - ch->ch_out_off;
	if (ch->ch_closed || type == MSG_NONE || type >= MSG_TYPE_MAX ||
	    len > IPC_MAX_PAYLOAD || (data == NULL && len > 0))
		goto fail;
	if (queued + IPC_HEADER_SIZE + len > IPC_OUT_MAX)
		goto fail;

	h.ih_version = IPC_VERSION;
	h.ih_flags = flags | (fd != -1 ? IPC_F_FD : 0);
	h.ih_type = type;
	h.ih_len = (uint32_t)len;
	h.ih_id = id;
	h.ih_pid = (uint32_t)getpid();
	ipc_header_encode(&h, hdr);

	if (fd != -1)
		ipc_fdq_push(&ch->ch_out_fds, fd,
		    ch->ch_out_base + ch->ch_out.b_len, 0);
	buf_add(&ch->ch_out, hdr, sizeof(hdr));
	if (len > 0)
		buf_add(&ch->ch_out, data, len);
	if (event_add(ch->ch_wev, NULL) == -1)
		fatalx("ipc %s: cannot arm its write event", ch->ch_name);
	return 0;

 fail:
	if (fd != -1)
		close(fd);
	return -1;
}

int
ipc_send(struct ipc_channel *ch, uint16_t type, uint32_t id, int fd,
    const void *data, size_t len)
{
	return ipc_send_flags(ch, type, id, 0, fd, data, len);
}

static uint32_t
ipc_channel_next_id(struct ipc_channel *ch)
{
	uint32_t	 id;

	do {
		id = ch->ch_next_id++;
		if (ch->ch_next_id == 0)
			ch->ch_next_id = 1;
	} while (ipc_pending_find(ch, id) != NULL);
	return id;
}

/* The timeout is in milliseconds; 0 waits until a reply or the close. */
int
ipc_request(struct ipc_channel *ch, uint16_t type, const void *data,
    size_t len, unsigned int timeout_ms, ipc_reply_fn fn, void *arg)
{
	struct ipc_pending	*p;
	struct timeval		 tv;
	uint32_t		 id;

	if (ch->ch_closed || fn == NULL)
		return -1;
	id = ipc_channel_next_id(ch);
	if (ipc_send(ch, type, id, -1, data, len) == -1)
		return -1;

	p = xcalloc(1, sizeof(*p));
	p->p_ch = ch;
	p->p_id = id;
	p->p_fn = fn;
	p->p_arg = arg;
	TAILQ_INSERT_TAIL(&ch->ch_pending, p, p_entry);

	if (timeout_ms > 0) {
		p->p_timer = evtimer_new(ch->ch_base, ipc_pending_timeout_cb,
		    p);
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		if (p->p_timer == NULL || evtimer_add(p->p_timer, &tv) == -1)
			fatalx("ipc %s: cannot arm a request timer",
			    ch->ch_name);
	}
	return 0;
}

static void
ipc_pending_timeout_cb(evutil_socket_t fd, short events, void *arg)
{
	struct ipc_pending	*p = arg;
	struct ipc_channel	*ch = p->p_ch;

	(void)fd;
	(void)events;
	ch->ch_busy++;
	ch->ch_expired[ch->ch_expired_next] = p->p_id;
	ch->ch_expired_next = (ch->ch_expired_next + 1) % IPC_EXPIRED_MAX;

	ipc_pending_unlink(ch, p);
	p->p_fn(ch, NULL, p->p_arg);
	free(p);
	ipc_channel_release(ch);
}

int
ipc_reply(struct ipc_channel *ch, const struct ipc_msg *req, uint16_t type,
    const void *data, size_t len)
{
	if (req->m_hdr.ih_id == 0)
		return -1;
	return ipc_send_flags(ch, type, req->m_hdr.ih_id, IPC_F_REPLY, -1,
	    data, len);
}

/* Gives up when the peer takes nothing for IPC_FLUSH_WAIT_MS. */
void
ipc_flush(struct ipc_channel *ch)
{
	struct pollfd	 pfd;
	int		 rc;

	if (ch->ch_closed)
		return;
	for (;;) {
		if ((rc = ipc_channel_write_some(ch)) == 1) {
			event_del(ch->ch_wev);
			return;
		}
		if (rc == -1)
			return;	/* the write event reports it */

		pfd.fd = ch->ch_fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		rc = poll(&pfd, 1, IPC_FLUSH_WAIT_MS);
		if (rc == 0 || (rc == -1 && errno != EINTR))
			return;
	}
}
