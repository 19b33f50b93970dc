/*
 * Dropping root: the user's groups are reduced to one, the ids set with
 * setresgid and setresuid, and the result checked, including that root
 * cannot be regained.
 */
#include <sys/prctl.h>
#include <sys/stat.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "supervisor.h"

int
privsep_lookup_user(const char *user, uid_t *uid, gid_t *gid, char *err,
    size_t errlen)
{
	struct passwd	*pw;

	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "user '%s' does not exist%s%s", user,
		    errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "user '%s' is root; an unprivileged "
		    "user is required", user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static int
privsep_chroot(const char *dir, char *err, size_t errlen)
{
	if (chroot(dir) == -1 || chdir("/") == -1) {
		snprintf(err, errlen, "chroot %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Proves the drop: every id is the user's and setuid(0) fails. */
static int
privsep_verify(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	uid_t	 ruid, euid, suid;
	gid_t	 rgid, egid, sgid;

	if (getresuid(&ruid, &euid, &suid) == -1 ||
	    getresgid(&rgid, &egid, &sgid) == -1) {
		snprintf(err, errlen, "getresuid: %s", strerror(errno));
		return -1;
	}
	if (ruid != uid || euid != uid || suid != uid || rgid != gid ||
	    egid != gid || sgid != gid) {
		snprintf(err, errlen, "privileges were not dropped");
		return -1;
	}
	if (setuid(0) != -1 || seteuid(0) != -1) {
		snprintf(err, errlen, "root could be regained after the drop");
		return -1;
	}
	return 0;
}

/*
 * Becomes the user, after a chroot when dir is not empty.  extra_gid, when
 * not (gid_t)-1, stays as the one supplementary group (the docker
 * socket's).  Without root this does nothing: the supervisor has said so.
 */
int
privsep_drop(const char *user, const char *dir, gid_t extra_gid, char *err,
    size_t errlen)
{
	uid_t	 uid;
	gid_t	 gid, groups[1] = { 0 };
	size_t	 ngroups = 0;

	if (geteuid() != 0)
		return 0;
	if (privsep_lookup_user(user, &uid, &gid, err, errlen) == -1)
		return -1;
	if (dir != NULL && dir[0] != '\0' &&
	    privsep_chroot(dir, err, errlen) == -1)
		return -1;

	if (extra_gid != (gid_t)-1)
		groups[ngroups++] = extra_gid;
	if (setgroups(ngroups, groups) == -1 ||
	    setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		snprintf(err, errlen, "cannot drop privileges to %s: %s",
		    user, strerror(errno));
		return -1;
	}
	if (privsep_verify(uid, gid, err, errlen) == -1)
		return -1;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}
