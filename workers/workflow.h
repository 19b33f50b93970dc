/*
 * What a GitHub Actions workflow file asks for: for each job under
 * `jobs:`, the runner labels of its `runs-on`.  The poller reads the files
 * of .github/workflows/ with this to learn which label sets a repository
 * may queue, and so which repositories are worth watching.
 *
 * Statically parsed labels are a hint: the labels of a queued job (in a
 * webhook or the jobs API) are the authority, because expressions and
 * matrices are resolved only when the run starts.
 */
#ifndef EPHEMERD_WORKFLOW_H
#define EPHEMERD_WORKFLOW_H

#include <stddef.h>

#include "config.h"

#define WORKFLOW_MAX_TEXT	(1024 * 1024)	/* bytes of one file */
#define WORKFLOW_MAX_JOBS	1000
#define WORKFLOW_MAX_LABELS	100		/* per job, as GitHub */
#define WORKFLOW_MAX_LABEL	255		/* bytes of one label */
#define WORKFLOW_MAX_DEPTH	64		/* nested collections */
/* Nodes looked at in one file; aliases cannot make more work than this. */
#define WORKFLOW_MAX_VISITS	200000

enum workflow_runs_on {
	WF_RUNS_ON_STATIC,	/* every label is known */
	WF_RUNS_ON_DYNAMIC,	/* some or all come from a ${{ }} expression */
	WF_RUNS_ON_NONE		/* no runs-on: calls a reusable workflow */
};

/* Whether a job needs a self-hosted runner. */
enum workflow_need {
	WF_NEED_HOSTED,		/* a GitHub-hosted image */
	WF_NEED_SELF_HOSTED,
	WF_NEED_UNKNOWN		/* an expression or a bare runner group */
};

struct workflow_job {
	char			*wj_id;		/* the key under jobs: */
	int			 wj_line;	/* 1-based */
	enum workflow_runs_on	 wj_runs_on;
	struct strlist		 wj_labels;	/* the literal labels */
	char			*wj_group;	/* {group: X}; NULL if none */
	char			*wj_uses;	/* reusable workflow; or NULL */
	enum workflow_need	 wj_need;
};

struct workflow {
	struct workflow_job	*wf_jobs;
	size_t			 wf_njobs;
};

/*
 * Parses the text of one workflow file; name is only for messages.  The
 * struct is initialized here.  Returns 0, or -1 with a message such as
 * "ci.yml:7: job 'build': 'runs-on' must not be empty" in err, and the
 * struct left empty.
 */
int	 workflow_parse(struct workflow *, const char *, const char *, size_t,
	    char *, size_t);
void	 workflow_free(struct workflow *);

/*
 * GitHub's rule for a set of literal labels: a job asks for a self-hosted
 * runner when "self-hosted" is among its labels, or when none of its
 * labels names a GitHub-hosted image, since only a runner registered with
 * those custom labels can take it.  Image names are ubuntu-, windows- and
 * macos- followed by "latest" or a version, optionally with -arm, -large,
 * -xlarge or -intel (ubuntu-24.04, windows-11-arm, macos-15-xlarge); a
 * larger runner's custom label (ubuntu-24.04-16core) is none of them, so
 * it counts as self-hosted.  An empty set is WF_NEED_UNKNOWN.  Case does
 * not matter.
 */
enum workflow_need workflow_labels_need(const struct strlist *);
/* True if the label names a GitHub-hosted runner image. */
int	 workflow_label_is_hosted(const char *);

#endif
