/*
 * Demand per pool.  Jobs are grouped by repository, scope and label set,
 * runners by pool, scope and label set; a group of jobs and a group of
 * runners are joined when the runners could take the jobs.  A maximum
 * flow through these groups is the largest number of queued jobs the
 * existing runners can cover; what is left over needs new runners.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "demand.h"
#include "util.h"
#include "workflow.h"

#define NONE	SIZE_MAX

struct job_group {
	const struct demand_job	*jg_first;	/* its labels, repo, scope */
	size_t			 jg_count;
	size_t			 jg_sent;	/* covered by runners */
	size_t			 jg_used;	/* of jg_sent, handed out */
	size_t			*jg_edges;	/* into the edge array */
	size_t			 jg_nedges;
};

struct runner_group {
	const struct demand_runner *rg_first;
	size_t			 rg_count;
	size_t			 rg_recv;	/* jobs it covers */
	size_t			*rg_edges;
	size_t			 rg_nedges;
};

struct edge {
	size_t			 e_job;
	size_t			 e_runner;
	size_t			 e_flow;
};

struct matching {
	struct job_group	*m_jobs;
	size_t			 m_njobs;
	struct runner_group	*m_runners;
	size_t			 m_nrunners;
	struct edge		*m_edges;
	size_t			 m_nedges;
};

static int
label_in(const struct strlist *sl, const char *label)
{
	size_t	 i;

	for (i = 0; i < sl->sl_count; i++)
		if (strcasecmp(sl->sl_items[i], label) == 0)
			return 1;
	return 0;
}

int
demand_labels_cover(const struct strlist *have, const struct strlist *want)
{
	size_t	 i;

	for (i = 0; i < want->sl_count; i++)
		if (!label_in(have, want->sl_items[i]))
			return 0;
	return 1;
}

static int
labels_equal(const struct strlist *a, const struct strlist *b)
{
	return demand_labels_cover(a, b) && demand_labels_cover(b, a);
}

/* Labels of have that want does not ask for. */
static size_t
labels_extra(const struct strlist *have, const struct strlist *want)
{
	size_t	 i, n = 0;

	for (i = 0; i < have->sl_count; i++)
		if (!label_in(want, have->sl_items[i]))
			n++;
	return n;
}

int
demand_pool_choose(const struct demand_pool *pools, size_t npools,
    const struct strlist *labels)
{
	size_t	 i, extra, best_extra = SIZE_MAX;
	int	 best = -1;

	for (i = 0; i < npools && i < INT32_MAX; i++) {
		if (!demand_labels_cover(&pools[i].dp_labels, labels))
			continue;
		extra = labels_extra(&pools[i].dp_labels, labels);
		if (best == -1 || extra < best_extra) {
			best = (int)i;
			best_extra = extra;
		}
	}
	return best;
}

static int
str_ieq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}

/* True if an "org" scope name is the owner part of owner/name. */
static int
owner_is(const char *repo, const char *owner)
{
	const char	*slash;

	if (repo == NULL || owner == NULL ||
	    (slash = strchr(repo, '/')) == NULL)
		return 0;
	return strlen(owner) == (size_t)(slash - repo) &&
	    strncasecmp(repo, owner, (size_t)(slash - repo)) == 0;
}

int
demand_runner_serves(const struct demand_runner *r,
    const struct demand_job *j)
{
	int	 reach;

	if (r->dr_scope != NULL && strcmp(r->dr_scope, "org") == 0)
		reach = owner_is(j->dj_repo, r->dr_scope_name);
	else if (r->dr_scope != NULL && strcmp(r->dr_scope, "repo") == 0)
		reach = str_ieq(j->dj_repo, r->dr_scope_name);
	else
		reach = 0;
	return reach && demand_labels_cover(&r->dr_labels, &j->dj_labels);
}

void
demand_busy_may_cover(struct demand_runner *runners, size_t nrunners,
    const struct demand_job *jobs, size_t njobs)
{
	struct demand_runner	*r;
	size_t			 i, j;

	for (i = 0; i < nrunners; i++) {
		r = &runners[i];
		if (r->dr_status != RUNNER_BUSY || r->dr_busy_since_ms == 0)
			continue;
		for (j = 0; j < njobs; j++)
			if (jobs[j].dj_seen_ms < r->dr_busy_since_ms &&
			    demand_runner_serves(r, &jobs[j])) {
				r->dr_status = RUNNER_STARTING;
				break;
			}
	}
}

