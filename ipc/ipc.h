/*
 * The wire protocol between ephemerd's processes.
 *
 * Every message is a 16-byte header followed by a payload.  The header is
 * version (u8), flags (u8), type (u16), len (u32), id (u32), pid (u32),
 * all in network byte order.  Payloads are marshalled field by field:
 * integers in network byte order, strings as a u16 length and the bytes
 * (no NUL), blobs as a u32 length and the bytes.  A reader must consume a
 * payload exactly; anything short, long or malformed is an error that
 * closes the channel.
 */
#ifndef EPHEMERD_IPC_H
#define EPHEMERD_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define IPC_VERSION		1
#define IPC_HEADER_SIZE		16
#define IPC_MAX_PAYLOAD		(1024 * 1024)
#define IPC_MAX_STRING		65535

/* Header flags. */
#define IPC_F_FD		0x01	/* one file descriptor travels along */
#define IPC_F_MORE		0x02	/* more parts of this message follow */
#define IPC_F_REPLY		0x04	/* answers the sender's request id */
#define IPC_F_ALL		(IPC_F_FD | IPC_F_MORE | IPC_F_REPLY)

/*
 * Message types.  The numbers are part of the protocol: append, never
 * renumber.  Which channel may carry which type is decided by each
 * process's dispatch table, not here.
 */
enum ipc_type {
	MSG_NONE = 0,
	MSG_CONFIG,		/* supervisor -> child: its configuration */
	MSG_CONFIG_ACK,		/* child -> supervisor: applied (or why not) */
	MSG_STATUS_REQ,		/* any -> any: are you alive, how are you */
	MSG_STATUS_REPLY,	/* the answer, a JSON object as a blob */
	MSG_LOG,		/* child -> supervisor: one formatted line */
	MSG_SHUTDOWN,		/* supervisor -> child: exit cleanly */
	MSG_PEER_FD,		/* supervisor -> child: new channel to a peer */
	MSG_LISTEN_FD,		/* supervisor -> httpd: the listen socket */
	MSG_HEALTH_REQ,		/* httpd -> peer: check your dependencies */
	MSG_HEALTH_REPLY,	/* the answer, a JSON object as a blob */
	MSG_RUNNER_CREATE,	/* httpd -> poller: runners asked for by API */
	MSG_RUNNER_CREATE_REPLY,
	MSG_RUNNER_START,	/* poller -> docker: one registered runner */
	MSG_RUNNER_START_REPLY,
	MSG_RUNNER_REMOVE,	/* httpd -> docker: destroy one runner */
	MSG_RUNNER_REMOVE_REPLY,
	MSG_RUNNER_LOGS,	/* httpd -> docker: tail of a runner's log */
	MSG_RUNNER_LOGS_REPLY,
	MSG_RUNNER_CLEANUP,	/* httpd -> docker: remove exited, timed out */
	MSG_RUNNER_CLEANUP_REPLY,
	MSG_RUNNER_TABLE,	/* docker -> httpd, poller: every runner */
	MSG_RUNNER_GONE,	/* docker -> poller: deregister this one */
	MSG_RUNNER_GITHUB,	/* poller -> docker: GitHub's view of runners */
	MSG_METRICS_REQ,	/* httpd -> any: your metric samples */
	MSG_METRICS_REPLY,	/* blob: Prometheus text sample lines */
	MSG_WEBHOOK,		/* httpd -> poller: one delivery, unverified */
	MSG_WEBHOOK_REPLY,
	MSG_GITHUB_CLEANUP,	/* httpd -> poller: offline runners we made */
	MSG_GITHUB_CLEANUP_REPLY,
	MSG_TYPE_MAX
};

/*
 * Payloads of the runner messages, field by field ("strs" is a u16 count
 * followed by that many strings; a runner is runner_encode() of runner.h):
 *
 * RUNNER_CREATE	str scope, str scope_name, u16 count, str runner_name,
 *			str runner_group, strs labels
 * RUNNER_CREATE_REPLY	u8 ok, u16 http_status, str message, u16 n, then n
 *			times { str runner_name, u8 ok, str message }
 * RUNNER_START		str pool, str runner_name, str scope, str scope_name,
 *			str origin, u64 github_runner_id, strs labels,
 *			str registration_token, str jit_config
 * RUNNER_START_REPLY	u8 ok, str container id or the error
 * RUNNER_REMOVE	str runner_name
 * RUNNER_REMOVE_REPLY	u8 ok, u16 http_status, str message
 * RUNNER_LOGS		str runner_name, u32 tail_lines
 * RUNNER_LOGS_REPLY	u8 ok, u16 http_status, str message, blob log
 * RUNNER_CLEANUP	(empty)
 * RUNNER_CLEANUP_REPLY	u32 removed, str message
 * RUNNER_TABLE		runner_table_encode() of every runner (event)
 * RUNNER_GONE		one runner, with its exit code (event)
 * RUNNER_GITHUB	u32 n, then n times { str runner_name, u64 github_id,
 *			u8 online, u8 busy, str job } (event)
 * METRICS_REQ		(empty)
 * METRICS_REPLY	blob: sample lines "name{label="v",...} value\n" of
 *			the families httpd declares (httpd_metrics.c)
 * WEBHOOK		str event, str delivery id (or ""), str signature
 *			(X-Hub-Signature-256, or ""), blob body as received
 * WEBHOOK_REPLY	u16 http_status, str message, blob data (a JSON
 *			object, or empty)
 * GITHUB_CLEANUP	u8 mode: 0 delete, 1 dry run, 2 list this
 *			instance's runners as GitHub sees them
 * GITHUB_CLEANUP_REPLY	u16 http_status, str message, blob data: for modes
 *			0 and 1 the JSON object {deleted or would_delete,
 *			kept, errors}, for 2 a JSON array; empty if refused
 */

