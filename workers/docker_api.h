/*
 * A Docker Engine API client over the engine's unix socket, on top of the
 * asynchronous HTTP client, plus the parsers of what the engine streams:
 * newline-delimited JSON events and multiplexed container logs.
 */
#ifndef EPHEMERD_DOCKER_API_H
#define EPHEMERD_DOCKER_API_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct event_base;
struct http_client;

/* The newest API version spoken; an older engine gets its own. */
#define DOCKER_API_MAX_MAJOR	1
#define DOCKER_API_MAX_MINOR	41

struct docker_engine {
	struct event_base	*de_base;
	struct http_client	*de_http;
	char			*de_socket;
	char			 de_prefix[16];	/* "/v1.41", "" if unknown */
	char			*de_version;	/* the engine's, or NULL */
	char			*de_api_version;
};

/*
 * The outcome of one engine request.  dr_error is NULL on success; else
 * it is the engine's own message, or the transport's error when the
 * engine could not be reached (dr_status 0, dr_transport 1).
 */
struct docker_result {
	long		 dr_status;
	int		 dr_transport;
	const char	*dr_error;
	const char	*dr_body;	/* for logs: the demultiplexed text */
	size_t		 dr_len;
};

typedef void (*docker_done_fn)(const struct docker_result *, void *);

void	 docker_engine_init(struct docker_engine *, struct event_base *,
	    const char *);
void	 docker_engine_free(struct docker_engine *);

/*
 * GET /version; on success the path prefix of every later call is set to
 * the engine's API version, capped at the newest one this client speaks.
 */
long	 docker_version(struct docker_engine *, docker_done_fn, void *);
/* Creates a named container; the body is the JSON of the create call. */
long	 docker_container_create(struct docker_engine *, const char *,
	    const void *, size_t, docker_done_fn, void *);
long	 docker_container_start(struct docker_engine *, const char *,
	    docker_done_fn, void *);
long	 docker_container_stop(struct docker_engine *, const char *, int,
	    docker_done_fn, void *);
/* Removes with force; a container already gone counts as removed. */
long	 docker_container_remove(struct docker_engine *, const char *,
	    docker_done_fn, void *);
long	 docker_container_inspect(struct docker_engine *, const char *,
	    docker_done_fn, void *);
/* Lists all containers (running or not) that carry every label given. */
long	 docker_container_list(struct docker_engine *, const char *const *,
	    docker_done_fn, void *);
/* The last lines of a container's output, demultiplexed. */
long	 docker_container_logs(struct docker_engine *, const char *,
	    unsigned int, docker_done_fn, void *);
/* Pulls "name[:tag]"; a progress line with an error fails the pull. */
long	 docker_image_pull(struct docker_engine *, const char *,
	    docker_done_fn, void *);

/* One event of the engine's event stream, as far as ephemerd cares. */
struct docker_event {
	char	*ev_type;	/* "container", ... */
	char	*ev_action;	/* "die", "destroy", "start", ... */
	char	*ev_id;		/* Actor.ID */
	char	*ev_name;	/* Actor.Attributes.name */
	char	*ev_runner;	/* the runner label, or NULL */
	char	*ev_instance;	/* the instance label, or NULL */
	int	 ev_managed;	/* the managed label is "true" */
	int	 ev_has_exit;
	int	 ev_exit_code;	/* Actor.Attributes.exitCode */
};

typedef void (*docker_event_fn)(const struct docker_event *, void *);

/*
 * Follows GET /events for containers with every label given.  Each event
 * goes to on_event, from the event loop (so the handler may make calls);
 * done is called once when the stream ends or fails.
 */
long	 docker_events(struct docker_engine *, const char *const *,
	    docker_event_fn, docker_done_fn, void *);
void	 docker_cancel(struct docker_engine *, long);

/*
 * Splits a stream of newline-delimited JSON into lines, whatever the
 * chunking.  A line longer than the limit is dropped, with a count.
 */
#define DOCKER_LINE_MAX		(256 * 1024)

struct docker_lines {
	struct buf	 dl_buf;
	int		 dl_skipping;	/* inside an overlong line */
	unsigned long	 dl_dropped;
};

typedef void (*docker_line_fn)(const char *, size_t, void *);

void	 docker_lines_init(struct docker_lines *);
void	 docker_lines_free(struct docker_lines *);
void	 docker_lines_feed(struct docker_lines *, const char *, size_t,
	    docker_line_fn, void *);

/* Parses one event line; returns 0, or -1 if it is no event object. */
int	 docker_event_parse(const char *, size_t, struct docker_event *);
void	 docker_event_free(struct docker_event *);

/*
 * Demultiplexes the log stream of a container without a TTY: frames of an
 * 8-byte header (stream, 0, 0, 0, big-endian u32 size) and the payload.
 * Any chunking is accepted; the payload bytes are appended to dx_out.
 */
struct docker_demux {
	uint8_t		 dx_hdr[8];
	size_t		 dx_have;	/* header bytes seen */
	uint32_t	 dx_left;	/* payload bytes still to come */
	int		 dx_bad;	/* not a multiplexed stream */
	struct buf	*dx_out;
};

void	 docker_demux_init(struct docker_demux *, struct buf *);
/* Returns 0, or -1 once the input proved not to be multiplexed. */
int	 docker_demux_feed(struct docker_demux *, const uint8_t *, size_t);
/* Demultiplexes a whole body, or copies it if it is not multiplexed. */
void	 docker_log_demux(const uint8_t *, size_t, struct buf *);

/* The engine's "message" in an error body, as a new string, or NULL. */
char	*docker_error_message(const char *, size_t);
/* A pull progress line's "error", as a new string, or NULL. */
char	*docker_pull_error(const char *, size_t);
/* Splits "repo[:tag]" ("latest" if none) into two new strings. */
void	 docker_image_split(const char *, char **, char **);
/* The API prefix for an engine's version string: "/v1.41" at most. */
int	 docker_api_prefix(const char *, char *, size_t);
/* Appends s percent-encoded for a URL query. */
void	 docker_url_escape(struct buf *, const char *);

#endif
