/*
 * ephemerd: ephemeral self-hosted GitHub Actions runners in Docker.
 *
 * The same binary is the supervisor and, re-executed with -R, each of
 * its children.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"
#include "supervisor.h"
#include "util.h"

#ifndef EPHEMERD_CONFIG_FILE
#define EPHEMERD_CONFIG_FILE	"/etc/ephemerd/ephemerd.yaml"
#endif

extern char **environ;

int		 verbose;
int		 foreground;
const char	*self_exe;

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: ephemerd [-dnv] [-f file]\n"
	    "       ephemerd -V\n");
	exit(1);
}

/* Children are started from the same file, even if argv[0] is relative. */
static const char *
main_find_self(void)
{
	static char	 path[PATH_MAX];
	ssize_t		 n;

	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n == -1)
		fatal("readlink /proc/self/exe");
	path[n] = '\0';
	return path;
}

static int
main_check_config(const char *file)
{
	struct config	 conf;
	char		 err[1024];

	if (config_load(&conf, file, environ, err, sizeof(err)) == -1) {
		fprintf(stderr, "ephemerd: %s\n", err);
		config_free(&conf);
		return 1;
	}
	config_free(&conf);
	printf("configuration OK\n");
	return 0;
}

int
main(int argc, char *argv[])
{
	struct config	 conf;
	const char	*file = EPHEMERD_CONFIG_FILE, *role = NULL;
	char		 err[1024], abs_file[PATH_MAX];
	int		 ch, check_only = 0, role_id;

	proctitle_init(argc, argv);
	while ((ch = getopt(argc, argv, "dnvf:R:V")) != -1) {
		switch (ch) {
		case 'd':
			foreground = 1;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'f':
			file = optarg;
			break;
		case 'R':
			role = optarg;
			break;
		case 'V':
			printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		fatalx("curl_global_init failed");

	if (role != NULL) {
		if ((role_id = ipc_role_from_name(role)) == -1 ||
		    role_id == ROLE_SUPERVISOR)
			usage();
		child_main((enum ipc_role)role_id);
	}

	if (check_only)
		return main_check_config(file);

	self_exe = main_find_self();
	/* Reloads happen after daemon(3) changed the directory to /. */
	if (file[0] != '/') {
		if (realpath(file, abs_file) == NULL) {
			fprintf(stderr, "ephemerd: %s: %s\n", file,
			    strerror(errno));
			return 1;
		}
		file = abs_file;
	}
	if (config_load(&conf, file, environ, err, sizeof(err)) == -1) {
		fprintf(stderr, "ephemerd: %s\n", err);
		return 1;
	}
	return supervisor_run(&conf, foreground);
}
