/*
 * httpd's connections: a count with a cap, and a deadline for each
 * request.  evhttp in libevent 2.1 has neither a connection limit nor a
 * hook at accept time besides the one that makes the bufferevent, so the
 * bufferevent is made here and kept with one reference of our own: a
 * connection evhttp has freed is recognized by its callbacks being
 * cleared, and our reference is then dropped.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "log.h"
#include "util.h"

#define SWEEP_INTERVAL_MS	500
#define CONN_HASH_SIZE		1024

TAILQ_HEAD(httpd_conn_list, httpd_conn);

static struct httpd_conn_list	 conns = TAILQ_HEAD_INITIALIZER(conns);
static struct httpd_conn	*conn_hash[CONN_HASH_SIZE];
static struct event		*sweep_ev;
static unsigned int		 conns_open;

static size_t
conn_hash_slot(const struct bufferevent *bev)
{
	return ((uintptr_t)bev >> 4) % CONN_HASH_SIZE;
}

static struct httpd_conn *
conn_lookup(const struct bufferevent *bev)
{
	struct httpd_conn	*hc;

	for (hc = conn_hash[conn_hash_slot(bev)]; hc != NULL;
	    hc = hc->hc_hnext)
		if (hc->hc_bev == bev)
			return hc;
	return NULL;
}

static void
conn_unhash(struct httpd_conn *hc)
{
	struct httpd_conn	**pp = &conn_hash[conn_hash_slot(hc->hc_bev)];

	while (*pp != NULL && *pp != hc)
		pp = &(*pp)->hc_hnext;
	if (*pp != NULL)
		*pp = hc->hc_hnext;
}

static struct bufferevent *
httpd_conn_on_new(struct event_base *base, void *arg)
{
	struct httpd_conn	*hc;

	(void)arg;
	hc = xcalloc(1, sizeof(*hc));
	if ((hc->hc_bev = bufferevent_socket_new(base, -1, 0)) == NULL)
		fatalx("bufferevent_socket_new failed");
	/*
	 * libevent writes at most 16 KiB per turn of the loop by default:
	 * a runner list of a hundred runners would take four turns.
	 */
	if (bufferevent_set_max_single_write(hc->hc_bev,
	    HTTPD_MAX_SINGLE_WRITE) == -1)
		log_warnx(LC_WARNING, "cannot raise the write size of a "
		    "connection");
	bufferevent_incref(hc->hc_bev);
	hc->hc_idle_ms = monotonic_ms();
	hc->hc_over_cap = conns_open >= HTTPD_MAX_CONNECTIONS;
	conns_open++;
	TAILQ_INSERT_TAIL(&conns, hc, hc_entry);
	hc->hc_hnext = conn_hash[conn_hash_slot(hc->hc_bev)];
	conn_hash[conn_hash_slot(hc->hc_bev)] = hc;
	return hc->hc_bev;
}

static void
httpd_conn_mark_dead(struct httpd_conn *hc)
{
	if (hc->hc_dead)
		return;
	hc->hc_dead = 1;
	hc->hc_evcon = NULL;
	conn_unhash(hc);
	conns_open--;
	if (hc->hc_watch_fn != NULL)
		hc->hc_watch_fn(hc->hc_watch_arg);
	hc->hc_watch_fn = NULL;
}

static void
httpd_conn_on_close(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	httpd_conn_mark_dead(arg);
}

/* Has evhttp let go of it?  bufferevent_free() clears the callbacks. */
static int
httpd_conn_released(struct httpd_conn *hc)
{
	bufferevent_data_cb	 rd, wr;
	bufferevent_event_cb	 ev;
	void			*arg;

	bufferevent_getcb(hc->hc_bev, &rd, &wr, &ev, &arg);
	return rd == NULL && wr == NULL && ev == NULL;
}

/*
 * Drops the connections evhttp has freed and cuts the ones whose request
 * did not arrive in time: shutting the socket down makes evhttp read the
 * end of the stream and free the connection itself.
 */
static void
httpd_conn_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct httpd_conn	*hc, *next;
	uint64_t		 now = monotonic_ms();
	evutil_socket_t		 sock;

	(void)fd;
	(void)what;
	(void)arg;
	for (hc = TAILQ_FIRST(&conns); hc != NULL; hc = next) {
		next = TAILQ_NEXT(hc, hc_entry);
		if (httpd_conn_released(hc)) {
			httpd_conn_mark_dead(hc);
			TAILQ_REMOVE(&conns, hc, hc_entry);
			bufferevent_decref(hc->hc_bev);
			free(hc);
			continue;
		}
		if (hc->hc_busy || hc->hc_cut ||
		    now - hc->hc_idle_ms < HTTPD_REQUEST_TIMEOUT_S * 1000)
			continue;
		if ((sock = bufferevent_getfd(hc->hc_bev)) != -1) {
			log_debug(LC_REQUEST, "closing a connection whose "
			    "request did not arrive within %d s",
			    HTTPD_REQUEST_TIMEOUT_S);
			shutdown(sock, SHUT_RDWR);
			hc->hc_cut = 1;
		}
	}
}

void
httpd_conn_setup(struct evhttp *http, struct event_base *base)
{
	struct timeval	 tv = { 0, SWEEP_INTERVAL_MS * 1000 };

	evhttp_set_bevcb(http, httpd_conn_on_new, NULL);
	if ((sweep_ev = event_new(base, -1, EV_PERSIST, httpd_conn_sweep,
	    NULL)) == NULL || event_add(sweep_ev, &tv) == -1)
		fatalx("cannot start the connection sweep");
}

/* After evhttp_free(): every connection is gone. */
void
httpd_conn_teardown(void)
{
	struct httpd_conn	*hc;

	if (sweep_ev != NULL) {
		event_free(sweep_ev);
		sweep_ev = NULL;
	}
	while ((hc = TAILQ_FIRST(&conns)) != NULL) {
		TAILQ_REMOVE(&conns, hc, hc_entry);
		conn_unhash(hc);
		bufferevent_decref(hc->hc_bev);
		free(hc);
	}
	conns_open = 0;
}

unsigned int
httpd_conn_count(void)
{
	return conns_open;
}

/* The record of a request's connection, or NULL. */
struct httpd_conn *
httpd_request_conn(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);

	if (evcon == NULL)
		return NULL;
	return conn_lookup(evhttp_connection_get_bufferevent(evcon));
}

/* A request is being served on its connection. */
struct httpd_conn *
httpd_conn_begin(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct httpd_conn	*hc = httpd_request_conn(req);

	if (hc == NULL)
		return NULL;
	if (hc->hc_evcon == NULL) {
		hc->hc_evcon = evcon;
		evhttp_connection_set_closecb(evcon, httpd_conn_on_close, hc);
	}
	hc->hc_busy = 1;
	return hc;
}

/* The answer went out: the next request's clock starts now. */
void
httpd_conn_end(struct httpd_conn *hc)
{
	hc->hc_busy = 0;
	hc->hc_idle_ms = monotonic_ms();
	hc->hc_watch_fn = NULL;
}

/* Calls fn(arg) if the client leaves before the answer; NULL stops it. */
void
httpd_conn_watch(struct evhttp_request *req, void (*fn)(void *), void *arg)
{
	struct httpd_conn	*hc = httpd_request_conn(req);

	if (hc == NULL)
		return;
	hc->hc_watch_fn = fn;
	hc->hc_watch_arg = arg;
}
