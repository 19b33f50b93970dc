/*
 * Process titles on Linux, where setproctitle(3) does not exist: the
 * title is written over the memory that held argv (and environ, which is
 * moved away first), which is what ps reads from /proc/PID/cmdline.
 */
#include <sys/prctl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor.h"
#include "util.h"

extern char **environ;

static char	*proctitle_start;
static size_t	 proctitle_size;

/* Takes over the argv and environ strings that follow each other. */
void
proctitle_init(int argc, char **argv)
{
	char	**env;
	char	*end;
	int	 i, n;

	if (argc == 0 || argv[0] == NULL)
		return;

	end = argv[0];
	for (i = 0; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	for (n = 0; environ[n] != NULL; n++)
		if (environ[n] == end)
			end = environ[n] + strlen(environ[n]) + 1;

	env = xcalloc((size_t)n + 1, sizeof(*env));
	for (i = 0; i < n; i++)
		env[i] = xstrdup(environ[i]);
	environ = env;

	for (i = 1; i < argc; i++)
		argv[i] = xstrdup(argv[i]);

	proctitle_start = argv[0];
	proctitle_size = (size_t)(end - argv[0]);
}

void
proctitle_set(const char *name)
{
	char	 title[64], comm[16];

	snprintf(title, sizeof(title), "ephemerd: %s", name);
	snprintf(comm, sizeof(comm), "ephemerd-%s", name);
	if (strcmp(name, "supervisor") == 0)
		strlcpy(comm, "ephemerd", sizeof(comm));
	prctl(PR_SET_NAME, comm, 0, 0, 0);

	if (proctitle_start == NULL || proctitle_size < 2)
		return;
	memset(proctitle_start, 0, proctitle_size);
	strlcpy(proctitle_start, title, proctitle_size);
}
