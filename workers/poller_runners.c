/*
 * Runners on the GitHub side.  A creation asked for by httpd is checked
 * again here, given a pool and names, registered with GitHub (one
 * just-in-time configuration per runner, or one registration token per
 * scope) and only then handed to the docker worker, all runners in
 * parallel.  Runners that ended are deregistered, and while runners live
 * their state on GitHub is polled and passed on to the docker worker.
 */
#include <sys/queue.h>
#include <sys/random.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "github.h"
#include "json_write.h"
#include "log.h"
#include "demand.h"
#include "poller_auto.h"
#include "poller_runners.h"
#include "runner.h"
#include "supervisor.h"
#include "util.h"


#define CREATE_COUNT_MAX	1000
#define RECENT_TTL_MS		(60 * 1000)
#define GROUP_TTL_MS		(10 * 60 * 1000)
#define LIST_PAGES_MAX		50
#define GONE_MAX		256	/* runners remembered once gone */

/* The architecture label GitHub's runner gives itself on this machine. */
#if defined(__aarch64__)
#define RUNNER_ARCH_LABEL	"ARM64"
#elif defined(__arm__)
#define RUNNER_ARCH_LABEL	"ARM"
#elif defined(__i386__)
#define RUNNER_ARCH_LABEL	"X86"
#else
#define RUNNER_ARCH_LABEL	"X64"
#endif

enum item_state {
	ITEM_GITHUB = 0,	/* waiting for GitHub */
	ITEM_DOCKER,		/* waiting for the docker worker */
	ITEM_DONE
};

struct create_job;

struct create_item {
	struct create_job	*ci_job;
	char			*ci_name;
	enum item_state		 ci_state;
	int			 ci_ok;
	int			 ci_status;	/* HTTP status if it failed */
	char			*ci_message;
	uint64_t		 ci_github_id;
	char			*ci_jit;	/* secret */
};

struct create_job {
	TAILQ_ENTRY(create_job)	 cj_entry;
	struct ipc_channel	*cj_chan;	/* NULL once httpd went away */
	struct ipc_msg		 cj_req;
	char			*cj_scope;
	char			*cj_scope_name;
	char			*cj_pool;
	const char		*cj_origin;	/* "api" or "auto" */
	struct strlist		 cj_labels;	/* the pool's */
	int			 cj_token_mode;
	char			*cj_group;	/* runner group name, or "" */
	uint64_t		 cj_group_id;
	char			*cj_token;	/* secret */
	struct create_item	*cj_items;
	size_t			 cj_n;
	size_t			 cj_pending;
};

/* A runner that was started and is not yet in the docker worker's table. */
struct recent_runner {
	TAILQ_ENTRY(recent_runner) rr_entry;
	char			*rr_name;
	char			*rr_pool;
	char			*rr_scope;
	char			*rr_scope_name;
	struct strlist		 rr_labels;
	uint64_t		 rr_until_ms;
};

/*
 * A runner seen busy, or named by GitHub as the one that took a job.
 * While its job is not named, the scheduler may count it as covering a
 * job its queue still shows (demand_busy_may_cover()).
 */
struct busy_runner {
	TAILQ_ENTRY(busy_runner) br_entry;
	char			*br_name;
	uint64_t		 br_since_ms;	/* first seen busy, or 0 */
	uint64_t		 br_touched_ms;
	int			 br_job_named;
};

struct cached_token {
	TAILQ_ENTRY(cached_token) ct_entry;
	char			*ct_scope;	/* "repo:o/r" or "org:o" */
	char			*ct_token;	/* secret */
	time_t			 ct_expires;
};

struct cached_group {
	TAILQ_ENTRY(cached_group) cg_entry;
	char			*cg_org;
	char			*cg_name;
	uint64_t		 cg_id;
	uint64_t		 cg_until_ms;
};

struct list_fetch;
typedef void (*list_done_fn)(struct list_fetch *, const char *, void *);

/* GitHub's runner list of one scope, read page after page. */
struct list_fetch {
	char			*lf_scope;
	char			*lf_scope_name;
	char			*lf_url;
	int			 lf_pages;
	struct github_runner_list lf_list;
	list_done_fn		 lf_done;
	void			*lf_arg;
};

/*
 * A runner whose container is gone: a job it took may be reported
 * after that, and its start is still wanted for the metrics.
 */
struct gone_runner {
	char			*gr_name;
	char			*gr_pool;
	int64_t			 gr_created;
};

TAILQ_HEAD(create_jobs, create_job);
TAILQ_HEAD(recent_runners, recent_runner);
TAILQ_HEAD(busy_runners, busy_runner);
TAILQ_HEAD(cached_tokens, cached_token);
TAILQ_HEAD(cached_groups, cached_group);

static struct github		*pr_github;
static int			 pr_stopping;
static struct create_jobs	 pr_jobs = TAILQ_HEAD_INITIALIZER(pr_jobs);
static struct recent_runners	 pr_recent = TAILQ_HEAD_INITIALIZER(pr_recent);
static struct busy_runners	 pr_busy = TAILQ_HEAD_INITIALIZER(pr_busy);
static struct cached_tokens	 pr_tokens = TAILQ_HEAD_INITIALIZER(pr_tokens);
static struct cached_groups	 pr_groups = TAILQ_HEAD_INITIALIZER(pr_groups);
static struct runner		*pr_table;
static size_t			 pr_ntable;
static int			 pr_have_table;
static struct event		*pr_status_ev;
static int			 pr_status_busy;
static uint64_t			 pr_deregistered;
static struct gone_runner	 pr_gone[GONE_MAX];
static size_t			 pr_gone_next;

static void	 job_start_runners(struct create_job *);
static void	 job_item_done(struct create_item *, int, int, const char *);

/* ---- the docker worker's table ------------------------------------ */

static const struct runner *
table_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < pr_ntable; i++)
		if (strcmp(pr_table[i].rn_name, name) == 0)
			return &pr_table[i];
	return NULL;
}

static void
recent_free(struct recent_runner *rr)
{
	TAILQ_REMOVE(&pr_recent, rr, rr_entry);
	free(rr->rr_name);
	free(rr->rr_pool);
	free(rr->rr_scope);
	free(rr->rr_scope_name);
	strlist_clear(&rr->rr_labels, 0);
	free(rr);
}

/* Forgets started runners once the table shows them, or after a while. */
static void
recent_prune(void)
{
	struct recent_runner	*rr, *next;
	uint64_t		 now = monotonic_ms();

	TAILQ_FOREACH_SAFE(rr, &pr_recent, rr_entry, next)
		if (table_find(rr->rr_name) != NULL || now >= rr->rr_until_ms)
			recent_free(rr);
}

static struct busy_runner *
busy_find(const char *name, int create)
{
	struct busy_runner	*br;

	TAILQ_FOREACH(br, &pr_busy, br_entry)
		if (strcmp(br->br_name, name) == 0)
			break;
	if (br == NULL && create) {
		br = xcalloc(1, sizeof(*br));
		br->br_name = xstrdup(name);
		TAILQ_INSERT_TAIL(&pr_busy, br, br_entry);
	}
	if (br != NULL)
		br->br_touched_ms = monotonic_ms();
	return br;
}

static void
busy_free(struct busy_runner *br)
{
	TAILQ_REMOVE(&pr_busy, br, br_entry);
	free(br->br_name);
	free(br);
}

/*
 * Notes when each runner of a new table was first seen busy, and forgets
 * the runners gone from it a while ago (a job may be named late).
 */
