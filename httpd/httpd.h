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

#endif
