/*
 * Unit tests for the scheduler's arithmetic: pool choice, demand per
 * label set against starting and idle runners, max_runners, scopes,
 * min_idle, and unservable jobs reported once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "demand.h"
#include "util.h"

/* Comma-separated labels into a list. */
static struct strlist
L(const char *csv)
{
	struct strlist	 sl = { NULL, 0 };
	char		*copy, *p, *label;

	copy = xstrdup(csv);
	for (p = copy; (label = strsep(&p, ",")) != NULL; )
		if (*label != '\0')
			strlist_add(&sl, label);
	free(copy);
	return sl;
}

static struct demand_pool
pool(const char *name, const char *labels, uint32_t max)
{
	struct demand_pool	 p;

	memset(&p, 0, sizeof(p));
	p.dp_name = name;
	p.dp_labels = L(labels);
	p.dp_max_runners = max;
	return p;
}

static struct demand_job
job(uint64_t id, const char *labels, const char *repo, int64_t seen)
{
	struct demand_job	 j;

	memset(&j, 0, sizeof(j));
	j.dj_id = id;
	j.dj_labels = L(labels);
	j.dj_repo = repo;
	j.dj_scope = "repo";
	j.dj_scope_name = repo;
	j.dj_first_seen = seen;
	return j;
}

static struct demand_runner
runner(const char *pool_name, const char *labels, const char *scope,
    const char *scope_name, enum runner_status status)
{
	struct demand_runner	 r;

	memset(&r, 0, sizeof(r));
	r.dr_pool = pool_name;
	r.dr_labels = L(labels);
	r.dr_scope = scope;
	r.dr_scope_name = scope_name;
	r.dr_status = status;
	return r;
}

static void
free_all(struct demand_pool *p, size_t np, struct demand_job *j, size_t nj,
    struct demand_runner *r, size_t nr)
{
	size_t	 i;

	for (i = 0; i < np; i++)
		strlist_clear(&p[i].dp_labels, 0);
	for (i = 0; i < nj; i++)
		strlist_clear(&j[i].dj_labels, 0);
	for (i = 0; i < nr; i++)
		strlist_clear(&r[i].dr_labels, 0);
}

/* The runners to start in a pool, over all scopes and label sets. */
static uint32_t
starts_in(const struct demand_result *res, size_t p)
{
	uint32_t	 n = 0;
	size_t		 i;

	for (i = 0; i < res->dm_nstarts; i++)
		if (res->dm_starts[i].ds_pool == p)
			n += res->dm_starts[i].ds_count;
	return n;
}

static uint32_t
total_starts(const struct demand_result *res)
{
	uint32_t	 n = 0;
	size_t		 i;

	for (i = 0; i < res->dm_nstarts; i++)
		n += res->dm_starts[i].ds_count;
	return n;
}

static void
test_pool_choice(void **state)
{
	struct demand_pool	 pools[3], swapped[2];
	struct strlist		 want;

	(void)state;
	pools[0] = pool("gpu", "self-hosted,linux,x64,gpu", 5);
	pools[1] = pool("small", "self-hosted,linux,x64", 5);
	pools[2] = pool("twin", "Self-Hosted,Linux,X64", 5);

	/* Fewest extra labels, then pool order; case does not matter. */
	want = L("self-hosted,linux");
	assert_int_equal(demand_pool_choose(pools, 3, &want), 1);
	assert_int_equal(demand_pool_choose(pools + 1, 2, &want), 0);
	strlist_clear(&want, 0);
	want = L("SELF-HOSTED,Linux,x64");
	assert_int_equal(demand_pool_choose(pools, 3, &want), 1);
	strlist_clear(&want, 0);
	want = L("self-hosted,GPU");
	assert_int_equal(demand_pool_choose(pools, 3, &want), 0);
	strlist_clear(&want, 0);
	want = L("self-hosted,arm64");
	assert_int_equal(demand_pool_choose(pools, 3, &want), -1);
	strlist_clear(&want, 0);

	/* With the twin first, the tie goes the other way. */
	swapped[0] = pools[2];
	swapped[1] = pools[1];
	want = L("self-hosted,x64");
	assert_int_equal(demand_pool_choose(pools, 3, &want), 1);
	assert_int_equal(demand_pool_choose(swapped, 2, &want), 0);
	assert_string_equal(swapped[0].dp_name, "twin");
	strlist_clear(&want, 0);
	free_all(pools, 3, NULL, 0, NULL, 0);
}