static void
busy_update(void)
{
	struct busy_runner	*br, *next;
	uint64_t		 now = monotonic_ms();
	size_t			 i;

	for (i = 0; i < pr_ntable; i++) {
		if (pr_table[i].rn_status != RUNNER_BUSY)
			continue;
		br = busy_find(pr_table[i].rn_name, 1);
		if (br->br_since_ms == 0)
			br->br_since_ms = now;
	}
	TAILQ_FOREACH_SAFE(br, &pr_busy, br_entry, next)
		if (table_find(br->br_name) == NULL &&
		    now - br->br_touched_ms >= RECENT_TTL_MS)
			busy_free(br);
}

static void
busy_clear(void)
{
	while (!TAILQ_EMPTY(&pr_busy))
		busy_free(TAILQ_FIRST(&pr_busy));
}

void
poller_runners_job_named(const char *name)
{
	if (name != NULL && *name != '\0' && table_find(name) != NULL)
		busy_find(name, 1)->br_job_named = 1;
}

/* Runners of a pool that count against its max_runners. */
static size_t
pool_in_use(const char *pool)
{
	struct create_job	*cj;
	struct recent_runner	*rr;
	size_t			 i, n = 0;

	for (i = 0; i < pr_ntable; i++)
		if (strcmp(pr_table[i].rn_pool, pool) == 0 &&
		    pr_table[i].rn_status != RUNNER_EXITED)
			n++;
	TAILQ_FOREACH(cj, &pr_jobs, cj_entry) {
		if (strcmp(cj->cj_pool, pool) != 0)
			continue;
		for (i = 0; i < cj->cj_n; i++)
			if ((cj->cj_items[i].ci_state != ITEM_DONE ||
			    cj->cj_items[i].ci_ok) &&
			    table_find(cj->cj_items[i].ci_name) == NULL)
				n++;
	}
	TAILQ_FOREACH(rr, &pr_recent, rr_entry)
		if (strcmp(rr->rr_pool, pool) == 0)
			n++;
	return n;
}

static int
name_in_use(const char *name)
{
	struct create_job	*cj;
	struct recent_runner	*rr;
	size_t			 i;

	if (table_find(name) != NULL)
		return 1;
	TAILQ_FOREACH(cj, &pr_jobs, cj_entry)
		for (i = 0; i < cj->cj_n; i++)
			if (cj->cj_items[i].ci_name != NULL &&
			    strcmp(cj->cj_items[i].ci_name, name) == 0)
				return 1;
	TAILQ_FOREACH(rr, &pr_recent, rr_entry)
		if (strcmp(rr->rr_name, name) == 0)
			return 1;
	return 0;
}

/* ---- caches --------------------------------------------------------- */

static struct cached_token *
token_find(const char *key)
{
	struct cached_token	*ct, *next;
	time_t			 now = time(NULL);

	TAILQ_FOREACH_SAFE(ct, &pr_tokens, ct_entry, next) {
		if (ct->ct_expires - POLLER_TOKEN_MARGIN <= now) {
			TAILQ_REMOVE(&pr_tokens, ct, ct_entry);
			free(ct->ct_scope);
			freezero_str(ct->ct_token);
			free(ct);
			continue;
		}
		if (strcmp(ct->ct_scope, key) == 0)
			return ct;
	}
	return NULL;
}

static void
token_store(const char *key, const char *token, time_t expires)
{
	struct cached_token	*ct;

	if (token_find(key) != NULL)
		return;
	ct = xcalloc(1, sizeof(*ct));
	ct->ct_scope = xstrdup(key);
	ct->ct_token = xstrdup(token);
	ct->ct_expires = expires;
	TAILQ_INSERT_TAIL(&pr_tokens, ct, ct_entry);
}

static struct cached_group *
group_find(const char *org, const char *name)
{
	struct cached_group	*cg, *next;
	uint64_t		 now = monotonic_ms();

	TAILQ_FOREACH_SAFE(cg, &pr_groups, cg_entry, next) {
		if (now >= cg->cg_until_ms) {
			TAILQ_REMOVE(&pr_groups, cg, cg_entry);
			free(cg->cg_org);
			free(cg->cg_name);
			free(cg);
			continue;
		}
		if (strcasecmp(cg->cg_org, org) == 0 &&
		    strcasecmp(cg->cg_name, name) == 0)
			return cg;
	}
	return NULL;
}

static void
group_store(const char *org, const char *name, uint64_t id)
{
	struct cached_group	*cg;

	if (group_find(org, name) != NULL)
		return;
	cg = xcalloc(1, sizeof(*cg));
	cg->cg_org = xstrdup(org);
	cg->cg_name = xstrdup(name);
	cg->cg_id = id;
	cg->cg_until_ms = monotonic_ms() + GROUP_TTL_MS;
	TAILQ_INSERT_TAIL(&pr_groups, cg, cg_entry);
}

/* ---- GitHub's runner list of one scope -------------------------------- */

static void	 list_fetch_page(struct list_fetch *);

static void
list_fetch_free(struct list_fetch *lf)
{
	free(lf->lf_scope);
	free(lf->lf_scope_name);
	free(lf->lf_url);
	github_runner_list_free(&lf->lf_list);
	free(lf);
}

static void
list_fetch_finish(struct list_fetch *lf, const char *err)
{
	lf->lf_done(lf, err, lf->lf_arg);
	list_fetch_free(lf);
}

/* A page; GitHub's client answers a 304 with the page it cached. */
static void
list_fetch_on_page(struct http_response *res, void *arg)
{
	struct list_fetch	*lf = arg;
	const char		*why;
	char			*err, *link, *next = NULL;

	if (res->hr_status != 200) {
		err = github_error_text(res);
		list_fetch_finish(lf, err);
		free(err);
		return;
	}
	if (github_parse_runners((const char *)res->hr_body.b_data,
	    res->hr_body.b_len, &lf->lf_list, &why) == -1) {
		list_fetch_finish(lf, why);
		return;
	}

	if ((link = http_header_get(res, "Link")) != NULL)
		next = github_link_next(link);
	free(link);
	if (next == NULL || pr_stopping || ++lf->lf_pages >= LIST_PAGES_MAX) {
		free(next);
		list_fetch_finish(lf, pr_stopping ? "stopping" : NULL);
		return;
	}
	free(lf->lf_url);
	lf->lf_url = next;
	list_fetch_page(lf);
}

static void
list_fetch_page(struct list_fetch *lf)
{
	if (github_request(pr_github, "GET", lf->lf_url, NULL, NULL, 0,
	    list_fetch_on_page, lf) == -1)
		list_fetch_finish(lf, "cannot start the request");
}

static void
list_fetch_start(const char *scope, const char *scope_name,
    list_done_fn done, void *arg)
{
	struct list_fetch	*lf = xcalloc(1, sizeof(*lf));

	lf->lf_scope = xstrdup(scope);
	lf->lf_scope_name = xstrdup(scope_name);
	lf->lf_url = github_scope_url(child.cs_config.c_api_url, scope,
	    scope_name, "runners?per_page=100");
	lf->lf_done = done;
	lf->lf_arg = arg;
	list_fetch_page(lf);
}

/* ---- creating runners ------------------------------------------------- */

/* Which failure tells the caller most; 0 for none. */
static int
status_rank(int status)
{
	switch (status) {
	case 400:
		return 4;
	case 409:
		return 3;
	case 502:
		return 2;
	case 503:
		return 1;
	default:
		return 0;
	}
}

/* The API status for a GitHub failure. */
static int
github_fail_status(const struct http_response *res)
{
	if (res->hr_status == 0)
		return 503;
	if (res->hr_status == 409)
		return 409;
	if (res->hr_status == 422)
		return 400;
	return 502;
}