static int
job_available(const struct demand_job *j)
{
	return workflow_labels_need(&j->dj_labels) != WF_NEED_HOSTED;
}

static int
runner_available(const struct demand_runner *r)
{
	return r->dr_status == RUNNER_STARTING || r->dr_status == RUNNER_IDLE;
}

static int
runner_active(const struct demand_runner *r)
{
	return runner_available(r) || r->dr_status == RUNNER_BUSY;
}

static int
same_job_group(const struct demand_job *a, const struct demand_job *b)
{
	return str_ieq(a->dj_repo, b->dj_repo) &&
	    str_ieq(a->dj_scope, b->dj_scope) &&
	    str_ieq(a->dj_scope_name, b->dj_scope_name) &&
	    labels_equal(&a->dj_labels, &b->dj_labels);
}

static int
same_runner_group(const struct demand_runner *a,
    const struct demand_runner *b)
{
	if ((a->dr_pool == NULL) != (b->dr_pool == NULL) ||
	    (a->dr_pool != NULL && strcmp(a->dr_pool, b->dr_pool) != 0))
		return 0;
	return str_ieq(a->dr_scope, b->dr_scope) &&
	    str_ieq(a->dr_scope_name, b->dr_scope_name) &&
	    labels_equal(&a->dr_labels, &b->dr_labels);
}

/* Groups the servable jobs; jgroup[i] is jobs[i]'s group or NONE. */
static void
group_jobs(struct matching *m, const struct demand_job **jobs, size_t njobs,
    size_t *jgroup)
{
	size_t	 i, g;

	m->m_jobs = xcalloc(njobs + 1, sizeof(*m->m_jobs));
	for (i = 0; i < njobs; i++) {
		jgroup[i] = NONE;
		if (!job_available(jobs[i]) || jobs[i]->dj_labels.sl_count == 0)
			continue;
		for (g = 0; g < m->m_njobs; g++)
			if (same_job_group(m->m_jobs[g].jg_first, jobs[i]))
				break;
		if (g == m->m_njobs)
			m->m_jobs[m->m_njobs++].jg_first = jobs[i];
		m->m_jobs[g].jg_count++;
		jgroup[i] = g;
	}
}

static void
group_runners(struct matching *m, const struct demand_runner *runners,
    size_t nrunners)
{
	size_t	 i, h;

	m->m_runners = xcalloc(nrunners + 1, sizeof(*m->m_runners));
	for (i = 0; i < nrunners; i++) {
		if (!runner_available(&runners[i]))
			continue;
		for (h = 0; h < m->m_nrunners; h++)
			if (same_runner_group(m->m_runners[h].rg_first,
			    &runners[i]))
				break;
		if (h == m->m_nrunners)
			m->m_runners[m->m_nrunners++].rg_first = &runners[i];
		m->m_runners[h].rg_count++;
	}
}

/* Joins every job group to every runner group that could take its jobs. */
static void
build_edges(struct matching *m)
{
	struct job_group	*jg;
	struct runner_group	*rg;
	size_t			 g, h, e;

	for (g = 0; g < m->m_njobs; g++)
		for (h = 0; h < m->m_nrunners; h++) {
			if (!demand_runner_serves(m->m_runners[h].rg_first,
			    m->m_jobs[g].jg_first))
				continue;
			m->m_edges = xreallocarray(m->m_edges, m->m_nedges + 1,
			    sizeof(*m->m_edges));
			m->m_edges[m->m_nedges].e_job = g;
			m->m_edges[m->m_nedges].e_runner = h;
			m->m_edges[m->m_nedges++].e_flow = 0;
		}

	for (e = 0; e < m->m_nedges; e++) {
		jg = &m->m_jobs[m->m_edges[e].e_job];
		rg = &m->m_runners[m->m_edges[e].e_runner];
		jg->jg_edges = xreallocarray(jg->jg_edges, jg->jg_nedges + 1,
		    sizeof(*jg->jg_edges));
		jg->jg_edges[jg->jg_nedges++] = e;
		rg->rg_edges = xreallocarray(rg->rg_edges, rg->rg_nedges + 1,
		    sizeof(*rg->rg_edges));
		rg->rg_edges[rg->rg_nedges++] = e;
	}
}