/* N queued jobs of one label set and M idle runners: N - M starts. */
static void
test_jobs_minus_idle(void **state)
{
	struct demand_pool	 pools[1];
	struct demand_job	 jobs[5];
	struct demand_runner	 runners[3];
	struct demand_state	 st;
	struct demand_result	 res;
	size_t			 i;

	(void)state;
	demand_state_init(&st);
	pools[0] = pool("default", "self-hosted,linux,x64", 10);
	for (i = 0; i < 5; i++)
		jobs[i] = job(100 + i, "self-hosted,linux", "o/r", (int64_t)i);
	runners[0] = runner("default", "self-hosted,linux,x64", "repo",
	    "o/r", RUNNER_IDLE);
	runners[1] = runner("default", "self-hosted,linux,x64", "repo",
	    "o/r", RUNNER_STARTING);
	runners[2] = runner("default", "self-hosted,linux,x64", "repo",
	    "o/r", RUNNER_BUSY);

	demand_compute(&st, pools, 1, jobs, 5, runners, 3, &res);
	assert_int_equal(res.dm_covered, 2);
	assert_int_equal(res.dm_started, 3);
	assert_int_equal(res.dm_nstarts, 1);
	assert_int_equal(res.dm_starts[0].ds_count, 3);
	assert_string_equal(res.dm_starts[0].ds_scope, "repo");
	assert_string_equal(res.dm_starts[0].ds_scope_name, "o/r");
	assert_ptr_equal(res.dm_starts[0].ds_labels, &jobs[0].dj_labels);
	demand_result_free(&res);

	/* Busy and exited runners take no job. */
	runners[0].dr_status = RUNNER_EXITED;
	runners[1].dr_status = RUNNER_BUSY;
	demand_compute(&st, pools, 1, jobs, 5, runners, 3, &res);
	assert_int_equal(res.dm_covered, 0);
	assert_int_equal(total_starts(&res), 5);
	demand_result_free(&res);

	demand_state_free(&st);
	free_all(pools, 1, jobs, 5, runners, 3);
}

/*
 * A runner that went busy after a job was last seen queued may have taken
 * that job: it stands for it until fresher news, or until its job is
 * named, so that the job does not get a second runner.
 */
static void
test_busy_may_cover(void **state)
{
	struct demand_pool	 pools[1];
	struct demand_job	 jobs[1];
	struct demand_runner	 runners[2];
	struct demand_state	 st;
	struct demand_result	 res;

	(void)state;
	demand_state_init(&st);
	pools[0] = pool("default", "self-hosted,linux", 10);
	jobs[0] = job(1, "self-hosted,linux", "o/r", 1);
	jobs[0].dj_seen_ms = 1000;
	runners[0] = runner("default", "self-hosted,linux", "repo", "o/r",
	    RUNNER_BUSY);
	runners[0].dr_busy_since_ms = 2000;
	/* Busy on another repository: it cannot have taken the job. */
	runners[1] = runner("default", "self-hosted,linux", "repo", "o/x",
	    RUNNER_BUSY);
	runners[1].dr_busy_since_ms = 2000;

	demand_busy_may_cover(runners, 2, jobs, 1);
	assert_int_equal(runners[0].dr_status, RUNNER_STARTING);
	assert_int_equal(runners[1].dr_status, RUNNER_BUSY);
	demand_compute(&st, pools, 1, jobs, 1, runners, 2, &res);
	assert_int_equal(total_starts(&res), 0);
	demand_result_free(&res);

	/* Seen queued after the runner went busy: a runner is wanted. */
	runners[0].dr_status = RUNNER_BUSY;
	jobs[0].dj_seen_ms = 2500;
	demand_busy_may_cover(runners, 2, jobs, 1);
	assert_int_equal(runners[0].dr_status, RUNNER_BUSY);
	demand_compute(&st, pools, 1, jobs, 1, runners, 2, &res);
	assert_int_equal(total_starts(&res), 1);
	demand_result_free(&res);

	/* Old news again, but the runner's job is known (since 0). */
	jobs[0].dj_seen_ms = 1000;
	runners[0].dr_busy_since_ms = 0;
	demand_busy_may_cover(runners, 2, jobs, 1);
	assert_int_equal(runners[0].dr_status, RUNNER_BUSY);

	demand_state_free(&st);
	free_all(pools, 1, jobs, 1, runners, 2);
}