static void
job_free(struct create_job *cj)
{
	size_t	 i;

	for (i = 0; i < cj->cj_n; i++) {
		free(cj->cj_items[i].ci_name);
		free(cj->cj_items[i].ci_message);
		if (cj->cj_items[i].ci_jit != NULL)
			freezero_str(cj->cj_items[i].ci_jit);
	}
	free(cj->cj_items);
	free(cj->cj_scope);
	free(cj->cj_scope_name);
	free(cj->cj_pool);
	free(cj->cj_group);
	if (cj->cj_token != NULL)
		freezero_str(cj->cj_token);
	strlist_clear(&cj->cj_labels, 0);
	free(cj);
}

static void
create_reply(struct ipc_channel *ch, const struct ipc_msg *req, int ok,
    int status, const char *message, const struct create_job *cj)
{
	struct buf	 b;
	size_t		 i, n = cj != NULL ? cj->cj_n : 0;

	buf_init(&b);
	ipc_put_u8(&b, ok != 0);
	ipc_put_u16(&b, (uint16_t)status);
	ipc_put_str(&b, message);
	ipc_put_u16(&b, (uint16_t)n);
	for (i = 0; i < n; i++) {
		ipc_put_str(&b, cj->cj_items[i].ci_name);
		ipc_put_u8(&b, cj->cj_items[i].ci_ok != 0);
		ipc_put_str(&b, cj->cj_items[i].ci_message);
	}
	if (ipc_reply(ch, req, MSG_RUNNER_CREATE_REPLY, b.b_data,
	    b.b_len) == -1)
		log_warnx(LC_ERROR, "cannot answer httpd's runner request");
	buf_free(&b);
}

/* Answers httpd once every runner of the request has an outcome. */
static void
job_finish(struct create_job *cj)
{
	struct create_item	*ci, *worst = NULL;
	struct recent_runner	*rr;
	size_t			 i, nok = 0;
	char			 msg[512];

	for (i = 0; i < cj->cj_n; i++) {
		ci = &cj->cj_items[i];
		if (ci->ci_ok) {
			nok++;
			continue;
		}
		if (worst == NULL ||
		    status_rank(ci->ci_status) > status_rank(worst->ci_status))
			worst = ci;
	}
	if (worst == NULL)
		snprintf(msg, sizeof(msg), "%zu runner%s created in pool %s",
		    nok, nok == 1 ? "" : "s", cj->cj_pool);
	else
		snprintf(msg, sizeof(msg), "%zu of %zu runners created: %s",
		    nok, cj->cj_n, worst->ci_message);
	log_info(worst == NULL ? LC_SUCCESS : LC_ERROR, "%s", msg);

	if (cj->cj_chan != NULL && !pr_stopping)
		create_reply(cj->cj_chan, &cj->cj_req, worst == NULL,
		    worst == NULL ? 201 : worst->ci_status, msg, cj);

	for (i = 0; i < cj->cj_n && !pr_stopping; i++) {
		if (!cj->cj_items[i].ci_ok)
			continue;
		rr = xcalloc(1, sizeof(*rr));
		rr->rr_name = xstrdup(cj->cj_items[i].ci_name);
		rr->rr_pool = xstrdup(cj->cj_pool);
		rr->rr_scope = xstrdup(cj->cj_scope);
		rr->rr_scope_name = xstrdup(cj->cj_scope_name);
		strlist_copy(&rr->rr_labels, &cj->cj_labels);
		rr->rr_until_ms = monotonic_ms() + RECENT_TTL_MS;
		TAILQ_INSERT_TAIL(&pr_recent, rr, rr_entry);
	}
	TAILQ_REMOVE(&pr_jobs, cj, cj_entry);
	job_free(cj);
}

static void
job_item_done(struct create_item *ci, int ok, int status, const char *msg)
{
	struct create_job	*cj = ci->ci_job;

	if (ci->ci_state == ITEM_DONE)
		return;
	ci->ci_state = ITEM_DONE;
	ci->ci_ok = ok;
	ci->ci_status = ok ? 201 : status;
	free(ci->ci_message);
	ci->ci_message = xstrdup(msg);
	if (ci->ci_jit != NULL) {
		freezero_str(ci->ci_jit);
		ci->ci_jit = NULL;
	}
	if (--cj->cj_pending == 0)
		job_finish(cj);
}

/* Fails every runner still waiting, e.g. when a shared step failed. */
static void
job_fail_all(struct create_job *cj, int status, const char *msg)
{
	size_t	 i, left = cj->cj_pending;

	/* The last job_item_done() frees the job: only left is used then. */
	for (i = 0; left > 0; i++) {
		if (cj->cj_items[i].ci_state == ITEM_DONE)
			continue;
		left--;
		job_item_done(&cj->cj_items[i], 0, status, msg);
	}
}

/* ---- deregistering ------------------------------------------------------ */

struct dereg {
	char		*dr_name;
	char		*dr_scope;
	char		*dr_scope_name;
	uint64_t	 dr_id;
	char		*dr_why;
};

static void
dereg_free(struct dereg *dr)
{
	free(dr->dr_name);
	free(dr->dr_scope);
	free(dr->dr_scope_name);
	free(dr->dr_why);
	free(dr);
}

static void
dereg_on_delete(struct http_response *res, void *arg)
{
	struct dereg	*dr = arg;
	char		*err;

	if (res->hr_status == 204 || res->hr_status == 404) {
		pr_deregistered++;
		log_info(LC_INFO, "runner %s (GitHub id %llu) deregistered "
		    "from %s %s%s (%s)", dr->dr_name,
		    (unsigned long long)dr->dr_id, dr->dr_scope,
		    dr->dr_scope_name, res->hr_status == 404 ?
		    ", it was already gone" : "", dr->dr_why);
	} else {
		err = github_error_text(res);
		log_warnx(LC_WARNING, "cannot deregister runner %s (GitHub "
		    "id %llu) from %s %s: %s", dr->dr_name,
		    (unsigned long long)dr->dr_id, dr->dr_scope,
		    dr->dr_scope_name, err);
		free(err);
	}
	dereg_free(dr);
}

/* GET or DELETE of the runner's own URL; dr is freed if it cannot go. */
static void
dereg_request(struct dereg *dr, const char *method, http_done_fn done)
{
	char	*url, suffix[64];

	if (pr_stopping) {
		log_warnx(LC_WARNING, "runner %s stays registered on GitHub: "
		    "the poller is stopping", dr->dr_name);
		dereg_free(dr);
		return;
	}
	snprintf(suffix, sizeof(suffix), "runners/%llu",
	    (unsigned long long)dr->dr_id);
	url = github_scope_url(child.cs_config.c_api_url, dr->dr_scope,
	    dr->dr_scope_name, suffix);
	if (github_request(pr_github, method, url, NULL, NULL, 0, done,
	    dr) == -1) {
		log_warnx(LC_WARNING, "cannot deregister runner %s: the "
		    "request did not start", dr->dr_name);
		dereg_free(dr);
	}
	free(url);
}

/*
 * GitHub removes an ephemeral runner itself once its job is done: a GET
 * (which costs no mutation) says whether a DELETE is needed at all.
 */
static void
dereg_on_get(struct http_response *res, void *arg)
{
	struct dereg	*dr = arg;

	if (res->hr_status == 404)
		dereg_on_delete(res, dr);
	else
		dereg_request(dr, "DELETE", dereg_on_delete);
}

static void
dereg_delete(struct dereg *dr)
{
	dereg_request(dr, "GET", dereg_on_get);
}

