/*
 * The asynchronous HTTP client.  libcurl's multi interface says which
 * sockets to watch and when to wake it up (CURLMOPT_SOCKETFUNCTION and
 * CURLMOPT_TIMERFUNCTION); libevent does the watching and hands the
 * events back with curl_multi_socket_action().
 *
 * curl_global_init() is the caller's job: it must run once, early in
 * main() before any thread or client exists, which this file cannot know.
 *
 * A done function may start or cancel requests and even free the client;
 * an on_data function may cancel requests or free the client too, but
 * libcurl forbids touching the multi handle from inside its callbacks, so
 * those calls are carried out once libcurl has returned.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "buf.h"
#include "http_client.h"
#include "log.h"
#include "util.h"

#define HTTP_DEFAULT_TIMEOUT_MS	30000L
#define HTTP_CONNECT_TIMEOUT_MS	5000L
#define HTTP_MAX_BODY		((size_t)16 * 1024 * 1024)

struct http_xfer {
	TAILQ_ENTRY(http_xfer)	 hx_entry;
	struct http_client	*hx_client;
	long			 hx_id;
	CURL			*hx_easy;
	int			 hx_added;	/* in the multi handle */
	int			 hx_cancelled;
	struct curl_slist	*hx_headers;
	void			*hx_body;	/* our copy of the body */
	size_t			 hx_body_len;
	http_done_fn		 hx_done;
	void			*hx_arg;
	int			(*hx_on_data)(const char *, size_t, void *);
	struct event		*hx_defer;	/* to finish outside a call */
	CURLcode		 hx_fail_code;
	const char		*hx_fail;	/* our error text, or NULL */
	char			*hx_refusal;	/* why it was never sent */
	struct http_response	 hx_resp;
	char			 hx_errbuf[CURL_ERROR_SIZE];
};

struct http_sock {
	TAILQ_ENTRY(http_sock)	 hs_entry;
	struct http_client	*hs_client;
	struct event		*hs_ev;
};

struct http_client {
	struct event_base	*hc_base;
	CURLM			*hc_multi;
	struct event		*hc_timer;
	long			 hc_next_id;
	int			 hc_busy;	/* inside our event callbacks */
	int			 hc_in_curl;	/* inside libcurl */
	int			 hc_dying;	/* http_client_free called */
	TAILQ_HEAD(, http_xfer)	 hc_xfers;
	TAILQ_HEAD(, http_sock)	 hc_socks;
};

static void	 http_enter(struct http_client *);
static void	 http_leave(struct http_client *);
static void	 http_client_destroy(struct http_client *);
static int	 http_socket_cb(CURL *, curl_socket_t, int, void *, void *);
static void	 http_sock_free(struct http_client *, struct http_sock *);
static void	 http_sock_event_cb(evutil_socket_t, short, void *);
static int	 http_timer_set_cb(CURLM *, long, void *);
static void	 http_timer_cb(evutil_socket_t, short, void *);
static void	 http_defer_cb(evutil_socket_t, short, void *);
static void	 http_action(struct http_client *, curl_socket_t, int);
static void	 http_finish(struct http_xfer *, CURLcode, const char *);
static void	 http_defer(struct http_xfer *, CURLcode, const char *);
static struct http_xfer *http_xfer_new(struct http_client *,
		    http_done_fn, void *);
static void	 http_xfer_free(struct http_xfer *);
static size_t	 http_write_cb(char *, size_t, size_t, void *);
static size_t	 http_header_cb(char *, size_t, size_t, void *);
static CURLcode	 http_setup_common(struct http_xfer *,
		    const struct http_request *);
static CURLcode	 http_setup_method(struct http_xfer *,
		    const struct http_request *);

struct event_base *
http_client_base(const struct http_client *c)
{
	return c->hc_base;
}

