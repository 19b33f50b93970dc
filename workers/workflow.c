/*
 * Reading the `runs-on` of every job of a workflow file with libyaml's
 * document API.  Only `jobs:` and, inside each job, `runs-on` and `uses`
 * are looked at; the rest of a workflow is GitHub's business.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "log.h"
#include "util.h"
#include "workflow.h"

#define WF_MAX_JOB_ID	255

struct wf_parser {
	const char		*wp_name;
	yaml_document_t		*wp_doc;
	size_t			 wp_visits;
	char			*wp_err;
	size_t			 wp_errlen;
};

static int
wf_error(struct wf_parser *p, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
wf_error(struct wf_parser *p, const yaml_node_t *node, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	n = snprintf(p->wp_err, p->wp_errlen, "%s:%lu: ", p->wp_name,
	    (unsigned long)node->start_mark.line + 1);
	if (n < 0 || (size_t)n >= p->wp_errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->wp_err + n, p->wp_errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Returns a node by id.  An alias is a second reference to its anchor's
 * node, so a small text can name a node many times over; the count of
 * nodes looked at bounds the work whatever the aliases do.
 */
static yaml_node_t *
wf_node(struct wf_parser *p, int id, const yaml_node_t *context)
{
	yaml_node_t	*node;

	if ((node = yaml_document_get_node(p->wp_doc, id)) == NULL) {
		wf_error(p, context, "internal YAML error");
		return NULL;
	}
	if (++p->wp_visits > WORKFLOW_MAX_VISITS) {
		wf_error(p, node, "the workflow is too large once its "
		    "aliases are expanded (more than %d nodes)",
		    WORKFLOW_MAX_VISITS);
		return NULL;
	}
	return node;
}

