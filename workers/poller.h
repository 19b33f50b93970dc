/*
 * The poller: the GitHub side of ephemerd and its only holder of the
 * GitHub credentials.
 */
#ifndef EPHEMERD_POLLER_H
#define EPHEMERD_POLLER_H

#define POLLER_USER_AGENT	PACKAGE_NAME "/" PACKAGE_VERSION
#define GITHUB_API_VERSION	"2022-11-28"

#endif