static size_t
min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static void
push_greedy(struct matching *m)
{
	struct job_group	*jg;
	struct runner_group	*rg;
	struct edge		*e;
	size_t			 g, k, n;

	for (g = 0; g < m->m_njobs; g++) {
		jg = &m->m_jobs[g];
		for (k = 0; k < jg->jg_nedges && jg->jg_sent < jg->jg_count;
		    k++) {
			e = &m->m_edges[jg->jg_edges[k]];
			rg = &m->m_runners[e->e_runner];
			n = min_size(jg->jg_count - jg->jg_sent,
			    rg->rg_count - rg->rg_recv);
			e->e_flow += n;
			jg->jg_sent += n;
			rg->rg_recv += n;
		}
	}
}

/*
 * Looks for one augmenting path, breadth first, from a job group with
 * uncovered jobs to a runner group with spare runners, going back over
 * edges that carry flow.  Nodes 0..njobs-1 are job groups, the rest
 * runner groups; prev[] holds the edge each was reached by.  Returns the
 * runner group at the end of the path, or NONE.
 */
static size_t
find_path(struct matching *m, size_t *prev, size_t *queue,
    unsigned char *seen)
{
	struct runner_group	*rg;
	struct edge		*e;
	size_t			 head = 0, tail = 0, node, k, next, nnodes;

	nnodes = m->m_njobs + m->m_nrunners;
	memset(seen, 0, nnodes);
	for (node = 0; node < m->m_njobs; node++)
		if (m->m_jobs[node].jg_sent < m->m_jobs[node].jg_count) {
			seen[node] = 1;
			prev[node] = NONE;
			queue[tail++] = node;
		}

	while (head < tail) {
		node = queue[head++];
		if (node >= m->m_njobs) {
			rg = &m->m_runners[node - m->m_njobs];
			if (rg->rg_recv < rg->rg_count)
				return node - m->m_njobs;
			for (k = 0; k < rg->rg_nedges; k++) {
				e = &m->m_edges[rg->rg_edges[k]];
				if (e->e_flow == 0 || seen[e->e_job])
					continue;
				seen[e->e_job] = 1;
				prev[e->e_job] = (size_t)(e - m->m_edges);
				queue[tail++] = e->e_job;
			}
			continue;
		}
		for (k = 0; k < m->m_jobs[node].jg_nedges; k++) {
			e = &m->m_edges[m->m_jobs[node].jg_edges[k]];
			next = m->m_njobs + e->e_runner;
			if (seen[next])
				continue;
			seen[next] = 1;
			prev[next] = (size_t)(e - m->m_edges);
			queue[tail++] = next;
		}
	}
	return NONE;
}

/* Pushes as much as the path ending at runner group h allows. */
static void
augment(struct matching *m, const size_t *prev, size_t h)
{
	struct edge	*e;
	size_t		 node, amount, g;

	/* The path alternates forward (job to runner) and back edges. */
	amount = m->m_runners[h].rg_count - m->m_runners[h].rg_recv;
	for (node = m->m_njobs + h; prev[node] != NONE; ) {
		e = &m->m_edges[prev[node]];
		if (node >= m->m_njobs)
			node = e->e_job;
		else {
			amount = min_size(amount, e->e_flow);
			node = m->m_njobs + e->e_runner;
		}
	}
	g = node;
	amount = min_size(amount, m->m_jobs[g].jg_count - m->m_jobs[g].jg_sent);

	m->m_runners[h].rg_recv += amount;
	m->m_jobs[g].jg_sent += amount;
	for (node = m->m_njobs + h; prev[node] != NONE; ) {
		e = &m->m_edges[prev[node]];
		if (node >= m->m_njobs) {
			e->e_flow += amount;
			node = e->e_job;
		} else {
			e->e_flow -= amount;
			node = m->m_njobs + e->e_runner;
		}
	}
}

static void
match(struct matching *m)
{
	size_t		*prev, *queue, h, nnodes;
	unsigned char	*seen;

	push_greedy(m);

	nnodes = m->m_njobs + m->m_nrunners + 1;
	prev = xcalloc(nnodes, sizeof(*prev));
	queue = xcalloc(nnodes, sizeof(*queue));
	seen = xcalloc(nnodes, 1);
	while ((h = find_path(m, prev, queue, seen)) != NONE)
		augment(m, prev, h);
	free(prev);
	free(queue);
	free(seen);
}

