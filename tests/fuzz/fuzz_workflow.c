/*
 * libFuzzer harness for the workflow reader.  Whatever the input, the
 * parser returns an error with a message or a result within the limits;
 * a broken invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "workflow.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_job(const struct workflow_job *job)
{
	size_t	 i;

	if (job->wj_id == NULL || *job->wj_id == '\0' || job->wj_line < 1)
		abort();
	if ((job->wj_runs_on == WF_RUNS_ON_NONE) != (job->wj_uses != NULL))
		abort();
	if (job->wj_labels.sl_count > WORKFLOW_MAX_LABELS)
		abort();
	for (i = 0; i < job->wj_labels.sl_count; i++) {
		if (*job->wj_labels.sl_items[i] == '\0' ||
		    strlen(job->wj_labels.sl_items[i]) > WORKFLOW_MAX_LABEL ||
		    strstr(job->wj_labels.sl_items[i], "${{") != NULL)
			abort();
	}

	/* A job with all its labels known needs what its labels say. */
	if (job->wj_runs_on == WF_RUNS_ON_STATIC &&
	    job->wj_need != workflow_labels_need(&job->wj_labels))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct workflow	 wf;
	char		 err[256];
	size_t		 i;

	err[0] = '\0';
	if (workflow_parse(&wf, "fuzz.yml", (const char *)data, size, err,
	    sizeof(err)) == -1) {
		if (strncmp(err, "fuzz.yml:", 9) != 0 || wf.wf_njobs != 0)
			abort();
		return 0;
	}

	if (wf.wf_njobs == 0 || wf.wf_njobs > WORKFLOW_MAX_JOBS)
		abort();
	for (i = 0; i < wf.wf_njobs; i++)
		check_job(&wf.wf_jobs[i]);
	workflow_free(&wf);
	return 0;
}