static int
wf_is_null(const yaml_node_t *node)
{
	const char	*s = (const char *)node->data.scalar.value;

	if (node->type != YAML_SCALAR_NODE ||
	    node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static int
wf_key_is(const yaml_node_t *key, const char *name)
{
	return key->type == YAML_SCALAR_NODE &&
	    key->data.scalar.length == strlen(name) &&
	    memcmp(key->data.scalar.value, name, key->data.scalar.length) == 0;
}

/* A non-empty string of at most max bytes, or NULL with an error. */
static const char *
wf_string(struct wf_parser *p, yaml_node_t *node, const char *what,
    size_t max)
{
	const char	*why = NULL;

	if (node->type != YAML_SCALAR_NODE)
		why = node->type == YAML_MAPPING_NODE ?
		    "must be a string, not a mapping" :
		    "must be a string, not a sequence";
	else if (wf_is_null(node) || node->data.scalar.length == 0)
		why = "must not be empty";
	else if (memchr(node->data.scalar.value, '\0',
	    node->data.scalar.length) != NULL)
		why = "contains a NUL character";
	else if (node->data.scalar.length > max)
		why = "is too long";

	if (why != NULL) {
		wf_error(p, node, "%s %s", what, why);
		return NULL;
	}
	return (const char *)node->data.scalar.value;
}

static int
wf_is_expression(const char *s)
{
	return strstr(s, "${{") != NULL;
}

static int
wf_has_label(const struct strlist *sl, const char *label)
{
	size_t	 i;

	for (i = 0; i < sl->sl_count; i++)
		if (strcasecmp(sl->sl_items[i], label) == 0)
			return 1;
	return 0;
}

/* One label of runs-on: a literal is kept, an expression marks the job. */
static int
wf_add_label(struct wf_parser *p, struct workflow_job *job, yaml_node_t *node)
{
	const char	*s;

	if ((s = wf_string(p, node, "a runs-on label",
	    WORKFLOW_MAX_LABEL)) == NULL)
		return -1;

	if (wf_is_expression(s)) {
		job->wj_runs_on = WF_RUNS_ON_DYNAMIC;
		return 0;
	}
	if (wf_has_label(&job->wj_labels, s))
		return 0;
	if (job->wj_labels.sl_count >= WORKFLOW_MAX_LABELS)
		return wf_error(p, node, "job '%s' has more than %d runs-on "
		    "labels", job->wj_id, WORKFLOW_MAX_LABELS);
	strlist_add(&job->wj_labels, s);
	return 0;
}

/* A label list: one string or a sequence of them. */
static int
wf_parse_labels(struct wf_parser *p, struct workflow_job *job,
    yaml_node_t *node)
{
	yaml_node_item_t	*it;
	yaml_node_t		*item;

	if (node->type != YAML_SEQUENCE_NODE)
		return wf_add_label(p, job, node);

	if (node->data.sequence.items.top == node->data.sequence.items.start)
		return wf_error(p, node, "job '%s': runs-on must not be an "
		    "empty list", job->wj_id);
	if (node->data.sequence.items.top - node->data.sequence.items.start >
	    WORKFLOW_MAX_LABELS)
		return wf_error(p, node, "job '%s' has more than %d runs-on "
		    "labels", job->wj_id, WORKFLOW_MAX_LABELS);
	for (it = node->data.sequence.items.start;
	    it < node->data.sequence.items.top; it++) {
		if ((item = wf_node(p, *it, node)) == NULL ||
		    wf_add_label(p, job, item) == -1)
			return -1;
	}
	return 0;
}

/* The {group: NAME, labels: ...} form. */
static int
wf_parse_group(struct wf_parser *p, struct workflow_job *job,
    yaml_node_t *node)
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*key, *value;
	const char		*s;
	int			 seen_group = 0, seen_labels = 0;

	for (pair = node->data.mapping.pairs.start;
	    pair < node->data.mapping.pairs.top; pair++) {
		if ((key = wf_node(p, pair->key, node)) == NULL ||
		    (value = wf_node(p, pair->value, node)) == NULL)
			return -1;
		if (wf_key_is(key, "group") && !seen_group) {
			seen_group = 1;
			if ((s = wf_string(p, value, "runs-on group",
			    WORKFLOW_MAX_LABEL)) == NULL)
				return -1;
			if (wf_is_expression(s))
				job->wj_runs_on = WF_RUNS_ON_DYNAMIC;
			else
				job->wj_group = xstrdup(s);
		} else if (wf_key_is(key, "labels") && !seen_labels) {
			seen_labels = 1;
			if (wf_parse_labels(p, job, value) == -1)
				return -1;
		} else
			return wf_error(p, key, "job '%s': runs-on may hold "
			    "'group' and 'labels' once each, nothing else",
			    job->wj_id);
	}

	if (!seen_group && !seen_labels)
		return wf_error(p, node, "job '%s': runs-on must not be an "
		    "empty mapping", job->wj_id);
	return 0;
}

static enum workflow_need
wf_job_need(const struct workflow_job *job)
{
	if (wf_has_label(&job->wj_labels, "self-hosted"))
		return WF_NEED_SELF_HOSTED;
	if (job->wj_runs_on == WF_RUNS_ON_DYNAMIC)
		return WF_NEED_UNKNOWN;
	return workflow_labels_need(&job->wj_labels);
}

static int
wf_parse_runs_on(struct wf_parser *p, struct workflow_job *job,
    yaml_node_t *node)
{
	job->wj_runs_on = WF_RUNS_ON_STATIC;

	if (node->type == YAML_MAPPING_NODE) {
		if (wf_parse_group(p, job, node) == -1)
			return -1;
	} else if (wf_parse_labels(p, job, node) == -1)
		return -1;

	job->wj_need = wf_job_need(job);
	return 0;
}

/* A job's mapping: only runs-on and uses matter here. */
static int
wf_parse_job(struct wf_parser *p, struct workflow_job *job,
    yaml_node_t *node)
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*key, *value, *runs_on = NULL;
	const char		*s;

	if (node->type != YAML_MAPPING_NODE)
		return wf_error(p, node, "job '%s' must be a mapping",
		    job->wj_id);

	for (pair = node->data.mapping.pairs.start;
	    pair < node->data.mapping.pairs.top; pair++) {
		if ((key = wf_node(p, pair->key, node)) == NULL)
			return -1;
		if (wf_key_is(key, "runs-on")) {
			if (runs_on != NULL)
				return wf_error(p, key, "job '%s' has two "
				    "'runs-on' keys", job->wj_id);
			if ((runs_on = wf_node(p, pair->value, node)) == NULL)
				return -1;
		} else if (wf_key_is(key, "uses")) {
			if (job->wj_uses != NULL)
				return wf_error(p, key, "job '%s' has two "
				    "'uses' keys", job->wj_id);
			if ((value = wf_node(p, pair->value, node)) == NULL ||
			    (s = wf_string(p, value, "'uses'", 4096)) == NULL)
				return -1;
			job->wj_uses = xstrdup(s);
		}
	}

	if (runs_on != NULL && job->wj_uses != NULL)
		return wf_error(p, node, "job '%s' has both 'runs-on' and "
		    "'uses'", job->wj_id);
	if (runs_on != NULL)
		return wf_parse_runs_on(p, job, runs_on);
	if (job->wj_uses == NULL)
		return wf_error(p, node, "job '%s' has neither 'runs-on' nor "
		    "'uses'", job->wj_id);
	job->wj_runs_on = WF_RUNS_ON_NONE;
	job->wj_need = WF_NEED_UNKNOWN;
	return 0;
}