static void
matching_free(struct matching *m)
{
	size_t	 i;

	for (i = 0; i < m->m_njobs; i++)
		free(m->m_jobs[i].jg_edges);
	for (i = 0; i < m->m_nrunners; i++)
		free(m->m_runners[i].rg_edges);
	free(m->m_jobs);
	free(m->m_runners);
	free(m->m_edges);
}

/* Oldest first; job ids break ties so that the order is stable. */
static int
cmp_age(const void *a, const void *b)
{
	const struct demand_job	*ja = *(const struct demand_job *const *)a;
	const struct demand_job	*jb = *(const struct demand_job *const *)b;

	if (ja->dj_first_seen != jb->dj_first_seen)
		return ja->dj_first_seen < jb->dj_first_seen ? -1 : 1;
	if (ja->dj_id != jb->dj_id)
		return ja->dj_id < jb->dj_id ? -1 : 1;
	return 0;
}

static void
add_start(struct demand_result *res, size_t pool, const char *scope,
    const char *scope_name, const struct strlist *labels, uint32_t count)
{
	struct demand_start	*ds;
	size_t			 i;

	for (i = 0; i < res->dm_nstarts; i++) {
		ds = &res->dm_starts[i];
		if (ds->ds_pool == pool && ds->ds_labels == labels &&
		    str_ieq(ds->ds_scope, scope) &&
		    str_ieq(ds->ds_scope_name, scope_name)) {
			ds->ds_count += count;
			return;
		}
	}
	res->dm_starts = xreallocarray(res->dm_starts, res->dm_nstarts + 1,
	    sizeof(*res->dm_starts));
	ds = &res->dm_starts[res->dm_nstarts++];
	ds->ds_pool = pool;
	ds->ds_scope = scope;
	ds->ds_scope_name = scope_name;
	ds->ds_labels = labels;
	ds->ds_count = count;
}

/* How many runners of each pool exist and count against max_runners. */
static size_t *
count_active(const struct demand_pool *pools, size_t npools,
    const struct demand_runner *runners, size_t nrunners)
{
	size_t	*active, i, p;

	active = xcalloc(npools + 1, sizeof(*active));
	for (i = 0; i < nrunners; i++) {
		if (!runner_active(&runners[i]) || runners[i].dr_pool == NULL)
			continue;
		for (p = 0; p < npools; p++)
			if (strcmp(pools[p].dp_name, runners[i].dr_pool) == 0) {
				active[p]++;
				break;
			}
	}
	return active;
}

