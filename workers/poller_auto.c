/*
 * Automatic mode.  Two rounds, each a set of GitHub GETs run a few at a
 * time through the conditional cache of github.c:
 *
 * - discovery: the repositories the credentials reach (/user/repos, or
 *   /orgs/{org}/repos), then for each the listing of .github/workflows
 *   and every file whose blob sha changed since it was last read.  A
 *   repository is a candidate when one of its jobs may want a
 *   self-hosted runner.  It runs at start, every purge_interval, and
 *   when the mode or the organization changes.
 * - polling: for every candidate, and every repository that has a job in
 *   the table, the queued and in-progress runs, and the queued jobs of
 *   those runs.  It runs every interval.
 *
 * The job table holds the queued jobs, from polling and from webhooks.
 * After each change the scheduler (demand.c) compares it with the
 * runners that exist and starts the ones missing.  A webhook only adds a
 * job or takes it out; polling is the safety net that also forgets jobs
 * whose leaving was never delivered.
 *
 * Warm pools: a pool's min_idle runners are kept registered and idle in
 * its scope (or the organization); the scheduler also runs when the
 * runner table changes, so an idle runner that took a job is replaced at
 * once.  With auto_create off, nothing is polled but the warm runners
 * are still kept.
 *
 * A job that leaves the queue for one of our runners is timed once: from
 * being queued (its webhook, or first sight by polling) to its runner's
 * container running, and from the later of the two to the runner
 * picking it (the job going in_progress).
 */
#include <sys/queue.h>
#include <sys/types.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "demand.h"
#include "github_app.h"
#include "json.h"
#include "json_write.h"
#include "log.h"
#include "poller_auto.h"
#include "poller_runners.h"
#include "supervisor.h"
#include "util.h"
#include "workflow.h"

#define AUTO_INFLIGHT		4	/* GitHub requests at once */
#define AUTO_PAGES_MAX		50	/* pages of one listing */
#define AUTO_FILES_MAX		200	/* workflow files of one repository */
#define AUTO_JOBS_MAX		10000	/* queued jobs remembered */
/* GitHub fails a job that stayed queued this long; forget it then. */
#define AUTO_JOB_TTL		(48 * 3600)
/* Completed jobs are remembered this long, so late news cannot revive. */
#define AUTO_DONE_TTL_MS	(30 * 60 * 1000)
#define AUTO_DONE_MAX		4096
/* The runner table changes often: the scheduler looks at most this often. */
#define AUTO_RUNNERS_DELAY_MS	1000
#define AUTO_POOLS_TIMED	64	/* pools with start histograms */

/* One file of .github/workflows, as last read. */
struct auto_file {
	char		*af_path;
	char		*af_sha;
	int		 af_wants;	/* may want a self-hosted runner */
	int		 af_seen;	/* in the latest listing */
};

struct auto_repo {
	char		*ar_name;	/* owner/name */
	int		 ar_archived;
	/*
	 * Workflow files change only by a push: the listing is read again
	 * only when pushed_at moved since it was last read whole.
	 */
	char		*ar_pushed_at;
	char		*ar_listed_at;	/* pushed_at of the last good read */
	uint64_t	 ar_gen;	/* discovery round that listed it */
	struct auto_file *ar_files;
	size_t		 ar_nfiles;
	int		 ar_candidate;
};

/* A repository polled in this round, and whether every request worked. */
struct auto_target {
	char		*at_repo;
	int		 at_ok;
};

struct auto_job {
	uint64_t	 aj_id;
	char		*aj_repo;
	struct strlist	 aj_labels;
	int64_t		 aj_first_seen;	/* Unix time */
	int64_t		 aj_queued_ms;	/* Unix ms: webhook or first sight */
	uint64_t	 aj_poll_gen;	/* poll round that saw it queued */
	uint64_t	 aj_hook_ms;	/* when a webhook said queued */
	uint64_t	 aj_seen_ms;	/* the latest news that said queued */
};

/* Seconds a job waited, by pool: Prometheus histograms. */
enum start_phase {
	START_QUEUED_TO_RUNNING = 0,
	START_RUNNING_TO_PICKED,
	START_PHASES
};

static const double start_bounds[] = { 0.5, 1, 2, 5, 10, 20, 30, 60, 120,
    300, 600 };
#define START_BUCKETS	(sizeof(start_bounds) / sizeof(start_bounds[0]))

struct start_hist {
	char		*sh_pool;
	uint64_t	 sh_bucket[START_PHASES][START_BUCKETS];
	uint64_t	 sh_count[START_PHASES];
	double		 sh_sum[START_PHASES];
};

struct auto_done {
	uint64_t	 ad_id;
	uint64_t	 ad_until_ms;
	uint64_t	 ad_left_ms;	/* when it left the queue */
	int		 ad_completed;
};

enum auto_phase {
	PHASE_IDLE = 0,
	PHASE_REPOS,		/* the repository list */
	PHASE_FILES,		/* workflow listings and files */
	PHASE_POLL		/* runs and jobs */
};

enum fetch_kind {
	FETCH_INSTALLATIONS,
	FETCH_REPOS,
	FETCH_WORKFLOW_DIR,
	FETCH_WORKFLOW_FILE,
	FETCH_RUNS,
	FETCH_JOBS
};

/* One listing or file, read page after page. */
struct fetch {
	TAILQ_ENTRY(fetch)	 f_entry;
	enum fetch_kind		 f_kind;
	char			*f_url;
	char			*f_repo;	/* owner/name, or NULL */
	char			*f_path;	/* a workflow file */
	uint64_t		 f_installation;	/* App: whose token */
	int			 f_pages;
	int			 f_ok;
	int			 f_status;
};

TAILQ_HEAD(fetches, fetch);

static struct github		*pa_github;
static struct event		*pa_timer;
static int			 pa_enabled;
static int			 pa_warm;	/* a pool keeps idle runners */
static int			 pa_runners_waiting;	/* a look is due */
static int			 pa_stopping;
static enum auto_phase		 pa_phase;
static struct fetches		 pa_pending =
    TAILQ_HEAD_INITIALIZER(pa_pending);
static size_t			 pa_inflight;
static size_t			 pa_outstanding;	/* of the round */

static struct auto_repo		*pa_repos;
static size_t			 pa_nrepos;
static uint64_t			 pa_discover_gen;
static int			 pa_discover_ok;	/* the list came */
static uint64_t			 pa_discovered_ms;	/* 0: never */
static int			 pa_force_discovery;
static char			*pa_mode_key;		/* mode and org */

static struct auto_job		*pa_jobs;
static size_t			 pa_njobs;
static int			 pa_jobs_full_logged;
static struct auto_done		 pa_done[AUTO_DONE_MAX];
static size_t			 pa_ndone;
static uint64_t			 pa_poll_gen;
static struct auto_target	*pa_targets;
static size_t			 pa_ntargets;
static uint64_t			 pa_poll_start_ms;
static struct demand_state	 pa_demand;

/* Counters for the status and /metrics. */
static uint64_t			 pa_cycles;
static uint64_t			 pa_discoveries;
static uint64_t			 pa_fetch_errors;
static uint64_t			 pa_started;
static time_t			 pa_last_poll;
static time_t			 pa_last_discovery;
static struct start_hist	 pa_hists[AUTO_POOLS_TIMED];
static size_t			 pa_nhists;
static uint64_t			 pa_jobs_timed;

static void	 auto_fetch_pump(void);
static void	 auto_round_done(void);
static void	 auto_schedule(const char *);

/* ---- repositories and files ------------------------------------------ */

static struct auto_repo *
repo_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < pa_nrepos; i++)
		if (strcasecmp(pa_repos[i].ar_name, name) == 0)
			return &pa_repos[i];
	return NULL;
}