/* Token runners are known to GitHub by name only: look the id up. */
static void
dereg_on_list(struct list_fetch *lf, const char *err, void *arg)
{
	struct dereg	*dr = arg;
	size_t		 i;

	if (err != NULL) {
		log_warnx(LC_WARNING, "cannot deregister runner %s: listing "
		    "the runners of %s failed: %s", dr->dr_name,
		    dr->dr_scope_name, err);
		dereg_free(dr);
		return;
	}
	for (i = 0; i < lf->lf_list.rl_count; i++)
		if (strcmp(lf->lf_list.rl_items[i].gr_name, dr->dr_name) == 0)
			break;
	if (i == lf->lf_list.rl_count) {
		log_info(LC_INFO, "runner %s is not registered on %s %s (%s)",
		    dr->dr_name, dr->dr_scope, dr->dr_scope_name, dr->dr_why);
		dereg_free(dr);
		return;
	}
	dr->dr_id = lf->lf_list.rl_items[i].gr_id;
	dereg_delete(dr);
}

static void
dereg_start(const char *name, const char *scope, const char *scope_name,
    uint64_t id, const char *why)
{
	struct dereg	*dr;
	char		 err[256];

	if (github_scope_check(scope, scope_name, err, sizeof(err)) == -1) {
		log_warnx(LC_WARNING, "runner %s not deregistered: %s", name,
		    err);
		return;
	}
	dr = xcalloc(1, sizeof(*dr));
	dr->dr_name = xstrdup(name);
	dr->dr_scope = xstrdup(scope);
	dr->dr_scope_name = xstrdup(scope_name);
	dr->dr_id = id;
	dr->dr_why = xstrdup(why);
	if (id != 0)
		dereg_delete(dr);
	else if (pr_stopping)
		dereg_free(dr);
	else
		list_fetch_start(scope, scope_name, dereg_on_list, dr);
}

/* ---- one runner: registration, then the docker worker -------------------- */

static void
item_on_start_reply(struct ipc_channel *ch, struct ipc_msg *msg, void *arg)
{
	struct create_item	*ci = arg;
	struct create_job	*cj = ci->ci_job;
	struct ipc_reader	 r;
	char			*text = NULL, out[512];
	int			 ok = 0, status = 502;

	(void)ch;
	if (msg == NULL) {
		status = 503;
		snprintf(out, sizeof(out), "runner %s: the docker worker did "
		    "not answer", ci->ci_name);
	} else {
		ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
		ok = ipc_get_bool(&r);
		text = ipc_get_str(&r);
		if (ipc_reader_done(&r) == -1) {
			ok = 0;
			snprintf(out, sizeof(out), "runner %s: malformed "
			    "answer from the docker worker", ci->ci_name);
		} else if (ok)
			snprintf(out, sizeof(out), "runner %s started in "
			    "container %.12s", ci->ci_name, text);
		else
			snprintf(out, sizeof(out), "runner %s: %s",
			    ci->ci_name, text);
	}
	free(text);

	if (!ok && ci->ci_github_id != 0)
		dereg_start(ci->ci_name, cj->cj_scope, cj->cj_scope_name,
		    ci->ci_github_id, "its container was not started");
	job_item_done(ci, ok, status, out);
}

/* MSG_RUNNER_START; the payload holds a secret and is wiped. */
static void
item_send_start(struct create_item *ci)
{
	struct create_job	*cj = ci->ci_job;
	struct ipc_channel	*docker = child.cs_peers[ROLE_DOCKER];
	struct buf		 b;
	size_t			 i;
	int			 rc = -1;
	char			 msg[256];

	buf_init(&b);
	ipc_put_str(&b, cj->cj_pool);
	ipc_put_str(&b, ci->ci_name);
	ipc_put_str(&b, cj->cj_scope);
	ipc_put_str(&b, cj->cj_scope_name);
	ipc_put_str(&b, cj->cj_origin);
	ipc_put_u64(&b, ci->ci_github_id);
	ipc_put_u16(&b, (uint16_t)cj->cj_labels.sl_count);
	for (i = 0; i < cj->cj_labels.sl_count; i++)
		ipc_put_str(&b, cj->cj_labels.sl_items[i]);
	ipc_put_str(&b, cj->cj_token_mode ? cj->cj_token : "");
	ipc_put_str(&b, cj->cj_token_mode ? "" : ci->ci_jit);
	if (docker != NULL && !pr_stopping)
		rc = ipc_request(docker, MSG_RUNNER_START, b.b_data, b.b_len,
		    POLLER_START_TIMEOUT_MS, item_on_start_reply, ci);
	explicit_bzero(b.b_data, b.b_cap);
	buf_free(&b);
	if (ci->ci_jit != NULL) {
		freezero_str(ci->ci_jit);
		ci->ci_jit = NULL;
	}

	if (rc == 0) {
		ci->ci_state = ITEM_DOCKER;
		return;
	}
	snprintf(msg, sizeof(msg), "runner %s: the docker worker is not "
	    "available", ci->ci_name);
	if (ci->ci_github_id != 0)
		dereg_start(ci->ci_name, cj->cj_scope, cj->cj_scope_name,
		    ci->ci_github_id, "its container was not started");
	job_item_done(ci, 0, 503, msg);
}

static void
item_on_jit(struct http_response *res, void *arg)
{
	struct create_item	*ci = arg;
	const char		*why;
	char			*err, msg[512];

	if (res->hr_status != 201) {
		err = github_error_text(res);
		snprintf(msg, sizeof(msg), "runner %s: %s", ci->ci_name, err);
		free(err);
		job_item_done(ci, 0, github_fail_status(res), msg);
		return;
	}
	if (github_parse_jit((const char *)res->hr_body.b_data,
	    res->hr_body.b_len, &ci->ci_github_id, &ci->ci_jit, &why) == -1) {
		snprintf(msg, sizeof(msg), "runner %s: generate-jitconfig: %s",
		    ci->ci_name, why);
		job_item_done(ci, 0, 502, msg);
	} else
		item_send_start(ci);
	explicit_bzero(res->hr_body.b_data, res->hr_body.b_len);
}

static void
item_request_jit(struct create_item *ci)
{
	struct create_job	*cj = ci->ci_job;
	struct json_writer	 jw;
	struct buf		 body;
	size_t			 i;
	char			*url, msg[256];

	buf_init(&body);
	jw_init(&jw, &body);
	jw_object_begin(&jw);
	jw_kv_str(&jw, "name", ci->ci_name);
	jw_key(&jw, "runner_group_id");
	jw_uint(&jw, cj->cj_group_id);
	jw_key(&jw, "labels");
	jw_array_begin(&jw);
	for (i = 0; i < cj->cj_labels.sl_count; i++)
		jw_str(&jw, cj->cj_labels.sl_items[i]);
	jw_array_end(&jw);
	jw_kv_str(&jw, "work_folder", "_work");
	jw_object_end(&jw);

	url = github_scope_url(child.cs_config.c_api_url, cj->cj_scope,
	    cj->cj_scope_name, "runners/generate-jitconfig");
	if (github_request(pr_github, "POST", url, buf_cstr(&body), NULL, 0,
	    item_on_jit, ci) == -1) {
		snprintf(msg, sizeof(msg), "runner %s: the GitHub request did "
		    "not start", ci->ci_name);
		job_item_done(ci, 0, 503, msg);
	}
	free(url);
	buf_free(&body);
}

/* Every runner at once; the last one to finish answers httpd. */
static void
job_start_runners(struct create_job *cj)
{
	size_t	 i, n = cj->cj_n;

	if (pr_stopping) {
		job_fail_all(cj, 503, "the poller is stopping");
		return;
	}
	/* A runner that fails at once may free the job: n is local. */
	for (i = 0; i < n; i++) {
		if (cj->cj_token_mode)
			item_send_start(&cj->cj_items[i]);
		else
			item_request_jit(&cj->cj_items[i]);
	}
}