/* max_runners counts starting, idle and busy runners of the pool. */
static void
test_max_runners(void **state)
{
	struct demand_pool	 pools[1];
	struct demand_job	 jobs[6];
	struct demand_runner	 runners[2];
	struct demand_state	 st;
	struct demand_result	 res;
	size_t			 i;

	(void)state;
	demand_state_init(&st);
	pools[0] = pool("default", "self-hosted,linux,x64,gpu", 4);
	/* Three old gpu jobs, then three newer plain ones. */
	for (i = 0; i < 3; i++)
		jobs[i] = job(10 + i, "self-hosted,gpu", "o/r", 100 + (int)i);
	for (i = 3; i < 6; i++)
		jobs[i] = job(i, "self-hosted", "o/r", 200 + (int)i);
	runners[0] = runner("default", "self-hosted,linux,x64,gpu", "repo",
	    "o/r", RUNNER_BUSY);
	runners[1] = runner("other", "self-hosted,linux,x64,gpu", "repo",
	    "o/r", RUNNER_BUSY);

	demand_compute(&st, pools, 1, jobs, 6, runners, 2, &res);
	assert_int_equal(res.dm_started, 3);
	assert_int_equal(res.dm_capped, 3);
	/* The oldest jobs won: all three starts are for the gpu set. */
	assert_int_equal(res.dm_nstarts, 1);
	assert_ptr_equal(res.dm_starts[0].ds_labels, &jobs[0].dj_labels);
	demand_result_free(&res);

	/* At the cap, nothing starts. */
	pools[0].dp_max_runners = 1;
	demand_compute(&st, pools, 1, jobs, 6, runners, 2, &res);
	assert_int_equal(total_starts(&res), 0);
	assert_int_equal(res.dm_capped, 6);
	demand_result_free(&res);

	demand_state_free(&st);
	free_all(pools, 1, jobs, 6, runners, 2);
}

/* Two label sets that one pool serves: a runner each, in that pool. */
static void
test_two_sets_one_pool(void **state)
{
	struct demand_pool	 pools[2];
	struct demand_job	 jobs[2];
	struct demand_runner	 runners[1];
	struct demand_state	 st;
	struct demand_result	 res;

	(void)state;
	demand_state_init(&st);
	pools[0] = pool("big", "self-hosted,linux,x64,gpu", 10);
	pools[1] = pool("arm", "self-hosted,linux,arm64", 10);
	jobs[0] = job(1, "self-hosted,gpu", "o/r", 1);
	jobs[1] = job(2, "self-hosted,x64", "o/r", 2);

	demand_compute(&st, pools, 2, jobs, 2, NULL, 0, &res);
	assert_int_equal(starts_in(&res, 0), 2);
	assert_int_equal(starts_in(&res, 1), 0);
	assert_int_equal(res.dm_nstarts, 2);
	assert_ptr_not_equal(res.dm_starts[0].ds_labels,
	    res.dm_starts[1].ds_labels);
	demand_result_free(&res);

	/* An idle runner of the pool takes one of them. */
	runners[0] = runner("big", "self-hosted,linux,x64,gpu", "repo", "o/r",
	    RUNNER_IDLE);
	demand_compute(&st, pools, 2, jobs, 2, runners, 1, &res);
	assert_int_equal(res.dm_covered, 1);
	assert_int_equal(total_starts(&res), 1);
	demand_result_free(&res);

	demand_state_free(&st);
	free_all(pools, 2, jobs, 2, runners, 1);
}

