/*
 * The docker worker: the only process that talks to the Docker engine.
 */
#ifndef EPHEMERD_DOCKER_H
#define EPHEMERD_DOCKER_H

/* Any host works over a unix socket; the engine ignores it. */
#define DOCKER_URL_BASE		"http://localhost"

#endif