struct http_client *
http_client_new(struct event_base *base)
{
	struct http_client	*c;

	c = xcalloc(1, sizeof(*c));
	c->hc_base = base;
	c->hc_next_id = 1;
	TAILQ_INIT(&c->hc_xfers);
	TAILQ_INIT(&c->hc_socks);

	if ((c->hc_multi = curl_multi_init()) == NULL)
		fatalx("curl_multi_init failed");
	if ((c->hc_timer = evtimer_new(base, http_timer_cb, c)) == NULL)
		fatalx("evtimer_new failed");
	curl_multi_setopt(c->hc_multi, CURLMOPT_SOCKETFUNCTION,
	    http_socket_cb);
	curl_multi_setopt(c->hc_multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->hc_multi, CURLMOPT_TIMERFUNCTION,
	    http_timer_set_cb);
	curl_multi_setopt(c->hc_multi, CURLMOPT_TIMERDATA, c);
	/* One connection cache: keep-alive, and HTTP/2 streams share one. */
	curl_multi_setopt(c->hc_multi, CURLMOPT_PIPELINING,
	    (long)CURLPIPE_MULTIPLEX);
	return c;
}

void
http_client_free(struct http_client *c)
{
	struct http_xfer	*x;

	if (c == NULL || c->hc_dying)
		return;
	c->hc_dying = 1;
	if (c->hc_busy == 0) {
		http_client_destroy(c);
		return;
	}

	/* Called back from us: no more data; destroyed when we return. */
	TAILQ_FOREACH(x, &c->hc_xfers, hx_entry)
		x->hx_cancelled = 1;
}

/* Cancels what is left, then frees the client; never from a callback. */
static void
http_client_destroy(struct http_client *c)
{
	struct http_xfer	*x;
	struct http_sock	*s;

	/* The done functions may call in; keep them from destroying c. */
	c->hc_busy++;
	while ((x = TAILQ_FIRST(&c->hc_xfers)) != NULL)
		http_finish(x, CURLE_ABORTED_BY_CALLBACK, "cancelled");

	/* Cached connections are closed now; their events are ours. */
	curl_multi_setopt(c->hc_multi, CURLMOPT_SOCKETFUNCTION, NULL);
	curl_multi_setopt(c->hc_multi, CURLMOPT_TIMERFUNCTION, NULL);
	curl_multi_cleanup(c->hc_multi);
	while ((s = TAILQ_FIRST(&c->hc_socks)) != NULL)
		http_sock_free(c, s);

	event_free(c->hc_timer);
	free(c);
}

static void
http_enter(struct http_client *c)
{
	c->hc_busy++;
}

static void
http_leave(struct http_client *c)
{
	if (--c->hc_busy == 0 && c->hc_dying)
		http_client_destroy(c);
}

/* libcurl wants a socket watched differently, or not at all. */
static int
http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *cp, void *sp)
{
	struct http_client	*c = cp;
	struct http_sock	*s = sp;
	short			 ev = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			http_sock_free(c, s);
		return 0;
	}

	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->hs_client = c;
		TAILQ_INSERT_TAIL(&c->hc_socks, s, hs_entry);
		curl_multi_assign(c->hc_multi, fd, s);
	} else if (s->hs_ev != NULL)
		event_free(s->hs_ev);

	if (what & CURL_POLL_IN)
		ev |= EV_READ;
	if (what & CURL_POLL_OUT)
		ev |= EV_WRITE;
	s->hs_ev = event_new(c->hc_base, fd, ev, http_sock_event_cb, s);
	if (s->hs_ev == NULL || event_add(s->hs_ev, NULL) == -1)
		fatalx("cannot watch an HTTP client socket");
	return 0;
}

static void
http_sock_free(struct http_client *c, struct http_sock *s)
{
	TAILQ_REMOVE(&c->hc_socks, s, hs_entry);
	if (s->hs_ev != NULL)
		event_free(s->hs_ev);
	free(s);
}