/*
 * The big runner could take either job, the small one only the small job.
 * Matching the big runner to the old small job would leave the big job
 * without a runner and start one too many.
 */
static void
test_matching_not_greedy(void **state)
{
	struct demand_pool	 pools[1];
	struct demand_job	 jobs[2];
	struct demand_runner	 runners[2];
	struct demand_state	 st;
	struct demand_result	 res;

	(void)state;
	demand_state_init(&st);
	pools[0] = pool("default", "self-hosted,a,b", 10);
	jobs[0] = job(1, "self-hosted,a", "o/r", 1);
	jobs[1] = job(2, "self-hosted,a,b", "o/r", 2);
	runners[0] = runner("default", "self-hosted,a,b", "repo", "o/r",
	    RUNNER_IDLE);
	runners[1] = runner("default", "self-hosted,a", "repo", "o/r",
	    RUNNER_STARTING);

	demand_compute(&st, pools, 1, jobs, 2, runners, 2, &res);
	assert_int_equal(res.dm_covered, 2);
	assert_int_equal(total_starts(&res), 0);
	demand_result_free(&res);

	demand_state_free(&st);
	free_all(pools, 1, jobs, 2, runners, 2);
}

/* A repository runner serves its repository; an org runner its repos. */
static void
test_scopes(void **state)
{
	struct demand_pool	 pools[1];
	struct demand_job	 jobs[1];
	struct demand_runner	 r;
	struct demand_state	 st;
	struct demand_result	 res;

	(void)state;
	demand_state_init(&st);
	pools[0] = pool("default", "self-hosted", 10);
	jobs[0] = job(1, "self-hosted", "Octo/App", 1);

	r = runner("default", "self-hosted", "repo", "octo/other", RUNNER_IDLE);
	assert_false(demand_runner_serves(&r, &jobs[0]));
	demand_compute(&st, pools, 1, jobs, 1, &r, 1, &res);
	assert_int_equal(total_starts(&res), 1);
	demand_result_free(&res);

	r.dr_scope_name = "octo/app";
	assert_true(demand_runner_serves(&r, &jobs[0]));
	r.dr_scope = "org";
	r.dr_scope_name = "OCTO";
	assert_true(demand_runner_serves(&r, &jobs[0]));
	demand_compute(&st, pools, 1, jobs, 1, &r, 1, &res);
	assert_int_equal(total_starts(&res), 0);
	demand_result_free(&res);
	r.dr_scope_name = "oct";
	assert_false(demand_runner_serves(&r, &jobs[0]));
	r.dr_scope = "enterprise";
	r.dr_scope_name = "octo";
	assert_false(demand_runner_serves(&r, &jobs[0]));

	demand_state_free(&st);
	free_all(pools, 1, jobs, 1, &r, 1);
}