static int
wf_parse_jobs(struct wf_parser *p, struct workflow *wf, yaml_node_t *node)
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*key, *value;
	struct workflow_job	*job;
	const char		*id;
	size_t			 n, i;

	if (node->type != YAML_MAPPING_NODE)
		return wf_error(p, node, "'jobs' must be a mapping of job ids");
	n = (size_t)(node->data.mapping.pairs.top -
	    node->data.mapping.pairs.start);
	if (n == 0)
		return wf_error(p, node, "'jobs' is empty");
	if (n > WORKFLOW_MAX_JOBS)
		return wf_error(p, node, "more than %d jobs",
		    WORKFLOW_MAX_JOBS);
	wf->wf_jobs = xcalloc(n, sizeof(*wf->wf_jobs));

	for (pair = node->data.mapping.pairs.start;
	    pair < node->data.mapping.pairs.top; pair++) {
		if ((key = wf_node(p, pair->key, node)) == NULL ||
		    (id = wf_string(p, key, "a job id", WF_MAX_JOB_ID)) == NULL)
			return -1;
		for (i = 0; i < wf->wf_njobs; i++)
			if (strcmp(wf->wf_jobs[i].wj_id, id) == 0)
				return wf_error(p, key, "job '%s' is defined "
				    "twice", id);
		job = &wf->wf_jobs[wf->wf_njobs++];
		job->wj_id = xstrdup(id);
		job->wj_line = (int)key->start_mark.line + 1;
		if ((value = wf_node(p, pair->value, node)) == NULL ||
		    wf_parse_job(p, job, value) == -1)
			return -1;
	}
	return 0;
}

static int
wf_parse_root(struct wf_parser *p, struct workflow *wf, yaml_node_t *root)
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*key, *jobs = NULL;

	if (root->type != YAML_MAPPING_NODE)
		return wf_error(p, root, "a workflow must be a mapping, not %s",
		    root->type == YAML_SEQUENCE_NODE ? "a sequence" :
		    "a single value");

	for (pair = root->data.mapping.pairs.start;
	    pair < root->data.mapping.pairs.top; pair++) {
		if ((key = wf_node(p, pair->key, root)) == NULL)
			return -1;
		if (!wf_key_is(key, "jobs"))
			continue;
		if (jobs != NULL)
			return wf_error(p, key, "'jobs' is given twice");
		if ((jobs = wf_node(p, pair->value, root)) == NULL)
			return -1;
	}

	if (jobs == NULL)
		return wf_error(p, root, "the workflow has no 'jobs'");
	return wf_parse_jobs(p, wf, jobs);
}

static int
wf_syntax_error(struct wf_parser *p, yaml_parser_t *yp)
{
	if (yp->error == YAML_MEMORY_ERROR)
		fatalx("libyaml: out of memory");
	if (yp->error == YAML_READER_ERROR) {
		snprintf(p->wp_err, p->wp_errlen, "%s: %s at byte %lu",
		    p->wp_name, yp->problem != NULL ? yp->problem :
		    "unreadable input", (unsigned long)yp->problem_offset);
		return -1;
	}
	snprintf(p->wp_err, p->wp_errlen, "%s:%lu: YAML syntax error: %s%s%s",
	    p->wp_name, (unsigned long)yp->problem_mark.line + 1,
	    yp->problem != NULL ? yp->problem : "unknown problem",
	    yp->context != NULL ? " " : "",
	    yp->context != NULL ? yp->context : "");
	return -1;
}

/*
 * libyaml's scanner takes time quadratic in the nesting of flow
 * collections ("[[[[..."), so that 1 MiB of brackets would hold the
 * poller for many minutes.  A first pass over the events stops at a
 * depth no real workflow reaches, before the nesting can grow.
 */