static void
repo_clear(struct auto_repo *ar)
{
	size_t	 i;

	for (i = 0; i < ar->ar_nfiles; i++) {
		free(ar->ar_files[i].af_path);
		free(ar->ar_files[i].af_sha);
	}
	free(ar->ar_files);
	free(ar->ar_name);
	free(ar->ar_pushed_at);
	free(ar->ar_listed_at);
	memset(ar, 0, sizeof(*ar));
}

static struct auto_repo *
repo_add(const char *name)
{
	struct auto_repo	*ar;

	pa_repos = xreallocarray(pa_repos, pa_nrepos + 1, sizeof(*pa_repos));
	ar = &pa_repos[pa_nrepos++];
	memset(ar, 0, sizeof(*ar));
	ar->ar_name = xstrdup(name);
	return ar;
}

/* Drops the repositories the latest discovery did not list. */
static void
repo_prune(void)
{
	size_t	 i = 0;

	while (i < pa_nrepos) {
		if (pa_repos[i].ar_gen == pa_discover_gen) {
			i++;
			continue;
		}
		log_info(LC_INFO, "repository %s is no longer reachable",
		    pa_repos[i].ar_name);
		repo_clear(&pa_repos[i]);
		pa_repos[i] = pa_repos[--pa_nrepos];
	}
}

static struct auto_file *
file_find(struct auto_repo *ar, const char *path)
{
	size_t	 i;

	for (i = 0; i < ar->ar_nfiles; i++)
		if (strcmp(ar->ar_files[i].af_path, path) == 0)
			return &ar->ar_files[i];
	return NULL;
}

static void
repo_update_candidate(struct auto_repo *ar)
{
	size_t	 i;
	int	 was = ar->ar_candidate;

	ar->ar_candidate = 0;
	for (i = 0; i < ar->ar_nfiles; i++)
		if (ar->ar_files[i].af_wants)
			ar->ar_candidate = 1;
	if (ar->ar_archived)
		ar->ar_candidate = 0;
	if (ar->ar_candidate != was)
		log_info(LC_INFO, "repository %s %s", ar->ar_name,
		    ar->ar_candidate ? "has jobs for self-hosted runners: "
		    "watching it" : "no longer has jobs for self-hosted "
		    "runners");
}

static size_t
repo_candidates(void)
{
	size_t	 i, n = 0;

	for (i = 0; i < pa_nrepos; i++)
		n += pa_repos[i].ar_candidate != 0;
	return n;
}

/* ---- the job table ------------------------------------------------- */

static int64_t
unix_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct start_hist *
hist_for(const char *pool)
{
	size_t	 i;

	for (i = 0; i < pa_nhists; i++)
		if (strcmp(pa_hists[i].sh_pool, pool) == 0)
			return &pa_hists[i];
	if (pa_nhists == AUTO_POOLS_TIMED)
		return NULL;
	pa_hists[pa_nhists].sh_pool = xstrdup(pool);
	return &pa_hists[pa_nhists++];
}

static void
hist_observe(struct start_hist *sh, enum start_phase ph, int64_t ms)
{
	double	 sec = ms > 0 ? (double)ms / 1000.0 : 0.0;
	size_t	 i;

	for (i = 0; i < START_BUCKETS; i++)
		if (sec <= start_bounds[i])
			sh->sh_bucket[ph][i]++;
	sh->sh_count[ph]++;
	sh->sh_sum[ph] += sec;
}

static void
hists_clear(void)
{
	size_t	 i;

	for (i = 0; i < pa_nhists; i++)
		free(pa_hists[i].sh_pool);
	memset(pa_hists, 0, sizeof(pa_hists));
	pa_nhists = 0;
}

/*
 * The job went in_progress on a runner at picked_ms: times it, if the
 * runner is one of ours.  Called only as the job leaves the table, so
 * each job is timed once.  A warm runner was running before the job was
 * queued: it waited 0 s for it.
 */
static void
job_timed(const struct auto_job *aj, const char *runner, int64_t picked_ms)
{
	struct start_hist	*sh;
	const char		*pool;
	int64_t			 created, running_ms, from_ms;

	if (runner == NULL || *runner == '\0' ||
	    poller_runners_started(runner, &pool, &created) == -1 ||
	    created <= 0 || (sh = hist_for(pool)) == NULL)
		return;
	running_ms = created * 1000;
	from_ms = running_ms > aj->aj_queued_ms ? running_ms :
	    aj->aj_queued_ms;
	hist_observe(sh, START_QUEUED_TO_RUNNING, running_ms -
	    aj->aj_queued_ms);
	hist_observe(sh, START_RUNNING_TO_PICKED, picked_ms - from_ms);
	pa_jobs_timed++;
	log_debug(LC_MONITOR, "job %" PRIu64 " of %s: runner %s of pool %s "
	    "running after %.1f s, picked %.1f s later", aj->aj_id,
	    aj->aj_repo, runner, pool, (double)(running_ms -
	    aj->aj_queued_ms) / 1000.0, (double)(picked_ms - from_ms) /
	    1000.0);
}

static struct auto_job *
job_find(uint64_t id)
{
	size_t	 i;

	for (i = 0; i < pa_njobs; i++)
		if (pa_jobs[i].aj_id == id)
			return &pa_jobs[i];
	return NULL;
}

static void
job_remove(struct auto_job *aj)
{
	size_t	 i = (size_t)(aj - pa_jobs);

	free(aj->aj_repo);
	strlist_clear(&aj->aj_labels, 0);
	pa_jobs[i] = pa_jobs[--pa_njobs];
}

static void
jobs_clear(void)
{
	while (pa_njobs > 0)
		job_remove(&pa_jobs[0]);
	free(pa_jobs);
	pa_jobs = NULL;
}

/*
 * A job that left the queue.  A completed one never comes back; one that
 * went in progress may be queued again (GitHub requeues a job its runner
 * did not pick up), but only news younger than its leaving says so: a
 * poll round that began before it cannot bring it back.
 */
static int
done_has(uint64_t id, uint64_t seen_ms)
{
	uint64_t	 now = monotonic_ms();
	size_t		 i;

	for (i = 0; i < pa_ndone; i++)
		if (pa_done[i].ad_id == id && pa_done[i].ad_until_ms > now)
			return pa_done[i].ad_completed ||
			    seen_ms <= pa_done[i].ad_left_ms;
	return 0;
}

static void
done_add(uint64_t id, int completed)
{
	uint64_t	 now = monotonic_ms();
	size_t		 i, oldest = 0;

	for (i = 0; i < pa_ndone; i++) {
		if (pa_done[i].ad_id == id || pa_done[i].ad_until_ms <= now) {
			oldest = i;
			break;
		}
		if (pa_done[i].ad_until_ms < pa_done[oldest].ad_until_ms)
			oldest = i;
	}
	if (i == pa_ndone && pa_ndone < AUTO_DONE_MAX)
		oldest = pa_ndone++;
	if (pa_done[oldest].ad_id != id || pa_done[oldest].ad_until_ms <= now)
		pa_done[oldest].ad_completed = 0;
	pa_done[oldest].ad_id = id;
	pa_done[oldest].ad_until_ms = now + AUTO_DONE_TTL_MS;
	pa_done[oldest].ad_left_ms = now;
	pa_done[oldest].ad_completed |= completed;
}

/* True if the job went in progress lately and was not seen completed. */
static int
done_in_progress(uint64_t id)
{
	uint64_t	 now = monotonic_ms();
	size_t		 i;

	for (i = 0; i < pa_ndone; i++)
		if (pa_done[i].ad_id == id && pa_done[i].ad_until_ms > now)
			return !pa_done[i].ad_completed;
	return 0;
}

static const char *
labels_text(const struct strlist *sl, char *out, size_t outlen)
{
	size_t	 i, n = 0;

	out[0] = '\0';
	for (i = 0; i < sl->sl_count && n < outlen; i++)
		n += (size_t)snprintf(out + n, outlen - n, "%s%s",
		    i == 0 ? "" : ",", sl->sl_items[i]);
	return out;
}

/*
 * Adds a queued job seen at seen_ms (monotonic), or refreshes it; NULL if
 * it is known to have left the queue since.
 */