static int
id_reported(const struct demand_state *st, uint64_t id)
{
	size_t	 lo = 0, hi = st->dx_nreported, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (st->dx_reported[mid] == id)
			return 1;
		if (st->dx_reported[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	 x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Hands the covered places of each group to its oldest jobs; starts a
 * runner for each job left over, oldest first, while its pool has room.
 * The jobs no pool serves go to unserved.
 */
static void
place_jobs(struct matching *m, const struct demand_pool *pools,
    size_t npools, const struct demand_job **order, size_t njobs,
    const size_t *jgroup, size_t *active, struct demand_result *res,
    const struct demand_job **unserved)
{
	struct job_group	*jg;
	const struct demand_job	*j;
	size_t			 i, g;
	int			 p;

	for (i = 0; i < njobs; i++) {
		j = order[i];
		if ((g = jgroup[i]) == NONE) {
			if (j->dj_labels.sl_count == 0)
				unserved[res->dm_unserved++] = j;
			continue;
		}
		jg = &m->m_jobs[g];
		if (jg->jg_used < jg->jg_sent) {
			jg->jg_used++;
			res->dm_covered++;
			continue;
		}
		if ((p = demand_pool_choose(pools, npools,
		    &j->dj_labels)) == -1) {
			unserved[res->dm_unserved++] = j;
			continue;
		}
		if (active[p] >= pools[p].dp_max_runners) {
			res->dm_capped++;
			continue;
		}
		active[p]++;
		res->dm_started++;
		add_start(res, (size_t)p, j->dj_scope, j->dj_scope_name,
		    &jg->jg_first->dj_labels, 1);
	}
}

/* Tops each pool up to min_idle runners that no queued job will take. */
static void
keep_idle(struct matching *m, const struct demand_pool *pools,
    size_t npools, size_t *active, struct demand_result *res)
{
	const struct runner_group	*rg;
	size_t				 p, h, spare, want;

	for (p = 0; p < npools; p++) {
		if (pools[p].dp_min_idle == 0 ||
		    pools[p].dp_idle_scope_name == NULL)
			continue;
		spare = 0;
		for (h = 0; h < m->m_nrunners; h++) {
			rg = &m->m_runners[h];
			if (rg->rg_first->dr_pool != NULL &&
			    strcmp(rg->rg_first->dr_pool,
			    pools[p].dp_name) == 0)
				spare += rg->rg_count - rg->rg_recv;
		}
		if (spare >= pools[p].dp_min_idle)
			continue;
		want = pools[p].dp_min_idle - spare;
		if (active[p] >= pools[p].dp_max_runners)
			continue;
		want = min_size(want, pools[p].dp_max_runners - active[p]);
		active[p] += want;
		res->dm_idle_started += want;
		add_start(res, p, pools[p].dp_idle_scope,
		    pools[p].dp_idle_scope_name, NULL, (uint32_t)want);
	}
}

/* Reports the unserved jobs not reported before; forgets the rest. */
static void
report_unserved(struct demand_state *st, const struct demand_job **unserved,
    size_t nunserved, struct demand_result *res)
{
	uint64_t	*ids;
	size_t		 i, k;

	res->dm_unservable = xcalloc(nunserved + 1,
	    sizeof(*res->dm_unservable));
	ids = xcalloc(nunserved + 1, sizeof(*ids));
	for (i = 0; i < nunserved; i++) {
		ids[i] = unserved[i]->dj_id;
		if (!id_reported(st, ids[i]))
			res->dm_unservable[res->dm_nunservable++] =
			    unserved[i];
	}

	/* A job given twice is kept once. */
	qsort(ids, nunserved, sizeof(*ids), cmp_u64);
	for (i = k = 0; i < nunserved; i++)
		if (k == 0 || ids[k - 1] != ids[i])
			ids[k++] = ids[i];
	free(st->dx_reported);
	st->dx_reported = ids;
	st->dx_nreported = k;
}

void
demand_compute(struct demand_state *st, const struct demand_pool *pools,
    size_t npools, const struct demand_job *jobs, size_t njobs,
    const struct demand_runner *runners, size_t nrunners,
    struct demand_result *res)
{
	struct matching		  m;
	const struct demand_job	**order, **unserved;
	size_t			 *jgroup, *active, i;

	memset(res, 0, sizeof(*res));
	memset(&m, 0, sizeof(m));
	res->dm_queued = njobs;
	order = xcalloc(njobs + 1, sizeof(*order));
	unserved = xcalloc(njobs + 1, sizeof(*unserved));
	jgroup = xcalloc(njobs + 1, sizeof(*jgroup));

	/* Oldest first, so that max_runners holds back the newest jobs. */
	for (i = 0; i < njobs; i++) {
		order[i] = &jobs[i];
		if (!job_available(&jobs[i]))
			res->dm_hosted++;
	}
	qsort(order, njobs, sizeof(*order), cmp_age);

	group_jobs(&m, order, njobs, jgroup);
	group_runners(&m, runners, nrunners);
	build_edges(&m);
	match(&m);

	active = count_active(pools, npools, runners, nrunners);
	place_jobs(&m, pools, npools, order, njobs, jgroup, active, res,
	    unserved);
	keep_idle(&m, pools, npools, active, res);
	report_unserved(st, unserved, res->dm_unserved, res);

	free(active);
	free(jgroup);
	free(unserved);
	free(order);
	matching_free(&m);
}

void
demand_result_free(struct demand_result *res)
{
	free(res->dm_starts);
	free(res->dm_unservable);
	memset(res, 0, sizeof(*res));
}

void
demand_state_init(struct demand_state *st)
{
	memset(st, 0, sizeof(*st));
}

void
demand_state_free(struct demand_state *st)
{
	free(st->dx_reported);
	memset(st, 0, sizeof(*st));
}