/* ---- what every runner of a request shares: a token or a group ---------- */

static char *
token_key(const struct create_job *cj)
{
	char	*key;

	xasprintf(&key, "%s:%s", cj->cj_scope, cj->cj_scope_name);
	return key;
}

static void
job_on_token(struct http_response *res, void *arg)
{
	struct create_job	*cj = arg;
	const char		*why;
	char			*err, *key, msg[512];
	time_t			 expires;

	if (res->hr_status != 201) {
		err = github_error_text(res);
		snprintf(msg, sizeof(msg), "registration token: %s", err);
		free(err);
		job_fail_all(cj, github_fail_status(res), msg);
		return;
	}
	if (github_parse_token((const char *)res->hr_body.b_data,
	    res->hr_body.b_len, &cj->cj_token, &expires, &why) == -1) {
		explicit_bzero(res->hr_body.b_data, res->hr_body.b_len);
		snprintf(msg, sizeof(msg), "registration token: %s", why);
		job_fail_all(cj, 502, msg);
		return;
	}
	explicit_bzero(res->hr_body.b_data, res->hr_body.b_len);
	key = token_key(cj);
	token_store(key, cj->cj_token, expires);
	free(key);
	job_start_runners(cj);
}

static void
job_get_token(struct create_job *cj)
{
	struct cached_token	*ct;
	char			*key, *url;

	key = token_key(cj);
	ct = token_find(key);
	free(key);
	if (ct != NULL) {
		cj->cj_token = xstrdup(ct->ct_token);
		job_start_runners(cj);
		return;
	}
	url = github_scope_url(child.cs_config.c_api_url, cj->cj_scope,
	    cj->cj_scope_name, "runners/registration-token");
	if (github_request(pr_github, "POST", url, NULL, NULL, 0,
	    job_on_token, cj) == -1)
		job_fail_all(cj, 503, "the GitHub request did not start");
	free(url);
}

struct group_fetch {
	struct create_job	*gf_job;
	char			*gf_url;
	int			 gf_pages;
};

static void	 job_fetch_groups(struct create_job *, char *, int);

static void
job_on_groups(struct http_response *res, void *arg)
{
	struct group_fetch	*gf = arg;
	struct create_job	*cj = gf->gf_job;
	const char		*why;
	char			*err, *link, *next = NULL, msg[512];
	uint64_t		 id;
	int			 pages = gf->gf_pages + 1;

	free(gf->gf_url);
	free(gf);
	if (res->hr_status != 200) {
		err = github_error_text(res);
		snprintf(msg, sizeof(msg), "runner groups of %s: %s",
		    cj->cj_scope_name, err);
		free(err);
		job_fail_all(cj, github_fail_status(res), msg);
		return;
	}
	if (github_parse_group((const char *)res->hr_body.b_data,
	    res->hr_body.b_len, cj->cj_group, &id, &why) == -1) {
		snprintf(msg, sizeof(msg), "runner groups of %s: %s",
		    cj->cj_scope_name, why);
		job_fail_all(cj, 502, msg);
		return;
	}
	if (id != 0) {
		group_store(cj->cj_scope_name, cj->cj_group, id);
		cj->cj_group_id = id;
		job_start_runners(cj);
		return;
	}

	if ((link = http_header_get(res, "Link")) != NULL)
		next = github_link_next(link);
	free(link);
	if (next != NULL && pages < LIST_PAGES_MAX && !pr_stopping) {
		job_fetch_groups(cj, next, pages);
		return;
	}
	free(next);
	snprintf(msg, sizeof(msg), "organization %s has no runner group "
	    "named \"%s\"", cj->cj_scope_name, cj->cj_group);
	job_fail_all(cj, 400, msg);
}

/* Takes url. */
static void
job_fetch_groups(struct create_job *cj, char *url, int pages)
{
	struct group_fetch	*gf = xcalloc(1, sizeof(*gf));

	gf->gf_job = cj;
	gf->gf_url = url;
	gf->gf_pages = pages;
	if (github_request(pr_github, "GET", url, NULL, NULL, 0,
	    job_on_groups, gf) == -1) {
		free(gf->gf_url);
		free(gf);
		job_fail_all(cj, 503, "the GitHub request did not start");
	}
}

/*
 * A repository's runners join the Default group (id 1); an
 * organization's group is looked up by name and remembered.
 */
static void
job_get_group(struct create_job *cj)
{
	struct cached_group	*cg;
	char			*url, msg[512];

	if (cj->cj_group[0] == '\0' || strcasecmp(cj->cj_group,
	    "Default") == 0) {
		cj->cj_group_id = 1;
		job_start_runners(cj);
		return;
	}
	if (strcmp(cj->cj_scope, "org") != 0) {
		snprintf(msg, sizeof(msg), "runner group \"%s\": repository "
		    "runners can only join the Default group", cj->cj_group);
		job_fail_all(cj, 400, msg);
		return;
	}
	if ((cg = group_find(cj->cj_scope_name, cj->cj_group)) != NULL) {
		cj->cj_group_id = cg->cg_id;
		job_start_runners(cj);
		return;
	}
	xasprintf(&url, "%s/orgs/%s/actions/runner-groups?per_page=100",
	    child.cs_config.c_api_url, cj->cj_scope_name);
	job_fetch_groups(cj, url, 0);
}

/* Registers a planned job's runners: a token, or the group for JIT. */
static void
job_launch(struct create_job *cj, enum log_category category)
{
	TAILQ_INSERT_TAIL(&pr_jobs, cj, cj_entry);
	log_info(category, "registering %zu runner%s of pool %s for %s %s",
	    cj->cj_n, cj->cj_n == 1 ? "" : "s", cj->cj_pool, cj->cj_scope,
	    cj->cj_scope_name);
	if (cj->cj_token_mode)
		job_get_token(cj);
	else
		job_get_group(cj);
}

/* ---- the request from httpd ------------------------------------------- */

struct create_req {
	char		*cr_scope;
	char		*cr_scope_name;
	uint16_t	 cr_count;
	char		*cr_name;
	char		*cr_group;
	struct strlist	 cr_labels;
};

static void
create_req_free(struct create_req *cr)
{
	free(cr->cr_scope);
	free(cr->cr_scope_name);
	free(cr->cr_name);
	free(cr->cr_group);
	strlist_clear(&cr->cr_labels, 0);
}

static int
create_req_decode(const struct ipc_msg *msg, struct create_req *cr)
{
	struct ipc_reader	 r;
	char			*s;
	size_t			 i, n;

	memset(cr, 0, sizeof(*cr));
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	cr->cr_scope = ipc_get_str(&r);
	cr->cr_scope_name = ipc_get_str(&r);
	cr->cr_count = ipc_get_u16(&r);
	cr->cr_name = ipc_get_str(&r);
	cr->cr_group = ipc_get_str(&r);
	n = ipc_get_u16(&r);
	for (i = 0; i < n && r.ir_error == NULL; i++) {
		if ((s = ipc_get_str(&r)) == NULL)
			break;
		strlist_add(&cr->cr_labels, s);
		free(s);
	}
	if (ipc_reader_done(&r) == -1) {
		log_warnx(LC_ERROR, "malformed runner request from httpd: %s",
		    ipc_reader_error(&r));
		create_req_free(cr);
		return -1;
	}
	return 0;
}