static struct auto_job *
job_queued(uint64_t id, const char *repo, const struct strlist *labels,
    int64_t created, uint64_t seen_ms)
{
	struct auto_job	*aj;
	char		 text[256];

	if (done_has(id, seen_ms))
		return NULL;
	if ((aj = job_find(id)) != NULL) {
		if (seen_ms > aj->aj_seen_ms)
			aj->aj_seen_ms = seen_ms;
		return aj;
	}
	if (pa_njobs >= AUTO_JOBS_MAX) {
		if (!pa_jobs_full_logged)
			log_warnx(LC_WARNING, "%d jobs are queued; ignoring "
			    "more until some leave", AUTO_JOBS_MAX);
		pa_jobs_full_logged = 1;
		return NULL;
	}
	pa_jobs_full_logged = 0;
	pa_jobs = xreallocarray(pa_jobs, pa_njobs + 1, sizeof(*pa_jobs));
	aj = &pa_jobs[pa_njobs++];
	memset(aj, 0, sizeof(*aj));
	aj->aj_id = id;
	aj->aj_repo = xstrdup(repo);
	strlist_copy(&aj->aj_labels, labels);
	aj->aj_first_seen = created > 0 ? created : (int64_t)time(NULL);
	aj->aj_queued_ms = unix_ms();
	aj->aj_seen_ms = seen_ms;
	log_debug(LC_INFO, "job %" PRIu64 " of %s is queued for [%s]", id,
	    repo, labels_text(labels, text, sizeof(text)));
	return aj;
}

/* ---- GitHub requests, a few at a time -------------------------------- */

static void
fetch_free(struct fetch *f)
{
	free(f->f_url);
	free(f->f_repo);
	free(f->f_path);
	free(f);
}

static struct fetch *
fetch_add(enum fetch_kind kind, char *url, const char *repo,
    const char *path)
{
	struct fetch	*f = xcalloc(1, sizeof(*f));

	f->f_kind = kind;
	f->f_url = url;
	f->f_repo = repo != NULL ? xstrdup(repo) : NULL;
	f->f_path = path != NULL ? xstrdup(path) : NULL;
	TAILQ_INSERT_TAIL(&pa_pending, f, f_entry);
	pa_outstanding++;
	return f;
}