static void
http_sock_event_cb(evutil_socket_t fd, short events, void *arg)
{
	struct http_sock	*s = arg;
	int			 flags = 0;

	if (events & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (events & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	/* s may be freed inside; only its client is used from here on. */
	http_action(s->hs_client, fd, flags);
}

/* libcurl asks to be woken in ms milliseconds, or never (-1). */
static int
http_timer_set_cb(CURLM *multi, long ms, void *arg)
{
	struct http_client	*c = arg;
	struct timeval		 tv;

	(void)multi;
	if (ms < 0) {
		evtimer_del(c->hc_timer);
		return 0;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (evtimer_add(c->hc_timer, &tv) == -1)
		fatalx("cannot arm the HTTP client timer");
	return 0;
}

static void
http_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	http_action(arg, CURL_SOCKET_TIMEOUT, 0);
}

/* Lets libcurl work, then finishes the transfers it has completed. */
static void
http_action(struct http_client *c, curl_socket_t fd, int flags)
{
	struct http_xfer	*x;
	CURLMsg			*m;
	char			*priv;
	int			 running, left;

	http_enter(c);
	c->hc_in_curl = 1;
	curl_multi_socket_action(c->hc_multi, fd, flags, &running);
	c->hc_in_curl = 0;

	/* Removing a handle also drops its queued message. */
	while ((m = curl_multi_info_read(c->hc_multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		x = (struct http_xfer *)priv;
		http_finish(x, m->data.result, x->hx_fail);
	}
	http_leave(c);
}

static void
http_defer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct http_xfer	*x = arg;
	struct http_client	*c = x->hx_client;

	(void)fd;
	(void)events;
	http_enter(c);
	http_finish(x, x->hx_fail_code, x->hx_fail);
	http_leave(c);
}

/* Finishes x from the event loop, on its next turn. */
static void
http_defer(struct http_xfer *x, CURLcode code, const char *why)
{
	struct timeval	 zero = { 0, 0 };

	x->hx_fail_code = code;
	x->hx_fail = why;
	if (x->hx_defer == NULL &&
	    (x->hx_defer = evtimer_new(x->hx_client->hc_base, http_defer_cb,
	    x)) == NULL)
		fatalx("evtimer_new failed");
	if (evtimer_add(x->hx_defer, &zero) == -1)
		fatalx("evtimer_add failed");
}

/*
 * Calls the done function and frees x.  A transfer that failed reports
 * hr_status 0 even if a status line came, so that a caller checking only
 * the status never takes a truncated body for a whole one.
 */
static void
http_finish(struct http_xfer *x, CURLcode code, const char *why)
{
	struct http_client	*c = x->hx_client;
	struct http_response	*r = &x->hx_resp;
	long			 status = 0;
	double			 secs = 0;

	TAILQ_REMOVE(&c->hc_xfers, x, hx_entry);
	if (x->hx_easy != NULL) {
		curl_easy_getinfo(x->hx_easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(x->hx_easy, CURLINFO_TOTAL_TIME, &secs);
		if (x->hx_added)
			curl_multi_remove_handle(c->hc_multi, x->hx_easy);
		x->hx_added = 0;
	}

	r->hr_curl_code = code;
	r->hr_seconds = secs;
	if (code == CURLE_OK && why == NULL) {
		r->hr_status = status;
		r->hr_error = NULL;
	} else {
		r->hr_status = 0;
		if (why != NULL)
			r->hr_error = why;
		else if (x->hx_errbuf[0] != '\0')
			r->hr_error = x->hx_errbuf;
		else
			r->hr_error = curl_easy_strerror(code);
	}

	x->hx_done(r, x->hx_arg);
	http_xfer_free(x);
}

static void
http_xfer_free(struct http_xfer *x)
{
	struct curl_slist	*h;

	if (x->hx_easy != NULL)
		curl_easy_cleanup(x->hx_easy);
	/* Headers carry tokens, bodies JIT configurations: wipe both. */
	for (h = x->hx_headers; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(x->hx_headers);
	if (x->hx_defer != NULL)
		event_free(x->hx_defer);
	free(x->hx_refusal);
	if (x->hx_body != NULL)
		explicit_bzero(x->hx_body, x->hx_body_len);
	free(x->hx_body);
	buf_free(&x->hx_resp.hr_body);
	buf_free(&x->hx_resp.hr_headers);
	free(x);
}

static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_xfer	*x = arg;
	struct buf		*body = &x->hx_resp.hr_body;
	size_t			 len = size * nmemb;

	/* A short count makes libcurl stop with CURLE_WRITE_ERROR. */
	if (x->hx_cancelled)
		return 0;
	if (x->hx_on_data != NULL) {
		if (x->hx_on_data(data, len, x->hx_arg) == -1) {
			x->hx_fail = "transfer stopped by the data handler";
			return 0;
		}
		return len;
	}

	if (len > HTTP_MAX_BODY - body->b_len) {
		x->hx_fail = "response body larger than 16 MiB";
		return 0;
	}
	buf_add(body, data, len);
	return len;
}

/* Keeps the header lines of the last block (after 1xx, redirects). */
static size_t
http_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_xfer	*x = arg;
	size_t			 len = size * nmemb;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
		buf_reset(&x->hx_resp.hr_headers);
	else if (len > 2 || (len > 0 && data[0] != '\r' && data[0] != '\n'))
		buf_add(&x->hx_resp.hr_headers, data, len);
	return len;
}

/* Sets an option unless an earlier one failed: the first failure wins. */
#define HTTP_SET(opt, val) do {						\
	if (rc == CURLE_OK)						\
		rc = curl_easy_setopt(e, (opt), (val));			\
} while (0)

/* Options every request gets. */
static CURLcode
http_setup_common(struct http_xfer *x, const struct http_request *req)
{
	CURL		*e = x->hx_easy;
	CURLcode	 rc = CURLE_OK;
	long		 timeout;

	timeout = req->hq_timeout_ms > 0 ? req->hq_timeout_ms :
	    HTTP_DEFAULT_TIMEOUT_MS;
	HTTP_SET(CURLOPT_PRIVATE, (char *)x);
	HTTP_SET(CURLOPT_ERRORBUFFER, x->hx_errbuf);
	HTTP_SET(CURLOPT_NOSIGNAL, 1L);
	HTTP_SET(CURLOPT_URL, req->hq_url);
#if LIBCURL_VERSION_NUM >= 0x075500
	HTTP_SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	HTTP_SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	HTTP_SET(CURLOPT_FOLLOWLOCATION, 0L);
	HTTP_SET(CURLOPT_TIMEOUT_MS, timeout);
	HTTP_SET(CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
	HTTP_SET(CURLOPT_WRITEFUNCTION, http_write_cb);
	HTTP_SET(CURLOPT_WRITEDATA, x);
	HTTP_SET(CURLOPT_HEADERFUNCTION, http_header_cb);
	HTTP_SET(CURLOPT_HEADERDATA, x);
	if (req->hq_unix_socket != NULL)
		HTTP_SET(CURLOPT_UNIX_SOCKET_PATH, req->hq_unix_socket);
	if (req->hq_ca_file != NULL)
		HTTP_SET(CURLOPT_CAINFO, req->hq_ca_file);
	HTTP_SET(CURLOPT_TCP_KEEPALIVE, 1L);
	if (rc != CURLE_OK)
		return rc;

	/* Waiting for a connection that can multiplex beats opening one. */
	if (req->hq_unix_socket == NULL &&
	    strncasecmp(req->hq_url, "https://", 8) == 0)
		curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);

	/* A preference: libcurl without HTTP/2 refuses it, and that is fine. */
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
	    (long)CURL_HTTP_VERSION_2TLS);
	return CURLE_OK;
}

static CURLcode
http_setup_method(struct http_xfer *x, const struct http_request *req)
{
	CURL		*e = x->hx_easy;
	CURLcode	 rc = CURLE_OK;
	const char	*method, **h;

	method = req->hq_method != NULL ? req->hq_method : "GET";

	for (h = req->hq_headers; h != NULL && *h != NULL; h++) {
		x->hx_headers = curl_slist_append(x->hx_headers, *h);
		if (x->hx_headers == NULL)
			fatalx("curl_slist_append failed");
	}
	HTTP_SET(CURLOPT_HTTPHEADER, x->hx_headers);

	/* libcurl does not copy a body, and the caller's may go away. */
	if (req->hq_body_len > 0 || strcmp(method, "POST") == 0) {
		x->hx_body = xmalloc(req->hq_body_len);
		x->hx_body_len = req->hq_body_len;
		if (req->hq_body_len > 0)
			memcpy(x->hx_body, req->hq_body, req->hq_body_len);
		HTTP_SET(CURLOPT_POST, 1L);
		HTTP_SET(CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)req->hq_body_len);
		HTTP_SET(CURLOPT_POSTFIELDS, x->hx_body);
		if (strcmp(method, "POST") != 0)
			HTTP_SET(CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "HEAD") == 0)
		HTTP_SET(CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") == 0)
		HTTP_SET(CURLOPT_HTTPGET, 1L);
	else
		HTTP_SET(CURLOPT_CUSTOMREQUEST, method);
	return rc;
}
#undef HTTP_SET

static struct http_xfer *
http_xfer_new(struct http_client *c, http_done_fn done, void *arg)
{
	struct http_xfer	*x;

	x = xcalloc(1, sizeof(*x));
	x->hx_client = c;
	x->hx_id = c->hc_next_id++;
	x->hx_done = done;
	x->hx_arg = arg;
	buf_init(&x->hx_resp.hr_body);
	buf_init(&x->hx_resp.hr_headers);
	TAILQ_INSERT_TAIL(&c->hc_xfers, x, hx_entry);
	return x;
}

long
http_request_start(struct http_client *c, const struct http_request *req,
    http_done_fn done, void *arg)
{
	struct http_xfer	*x;
	CURLcode		 rc;

	if (c->hc_dying || req->hq_url == NULL || done == NULL)
		return -1;
	x = http_xfer_new(c, done, arg);
	x->hx_on_data = req->hq_on_data;

	/* Failures here reach the done function from the event loop. */
	if ((x->hx_easy = curl_easy_init()) == NULL) {
		http_defer(x, CURLE_FAILED_INIT, "cannot create a transfer");
		return x->hx_id;
	}
	if ((rc = http_setup_common(x, req)) != CURLE_OK ||
	    (rc = http_setup_method(x, req)) != CURLE_OK) {
		http_defer(x, rc, curl_easy_strerror(rc));
		return x->hx_id;
	}
	if (curl_multi_add_handle(c->hc_multi, x->hx_easy) != CURLM_OK) {
		http_defer(x, CURLE_FAILED_INIT, "cannot start a transfer");
		return x->hx_id;
	}
	x->hx_added = 1;
	return x->hx_id;
}

long
http_request_refuse(struct http_client *c, const char *why,
    http_done_fn done, void *arg)
{
	struct http_xfer	*x;

	if (c->hc_dying || why == NULL || done == NULL)
		return -1;
	x = http_xfer_new(c, done, arg);
	x->hx_refusal = xstrdup(why);
	http_defer(x, CURLE_ABORTED_BY_CALLBACK, x->hx_refusal);
	return x->hx_id;
}

void
http_cancel(struct http_client *c, long id)
{
	struct http_xfer	*x;

	TAILQ_FOREACH(x, &c->hc_xfers, hx_entry) {
		if (x->hx_id == id)
			break;
	}
	if (x == NULL || x->hx_cancelled)
		return;

	x->hx_cancelled = 1;
	if (c->hc_in_curl) {
		http_defer(x, CURLE_ABORTED_BY_CALLBACK, "cancelled");
		return;
	}
	http_enter(c);
	http_finish(x, CURLE_ABORTED_BY_CALLBACK, "cancelled");
	http_leave(c);
}

char *
http_header_get(const struct http_response *r, const char *name)
{
	const char	*p, *end, *eol, *colon, *v, *ve;
	char		*found = NULL;
	size_t		 nlen = strlen(name);

	if (r->hr_headers.b_len == 0)
		return NULL;
	p = (const char *)r->hr_headers.b_data;
	end = p + r->hr_headers.b_len;

	/* Every occurrence is looked at: the last one wins. */
	for (; p < end; p = eol < end ? eol + 1 : end) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL || (size_t)(colon - p) != nlen ||
		    strncasecmp(p, name, nlen) != 0)
			continue;

		v = colon + 1;
		ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' ||
		    ve[-1] == '\r'))
			ve--;
		free(found);
		found = xstrndup(v, (size_t)(ve - v));
	}
	return found;
}
