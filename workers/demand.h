/*
 * The scheduler's arithmetic: given the queued jobs, the runners that
 * exist and the pools, how many runners to start, in which pool and for
 * which scope.  It does no I/O and keeps no state but the set of jobs it
 * has already reported as unservable, so that the caller logs each once.
 *
 * GitHub hands a queued job to ANY online idle runner whose labels include
 * the job's (case-insensitively) and whose scope reaches the job's
 * repository, not to the runner started for it.  So runners are not tied
 * to jobs: the starting and idle runners are matched to the queued jobs
 * they could take (a maximum matching, so that no runner is counted
 * twice and none is wasted), and one runner is started for each job left
 * over.  Calling this every cycle with the jobs still queued converges:
 * a job that stays queued keeps its runner counted, a job that left the
 * queue no longer counts, and no job causes two runners.
 *
 * A new runner for a job goes to the pool that serves the job's labels
 * with the fewest extra labels (pool order breaks ties), so a small job
 * does not take a big runner.  Jobs are served oldest first when a pool's
 * max_runners is reached.  Jobs that ask for a GitHub-hosted image
 * (workflow_labels_need()) are ignored; jobs with no labels at all (a
 * runs-on of only a runner group) cannot be matched to a pool and are
 * reported as unservable.
 */
#ifndef EPHEMERD_DEMAND_H
#define EPHEMERD_DEMAND_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "runner.h"

/*
 * A pool as the scheduler sees it.  dp_labels are the labels its runners
 * register with, default labels included if they get them.  min_idle
 * runners are kept in the scope dp_idle_scope / dp_idle_scope_name; with
 * dp_idle_scope_name NULL, min_idle is not kept.
 */
struct demand_pool {
	const char	*dp_name;
	struct strlist	 dp_labels;
	uint32_t	 dp_max_runners;
	uint32_t	 dp_min_idle;
	const char	*dp_idle_scope;		/* "repo" or "org" */
	const char	*dp_idle_scope_name;
};

/*
 * A queued job.  dj_scope / dj_scope_name say where a runner started for
 * it is registered ("org" and the owner, or "repo" and owner/name); the
 * caller decides that from its discovery mode.
 */
struct demand_job {
	uint64_t	 dj_id;
	struct strlist	 dj_labels;
	const char	*dj_repo;		/* owner/name */
	const char	*dj_scope;
	const char	*dj_scope_name;
	int64_t		 dj_first_seen;		/* for oldest first */
	uint64_t	 dj_seen_ms;		/* last seen queued */
};

/*
 * A runner that exists.  Starting and idle runners can take a job; busy
 * ones count against their pool's max_runners only; exited and removing
 * ones count for nothing.  Runners the caller has asked for but that its
 * runner table does not show yet must be given as RUNNER_STARTING, or the
 * next call starts them again.  dr_pool may be NULL (a runner of no
 * pool, such as one created by hand): it can still take jobs.
 */
struct demand_runner {
	const char		*dr_pool;
	struct strlist		 dr_labels;
	const char		*dr_scope;	/* "repo" or "org" */
	const char		*dr_scope_name;
	enum runner_status	 dr_status;
	uint64_t		 dr_busy_since_ms; /* see below */
};

/*
 * ds_count runners to start in pool ds_pool (an index into the pools),
 * registered at ds_scope / ds_scope_name.  ds_labels is the label set of
 * the jobs they are for, or NULL for runners kept idle by min_idle.  The
 * pointers point into the caller's input.
 */
struct demand_start {
	size_t			 ds_pool;
	const char		*ds_scope;
	const char		*ds_scope_name;
	const struct strlist	*ds_labels;
	uint32_t		 ds_count;
};

struct demand_result {
	struct demand_start	 *dm_starts;
	size_t			  dm_nstarts;
	/* Unservable jobs not reported by an earlier call: log these. */
	const struct demand_job	**dm_unservable;
	size_t			  dm_nunservable;

	size_t			  dm_queued;	/* jobs given */
	size_t			  dm_hosted;	/* for GitHub-hosted runners */
	size_t			  dm_covered;	/* by a starting/idle runner */
	size_t			  dm_started;	/* runners started for jobs */
	size_t			  dm_capped;	/* waiting for max_runners */
	size_t			  dm_unserved;	/* no pool serves them */
	size_t			  dm_idle_started;	/* for min_idle */
};

/* The unservable jobs already reported. */
struct demand_state {
	uint64_t	*dx_reported;		/* sorted job ids */
	size_t		 dx_nreported;
};

void	 demand_state_init(struct demand_state *);
void	 demand_state_free(struct demand_state *);

/*
 * Computes one cycle's starts.  The result is initialized here and owns
 * only its arrays; free it with demand_result_free().  Jobs reported
 * unservable are remembered in the state until they leave the queue.
 */
void	 demand_compute(struct demand_state *, const struct demand_pool *,
	    size_t, const struct demand_job *, size_t,
	    const struct demand_runner *, size_t, struct demand_result *);
void	 demand_result_free(struct demand_result *);

/* True if every label of want is in have, ignoring case. */
int	 demand_labels_cover(const struct strlist *, const struct strlist *);
/* The pool for a job's labels, or -1 if none serves them. */
int	 demand_pool_choose(const struct demand_pool *, size_t,
	    const struct strlist *);
/*
 * True if the runner could take the job: its labels cover the job's, and
 * it is registered on the job's repository or on the repository's owner
 * (an organization runner).  The runner's status is not looked at.
 */
int	 demand_runner_serves(const struct demand_runner *,
	    const struct demand_job *);

/*
 * A runner reported busy may have taken a job that the caller's list
 * still shows queued, because the news that the job left is not in yet:
 * counting the runner as busy would start a second runner for that job.
 * dr_busy_since_ms is when the caller first saw the runner busy, 0 once
 * it knows which job the runner took.  Every busy runner with a job it
 * could serve that was last seen queued (dj_seen_ms, the same clock)
 * before it went busy is counted as starting instead: it stands for that
 * job until fresher news about the queue arrives.
 */
void	 demand_busy_may_cover(struct demand_runner *, size_t,
	    const struct demand_job *, size_t);

#endif