/* Unservable jobs are reported once while queued, again if they return. */
static void
test_unservable_once(void **state)
{
	struct demand_pool	 pools[1];
	struct demand_job	 jobs[4];
	struct demand_state	 st;
	struct demand_result	 res;

	(void)state;
	demand_state_init(&st);
	pools[0] = pool("default", "self-hosted,linux,x64", 10);
	jobs[0] = job(7, "self-hosted,arm64", "o/r", 1);
	jobs[1] = job(8, "", "o/r", 2);		/* runs-on: {group: x} */
	jobs[2] = job(9, "ubuntu-latest", "o/r", 3);
	jobs[3] = job(10, "self-hosted", "o/r", 4);

	demand_compute(&st, pools, 1, jobs, 4, NULL, 0, &res);
	assert_int_equal(res.dm_unserved, 2);
	assert_int_equal(res.dm_nunservable, 2);
	assert_int_equal(res.dm_unservable[0]->dj_id, 7);
	assert_int_equal(res.dm_unservable[1]->dj_id, 8);
	assert_int_equal(res.dm_hosted, 1);
	assert_int_equal(total_starts(&res), 1);
	demand_result_free(&res);

	/* Next cycle, still queued: counted, not reported again. */
	demand_compute(&st, pools, 1, jobs, 4, NULL, 0, &res);
	assert_int_equal(res.dm_unserved, 2);
	assert_int_equal(res.dm_nunservable, 0);
	demand_result_free(&res);

	/* Job 7 left the queue and is forgotten; it is new if it returns. */
	demand_compute(&st, pools, 1, jobs + 1, 3, NULL, 0, &res);
	assert_int_equal(res.dm_nunservable, 0);
	demand_result_free(&res);
	demand_compute(&st, pools, 1, jobs, 4, NULL, 0, &res);
	assert_int_equal(res.dm_nunservable, 1);
	assert_int_equal(res.dm_unservable[0]->dj_id, 7);
	demand_result_free(&res);

	demand_state_free(&st);
	free_all(pools, 1, jobs, 4, NULL, 0);
}

/*
 * Cycles of a job's life: started for, counted while starting, taken.
 * Over the whole life the job causes exactly one runner.
 */
static void
test_cycles_converge(void **state)
{
	struct demand_pool	 pools[1];
	struct demand_job	 jobs[3];
	struct demand_runner	 runners[3];
	struct demand_state	 st;
	struct demand_result	 res;
	size_t			 i;

	(void)state;
	demand_state_init(&st);
	pools[0] = pool("default", "self-hosted,linux", 10);
	for (i = 0; i < 3; i++)
		jobs[i] = job(i + 1, "self-hosted", "o/r", 1);

	demand_compute(&st, pools, 1, jobs, 3, NULL, 0, &res);
	assert_int_equal(total_starts(&res), 3);
	demand_result_free(&res);

	/* The caller passes the runners it asked for as starting. */
	for (i = 0; i < 3; i++)
		runners[i] = runner("default", "self-hosted,linux", "repo",
		    "o/r", RUNNER_STARTING);
	demand_compute(&st, pools, 1, jobs, 3, runners, 3, &res);
	assert_int_equal(total_starts(&res), 0);
	assert_int_equal(res.dm_covered, 3);
	demand_result_free(&res);

	/* One runner takes a job: the job leaves the queue. */
	runners[0].dr_status = RUNNER_BUSY;
	runners[1].dr_status = RUNNER_IDLE;
	demand_compute(&st, pools, 1, jobs + 1, 2, runners, 3, &res);
	assert_int_equal(total_starts(&res), 0);
	demand_result_free(&res);

	demand_state_free(&st);
	free_all(pools, 1, jobs, 3, runners, 3);
}