static int
create_req_check(const struct create_req *cr, char *err, size_t errlen)
{
	char	 name[RUNNER_NAME_MAX + 16];
	size_t	 i;

	if (github_scope_check(cr->cr_scope, cr->cr_scope_name, err,
	    errlen) == -1)
		return -1;
	if (cr->cr_count < 1 || cr->cr_count > CREATE_COUNT_MAX) {
		snprintf(err, errlen, "count must be between 1 and %d",
		    CREATE_COUNT_MAX);
		return -1;
	}
	if (cr->cr_labels.sl_count > GITHUB_LABELS_MAX) {
		snprintf(err, errlen, "at most %d labels", GITHUB_LABELS_MAX);
		return -1;
	}
	for (i = 0; i < cr->cr_labels.sl_count; i++)
		if (github_label_check(cr->cr_labels.sl_items[i], err,
		    errlen) == -1)
			return -1;
	if (cr->cr_group[0] != '\0' && github_label_check(cr->cr_group,
	    err, errlen) == -1) {
		snprintf(err, errlen, "runner_group must have 1 to %d "
		    "characters, without spaces or commas", GITHUB_LABEL_MAX);
		return -1;
	}
	if (cr->cr_name[0] == '\0')
		return 0;
	if (cr->cr_count == 1)
		strlcpy(name, cr->cr_name, sizeof(name));
	else
		snprintf(name, sizeof(name), "%.64s-%u", cr->cr_name,
		    (unsigned int)cr->cr_count);
	if (strlen(cr->cr_name) > RUNNER_NAME_MAX || !runner_name_valid(name)) {
		snprintf(err, errlen, "runner_name must be letters, digits, "
		    "'-', '_' or '.', starting with a letter or digit, and at "
		    "most %d characters%s", RUNNER_NAME_MAX,
		    cr->cr_count > 1 ? " with its -N suffix" : "");
		return -1;
	}
	return 0;
}

/* Names every runner of the job; -1 with err if one is taken. */
static int
job_name_runners(struct create_job *cj, const struct create_req *cr,
    char *err, size_t errlen)
{
	char		 name[RUNNER_NAME_MAX + 1];
	uint32_t	 rnd;
	size_t		 i;
	int		 tries;

	for (i = 0; i < cj->cj_n; i++) {
		if (cr->cr_name[0] != '\0' && cj->cj_n == 1)
			strlcpy(name, cr->cr_name, sizeof(name));
		else if (cr->cr_name[0] != '\0')
			snprintf(name, sizeof(name), "%s-%zu", cr->cr_name,
			    i + 1);
		else {
			for (tries = 0; tries < 16; tries++) {
				if (getrandom(&rnd, sizeof(rnd), 0) !=
				    sizeof(rnd))
					fatal("getrandom");
				if (github_runner_name(
				    child.cs_config.c_instance, cj->cj_pool,
				    rnd, name, sizeof(name)) == -1)
					fatalx("cannot make a runner name");
				if (!name_in_use(name))
					break;
			}
		}
		if (name_in_use(name)) {
			snprintf(err, errlen, "runner name %s is already in "
			    "use", name);
			return -1;
		}
		cj->cj_items[i].ci_name = xstrdup(name);
	}
	return 0;
}

static int
create_capacity(const struct pool *pl, unsigned int count, char *err,
    size_t errlen)
{
	size_t	 used;

	if (child.cs_peers[ROLE_DOCKER] == NULL || !pr_have_table) {
		snprintf(err, errlen, "the docker worker is not available");
		return 503;
	}
	recent_prune();
	used = pool_in_use(pl->pl_name);
	if (used + count > pl->pl_max_runners) {
		snprintf(err, errlen, "pool %s allows %u runners: %zu are "
		    "running or starting, %u more were asked for",
		    pl->pl_name, pl->pl_max_runners, used, count);
		return 409;
	}
	return 0;
}

static struct create_job *
job_new(const struct create_req *cr, const struct pool *pl)
{
	struct create_job	*cj = xcalloc(1, sizeof(*cj));
	size_t			 i;

	cj->cj_scope = xstrdup(cr->cr_scope);
	cj->cj_scope_name = xstrdup(cr->cr_scope_name);
	cj->cj_pool = xstrdup(pl->pl_name);
	cj->cj_origin = "api";
	cj->cj_token_mode = pl->pl_registration == REG_TOKEN;
	cj->cj_group = xstrdup(cr->cr_group[0] != '\0' ? cr->cr_group :
	    pl->pl_runner_group != NULL ? pl->pl_runner_group : "");
	poller_runners_pool_labels(pl, &cj->cj_labels);
	cj->cj_n = cr->cr_count;
	cj->cj_pending = cj->cj_n;
	cj->cj_items = xcalloc(cj->cj_n, sizeof(*cj->cj_items));
	for (i = 0; i < cj->cj_n; i++)
		cj->cj_items[i].ci_job = cj;
	return cj;
}

/* Checks, picks the pool and names; an error answers at once. */
static struct create_job *
create_plan(const struct create_req *cr, int *status, char *err,
    size_t errlen)
{
	struct create_job	*cj;
	struct pool		*pl;

	*status = 400;
	if (pr_stopping) {
		*status = 503;
		snprintf(err, errlen, "the poller is stopping");
		return NULL;
	}
	if (create_req_check(cr, err, errlen) == -1)
		return NULL;
	pl = github_pool_select(child.cs_config.c_pools,
	    child.cs_config.c_npools, &cr->cr_labels, err, errlen);
	if (pl == NULL)
		return NULL;
	if (pl->pl_registration == REG_TOKEN && cr->cr_group[0] != '\0') {
		snprintf(err, errlen, "runner_group needs a pool with jit "
		    "registration; pool %s uses tokens", pl->pl_name);
		return NULL;
	}
	if ((*status = create_capacity(pl, cr->cr_count, err, errlen)) != 0)
		return NULL;

	cj = job_new(cr, pl);
	if (job_name_runners(cj, cr, err, errlen) == -1) {
		*status = 409;
		job_free(cj);
		return NULL;
	}
	return cj;
}

int
poller_on_runner_create(struct ipc_channel *ch, struct ipc_msg *msg,
    void *arg)
{
	struct create_req	 cr;
	struct create_job	*cj;
	int			 status;
	char			 err[512];

	(void)arg;
	if (create_req_decode(msg, &cr) == -1)
		return -1;
	cj = create_plan(&cr, &status, err, sizeof(err));
	create_req_free(&cr);
	if (cj == NULL) {
		log_warnx(LC_REQUEST, "runner request refused: %s", err);
		create_reply(ch, msg, 0, status, err, NULL);
		return 0;
	}

	cj->cj_chan = ch;
	cj->cj_req.m_hdr = msg->m_hdr;
	cj->cj_req.m_fd = -1;
	job_launch(cj, LC_REQUEST);
	return 0;
}

/* ---- events from the docker worker ------------------------------------ */

static void
gone_remember(const struct runner *rn)
{
	struct gone_runner	*gr = &pr_gone[pr_gone_next];

	free(gr->gr_name);
	free(gr->gr_pool);
	gr->gr_name = xstrdup(rn->rn_name);
	gr->gr_pool = xstrdup(rn->rn_pool);
	gr->gr_created = rn->rn_created;
	pr_gone_next = (pr_gone_next + 1) % GONE_MAX;
}

static void
gone_clear(void)
{
	size_t	 i;

	for (i = 0; i < GONE_MAX; i++) {
		free(pr_gone[i].gr_name);
		free(pr_gone[i].gr_pool);
	}
	memset(pr_gone, 0, sizeof(pr_gone));
	pr_gone_next = 0;
}