/* The processes, as they name each other in MSG_PEER_FD and in logs. */
enum ipc_role {
	ROLE_SUPERVISOR = 0,
	ROLE_HTTPD,
	ROLE_POLLER,
	ROLE_DOCKER,
	ROLE_COUNT
};

const char *ipc_role_name(enum ipc_role);
/* Returns the role for "httpd", "poller", "docker"; -1 otherwise. */
int	 ipc_role_from_name(const char *);
const char *ipc_type_name(uint16_t);

struct ipc_header {
	uint8_t		ih_version;
	uint8_t		ih_flags;
	uint16_t	ih_type;
	uint32_t	ih_len;
	uint32_t	ih_id;
	uint32_t	ih_pid;
};

void	 ipc_header_encode(const struct ipc_header *, uint8_t *);
/*
 * Decodes and checks a header: version, known flags, known type, length
 * within IPC_MAX_PAYLOAD.  Returns 0, or -1 with *why set.
 */
int	 ipc_header_decode(const uint8_t *, size_t, struct ipc_header *,
	    const char **);

/* Payload writers append to a buffer.  A string too long is fatal. */
void	 ipc_put_u8(struct buf *, uint8_t);
void	 ipc_put_u16(struct buf *, uint16_t);
void	 ipc_put_u32(struct buf *, uint32_t);
void	 ipc_put_u64(struct buf *, uint64_t);
void	 ipc_put_str(struct buf *, const char *);	/* NULL as "" */
void	 ipc_put_blob(struct buf *, const void *, size_t);

/*
 * A strict payload reader.  The first failure sets ir_error (with a
 * reason) and every later read returns zero or NULL, so a caller may read
 * all fields and check once with ipc_reader_done().
 */
struct ipc_reader {
	const uint8_t	*ir_data;
	size_t		 ir_len;
	size_t		 ir_off;
	const char	*ir_error;
};

void	 ipc_reader_init(struct ipc_reader *, const void *, size_t);
uint8_t	 ipc_get_u8(struct ipc_reader *);
uint16_t ipc_get_u16(struct ipc_reader *);
uint32_t ipc_get_u32(struct ipc_reader *);
uint64_t ipc_get_u64(struct ipc_reader *);
/* A boolean is a u8 that must be 0 or 1. */
int	 ipc_get_bool(struct ipc_reader *);
/* Returns a new NUL-terminated string; embedded NULs are an error. */
char	*ipc_get_str(struct ipc_reader *);
/* Returns a pointer into the payload and its length. */
const uint8_t *ipc_get_blob(struct ipc_reader *, size_t *);
/* Returns 0 if every read succeeded and the payload was consumed. */
int	 ipc_reader_done(struct ipc_reader *);
const char *ipc_reader_error(const struct ipc_reader *);

/*
 * A channel: one end of a unix stream socket, non-blocking, driven by a
 * libevent base.  Messages are queued and written as the socket allows;
 * received file descriptors are matched to the messages that carry
 * IPC_F_FD.  Requests get an id and a timeout; the reply echoes the id.
 */
struct event_base;
struct ipc_channel;

struct ipc_msg {
	struct ipc_header	 m_hdr;
	const uint8_t		*m_data;	/* m_hdr.ih_len bytes */
	int			 m_fd;		/* -1 unless IPC_F_FD */
};

/*
 * Handlers own m_fd if they take it (set it to -1 in the message they
 * were given); otherwise the channel closes it after the handler returns.
 * A handler returns 0, or -1 to say the message was malformed, which
 * closes the channel.
 */
typedef int (*ipc_handler_fn)(struct ipc_channel *, struct ipc_msg *,
    void *);

/*
 * One row of a dispatch table: the message types a channel accepts.  A
 * row with a NULL handler accepts the type only as the reply to one of
 * our own requests.  Replies carry IPC_F_REPLY, so request ids of the two
 * ends of a channel never mix.  The table ends with a row of type MSG_NONE.
 */
struct ipc_dispatch {
	uint16_t	 d_type;
	ipc_handler_fn	 d_handler;
};

/* Called once when the channel fails or the peer closes it. */
typedef void (*ipc_close_fn)(struct ipc_channel *, const char *, void *);
/* Called with the reply, or with NULL on timeout or a closed channel. */
typedef void (*ipc_reply_fn)(struct ipc_channel *, struct ipc_msg *,
    void *);

struct ipc_channel *ipc_channel_new(struct event_base *, int, const char *,
	    const struct ipc_dispatch *, ipc_close_fn, void *);
/* Closes the socket and fails every pending request. */
void	 ipc_channel_free(struct ipc_channel *);
const char *ipc_channel_name(const struct ipc_channel *);
int	 ipc_channel_fd(const struct ipc_channel *);

/*
 * Queues a message.  fd, if not -1, is sent with it and closed here once
 * sent.  Returns 0, or -1 if the channel is closed or the payload too big.
 */
int	 ipc_send(struct ipc_channel *, uint16_t, uint32_t, int,
	    const void *, size_t);
/* Sends a request and calls the reply function exactly once. */
int	 ipc_request(struct ipc_channel *, uint16_t, const void *, size_t,
	    unsigned int, ipc_reply_fn, void *);
/* Replies to a request with its id. */
int	 ipc_reply(struct ipc_channel *, const struct ipc_msg *, uint16_t,
	    const void *, size_t);
/*
 * Writes out everything queued, blocking if needed.  For the last words
 * of a process that is about to exit.
 */
void	 ipc_flush(struct ipc_channel *);

#endif
