/*
 * httpd: the unprivileged, chrooted HTTP front end.
 */
#ifndef EPHEMERD_HTTPD_H
#define EPHEMERD_HTTPD_H

#include <stdint.h>

#include "httpd_policy.h"

struct evhttp;
struct evhttp_request;
struct event_base;
struct bufferevent;
struct evhttp_connection;
struct buf;

#define HTTPD_MAX_BODY		(64 * 1024)	/* larger gets 413 */
#define HTTPD_MAX_CONNECTIONS	512
/* Bytes a connection may write in one turn of the event loop. */
#define HTTPD_MAX_SINGLE_WRITE	(256 * 1024)
#define HTTPD_REQUEST_TIMEOUT_S	15	/* whole request, from idle */

/*
 * One client connection (httpd_conn.c).  A connection serves one request
 * at a time, so the request being served is described here too.
 */
struct httpd_conn {
	TAILQ_ENTRY(httpd_conn)	 hc_entry;
	struct httpd_conn	*hc_hnext;
	struct bufferevent	*hc_bev;
	struct evhttp_connection *hc_evcon;
	uint64_t		 hc_idle_ms;	/* since the last answer */
	int			 hc_busy;
	int			 hc_cut;
	int			 hc_dead;
	int			 hc_over_cap;
	void			(*hc_watch_fn)(void *);
	void			*hc_watch_arg;
	/* The request being served. */
	uint64_t		 hc_start_ms;
	const struct httpd_route *hc_route;
	int			 hc_log;
	char			 hc_method[8];
	char			 hc_client[48];
	char			 hc_path[128];
};

void	 httpd_conn_setup(struct evhttp *, struct event_base *);
void	 httpd_conn_teardown(void);
unsigned int httpd_conn_count(void);
struct httpd_conn *httpd_request_conn(struct evhttp_request *);
struct httpd_conn *httpd_conn_begin(struct evhttp_request *);
void	 httpd_conn_end(struct httpd_conn *);
/* Calls fn(arg) if the client leaves before the answer; NULL stops it. */
void	 httpd_conn_watch(struct evhttp_request *, void (*)(void *), void *);

/* Sends {"status","data","message","timestamp"}; data is raw JSON. */
void	 httpd_send_envelope(struct evhttp_request *, int, const char *,
	    const char *, const char *);

void	 httpd_send_error(struct evhttp_request *, int, const char *);
struct ipc_msg;
/*
 * Answers with a peer's reply of u16 status, str message and blob data
 * (a JSON object, or with the last argument set an array too); 504 when
 * msg is NULL (no answer in time), 502 when it is malformed.
 */
void	 httpd_send_peer_answer(struct evhttp_request *,
	    const struct ipc_msg *, const char *, int);

/* httpd_docs.c */
const char *httpd_openapi_text(size_t *);
void	 httpd_docs_openapi(struct evhttp_request *, const char *);
void	 httpd_docs_swagger(struct evhttp_request *, const char *);
void	 httpd_docs_redoc(struct evhttp_request *, const char *);
void	 httpd_docs_asset(struct evhttp_request *, const char *);

/* httpd_metrics.c */
void	 httpd_metrics_count(const struct httpd_route *, int);
void	 httpd_metrics_serve(struct evhttp_request *, const char *);
void	 httpd_metrics_free(void);
/* Is the line a well-formed sample of the family? */
int	 httpd_metrics_line_ok(const char *, size_t, const char *);

/* httpd_runners.c */
struct ipc_channel;
struct ipc_msg;
int	 httpd_runners_on_table(struct ipc_channel *, struct ipc_msg *,
	    void *);
void	 httpd_runners_free(void);
void	 httpd_runners_list(struct evhttp_request *, const char *);
void	 httpd_runners_show(struct evhttp_request *, const char *);
void	 httpd_runners_create(struct evhttp_request *, const char *);
void	 httpd_runners_delete(struct evhttp_request *, const char *);
void	 httpd_runners_logs(struct evhttp_request *, const char *);
void	 httpd_runners_cleanup(struct evhttp_request *, const char *);
void	 httpd_runners_cleanup_github(struct evhttp_request *, const char *);
void	 httpd_runners_github_status(struct evhttp_request *, const char *);
/* Counts of the runner table by pool and state, as metric lines. */
void	 httpd_runners_metrics(struct buf *);

/* httpd_webhook.c */
void	 httpd_webhook_receive(struct evhttp_request *, const char *);

#endif