int
poller_on_runner_table(struct ipc_channel *ch, struct ipc_msg *msg,
    void *arg)
{
	struct runner	*rns;
	size_t		 n;
	const char	*why;

	(void)ch;
	(void)arg;
	if (runner_table_decode(msg->m_data, msg->m_hdr.ih_len, &rns, &n,
	    &why) == -1) {
		log_warnx(LC_ERROR, "malformed runner table from the docker "
		    "worker: %s", why);
		return -1;
	}
	runner_table_free(pr_table, pr_ntable);
	pr_table = rns;
	pr_ntable = n;
	if (!pr_have_table)
		log_debug(LC_MONITOR, "first runner table: %zu runners", n);
	pr_have_table = 1;
	recent_prune();
	busy_update();
	poller_auto_runners_changed();
	return 0;
}

int
poller_on_runner_gone(struct ipc_channel *ch, struct ipc_msg *msg,
    void *arg)
{
	struct ipc_reader	 r;
	struct runner		 rn;
	char			 why[64];

	(void)ch;
	(void)arg;
	ipc_reader_init(&r, msg->m_data, msg->m_hdr.ih_len);
	if (runner_decode(&r, &rn) == -1 || ipc_reader_done(&r) == -1) {
		if (r.ir_error == NULL)
			runner_free(&rn);
		log_warnx(LC_ERROR, "malformed runner event from the docker "
		    "worker: %s", ipc_reader_error(&r));
		return -1;
	}
	gone_remember(&rn);
	snprintf(why, sizeof(why), "its container is gone, exit code %d",
	    (int)rn.rn_exit_code);
	dereg_start(rn.rn_name, rn.rn_scope, rn.rn_scope_name,
	    rn.rn_github_id, why);
	runner_free(&rn);
	return 0;
}

/* ---- GitHub's view of the runners, every few seconds ------------------- */

struct status_round {
	size_t		 sr_pending;
	struct buf	 sr_rows;	/* the RUNNER_GITHUB entries */
	uint32_t	 sr_count;
	int		 sr_answered;	/* scopes that answered */
};

static void
status_round_end(struct status_round *sr)
{
	struct ipc_channel	*docker = child.cs_peers[ROLE_DOCKER];
	struct buf		 b;

	if (sr->sr_answered > 0 && docker != NULL && !pr_stopping) {
		buf_init(&b);
		ipc_put_u32(&b, sr->sr_count);
		buf_add(&b, sr->sr_rows.b_data, sr->sr_rows.b_len);
		if (ipc_send(docker, MSG_RUNNER_GITHUB, 0, -1, b.b_data,
		    b.b_len) == -1)
			log_warnx(LC_WARNING, "cannot send GitHub's view of "
			    "the runners to the docker worker");
		buf_free(&b);
	}
	buf_free(&sr->sr_rows);
	free(sr);
	pr_status_busy = 0;
}

/* Adds the runners of our table that GitHub lists in this scope. */
static void
status_on_list(struct list_fetch *lf, const char *err, void *arg)
{
	struct status_round		*sr = arg;
	const struct github_runner	*gr;
	const struct runner		*rn;
	size_t				 i, j;

	if (err != NULL)
		log_debug(LC_MONITOR, "runners of %s %s: %s", lf->lf_scope,
		    lf->lf_scope_name, err);
	for (i = 0; err == NULL && i < pr_ntable; i++) {
		rn = &pr_table[i];
		if (strcmp(rn->rn_scope, lf->lf_scope) != 0 ||
		    strcmp(rn->rn_scope_name, lf->lf_scope_name) != 0)
			continue;
		for (j = 0; j < lf->lf_list.rl_count; j++) {
			gr = &lf->lf_list.rl_items[j];
			if (strcmp(gr->gr_name, rn->rn_name) != 0)
				continue;
			ipc_put_str(&sr->sr_rows, gr->gr_name);
			ipc_put_u64(&sr->sr_rows, gr->gr_id);
			ipc_put_u8(&sr->sr_rows, gr->gr_online != 0);
			ipc_put_u8(&sr->sr_rows, gr->gr_busy != 0);
			ipc_put_str(&sr->sr_rows, "");
			sr->sr_count++;
			break;
		}
	}
	if (err == NULL)
		sr->sr_answered++;
	if (--sr->sr_pending == 0)
		status_round_end(sr);
}

/* True if no live runner before index i has the same scope. */
static int
status_scope_first(size_t i)
{
	size_t	 j;

	for (j = 0; j < i; j++)
		if (pr_table[j].rn_status != RUNNER_EXITED &&
		    strcmp(pr_table[j].rn_scope, pr_table[i].rn_scope) == 0 &&
		    strcmp(pr_table[j].rn_scope_name,
		    pr_table[i].rn_scope_name) == 0)
			return 0;
	return 1;
}

static void
status_tick(evutil_socket_t fd, short what, void *arg)
{
	struct status_round	*sr;
	char			 err[256];
	size_t			 i, n = 0;

	(void)fd;
	(void)what;
	(void)arg;
	if (pr_status_busy || pr_stopping ||
	    child.cs_peers[ROLE_DOCKER] == NULL)
		return;

	sr = xcalloc(1, sizeof(*sr));
	buf_init(&sr->sr_rows);
	/* Counted first: a fetch may end before the next one starts. */
	sr->sr_pending = 1;
	pr_status_busy = 1;
	for (i = 0; i < pr_ntable; i++) {
		if (pr_table[i].rn_status == RUNNER_EXITED ||
		    !status_scope_first(i) ||
		    github_scope_check(pr_table[i].rn_scope,
		    pr_table[i].rn_scope_name, err, sizeof(err)) == -1)
			continue;
		sr->sr_pending++;
		n++;
		list_fetch_start(pr_table[i].rn_scope,
		    pr_table[i].rn_scope_name, status_on_list, sr);
	}
	if (--sr->sr_pending == 0)
		status_round_end(sr);
	else
		log_debug(LC_MONITOR, "polling the runners of %zu scope%s", n,
		    n == 1 ? "" : "s");
}

/* ---- the poller's frame ------------------------------------------------- */

void
poller_runners_init(struct github *gh)
{
	struct timeval	 tv = { POLLER_STATUS_INTERVAL, 0 };

	pr_github = gh;
	pr_stopping = 0;
	pr_status_ev = event_new(child.cs_base, -1, EV_PERSIST, status_tick,
	    NULL);
	if (pr_status_ev == NULL || event_add(pr_status_ev, &tv) == -1)
		fatalx("cannot arm the runner status timer");
}

void
poller_runners_stop(void)
{
	struct create_job	*cj;

	pr_stopping = 1;
	TAILQ_FOREACH(cj, &pr_jobs, cj_entry)
		cj->cj_chan = NULL;
	if (pr_status_ev != NULL) {
		event_free(pr_status_ev);
		pr_status_ev = NULL;
	}
}

/*
 * Runs after the HTTP client is gone.  Runners waiting for the docker
 * worker finish when its channel closes, which frees their jobs.
 */
void
poller_runners_free(void)
{
	struct cached_token	*ct;
	struct cached_group	*cg;

	while (!TAILQ_EMPTY(&pr_recent))
		recent_free(TAILQ_FIRST(&pr_recent));
	busy_clear();
	while ((ct = TAILQ_FIRST(&pr_tokens)) != NULL) {
		TAILQ_REMOVE(&pr_tokens, ct, ct_entry);
		free(ct->ct_scope);
		freezero_str(ct->ct_token);
		free(ct);
	}
	while ((cg = TAILQ_FIRST(&pr_groups)) != NULL) {
		TAILQ_REMOVE(&pr_groups, cg, cg_entry);
		free(cg->cg_org);
		free(cg->cg_name);
		free(cg);
	}
	runner_table_free(pr_table, pr_ntable);
	pr_table = NULL;
	pr_ntable = 0;
	pr_have_table = 0;
	gone_clear();
	pr_github = NULL;
}