static int
wf_check_depth(struct wf_parser *p, const char *text, size_t len)
{
	yaml_parser_t	 yp;
	yaml_event_t	 ev;
	int		 depth = 0, rc = 0, done = 0;

	if (!yaml_parser_initialize(&yp))
		fatalx("libyaml: out of memory");
	yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
	while (!done && rc == 0) {
		if (!yaml_parser_parse(&yp, &ev)) {
			rc = wf_syntax_error(p, &yp);
			break;
		}
		if (ev.type == YAML_SEQUENCE_START_EVENT ||
		    ev.type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (ev.type == YAML_SEQUENCE_END_EVENT ||
		    ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		else if (ev.type == YAML_DOCUMENT_END_EVENT ||
		    ev.type == YAML_STREAM_END_EVENT)
			done = 1;
		if (depth > WORKFLOW_MAX_DEPTH) {
			snprintf(p->wp_err, p->wp_errlen, "%s:%lu: nested "
			    "deeper than %d levels", p->wp_name,
			    (unsigned long)ev.start_mark.line + 1,
			    WORKFLOW_MAX_DEPTH);
			rc = -1;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&yp);
	return rc;
}

/* Loads the first document; GitHub reads no other. */
static int
wf_load(struct wf_parser *p, const char *text, size_t len,
    yaml_document_t *doc)
{
	yaml_parser_t	 yp;
	int		 rc = 0;

	if (!yaml_parser_initialize(&yp))
		fatalx("libyaml: out of memory");
	yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
	if (!yaml_parser_load(&yp, doc))
		rc = wf_syntax_error(p, &yp);
	yaml_parser_delete(&yp);
	return rc;
}

int
workflow_parse(struct workflow *wf, const char *name, const char *text,
    size_t len, char *err, size_t errlen)
{
	struct wf_parser	 p;
	yaml_document_t		 doc;
	yaml_node_t		*root;
	int			 rc;

	memset(wf, 0, sizeof(*wf));
	memset(&p, 0, sizeof(p));
	p.wp_name = name;
	p.wp_doc = &doc;
	p.wp_err = err;
	p.wp_errlen = errlen;

	if (len > WORKFLOW_MAX_TEXT) {
		snprintf(err, errlen, "%s: larger than %d bytes", name,
		    WORKFLOW_MAX_TEXT);
		return -1;
	}
	if (wf_check_depth(&p, text, len) == -1 ||
	    wf_load(&p, text, len, &doc) == -1)
		return -1;

	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		snprintf(err, errlen, "%s: the file is empty", name);
		rc = -1;
	} else {
		p.wp_visits = 1;
		rc = wf_parse_root(&p, wf, root);
	}
	yaml_document_delete(&doc);
	if (rc == -1)
		workflow_free(wf);
	return rc;
}

void
workflow_free(struct workflow *wf)
{
	struct workflow_job	*job;
	size_t			 i;

	for (i = 0; i < wf->wf_njobs; i++) {
		job = &wf->wf_jobs[i];
		free(job->wj_id);
		strlist_clear(&job->wj_labels, 0);
		free(job->wj_group);
		free(job->wj_uses);
	}
	free(wf->wf_jobs);
	wf->wf_jobs = NULL;
	wf->wf_njobs = 0;
}

/* Skips "latest" or a version such as 24.04, 2022 or 15; NULL if none. */
static const char *
wf_skip_version(const char *s)
{
	if (strncasecmp(s, "latest", 6) == 0)
		return s + 6;
	if (!isdigit((unsigned char)*s))
		return NULL;
	while (isdigit((unsigned char)*s) || (*s == '.' &&
	    isdigit((unsigned char)s[1])))
		s++;
	return s;
}

int
workflow_label_is_hosted(const char *label)
{
	static const char *const images[] = { "ubuntu-", "windows-", "macos-" };
	static const char *const suffixes[] = { "", "-arm", "-large",
	    "-xlarge", "-intel" };
	const char	*rest = NULL;
	size_t		 i;

	for (i = 0; i < nitems(images) && rest == NULL; i++)
		if (strncasecmp(label, images[i], strlen(images[i])) == 0)
			rest = label + strlen(images[i]);
	if (rest == NULL || (rest = wf_skip_version(rest)) == NULL)
		return 0;

	for (i = 0; i < nitems(suffixes); i++)
		if (strcasecmp(rest, suffixes[i]) == 0)
			return 1;
	return 0;
}

enum workflow_need
workflow_labels_need(const struct strlist *labels)
{
	size_t	 i;

	if (labels->sl_count == 0)
		return WF_NEED_UNKNOWN;
	if (wf_has_label(labels, "self-hosted"))
		return WF_NEED_SELF_HOSTED;
	for (i = 0; i < labels->sl_count; i++)
		if (workflow_label_is_hosted(labels->sl_items[i]))
			return WF_NEED_HOSTED;
	return WF_NEED_SELF_HOSTED;
}
