/*
 * An asynchronous HTTP client: libcurl's multi interface driven by a
 * libevent base, so a process never blocks on the network.  Used by the
 * docker worker (over the engine's unix socket) and the poller (GitHub).
 */
#ifndef EPHEMERD_HTTP_CLIENT_H
#define EPHEMERD_HTTP_CLIENT_H

#include <stddef.h>

#include "buf.h"

struct event_base;
struct http_client;

struct http_response {
	long		 hr_status;	/* 0 if no response came */
	int		 hr_curl_code;	/* CURLcode, 0 on success */
	const char	*hr_error;	/* transport error text, or NULL */
	struct buf	 hr_body;
	struct buf	 hr_headers;	/* raw header lines, "Name: v\r\n" */
	double		 hr_seconds;	/* total time */
	int		 hr_cached;	/* 1: a 304 answered from a cache */
};

/* Called once per request, with the response (valid only during the call). */
typedef void (*http_done_fn)(struct http_response *, void *);

struct http_request {
	const char	 *hq_method;	/* "GET", "POST", "DELETE", ... */
	const char	 *hq_url;
	const char	 *hq_unix_socket;	/* NULL for TCP */
	const char	**hq_headers;	/* NULL-terminated "Name: value" */
	const void	 *hq_body;
	size_t		  hq_body_len;
	long		  hq_timeout_ms;	/* whole transfer; 0 = 30 s */
	const char	 *hq_ca_file;	/* NULL for the system's */
	/* Streams the body to on_data instead of buffering it. */
	int		(*hq_on_data)(const char *, size_t, void *);
};

struct http_client *http_client_new(struct event_base *);
struct event_base *http_client_base(const struct http_client *);
/* Cancels every request in flight, calling their done functions. */
void	 http_client_free(struct http_client *);
/*
 * Starts a request.  Returns an id (> 0) that http_cancel() takes, or -1.
 * The done function is called exactly once, never from inside this call.
 */
long	 http_request_start(struct http_client *, const struct http_request *,
	    http_done_fn, void *);
/*
 * A request that is not sent: done is called on the next turn of the
 * event loop with hr_status 0 and why (copied) as hr_error.  http_cancel()
 * and http_client_free() treat it as any request in flight.  Returns an
 * id, or -1.
 */
long	 http_request_refuse(struct http_client *, const char *, http_done_fn,
	    void *);
/* Cancels a request; its done function is called with hr_status 0. */
void	 http_cancel(struct http_client *, long);
/* Finds a response header (case-insensitive); a new string or NULL. */
char	*http_header_get(const struct http_response *, const char *);

#endif