static void
test_min_idle(void **state)
{
	struct demand_pool	 pools[1];
	struct demand_job	 jobs[1];
	struct demand_runner	 runners[1];
	struct demand_state	 st;
	struct demand_result	 res;

	(void)state;
	demand_state_init(&st);
	pools[0] = pool("default", "self-hosted", 3);
	pools[0].dp_min_idle = 2;
	pools[0].dp_idle_scope = "org";
	pools[0].dp_idle_scope_name = "o";

	demand_compute(&st, pools, 1, NULL, 0, NULL, 0, &res);
	assert_int_equal(res.dm_nstarts, 1);
	assert_int_equal(res.dm_starts[0].ds_count, 2);
	assert_null(res.dm_starts[0].ds_labels);
	assert_string_equal(res.dm_starts[0].ds_scope_name, "o");
	demand_result_free(&res);

	/* An idle runner counts; one a job will take does not. */
	runners[0] = runner("default", "self-hosted", "org", "o", RUNNER_IDLE);
	demand_compute(&st, pools, 1, NULL, 0, runners, 1, &res);
	assert_int_equal(res.dm_idle_started, 1);
	demand_result_free(&res);
	jobs[0] = job(1, "self-hosted", "o/r", 1);
	demand_compute(&st, pools, 1, jobs, 1, runners, 1, &res);
	assert_int_equal(res.dm_covered, 1);
	assert_int_equal(res.dm_idle_started, 2);
	demand_result_free(&res);

	/* max_runners bounds min_idle too. */
	pools[0].dp_min_idle = 10;
	demand_compute(&st, pools, 1, jobs, 1, runners, 1, &res);
	assert_int_equal(res.dm_idle_started, 2);
	demand_result_free(&res);

	/* Without a scope, min_idle is not kept. */
	pools[0].dp_idle_scope_name = NULL;
	demand_compute(&st, pools, 1, NULL, 0, NULL, 0, &res);
	assert_int_equal(res.dm_nstarts, 0);
	demand_result_free(&res);

	demand_state_free(&st);
	free_all(pools, 1, jobs, 1, runners, 1);
}

static size_t
min_z(size_t a, size_t b)
{
	return a < b ? a : b;
}

/*
 * Many jobs and runners.  Here the largest number of jobs the idle
 * runners can take has a closed form: "ab" runners alone take the a/b
 * sets, "c" runners alone the c set, and either takes plain jobs.
 */
static void
test_many_random(void **state)
{
	static const char *const sets[] = { "self-hosted", "self-hosted,a",
	    "self-hosted,b", "self-hosted,a,b", "self-hosted,c" };
	struct demand_pool	 pools[2];
	struct demand_job	 jobs[60];
	struct demand_runner	 runners[40];
	struct demand_state	 st;
	struct demand_result	 res;
	size_t			 i, k, nset[5] = { 0 }, ab = 0, c = 0, best;
	unsigned int		 seed = 12345;

	(void)state;
	demand_state_init(&st);
	pools[0] = pool("ab", "self-hosted,a,b", 1000);
	pools[1] = pool("c", "self-hosted,c", 1000);
	for (i = 0; i < 60; i++) {
		seed = seed * 1103515245 + 12345;
		k = (seed >> 16) % 5;
		nset[k]++;
		jobs[i] = job(i + 1, sets[k], "o/r", (int)(seed % 7));
	}
	for (i = 0; i < 40; i++) {
		seed = seed * 1103515245 + 12345;
		k = (seed >> 16) % 3;
		runners[i] = runner(k == 0 ? "c" : "ab", k == 0 ?
		    "self-hosted,c" : "self-hosted,a,b", "repo", "o/r",
		    (seed >> 8) % 4 == 0 ? RUNNER_BUSY : RUNNER_IDLE);
		if (runners[i].dr_status == RUNNER_IDLE)
			*(k == 0 ? &c : &ab) += 1;
	}
	best = min_z(ab, nset[1] + nset[2] + nset[3]) + min_z(c, nset[4]);
	best += min_z(nset[0], ab + c - best);

	demand_compute(&st, pools, 2, jobs, 60, runners, 40, &res);
	assert_int_equal(res.dm_covered, best);
	assert_int_equal(res.dm_started, 60 - best);
	assert_int_equal(total_starts(&res), 60 - best);
	demand_result_free(&res);

	demand_state_free(&st);
	free_all(pools, 2, jobs, 60, runners, 40);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_choice),
		cmocka_unit_test(test_jobs_minus_idle),
		cmocka_unit_test(test_max_runners),
		cmocka_unit_test(test_busy_may_cover),
		cmocka_unit_test(test_two_sets_one_pool),
		cmocka_unit_test(test_matching_not_greedy),
		cmocka_unit_test(test_scopes),
		cmocka_unit_test(test_unservable_once),
		cmocka_unit_test(test_cycles_converge),
		cmocka_unit_test(test_min_idle),
		cmocka_unit_test(test_many_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
