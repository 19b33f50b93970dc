/*
 * POST /api/v1/webhook: GitHub's deliveries.  httpd holds no secret, so
 * it checks only the form of the request and hands the raw body with
 * the X-Hub-Signature-256 header to the poller, which verifies it and
 * says what the answer is.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd.h"
#include "log.h"
#include "supervisor.h"
#include "util.h"
#include "webhook.h"

/* GitHub counts a delivery as failed after 10 s without an answer. */
#define WEBHOOK_TIMEOUT_MS	8000
#define WEBHOOK_SIGNATURE_MAX	256

/* A delivery waiting for the poller; the client may leave first. */
struct webhook_wait {
	struct evhttp_request	*ww_req;
};

static void
webhook_on_client_close(void *arg)
{
	struct webhook_wait	*ww = arg;

	ww->ww_req = NULL;
}

/* GitHub may send a form; its hook settings choose the content type. */
static int
webhook_check_type(struct evhttp_request *req)
{
	const char	*ctype;

	ctype = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");
	if (ctype != NULL && strncasecmp(ctype, "application/json", 16) == 0 &&
	    (ctype[16] == '\0' || ctype[16] == ';'))
		return 0;
	httpd_send_error(req, 415, "Content-Type must be application/json: "
	    "choose application/json as the content type in the webhook's "
	    "settings on GitHub");
	return -1;
}

/* The headers GitHub sends; returns -1 after answering 400. */
static int
webhook_check_headers(struct evhttp_request *req, const char **event,
    const char **delivery, const char **signature)
{
	struct evkeyvalq	*in = evhttp_request_get_input_headers(req);

	*event = evhttp_find_header(in, "X-GitHub-Event");
	*delivery = evhttp_find_header(in, "X-GitHub-Delivery");
	*signature = evhttp_find_header(in, "X-Hub-Signature-256");
	if (*event == NULL) {
		httpd_send_error(req, 400, "missing X-GitHub-Event header");
		return -1;
	}
	if (!webhook_header_valid(*event, 0)) {
		httpd_send_error(req, 400, "malformed X-GitHub-Event header");
		return -1;
	}
	if (*delivery != NULL && !webhook_header_valid(*delivery, 1)) {
		httpd_send_error(req, 400, "malformed X-GitHub-Delivery "
		    "header");
		return -1;
	}
	if (*delivery == NULL)
		*delivery = "";
	/* Too long to be right; the poller would refuse it anyway. */
	if (*signature == NULL || strlen(*signature) > WEBHOOK_SIGNATURE_MAX)
		*signature = "";
	return 0;
}

/* The poller's answer: u16 status, str message, blob data (JSON or ""). */
static void
webhook_on_reply(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct webhook_wait	*ww = arg;
	struct evhttp_request	*req = ww->ww_req;

	(void)ch;
	free(ww);
	if (req == NULL)
		return;
	httpd_conn_watch(req, NULL, NULL);
	httpd_send_peer_answer(req, msg, "poller", 0);
}

void
httpd_webhook_receive(struct evhttp_request *req, const char *param)
{
	struct ipc_channel	*poller = child.cs_peers[ROLE_POLLER];
	struct evbuffer		*in = evhttp_request_get_input_buffer(req);
	struct webhook_wait	*ww;
	struct buf		 payload;
	const char		*event, *delivery, *signature;
	const uint8_t		*body;
	size_t			 len;

	(void)param;
	if (webhook_check_type(req) == -1 ||
	    webhook_check_headers(req, &event, &delivery, &signature) == -1)
		return;
	if (poller == NULL) {
		httpd_send_error(req, 503, "the poller is restarting; GitHub "
		    "can redeliver this delivery");
		return;
	}

	len = evbuffer_get_length(in);
	body = len > 0 ? evbuffer_pullup(in, -1) : NULL;
	buf_init(&payload);
	ipc_put_str(&payload, event);
	ipc_put_str(&payload, delivery);
	ipc_put_str(&payload, signature);
	ipc_put_blob(&payload, body, len);

	ww = xcalloc(1, sizeof(*ww));
	ww->ww_req = req;
	httpd_conn_watch(req, webhook_on_client_close, ww);
	if (ipc_request(poller, MSG_WEBHOOK, payload.b_data, payload.b_len,
	    WEBHOOK_TIMEOUT_MS, webhook_on_reply, ww) == -1) {
		httpd_conn_watch(req, NULL, NULL);
		free(ww);
		httpd_send_error(req, 503, "the poller is unavailable; GitHub "
		    "can redeliver this delivery");
	}
	buf_free(&payload);
}
