/*
 * libFuzzer harness for webhook deliveries.  The first byte picks the
 * event, the first line is the signature header, the rest the body.  The
 * signature check must accept exactly the right HMAC, computed here with
 * OpenSSL directly, and the parser must return an error or a delivery
 * whose required fields are there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "webhook.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char	 secret[] = "It's a Secret to Everybody";
static const char *const events[] = { "workflow_job", "ping", "push", "" };

static void
check_signature(const char *header, const uint8_t *body, size_t len)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0, i;
	char		 good[80];
	const char	*why = NULL;
	int		 rc;

	rc = webhook_verify(secret, sizeof(secret) - 1, body, len, header,
	    &why);
	if (rc == -1 && why == NULL)
		abort();

	if (HMAC(EVP_sha256(), secret, sizeof(secret) - 1, body, len, md,
	    &mdlen) == NULL || mdlen != 32)
		abort();
	strcpy(good, "sha256=");
	for (i = 0; i < mdlen; i++)
		snprintf(good + 7 + 2 * i, 3, "%02x", md[i]);
	if (webhook_verify(secret, sizeof(secret) - 1, body, len, good,
	    &why) != 0)
		abort();

	/* Accepted means equal to the right one, but for hex case. */
	if (rc == 0 && strcasecmp(header, good) != 0)
		abort();
}

static void
check_delivery(const struct webhook_delivery *wd)
{
	if (wd->wd_event == WEBHOOK_WORKFLOW_JOB) {
		if (wd->wd_job_id == 0 || wd->wd_run_id == 0 ||
		    wd->wd_status == NULL || wd->wd_repository == NULL ||
		    strchr(wd->wd_repository, '/') == NULL ||
		    wd->wd_action == WEBHOOK_ACTION_NONE ||
		    wd->wd_labels.sl_count > WEBHOOK_MAX_LABELS)
			abort();
	} else if (wd->wd_event == WEBHOOK_PING) {
		if (wd->wd_hook_id == 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct webhook_delivery	 wd;
	const uint8_t		*nl, *body;
	char			*header, err[256];
	size_t			 hlen, blen;

	if (size < 1)
		return 0;
	nl = memchr(data + 1, '\n', size - 1);
	hlen = nl == NULL ? size - 1 : (size_t)(nl - (data + 1));
	header = malloc(hlen + 1);
	if (header == NULL)
		abort();
	memcpy(header, data + 1, hlen);
	header[hlen] = '\0';
	body = nl == NULL ? data + size : nl + 1;
	blen = (size_t)(data + size - body);

	check_signature(header, body, blen);

	err[0] = '\0';
	if (webhook_parse(&wd, events[data[0] % 4], (const char *)body, blen,
	    err, sizeof(err)) == 0) {
		check_delivery(&wd);
		webhook_delivery_free(&wd);
	} else if (err[0] == '\0')
		abort();
	free(header);
	return 0;
}