/* An answer for a channel that closed has nowhere to go. */
void
poller_runners_peer_changed(enum ipc_role role, struct ipc_channel *ch)
{
	struct create_job	*cj;

	(void)ch;
	if (role == ROLE_HTTPD)
		TAILQ_FOREACH(cj, &pr_jobs, cj_entry)
			cj->cj_chan = NULL;
	if (role == ROLE_DOCKER) {
		/* A new docker worker sends its own table first. */
		runner_table_free(pr_table, pr_ntable);
		pr_table = NULL;
		pr_ntable = 0;
		pr_have_table = 0;
	}
}

void
poller_runners_status(struct json_writer *jw)
{
	struct create_job	*cj;
	size_t			 n = 0;

	TAILQ_FOREACH(cj, &pr_jobs, cj_entry)
		n += cj->cj_pending;
	jw_key(jw, "runners");
	jw_object_begin(jw);
	jw_kv_int(jw, "known", (int64_t)pr_ntable);
	jw_kv_int(jw, "registering", (int64_t)n);
	jw_kv_int(jw, "deregistered", (int64_t)pr_deregistered);
	jw_object_end(jw);
}

int
poller_runners_has(const char *name)
{
	recent_prune();
	return name_in_use(name);
}

static void
scope_add(struct strlist *scopes, struct strlist *names, const char *scope,
    const char *name)
{
	size_t	 i;

	for (i = 0; i < scopes->sl_count; i++)
		if (strcmp(scopes->sl_items[i], scope) == 0 &&
		    strcasecmp(names->sl_items[i], name) == 0)
			return;
	strlist_add(scopes, scope);
	strlist_add(names, name);
}

void
poller_runners_scopes(struct strlist *scopes, struct strlist *names)
{
	struct create_job	*cj;
	size_t			 i;

	for (i = 0; i < pr_ntable; i++)
		if (pr_table[i].rn_scope != NULL &&
		    pr_table[i].rn_scope_name != NULL &&
		    pr_table[i].rn_scope[0] != '\0')
			scope_add(scopes, names, pr_table[i].rn_scope,
			    pr_table[i].rn_scope_name);
	TAILQ_FOREACH(cj, &pr_jobs, cj_entry)
		scope_add(scopes, names, cj->cj_scope, cj->cj_scope_name);
}

/* ---- automatic mode ---------------------------------------------------- */

int
poller_runners_start(const char *pool, const char *scope,
    const char *scope_name, unsigned int count, char *err, size_t errlen)
{
	struct create_req	 cr;
	struct create_job	*cj;
	struct pool		*pl;

	if (pr_stopping) {
		snprintf(err, errlen, "the poller is stopping");
		return -1;
	}
	if ((pl = config_find_pool(&child.cs_config, pool)) == NULL) {
		snprintf(err, errlen, "pool %s is not configured", pool);
		return -1;
	}
	if (create_capacity(pl, count, err, errlen) != 0)
		return -1;

	memset(&cr, 0, sizeof(cr));
	cr.cr_scope = xstrdup(scope);
	cr.cr_scope_name = xstrdup(scope_name);
	cr.cr_count = (uint16_t)count;
	cr.cr_name = xstrdup("");
	cr.cr_group = xstrdup("");
	cj = job_new(&cr, pl);
	cj->cj_origin = "auto";
	if (job_name_runners(cj, &cr, err, errlen) == -1) {
		create_req_free(&cr);
		job_free(cj);
		return -1;
	}
	create_req_free(&cr);

	job_launch(cj, LC_INFO);
	return 0;
}

static void
demand_add(struct demand_runner **out, size_t *n, size_t *cap,
    const char *pool, const struct strlist *labels, const char *scope,
    const char *scope_name, enum runner_status status)
{
	struct demand_runner	*dr;

	if (*n == *cap) {
		*cap = *cap == 0 ? 16 : *cap * 2;
		*out = xreallocarray(*out, *cap, sizeof(**out));
	}
	dr = &(*out)[(*n)++];
	dr->dr_pool = pool;
	dr->dr_labels = *labels;
	dr->dr_scope = scope;
	dr->dr_scope_name = scope_name;
	dr->dr_status = status;
	dr->dr_busy_since_ms = 0;
}

size_t
poller_runners_demand(struct demand_runner **out)
{
	struct create_job	*cj;
	struct create_item	*ci;
	struct recent_runner	*rr;
	struct busy_runner	*br;
	const struct runner	*rn;
	size_t			 i, n = 0, cap = 0;

	*out = NULL;
	recent_prune();
	for (i = 0; i < pr_ntable; i++) {
		rn = &pr_table[i];
		demand_add(out, &n, &cap, rn->rn_pool, &rn->rn_labels,
		    rn->rn_scope, rn->rn_scope_name, rn->rn_status);
		if (rn->rn_status == RUNNER_BUSY &&
		    (br = busy_find(rn->rn_name, 0)) != NULL &&
		    !br->br_job_named)
			(*out)[n - 1].dr_busy_since_ms = br->br_since_ms;
	}
	TAILQ_FOREACH(cj, &pr_jobs, cj_entry)
		for (i = 0; i < cj->cj_n; i++) {
			ci = &cj->cj_items[i];
			if ((ci->ci_state == ITEM_DONE && !ci->ci_ok) ||
			    table_find(ci->ci_name) != NULL)
				continue;
			demand_add(out, &n, &cap, cj->cj_pool, &cj->cj_labels,
			    cj->cj_scope, cj->cj_scope_name, RUNNER_STARTING);
		}
	TAILQ_FOREACH(rr, &pr_recent, rr_entry)
		demand_add(out, &n, &cap, rr->rr_pool, &rr->rr_labels,
		    rr->rr_scope, rr->rr_scope_name, RUNNER_STARTING);
	return n;
}

int
poller_runners_ready(void)
{
	return !pr_stopping && pr_have_table &&
	    child.cs_peers[ROLE_DOCKER] != NULL;
}

static int
label_has(const struct strlist *sl, const char *label)
{
	size_t	 i;

	for (i = 0; i < sl->sl_count; i++)
		if (strcasecmp(sl->sl_items[i], label) == 0)
			return 1;
	return 0;
}

/*
 * A just-in-time runner registers with exactly the labels it is given;
 * GitHub's runner adds its defaults to a token registration unless it is
 * told --no-default-labels.
 */
void
poller_runners_pool_labels(const struct pool *pl, struct strlist *out)
{
	static const char *const defaults[] = { "self-hosted", "Linux",
	    RUNNER_ARCH_LABEL };
	size_t			 i;

	for (i = 0; i < pl->pl_labels.sl_count; i++)
		strlist_add(out, pl->pl_labels.sl_items[i]);
	if (out->sl_count == 0)
		strlist_add(out, "self-hosted");
	if (pl->pl_registration != REG_TOKEN || pl->pl_no_default_labels)
		return;
	for (i = 0; i < nitems(defaults); i++)
		if (!label_has(out, defaults[i]))
			strlist_add(out, defaults[i]);
}

int
poller_runners_started(const char *name, const char **pool,
    int64_t *created)
{
	const struct runner	*rn;
	size_t			 i;

	if ((rn = table_find(name)) != NULL) {
		*pool = rn->rn_pool;
		*created = rn->rn_created;
		return 0;
	}
	for (i = 0; i < GONE_MAX; i++)
		if (pr_gone[i].gr_name != NULL &&
		    strcmp(pr_gone[i].gr_name, name) == 0) {
			*pool = pr_gone[i].gr_pool;
			*created = pr_gone[i].gr_created;
			return 0;
		}
	return -1;
}
