/*
 * httpd: the unprivileged, chrooted HTTP front end.
 */
#ifndef EPHEMERD_HTTPD_H
#define EPHEMERD_HTTPD_H

struct evhttp_request;
struct buf;

/* Sends {"status","data","message","timestamp"}; data is raw JSON. */
void	 httpd_send_envelope(struct evhttp_request *, int, const char *,
	    const char *, const char *);

/* httpd_runners.c */
struct ipc_channel;
struct ipc_msg;
int	 httpd_runners_on_table(struct ipc_channel *, struct ipc_msg *,
	    void *);
void	 httpd_runners_free(void);
void	 httpd_runners_list(struct evhttp_request *);
void	 httpd_runners_show(struct evhttp_request *, const char *);
void	 httpd_runners_create(struct evhttp_request *);
void	 httpd_runners_delete(struct evhttp_request *, const char *);
void	 httpd_runners_logs(struct evhttp_request *, const char *);
void	 httpd_runners_cleanup(struct evhttp_request *);

#endif
