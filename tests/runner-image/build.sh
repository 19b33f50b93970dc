#!/bin/sh
# Builds the test runner image with `docker import` from Debian's static
# busybox (package busybox-static) and entrypoint.sh, without a registry.
#
#	tests/runner-image/build.sh [TAG]	(default ephemerd-test-runner:latest)
#
# It does nothing when TAG already holds the same busybox and entrypoint.
set -eu

TAG=${1:-ephemerd-test-runner:latest}
HERE=$(cd "$(dirname "$0")" && pwd)
BUSYBOX=${BUSYBOX:-/bin/busybox}

[ -x "$BUSYBOX" ] || { echo "build.sh: no $BUSYBOX (apt-get install" \
    "busybox-static)" >&2; exit 1; }
if ! "$BUSYBOX" --list | grep -qx wget; then
	echo "build.sh: $BUSYBOX has no wget applet" >&2
	exit 1
fi

HASH=$(cat "$BUSYBOX" "$HERE/entrypoint.sh" | sha256sum | cut -c1-32)
if docker image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' \
    "$TAG" 2>/dev/null | grep -qx "EPHEMERD_RUNNER_IMAGE=$HASH"; then
	echo "$TAG is up to date"
	exit 0
fi

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/runner-root.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT INT TERM
mkdir -p "$ROOT/bin" "$ROOT/tmp" "$ROOT/etc" "$ROOT/proc" "$ROOT/sys" \
    "$ROOT/dev" "$ROOT/work"
chmod 1777 "$ROOT/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in $("$BUSYBOX" --list); do
	[ -e "$ROOT/bin/$applet" ] || ln -s busybox "$ROOT/bin/$applet"
done
cp "$HERE/entrypoint.sh" "$ROOT/entrypoint.sh"
chmod 755 "$ROOT/entrypoint.sh"
echo "root:x:0:0:root:/root:/bin/sh" > "$ROOT/etc/passwd"
echo "root:x:0:" > "$ROOT/etc/group"

tar -C "$ROOT" --numeric-owner --owner=0 --group=0 -cf - . |
    docker import \
	-c 'ENTRYPOINT ["/entrypoint.sh"]' \
	-c 'WORKDIR /work' \
	-c 'ENV PATH=/bin' \
	-c "ENV EPHEMERD_RUNNER_IMAGE=$HASH" \
	- "$TAG" >/dev/null
echo "built $TAG"