/* Percent-encodes a path, keeping its slashes. */
static char *
url_path_escape(const char *path)
{
	struct buf	 b;
	const char	*p;
	char		*out;

	buf_init(&b);
	for (p = path; *p != '\0'; p++) {
		if (isalnum((unsigned char)*p) || strchr("-._~/", *p) != NULL)
			buf_add_char(&b, *p);
		else
			buf_printf(&b, "%%%02X", (unsigned char)*p);
	}
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

static int
json_bool_member(const struct json_doc *doc, int obj, const char *key)
{
	int	 tok, v = 0;

	if ((tok = json_object_get(doc, obj, key)) == -1 ||
	    json_get_bool(doc, tok, &v) == -1)
		return 0;
	return v;
}

static int
json_u64_member(const struct json_doc *doc, int obj, const char *key,
    uint64_t *out)
{
	int64_t	 v;

	if (json_member_i64(doc, obj, key, &v) == -1 || v <= 0)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

/*
 * A page of an App's installations: the repositories of each are listed
 * with its own token.
 */
static int
on_installations_page(const struct json_doc *doc)
{
	struct fetch	*f;
	uint64_t	 id;
	char		*url;
	int		 i, n, obj;

	if (json_type(doc, 0) != JSON_ARRAY)
		return -1;
	n = json_size(doc, 0);
	for (i = 0; i < n && i < GITHUB_APP_INSTALLATIONS_MAX; i++) {
		obj = json_array_get(doc, 0, i);
		if (json_type(doc, obj) != JSON_OBJECT ||
		    json_u64_member(doc, obj, "id", &id) == -1 || id == 0)
			return -1;
		xasprintf(&url, "%s/installation/repositories?per_page=100",
		    child.cs_config.c_api_url);
		f = fetch_add(FETCH_REPOS, url, NULL, NULL);
		f->f_installation = id;
	}
	return 0;
}

/*
 * One page of /user/repos or /orgs/{org}/repos, an array of repos, or of
 * /installation/repositories, an object with them in "repositories".
 */
static int
on_repos_page(const struct json_doc *doc)
{
	struct auto_repo	*ar;
	char			*name;
	int			 i, n, obj, arr = 0;

	if (json_type(doc, 0) == JSON_OBJECT &&
	    (arr = json_object_get(doc, 0, "repositories")) == -1)
		return -1;
	if (json_type(doc, arr) != JSON_ARRAY)
		return -1;
	n = json_size(doc, arr);
	for (i = 0; i < n; i++) {
		obj = json_array_get(doc, arr, i);
		if (json_type(doc, obj) != JSON_OBJECT ||
		    (name = json_member_str(doc, obj, "full_name")) == NULL)
			return -1;
		if (strchr(name, '/') == NULL) {
			free(name);
			return -1;
		}
		if ((ar = repo_find(name)) == NULL)
			ar = repo_add(name);
		free(name);
		ar->ar_gen = pa_discover_gen;
		ar->ar_archived = json_bool_member(doc, obj, "archived") ||
		    json_bool_member(doc, obj, "disabled");
		free(ar->ar_pushed_at);
		ar->ar_pushed_at = json_member_str(doc, obj, "pushed_at");
	}
	return 0;
}

static int
is_workflow_name(const char *name)
{
	size_t	 len = strlen(name);

	return (len > 4 && strcmp(name + len - 4, ".yml") == 0) ||
	    (len > 5 && strcmp(name + len - 5, ".yaml") == 0);
}

/* A workflow file of a listing: read it again if its sha changed. */
static void
dir_entry(struct auto_repo *ar, const char *path, const char *sha)
{
	struct auto_file	*af;
	char			*url, *esc;

	if ((af = file_find(ar, path)) != NULL && strcmp(af->af_sha, sha) ==
	    0) {
		af->af_seen = 1;
		return;
	}
	if (af == NULL && ar->ar_nfiles >= AUTO_FILES_MAX)
		return;
	if (af == NULL) {
		ar->ar_files = xreallocarray(ar->ar_files, ar->ar_nfiles + 1,
		    sizeof(*ar->ar_files));
		af = &ar->ar_files[ar->ar_nfiles++];
		memset(af, 0, sizeof(*af));
		af->af_path = xstrdup(path);
	}
	free(af->af_sha);
	af->af_sha = xstrdup(sha);
	af->af_seen = 1;

	esc = url_path_escape(path);
	xasprintf(&url, "%s/repos/%s/contents/%s", child.cs_config.c_api_url,
	    ar->ar_name, esc);
	free(esc);
	fetch_add(FETCH_WORKFLOW_FILE, url, ar->ar_name, path);
}

/* The listing of .github/workflows: fetch the files that changed. */
static int
on_workflow_dir_page(const struct json_doc *doc, const char *repo)
{
	struct auto_repo	*ar;
	char			*name, *path, *sha;
	int			 i, n, obj, type, rc = 0;

	if ((ar = repo_find(repo)) == NULL)
		return 0;
	if (json_type(doc, 0) != JSON_ARRAY)
		return -1;
	n = json_size(doc, 0);
	for (i = 0; i < n && rc == 0; i++) {
		obj = json_array_get(doc, 0, i);
		name = json_member_str(doc, obj, "name");
		path = json_member_str(doc, obj, "path");
		sha = json_member_str(doc, obj, "sha");
		type = json_object_get(doc, obj, "type");
		if (name == NULL || path == NULL || sha == NULL || type == -1)
			rc = -1;
		/* GitHub reads no workflows in subdirectories. */
		else if (json_streq(doc, type, "file") &&
		    is_workflow_name(name))
			dir_entry(ar, path, sha);
		free(name);
		free(path);
		free(sha);
	}
	return rc;
}

/* Forgets the files a complete listing no longer has. */
static void
repo_files_prune(struct auto_repo *ar)
{
	size_t	 i = 0;

	while (i < ar->ar_nfiles) {
		if (ar->ar_files[i].af_seen) {
			i++;
			continue;
		}
		free(ar->ar_files[i].af_path);
		free(ar->ar_files[i].af_sha);
		ar->ar_files[i] = ar->ar_files[--ar->ar_nfiles];
	}
	repo_update_candidate(ar);
}

/* The base64 of the contents API, with its line breaks. */
static char *
base64_decode_lines(const char *in, size_t *outlen)
{
	unsigned char	*clean, *out;
	size_t		 i, n = 0, len = strlen(in);
	int		 got;

	clean = xmalloc(len + 1);
	for (i = 0; i < len; i++)
		if (!isspace((unsigned char)in[i]))
			clean[n++] = (unsigned char)in[i];
	if (n % 4 != 0) {
		free(clean);
		return NULL;
	}
	out = xmalloc(n / 4 * 3 + 1);
	got = EVP_DecodeBlock(out, clean, (int)n);
	if (got < 0) {
		free(clean);
		free(out);
		return NULL;
	}
	/* EVP_DecodeBlock counts the padding as bytes. */
	if (n >= 1 && clean[n - 1] == '=')
		got--;
	if (n >= 2 && clean[n - 2] == '=')
		got--;
	free(clean);
	out[got] = '\0';
	*outlen = (size_t)got;
	return (char *)out;
}

static int
workflow_wants_self_hosted(const struct workflow *wf)
{
	size_t	 i;

	for (i = 0; i < wf->wf_njobs; i++)
		if (wf->wf_jobs[i].wj_need != WF_NEED_HOSTED)
			return 1;
	return 0;
}

static int
on_workflow_file(const struct json_doc *doc, const char *repo,
    const char *path)
{
	struct auto_repo	*ar;
	struct auto_file	*af;
	struct workflow		 wf;
	char			*content, *text, err[256];
	size_t			 len;

	if ((ar = repo_find(repo)) == NULL ||
	    (af = file_find(ar, path)) == NULL)
		return 0;
	if ((content = json_member_str(doc, 0, "content")) == NULL)
		return -1;
	text = base64_decode_lines(content, &len);
	free(content);
	if (text == NULL)
		return -1;

	if (workflow_parse(&wf, path, text, len, err, sizeof(err)) == -1) {
		/* GitHub would not run it either; it asks for nothing. */
		log_info(LC_WARNING, "%s: %s", repo, err);
		af->af_wants = 0;
	} else {
		af->af_wants = workflow_wants_self_hosted(&wf);
		workflow_free(&wf);
	}
	free(text);
	repo_update_candidate(ar);
	return 0;
}

/* A page of workflow runs: read the jobs of each. */
static int
on_runs_page(const struct json_doc *doc, const char *repo)
{
	int		 runs, i, n, obj;
	uint64_t	 id;
	char		*url;

	if (json_type(doc, 0) != JSON_OBJECT ||
	    (runs = json_object_get(doc, 0, "workflow_runs")) == -1 ||
	    json_type(doc, runs) != JSON_ARRAY)
		return -1;
	n = json_size(doc, runs);
	for (i = 0; i < n; i++) {
		obj = json_array_get(doc, runs, i);
		if (json_u64_member(doc, obj, "id", &id) == -1)
			return -1;
		xasprintf(&url, "%s/repos/%s/actions/runs/%" PRIu64
		    "/jobs?filter=latest&per_page=100",
		    child.cs_config.c_api_url, repo, id);
		fetch_add(FETCH_JOBS, url, repo, NULL);
	}
	return 0;
}

static int
job_labels(const struct json_doc *doc, int obj, struct strlist *labels)
{
	int	 arr, i, n;
	char	*s;

	if ((arr = json_object_get(doc, obj, "labels")) == -1 ||
	    json_type(doc, arr) != JSON_ARRAY)
		return -1;
	n = json_size(doc, arr);
	for (i = 0; i < n && i < WORKFLOW_MAX_LABELS; i++) {
		if ((s = json_get_str(doc, json_array_get(doc, arr, i))) ==
		    NULL)
			return -1;
		strlist_add(labels, s);
		free(s);
	}
	return 0;
}

/*
 * Polling saw a job in progress: the runner that took it is named, and
 * if the job is in the table it leaves, timed.
 */
static void
job_went_in_progress(const struct json_doc *doc, int obj, uint64_t id)
{
	struct auto_job	*aj;
	char		*runner, *started;
	time_t		 t;
	int64_t		 picked_ms = unix_ms();

	runner = json_member_str(doc, obj, "runner_name");
	poller_runners_job_named(runner);
	if ((aj = job_find(id)) == NULL) {
		free(runner);
		return;
	}
	if ((started = json_member_str(doc, obj, "started_at")) != NULL &&
	    github_parse_time(started, &t) == 0 && t > 0)
		picked_ms = (int64_t)t * 1000;
	free(started);
	job_timed(aj, runner, picked_ms);
	free(runner);
	log_debug(LC_INFO, "job %" PRIu64 " of %s is in progress", aj->aj_id,
	    aj->aj_repo);
	done_add(aj->aj_id, 0);
	job_remove(aj);
}

/* A page of a run's jobs: the queued ones go into the table. */
static int
on_jobs_page(const struct json_doc *doc, const char *repo)
{
	struct auto_job	*aj;
	struct strlist	 labels;
	int		 jobs, i, n, obj, tok;
	uint64_t	 id;
	char		*created;
	time_t		 t = 0;

	if (json_type(doc, 0) != JSON_OBJECT ||
	    (jobs = json_object_get(doc, 0, "jobs")) == -1 ||
	    json_type(doc, jobs) != JSON_ARRAY)
		return -1;
	n = json_size(doc, jobs);
	for (i = 0; i < n; i++) {
		obj = json_array_get(doc, jobs, i);
		if (json_u64_member(doc, obj, "id", &id) == -1)
			return -1;
		tok = json_object_get(doc, obj, "status");
		if (tok != -1 && json_streq(doc, tok, "in_progress"))
			job_went_in_progress(doc, obj, id);
		if (tok == -1 || !json_streq(doc, tok, "queued"))
			continue;
		memset(&labels, 0, sizeof(labels));
		if (job_labels(doc, obj, &labels) == -1) {
			strlist_clear(&labels, 0);
			return -1;
		}
		if ((created = json_member_str(doc, obj, "created_at")) !=
		    NULL && github_parse_time(created, &t) == -1)
			t = 0;
		free(created);
		if ((aj = job_queued(id, repo, &labels, (int64_t)t,
		    pa_poll_start_ms)) != NULL)
			aj->aj_poll_gen = pa_poll_gen;
		strlist_clear(&labels, 0);
	}
	return 0;
}

static int
fetch_page(struct fetch *f, const struct http_response *res)
{
	struct json_doc	 doc;
	const char	*why;
	int		 rc = -1;

	if (json_parse(&doc, (const char *)res->hr_body.b_data,
	    res->hr_body.b_len, &why) == -1) {
		log_warnx(LC_WARNING, "GitHub sent malformed JSON for %s: %s",
		    f->f_url, why);
		return -1;
	}
	switch (f->f_kind) {
	case FETCH_INSTALLATIONS:
		rc = on_installations_page(&doc);
		break;
	case FETCH_REPOS:
		rc = on_repos_page(&doc);
		break;
	case FETCH_WORKFLOW_DIR:
		rc = on_workflow_dir_page(&doc, f->f_repo);
		break;
	case FETCH_WORKFLOW_FILE:
		rc = on_workflow_file(&doc, f->f_repo, f->f_path);
		break;
	case FETCH_RUNS:
		rc = on_runs_page(&doc, f->f_repo);
		break;
	case FETCH_JOBS:
		rc = on_jobs_page(&doc, f->f_repo);
		break;
	}
	json_free(&doc);
	if (rc == -1)
		log_warnx(LC_WARNING, "GitHub's answer to %s is not what was "
		    "expected", f->f_url);
	return rc;
}

static void
target_failed(const char *repo)
{
	size_t	 i;

	for (i = 0; i < pa_ntargets; i++)
		if (strcasecmp(pa_targets[i].at_repo, repo) == 0)
			pa_targets[i].at_ok = 0;
}

static struct auto_target *
target_find(const char *repo)
{
	size_t	 i;

	for (i = 0; i < pa_ntargets; i++)
		if (strcasecmp(pa_targets[i].at_repo, repo) == 0)
			return &pa_targets[i];
	return NULL;
}

static void
targets_clear(void)
{
	size_t	 i;

	for (i = 0; i < pa_ntargets; i++)
		free(pa_targets[i].at_repo);
	free(pa_targets);
	pa_targets = NULL;
	pa_ntargets = 0;
}

/* The listing was read whole at the repository's current push. */
static void
repo_listed(struct auto_repo *ar)
{
	free(ar->ar_listed_at);
	ar->ar_listed_at = ar->ar_pushed_at != NULL ?
	    xstrdup(ar->ar_pushed_at) : NULL;
}

static int
repo_listing_current(const struct auto_repo *ar)
{
	return ar->ar_pushed_at != NULL && ar->ar_listed_at != NULL &&
	    strcmp(ar->ar_pushed_at, ar->ar_listed_at) == 0;
}

/* What a finished listing means for its repository. */
static void
fetch_finish(struct fetch *f)
{
	struct auto_repo	*ar;
	struct auto_file	*af;

	ar = f->f_repo != NULL ? repo_find(f->f_repo) : NULL;
	switch (f->f_kind) {
	case FETCH_INSTALLATIONS:
	case FETCH_REPOS:
		pa_discover_ok = pa_discover_ok && f->f_ok;
		break;
	case FETCH_WORKFLOW_DIR:
		if (ar == NULL)
			break;
		if (f->f_ok || f->f_status == 404) {
			if (f->f_status == 404) {
				f->f_ok = 1;
				f->f_status = 200;
			}
			repo_files_prune(ar);
			repo_listed(ar);
		}
		break;
	case FETCH_WORKFLOW_FILE:
		/* Read again at the next discovery. */
		if (!f->f_ok && ar != NULL &&
		    (af = file_find(ar, f->f_path)) != NULL) {
			free(af->af_sha);
			af->af_sha = xstrdup("");
			free(ar->ar_listed_at);
			ar->ar_listed_at = NULL;
		}
		break;
	case FETCH_RUNS:
	case FETCH_JOBS:
		if (!f->f_ok)
			target_failed(f->f_repo);
		break;
	}
	if (!f->f_ok && f->f_status != 404)
		pa_fetch_errors++;
}

static void	 fetch_start(struct fetch *);

static void
fetch_on_response(struct http_response *res, void *arg)
{
	struct fetch	*f = arg;
	char		*link, *next = NULL, *err;

	pa_inflight--;
	f->f_status = (int)res->hr_status;
	if (res->hr_status == 200 && !pa_stopping) {
		f->f_pages++;
		if (fetch_page(f, res) == 0) {
			f->f_ok = 1;
			link = http_header_get(res, "Link");
			next = link != NULL ? github_link_next(link) : NULL;
			free(link);
		}
	} else if (res->hr_status != 404 && !pa_stopping) {
		err = github_error_text(res);
		log_warnx(LC_WARNING, "GitHub request %s failed: %s",
		    f->f_url, err);
		free(err);
	}

	if (next != NULL && f->f_pages < AUTO_PAGES_MAX) {
		free(f->f_url);
		f->f_url = next;
		f->f_ok = 0;
		fetch_start(f);
		return;
	}
	free(next);
	if (!pa_stopping)
		fetch_finish(f);
	fetch_free(f);
	pa_outstanding--;
	if (pa_stopping)
		return;
	auto_fetch_pump();
	if (pa_outstanding == 0)
		auto_round_done();
}

static void
fetch_failed_later(evutil_socket_t fd, short what, void *arg)
{
	struct http_response	 res;

	(void)fd;
	(void)what;
	memset(&res, 0, sizeof(res));
	buf_init(&res.hr_body);
	buf_init(&res.hr_headers);
	res.hr_error = "the request could not be started";
	fetch_on_response(&res, arg);
}

static void
fetch_start(struct fetch *f)
{
	struct timeval	 now = { 0, 0 };

	pa_inflight++;
	if (github_request_as(pa_github, f->f_installation, "GET", f->f_url,
	    NULL, NULL, 0, fetch_on_response, f) != -1)
		return;

	/* Answers never come from inside a call, failures neither. */
	if (event_base_once(child.cs_base, -1, EV_TIMEOUT, fetch_failed_later,
	    f, &now) == -1)
		fatalx("cannot schedule an event");
}

static void
auto_fetch_pump(void)
{
	struct fetch	*f;

	while (!pa_stopping && pa_inflight < AUTO_INFLIGHT &&
	    (f = TAILQ_FIRST(&pa_pending)) != NULL) {
		TAILQ_REMOVE(&pa_pending, f, f_entry);
		fetch_start(f);
	}
}

/* ---- rounds ------------------------------------------------------------ */

static void
auto_discover_start(void)
{
	const struct config	*conf = &child.cs_config;
	enum fetch_kind		 kind = FETCH_REPOS;
	char			*url;

	pa_phase = PHASE_REPOS;
	pa_discover_gen++;
	pa_discover_ok = 1;
	if (conf->c_discovery_mode == DISCOVERY_ORGANIZATION)
		xasprintf(&url, "%s/orgs/%s/repos?type=all&per_page=100",
		    conf->c_api_url, conf->c_organization);
	else if (conf->c_app_id != 0 && conf->c_installation_id != 0)
		/* An App's token gets 403 from /user/repos. */
		xasprintf(&url, "%s/installation/repositories?per_page=100",
		    conf->c_api_url);
	else if (conf->c_app_id != 0) {
		/* Each installation lists its own repositories. */
		xasprintf(&url, "%s/app/installations?per_page=100",
		    conf->c_api_url);
		kind = FETCH_INSTALLATIONS;
	} else
		xasprintf(&url, "%s/user/repos?affiliation=owner,"
		    "collaborator,organization_member&per_page=100",
		    conf->c_api_url);
	fetch_add(kind, url, NULL, NULL);
	auto_fetch_pump();
}


/* The repository list came: read the workflow listings. */
static void
auto_discover_files(void)
{
	size_t	 i, j;
	char	*url;

	repo_prune();
	for (i = 0; i < pa_nrepos; i++) {
		if (pa_repos[i].ar_archived) {
			repo_update_candidate(&pa_repos[i]);
			continue;
		}
		if (repo_listing_current(&pa_repos[i]))
			continue;
		for (j = 0; j < pa_repos[i].ar_nfiles; j++)
			pa_repos[i].ar_files[j].af_seen = 0;
		xasprintf(&url, "%s/repos/%s/contents/.github/workflows",
		    child.cs_config.c_api_url, pa_repos[i].ar_name);
		fetch_add(FETCH_WORKFLOW_DIR, url, pa_repos[i].ar_name, NULL);
	}
}

static void
poll_repo(const char *repo)
{
	static const char *const statuses[] = { "queued", "in_progress" };
	struct auto_target	*at;
	char			*url;
	size_t			 i;

	if (target_find(repo) != NULL)
		return;
	pa_targets = xreallocarray(pa_targets, pa_ntargets + 1,
	    sizeof(*pa_targets));
	at = &pa_targets[pa_ntargets++];
	at->at_repo = xstrdup(repo);
	at->at_ok = 1;
	for (i = 0; i < 2; i++) {
		xasprintf(&url, "%s/repos/%s/actions/runs?status=%s&"
		    "per_page=100", child.cs_config.c_api_url, repo,
		    statuses[i]);
		fetch_add(FETCH_RUNS, url, repo, NULL);
	}
}

/*
 * Polls the candidates, and the repositories of queued jobs that
 * discovery does not watch (a webhook brought them), so that a job whose
 * leaving was never delivered is forgotten all the same.
 */
static void
auto_poll_start(void)
{
	size_t	 i;

	pa_phase = PHASE_POLL;
	pa_poll_gen++;
	pa_poll_start_ms = monotonic_ms();
	targets_clear();
	for (i = 0; i < pa_nrepos; i++)
		if (pa_repos[i].ar_candidate)
			poll_repo(pa_repos[i].ar_name);
	for (i = 0; i < pa_njobs; i++)
		poll_repo(pa_jobs[i].aj_repo);
	auto_fetch_pump();
	if (pa_outstanding == 0)
		auto_round_done();
}

/*
 * Forgets the jobs of the repositories polled without error that were not
 * seen queued, unless a webhook said queued after the round began.
 */
static void
auto_reconcile(void)
{
	struct auto_target	*at;
	struct auto_job		*aj;
	time_t			 now = time(NULL);
	size_t			 i = 0;

	while (i < pa_njobs) {
		aj = &pa_jobs[i];
		at = target_find(aj->aj_repo);
		if ((at != NULL && at->at_ok &&
		    aj->aj_poll_gen != pa_poll_gen &&
		    aj->aj_hook_ms < pa_poll_start_ms) ||
		    now - aj->aj_first_seen > AUTO_JOB_TTL) {
			log_debug(LC_INFO, "job %" PRIu64 " of %s left the "
			    "queue", aj->aj_id, aj->aj_repo);
			job_remove(aj);
			continue;
		}
		i++;
	}
}

static void
auto_discovery_done(void)
{
	pa_discovered_ms = monotonic_ms();
	if (pa_discover_ok) {
		pa_discoveries++;
		pa_last_discovery = time(NULL);
		log_info(LC_INFO, "discovery: %zu repositories, %zu with jobs "
		    "for self-hosted runners", pa_nrepos, repo_candidates());
	} else
		pa_force_discovery = 1;		/* at the next cycle */
}

/* The requests of a phase are all answered: on to the next. */
static void
auto_round_done(void)
{
	switch (pa_phase) {
	case PHASE_REPOS:
		if (pa_discover_ok) {
			pa_phase = PHASE_FILES;
			auto_discover_files();
			auto_fetch_pump();
			if (pa_outstanding == 0)
				auto_round_done();
			return;
		}
		auto_discovery_done();
		auto_poll_start();
		return;
	case PHASE_FILES:
		auto_discovery_done();
		auto_poll_start();
		return;
	case PHASE_POLL:
		pa_phase = PHASE_IDLE;
		pa_cycles++;
		pa_last_poll = time(NULL);
		auto_reconcile();
		auto_schedule("poll");
		return;
	case PHASE_IDLE:
		return;
	}
}

/* ---- scheduling -------------------------------------------------------- */

/* Where a runner for a job of this repository registers, or -1. */
static int
job_scope(const char *repo, const char **scope, char *name, size_t namelen)
{
	const struct config	*conf = &child.cs_config;
	size_t			 owner = strcspn(repo, "/");

	if (conf->c_discovery_mode != DISCOVERY_ORGANIZATION) {
		*scope = "repo";
		strlcpy(name, repo, namelen);
		return 0;
	}
	if (strlen(conf->c_organization) != owner ||
	    strncasecmp(repo, conf->c_organization, owner) != 0)
		return -1;
	*scope = "org";
	strlcpy(name, conf->c_organization, namelen);
	return 0;
}

/* Where a pool's idle runners register; a NULL name keeps none. */
static void
pool_idle_scope(const struct pool *pl, const char **scope,
    const char **name)
{
	const struct config	*conf = &child.cs_config;

	*scope = NULL;
	*name = NULL;
	if (pl->pl_scope != NULL && pl->pl_scope[0] != '\0' &&
	    pl->pl_scope_name != NULL && pl->pl_scope_name[0] != '\0') {
		*scope = pl->pl_scope;
		*name = pl->pl_scope_name;
	} else if (conf->c_discovery_mode == DISCOVERY_ORGANIZATION &&
	    conf->c_organization != NULL && conf->c_organization[0] != '\0') {
		*scope = "org";
		*name = conf->c_organization;
	}
}

static int
pools_keep_idle(const struct config *conf)
{
	const char	*scope, *name;
	size_t		 i;

	for (i = 0; i < conf->c_npools; i++) {
		pool_idle_scope(&conf->c_pools[i], &scope, &name);
		if (conf->c_pools[i].pl_min_idle > 0 && name != NULL)
			return 1;
	}
	return 0;
}

static struct demand_pool *
auto_pools(size_t *n)
{
	const struct config	*conf = &child.cs_config;
	const struct pool	*pl;
	struct demand_pool	*dp;
	size_t			 i;

	dp = xcalloc(conf->c_npools + 1, sizeof(*dp));
	for (i = 0; i < conf->c_npools; i++) {
		pl = &conf->c_pools[i];
		dp[i].dp_name = pl->pl_name;
		poller_runners_pool_labels(pl, &dp[i].dp_labels);
		dp[i].dp_max_runners = pl->pl_max_runners;
		dp[i].dp_min_idle = pl->pl_min_idle;
		pool_idle_scope(pl, &dp[i].dp_idle_scope,
		    &dp[i].dp_idle_scope_name);
	}
	*n = conf->c_npools;
	return dp;
}

struct auto_jobs_view {
	struct demand_job	*jv_jobs;
	char			(*jv_scopes)[GITHUB_OWNER_MAX +
				    GITHUB_REPO_MAX + 2];
	size_t			 jv_n;
};

static void
auto_jobs_view(struct auto_jobs_view *jv)
{
	struct demand_job	*dj;
	size_t			 i;

	jv->jv_jobs = xcalloc(pa_njobs + 1, sizeof(*jv->jv_jobs));
	jv->jv_scopes = xcalloc(pa_njobs + 1, sizeof(*jv->jv_scopes));
	jv->jv_n = 0;
	for (i = 0; i < pa_njobs; i++) {
		dj = &jv->jv_jobs[jv->jv_n];
		if (job_scope(pa_jobs[i].aj_repo, &dj->dj_scope,
		    jv->jv_scopes[jv->jv_n], sizeof(jv->jv_scopes[0])) == -1)
			continue;
		dj->dj_scope_name = jv->jv_scopes[jv->jv_n];
		dj->dj_id = pa_jobs[i].aj_id;
		dj->dj_labels = pa_jobs[i].aj_labels;
		dj->dj_repo = pa_jobs[i].aj_repo;
		dj->dj_first_seen = pa_jobs[i].aj_first_seen;
		dj->dj_seen_ms = pa_jobs[i].aj_seen_ms;
		jv->jv_n++;
	}
}

static void
auto_start(const struct demand_pool *pools, const struct demand_start *ds)
{
	char	 err[512], text[256];

	if (poller_runners_start(pools[ds->ds_pool].dp_name, ds->ds_scope,
	    ds->ds_scope_name, ds->ds_count, err, sizeof(err)) == -1) {
		log_warnx(LC_ERROR, "cannot start runners for %s: %s",
		    ds->ds_scope_name, err);
		return;
	}
	pa_started += ds->ds_count;
	log_info(LC_MONITOR, "demand: %u runner%s of pool %s for %s %s "
	    "[%s]", ds->ds_count, ds->ds_count == 1 ? "" : "s",
	    pools[ds->ds_pool].dp_name, ds->ds_scope, ds->ds_scope_name,
	    ds->ds_labels != NULL ? labels_text(ds->ds_labels, text,
	    sizeof(text)) : "min_idle");
}

/*
 * Compares the queued jobs with the runners that could take them and
 * starts what is missing.  Runners being registered count as starting,
 * so calling this again at once starts nothing twice.
 */
static void
auto_schedule(const char *why)
{
	struct auto_jobs_view	 jv;
	struct demand_pool	*pools;
	struct demand_runner	*runners;
	struct demand_result	 res;
	const struct demand_job	*dj;
	size_t			 npools, nrunners, i;
	char			 text[256];
	time_t			 until;
	const char		*reason;

	if ((!pa_enabled && !pa_warm) || pa_stopping ||
	    !poller_runners_ready())
		return;
	if (github_paused(pa_github, &until, &reason))
		return;

	pools = auto_pools(&npools);
	auto_jobs_view(&jv);
	nrunners = poller_runners_demand(&runners);
	demand_busy_may_cover(runners, nrunners, jv.jv_jobs, jv.jv_n);
	demand_compute(&pa_demand, pools, npools, jv.jv_jobs, jv.jv_n,
	    runners, nrunners, &res);

	for (i = 0; i < res.dm_nunservable; i++) {
		dj = res.dm_unservable[i];
		log_warnx(LC_WARNING, "job %" PRIu64 " of %s asks for [%s]: "
		    "no pool serves these labels", dj->dj_id, dj->dj_repo,
		    labels_text(&dj->dj_labels, text, sizeof(text)));
	}
	for (i = 0; i < res.dm_nstarts; i++)
		auto_start(pools, &res.dm_starts[i]);
	if (res.dm_nstarts > 0 || res.dm_capped > 0)
		log_debug(LC_MONITOR, "demand after %s: %zu queued, %zu "
		    "covered, %zu started, %zu kept idle, %zu waiting for "
		    "max_runners", why, res.dm_queued, res.dm_covered,
		    res.dm_started, res.dm_idle_started, res.dm_capped);

	demand_result_free(&res);
	free(runners);
	free(jv.jv_jobs);
	free(jv.jv_scopes);
	for (i = 0; i < npools; i++)
		strlist_clear(&pools[i].dp_labels, 0);
	free(pools);
}

/* ---- the cycle ------------------------------------------------------- */

static int
discovery_due(void)
{
	uint64_t	 every;

	if (pa_force_discovery || pa_discovered_ms == 0)
		return 1;
	every = (uint64_t)child.cs_config.c_purge_interval * 1000;
	return monotonic_ms() - pa_discovered_ms >= every;
}

static void
auto_tick(evutil_socket_t fd, short what, void *arg)
{
	time_t		 until;
	const char	*why;

	(void)fd;
	(void)what;
	(void)arg;
	if (!pa_enabled) {
		auto_schedule("min_idle");
		return;
	}
	if (pa_stopping || pa_phase != PHASE_IDLE)
		return;
	if (github_paused(pa_github, &until, &why)) {
		log_debug(LC_MONITOR, "GitHub requests are paused: %s", why);
		return;
	}
	if (discovery_due()) {
		pa_force_discovery = 0;
		auto_discover_start();
	} else
		auto_poll_start();
}

static void
auto_arm(uint32_t interval)
{
	struct timeval	 tv = { (time_t)interval, 0 };

	if (pa_timer == NULL)
		pa_timer = event_new(child.cs_base, -1, EV_PERSIST, auto_tick,
		    NULL);
	evtimer_add(pa_timer, &tv);
}

static char *
auto_mode_key(const struct config *conf)
{
	char	*key;

	xasprintf(&key, "%d:%s:%s", conf->c_discovery_mode,
	    conf->c_organization != NULL ? conf->c_organization : "",
	    conf->c_api_url);
	return key;
}

void
poller_auto_init(struct github *gh)
{
	pa_github = gh;
	demand_state_init(&pa_demand);
}

void
poller_auto_configure(const struct config *conf)
{
	char	*key;

	if (pa_github == NULL || pa_stopping)
		return;
	key = auto_mode_key(conf);
	if (pa_mode_key != NULL && strcmp(key, pa_mode_key) != 0) {
		log_info(LC_CONFIG, "discovery settings changed: discovering "
		    "again");
		pa_force_discovery = 1;
	}
	free(pa_mode_key);
	pa_mode_key = key;

	pa_warm = pools_keep_idle(conf);
	if (!conf->c_auto_create) {
		if (pa_enabled)
			log_info(LC_CONFIG, "automatic mode is off");
		pa_enabled = 0;
		jobs_clear();
		pa_njobs = 0;
		if (!pa_warm) {
			if (pa_timer != NULL)
				evtimer_del(pa_timer);
			return;
		}
		log_info(LC_START, "keeping the idle runners of min_idle, "
		    "checked every %u s; GitHub is not polled for jobs",
		    conf->c_interval);
		auto_arm(conf->c_interval);
		event_active(pa_timer, EV_TIMEOUT, 0);
		return;
	}
	if (!pa_enabled)
		log_info(LC_START, "automatic mode: discovering %s, demand "
		    "checked every %u s", conf->c_discovery_mode ==
		    DISCOVERY_ORGANIZATION ? "the organization's repositories" :
		    "every repository the token reaches", conf->c_interval);
	pa_enabled = 1;
	auto_arm(conf->c_interval);
	/* The first cycle at once, not one interval from now. */
	event_active(pa_timer, EV_TIMEOUT, 0);
}

void
poller_auto_stop(void)
{
	pa_stopping = 1;
	if (pa_timer != NULL) {
		event_free(pa_timer);
		pa_timer = NULL;
	}
}

void
poller_auto_free(void)
{
	struct fetch	*f;
	size_t		 i;

	while ((f = TAILQ_FIRST(&pa_pending)) != NULL) {
		TAILQ_REMOVE(&pa_pending, f, f_entry);
		fetch_free(f);
	}
	for (i = 0; i < pa_nrepos; i++)
		repo_clear(&pa_repos[i]);
	free(pa_repos);
	pa_repos = NULL;
	pa_nrepos = 0;
	jobs_clear();
	targets_clear();
	demand_state_free(&pa_demand);
	hists_clear();
	free(pa_mode_key);
	pa_mode_key = NULL;
	pa_github = NULL;
}

/* ---- webhooks ------------------------------------------------------- */

/*
 * A queued delivery for a job that went in progress: GitHub queues a job
 * again when the runner it was given never took it, but it also delivers
 * out of order.  Only the job itself, read back, says which.
 */
struct job_check {
	uint64_t	 jc_id;
	char		*jc_repo;
	uint64_t	 jc_asked_ms;
};

static void
job_check_on_answer(struct http_response *res, void *arg)
{
	struct job_check	*jc = arg;
	struct auto_job		*aj;
	struct json_doc		 doc;
	struct strlist		 labels;
	const char		*why;
	int			 tok, queued;

	if (pa_stopping || res->hr_status != 200 ||
	    github_json(&doc, res, &why) == -1) {
		log_debug(LC_INFO, "job %" PRIu64 " of %s: cannot read it "
		    "back (%ld); polling will tell", jc->jc_id, jc->jc_repo,
		    res->hr_status);
		goto done;
	}
	tok = json_type(&doc, 0) == JSON_OBJECT ?
	    json_object_get(&doc, 0, "status") : -1;
	queued = tok != -1 && json_streq(&doc, tok, "queued");
	memset(&labels, 0, sizeof(labels));
	if (queued && job_labels(&doc, 0, &labels) == 0 &&
	    (aj = job_queued(jc->jc_id, jc->jc_repo, &labels, 0,
	    jc->jc_asked_ms)) != NULL) {
		log_info(LC_INFO, "job %" PRIu64 " of %s is queued again",
		    jc->jc_id, jc->jc_repo);
		aj->aj_hook_ms = jc->jc_asked_ms;
		auto_schedule("job queued again");
	} else if (!queued)
		log_info(LC_INFO, "job %" PRIu64 " of %s: its queued delivery "
		    "came after it went in progress, and is ignored",
		    jc->jc_id, jc->jc_repo);
	strlist_clear(&labels, 0);
	json_free(&doc);
 done:
	free(jc->jc_repo);
	free(jc);
}

static void
job_check_start(uint64_t id, const char *repo)
{
	struct job_check	*jc;
	char			*url;

	jc = xcalloc(1, sizeof(*jc));
	jc->jc_id = id;
	jc->jc_repo = xstrdup(repo);
	jc->jc_asked_ms = monotonic_ms();
	xasprintf(&url, "%s/repos/%s/actions/jobs/%" PRIu64,
	    child.cs_config.c_api_url, repo, id);
	if (github_request(pa_github, "GET", url, NULL, NULL, 0,
	    job_check_on_answer, jc) == -1) {
		free(jc->jc_repo);
		free(jc);
	}
	free(url);
}

void
poller_auto_on_job(const struct webhook_delivery *wd)
{
	struct auto_job	*aj;
	char		 scope_name[GITHUB_OWNER_MAX + GITHUB_REPO_MAX + 2];
	char		 err[256];
	const char	*scope;

	if (!pa_enabled || pa_stopping || wd->wd_repository == NULL)
		return;
	if (github_scope_check("repo", wd->wd_repository, err,
	    sizeof(err)) == -1) {
		log_warnx(LC_WARNING, "job %" PRIu64 ": %s", wd->wd_job_id,
		    err);
		return;
	}
	if (job_scope(wd->wd_repository, &scope, scope_name,
	    sizeof(scope_name)) == -1) {
		log_info(LC_INFO, "job %" PRIu64 " of %s: not in organization "
		    "%s, ignored", wd->wd_job_id, wd->wd_repository,
		    child.cs_config.c_organization);
		return;
	}

	switch (wd->wd_action) {
	case WEBHOOK_QUEUED:
		if (done_in_progress(wd->wd_job_id)) {
			job_check_start(wd->wd_job_id, wd->wd_repository);
			break;
		}
		if ((aj = job_queued(wd->wd_job_id, wd->wd_repository,
		    &wd->wd_labels, 0, monotonic_ms())) == NULL)
			return;
		aj->aj_hook_ms = monotonic_ms();
		auto_schedule("webhook");
		break;
	case WEBHOOK_IN_PROGRESS:
		poller_runners_job_named(wd->wd_runner_name);
		if ((aj = job_find(wd->wd_job_id)) != NULL)
			job_timed(aj, wd->wd_runner_name, unix_ms());
		/* FALLTHROUGH */
	case WEBHOOK_COMPLETED:
		done_add(wd->wd_job_id, wd->wd_action == WEBHOOK_COMPLETED);
		if ((aj = job_find(wd->wd_job_id)) != NULL) {
			log_debug(LC_INFO, "job %" PRIu64 " of %s is %s",
			    aj->aj_id, aj->aj_repo,
			    webhook_action_name(wd->wd_action));
			job_remove(aj);
		}
		break;
	default:
		break;
	}
}

/* ---- the runner table changed ---------------------------------------- */

static void
auto_runners_look(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	pa_runners_waiting = 0;
	auto_schedule("runners changed");
}

/*
 * A runner went busy or away: replace the idle runners that min_idle
 * keeps, a moment later so that a burst of changes is looked at once.
 */
void
poller_auto_runners_changed(void)
{
	struct timeval	 tv = { 0, AUTO_RUNNERS_DELAY_MS * 1000 };

	if (!pa_warm || pa_stopping || pa_runners_waiting || child.cs_base ==
	    NULL)
		return;
	if (event_base_once(child.cs_base, -1, EV_TIMEOUT, auto_runners_look,
	    NULL, &tv) == -1)
		fatalx("cannot schedule an event");
	pa_runners_waiting = 1;
}

/* ---- what others read ------------------------------------------------ */

void
poller_auto_scopes(struct strlist *scopes, struct strlist *names)
{
	const struct config	*conf = &child.cs_config;
	size_t			 i;

	if (conf->c_discovery_mode == DISCOVERY_ORGANIZATION &&
	    conf->c_organization != NULL && conf->c_organization[0] != '\0') {
		strlist_add(scopes, "org");
		strlist_add(names, conf->c_organization);
		return;
	}
	for (i = 0; i < pa_nrepos; i++)
		if (pa_repos[i].ar_candidate) {
			strlist_add(scopes, "repo");
			strlist_add(names, pa_repos[i].ar_name);
		}
}

static size_t
auto_files(void)
{
	size_t	 i, n = 0;

	for (i = 0; i < pa_nrepos; i++)
		n += pa_repos[i].ar_nfiles;
	return n;
}

void
poller_auto_status(struct json_writer *jw)
{
	char	 when[32];

	jw_key(jw, "automatic");
	jw_object_begin(jw);
	jw_kv_bool(jw, "enabled", pa_enabled);
	jw_kv_int(jw, "repositories", (int64_t)pa_nrepos);
	jw_kv_int(jw, "watched", (int64_t)repo_candidates());
	jw_kv_int(jw, "workflow_files", (int64_t)auto_files());
	jw_kv_int(jw, "queued_jobs", (int64_t)pa_njobs);
	jw_kv_int(jw, "cycles", (int64_t)pa_cycles);
	jw_kv_int(jw, "runners_started", (int64_t)pa_started);
	jw_kv_bool(jw, "keeps_idle_runners", pa_warm);
	jw_kv_int(jw, "jobs_timed", (int64_t)pa_jobs_timed);
	if (pa_last_discovery != 0) {
		iso8601_utc(pa_last_discovery, when, sizeof(when));
		jw_kv_str(jw, "last_discovery", when);
	}
	if (pa_last_poll != 0) {
		iso8601_utc(pa_last_poll, when, sizeof(when));
		jw_kv_str(jw, "last_poll", when);
	}
	jw_object_end(jw);
}

static void
auto_hist_metrics(struct buf *b, enum start_phase ph, const char *family)
{
	const struct start_hist	*sh;
	size_t			 i, k;

	for (i = 0; i < pa_nhists; i++) {
		sh = &pa_hists[i];
		for (k = 0; k < START_BUCKETS; k++)
			buf_printf(b, "%s_bucket{pool=\"%s\",le=\"%g\"} %"
			    PRIu64 "\n", family, sh->sh_pool, start_bounds[k],
			    sh->sh_bucket[ph][k]);
		buf_printf(b, "%s_bucket{pool=\"%s\",le=\"+Inf\"} %" PRIu64
		    "\n", family, sh->sh_pool, sh->sh_count[ph]);
		buf_printf(b, "%s_sum{pool=\"%s\"} %.3f\n", family,
		    sh->sh_pool, sh->sh_sum[ph]);
		buf_printf(b, "%s_count{pool=\"%s\"} %" PRIu64 "\n", family,
		    sh->sh_pool, sh->sh_count[ph]);
	}
}

void
poller_auto_metrics(struct buf *b)
{
	buf_printf(b, "ephemerd_auto_repositories %zu\n", pa_nrepos);
	buf_printf(b, "ephemerd_auto_watched_repositories %zu\n",
	    repo_candidates());
	buf_printf(b, "ephemerd_auto_queued_jobs %zu\n", pa_njobs);
	buf_printf(b, "ephemerd_auto_cycles_total %" PRIu64 "\n", pa_cycles);
	buf_printf(b, "ephemerd_auto_discoveries_total %" PRIu64 "\n",
	    pa_discoveries);
	buf_printf(b, "ephemerd_auto_fetch_errors_total %" PRIu64 "\n",
	    pa_fetch_errors);
	buf_printf(b, "ephemerd_auto_runners_started_total %" PRIu64 "\n",
	    pa_started);
	auto_hist_metrics(b, START_QUEUED_TO_RUNNING,
	    "ephemerd_job_queued_to_running_seconds");
	auto_hist_metrics(b, START_RUNNING_TO_PICKED,
	    "ephemerd_job_running_to_picked_seconds");
}
