/*
 * GitHub webhook deliveries, as the poller receives them from httpd: the
 * raw body, the X-GitHub-Event header and the X-Hub-Signature-256 header.
 * httpd holds no secret, so the signature is checked here, before the
 * body is parsed at all.
 */
#ifndef EPHEMERD_WEBHOOK_H
#define EPHEMERD_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define WEBHOOK_SIGNATURE_HEADER	"X-Hub-Signature-256"
/* GitHub does not deliver larger payloads. */
#define WEBHOOK_MAX_BODY		(25 * 1024 * 1024)
#define WEBHOOK_MAX_LABELS		100
/* The longest X-GitHub-Event and X-GitHub-Delivery values taken. */
#define WEBHOOK_EVENT_MAX		64
#define WEBHOOK_DELIVERY_MAX		64

/*
 * True if s is an acceptable X-GitHub-Event value ([A-Za-z0-9_], not
 * empty) or, with delivery set, X-GitHub-Delivery value (visible ASCII
 * but quotes and backslashes, as it is logged and echoed).  httpd checks
 * the headers with it, and the poller again what httpd sent it.
 */
int	 webhook_header_valid(const char *, int);

/*
 * Checks the header value "sha256=<64 hex digits>" against the
 * HMAC-SHA256 of the raw body keyed with the secret, in constant time.
 * A missing (NULL), short, long or non-hex header is refused, and so is
 * an empty secret.  Returns 0 when the signature is right, or -1 with *why
 * set to a short reason that names neither the secret nor the signature.
 */
int	 webhook_verify(const char *, size_t, const void *, size_t,
	    const char *, const char **);

enum webhook_event {
	WEBHOOK_IGNORED = 0,	/* another event: answer 2XX, do nothing */
	WEBHOOK_PING,
	WEBHOOK_WORKFLOW_JOB
};

enum webhook_action {
	WEBHOOK_ACTION_NONE,	/* not a workflow_job delivery */
	WEBHOOK_QUEUED,
	WEBHOOK_IN_PROGRESS,
	WEBHOOK_COMPLETED,
	WEBHOOK_WAITING,
	WEBHOOK_ACTION_OTHER	/* a workflow_job action added later */
};

struct webhook_delivery {
	enum webhook_event	 wd_event;

	/* workflow_job; strings are NULL when GitHub sent null or nothing */
	enum webhook_action	 wd_action;
	uint64_t		 wd_job_id;
	uint64_t		 wd_run_id;
	struct strlist		 wd_labels;
	char			*wd_status;
	char			*wd_conclusion;
	uint64_t		 wd_runner_id;		/* 0 if none */
	char			*wd_runner_name;
	char			*wd_repository;		/* owner/name */
	char			*wd_organization;	/* login */
	uint64_t		 wd_installation_id;	/* 0 if none */
	char			*wd_created_at;

	/* ping */
	char			*wd_zen;
	uint64_t		 wd_hook_id;
};

/*
 * Parses a delivery whose signature was verified; event is the
 * X-GitHub-Event header.  The struct is initialized here.  A workflow_job
 * delivery needs workflow_job.id, .run_id, .labels and .status and
 * repository.full_name; a ping needs hook_id.  Returns 0, or -1 with a
 * message in err and the struct left empty.
 */
int	 webhook_parse(struct webhook_delivery *, const char *, const char *,
	    size_t, char *, size_t);
void	 webhook_delivery_free(struct webhook_delivery *);

const char *webhook_action_name(enum webhook_action);

#endif
