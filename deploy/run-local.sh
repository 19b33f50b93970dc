#!/bin/bash
# Build ephemerd and run it in the foreground, on a fresh Debian 12, as
# root.  Ctrl-C stops it.
#
#	deploy/run-local.sh
#
# With GITHUB_RUNNER_TOKEN set (or the token file that etc/ephemerd.yaml
# names present), it runs with etc/ephemerd.yaml against GitHub's API.
# Without a token it starts the bundled GitHub double on 127.0.0.1 with
# a demo world (a few repositories whose jobs queue every 20 to 40 s and
# are announced by signed webhooks), and writes build/ephemerd.local.yaml
# for automatic mode against it: runners come, take a job and go, offline.
# Logs of dockerd and of the double go to build/run-local/.

set -eu

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$SRCDIR/build
STATE=$BUILD/run-local
SAMPLE=$SRCDIR/etc/ephemerd.yaml
PORT=${API_GATEWAY_PORT:-8080}
DOUBLE_PID=

PACKAGES="build-essential autoconf automake libtool pkg-config libevent-dev
libcurl4-openssl-dev libyaml-dev libjsmn-dev libssl-dev libcmocka-dev clang
libclang-rt-14-dev busybox-static nginx python3 iproute2 procps psmisc curl
ca-certificates"

say() {
	echo "run-local: $*"
}

if [ "$(id -u)" -ne 0 ]; then
	say "run me as root (I install packages and start dockerd)" >&2
	exit 1
fi

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
if [ -n "$missing" ]; then
	say "installing:$missing"
	apt-get update
	# shellcheck disable=SC2086 # one word per package
	DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends $missing
fi

mkdir -p "$STATE"

if ! docker info >/dev/null 2>&1; then
	say "starting dockerd, log in $STATE/dockerd.log"
	setsid dockerd >"$STATE/dockerd.log" 2>&1 </dev/null &
	for _ in $(seq 1 60); do
		docker info >/dev/null 2>&1 && break
		sleep 1
	done
	docker info >/dev/null 2>&1 || {
		say "dockerd did not start; see $STATE/dockerd.log" >&2
		exit 1
	}
fi

if ! id _ephemerd >/dev/null 2>&1; then
	useradd --system --no-create-home --shell /usr/sbin/nologin _ephemerd
fi

say "building in $BUILD"
(cd "$SRCDIR" && autoreconf -fi)
(cd "$BUILD" && "$SRCDIR/configure" && make -j"$(nproc)")

# The sample's own token file and chroot, if it names them.
sample_value() {
	[ -f "$SAMPLE" ] || return 0
	sed -n "s/^[[:space:]]*$1:[[:space:]]*\"\{0,1\}\([^\"#]*\)\"\{0,1\}.*/\1/p" \
	    "$SAMPLE" | head -1 | sed 's/[[:space:]]*$//'
}
TOKEN_FILE=$(sample_value token_file)
CHROOT=$(sample_value chroot)

if [ -n "${GITHUB_RUNNER_TOKEN:-}" ] ||
    { [ -n "$TOKEN_FILE" ] && [ -f "$TOKEN_FILE" ]; }; then
	if [ -n "$CHROOT" ] && [ ! -d "$CHROOT" ]; then
		install -d -m 0755 -o root -g root "$CHROOT"
	fi
	say "API: http://127.0.0.1:$PORT/api/v1/health (GitHub: real API)"
	exec "$BUILD/ephemerd" -d -f "$SAMPLE"
fi

# No credentials: run against the double.
stop_double() {
	if [ -n "$DOUBLE_PID" ]; then
		kill "$DOUBLE_PID" 2>/dev/null || true
	fi
}
trap stop_double EXIT
trap 'exit 130' INT TERM

TOKEN=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
SECRET=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
(umask 077 && printf '%s\n' "$TOKEN" >"$STATE/token" &&
    printf '%s\n' "$SECRET" >"$STATE/webhook-secret")
install -d -m 0755 -o root -g root "$STATE/empty"

# The demo's runners: a busybox image that takes one job from the double.
RUNNER_IMAGE=${RUNNER_IMAGE:-ephemerd-test-runner:latest}
if [ "$RUNNER_IMAGE" = ephemerd-test-runner:latest ]; then
	say "building the demo runner image $RUNNER_IMAGE"
	"$SRCDIR/tests/runner-image/build.sh" "$RUNNER_IMAGE" >/dev/null
fi

# A demo world: repositories whose jobs queue every 20 to 40 seconds,
# announced to ephemerd by signed webhooks (polling is the safety net).
python3 "$SRCDIR/tests/double/ghdouble.py" --listen 127.0.0.1:0 \
    --token "$TOKEN" --log "$STATE/double-requests.log" --demo \
    --webhook-url "http://127.0.0.1:$PORT/api/v1/webhook" \
    --webhook-secret "$SECRET" \
    >"$STATE/double.out" 2>"$STATE/double.log" </dev/null &
DOUBLE_PID=$!
for _ in $(seq 1 50); do
	grep -q '^listening on ' "$STATE/double.out" && break
	sleep 0.1
done
DOUBLE=$(sed -n 's/^listening on //p' "$STATE/double.out")
if [ -z "$DOUBLE" ]; then
	say "the GitHub double did not start; see $STATE/double.log" >&2
	exit 1
fi

CONFIG=$BUILD/ephemerd.local.yaml
cat >"$CONFIG" <<EOF
# Written by deploy/run-local.sh: ephemerd against the local GitHub double.
user: _ephemerd
chroot: "$STATE/empty"
log:
  level: info
github:
  api_url: "http://$DOUBLE"
  token_file: "$STATE/token"
  webhook_secret_file: "$STATE/webhook-secret"
discovery:
  auto_create: true
  interval: 15
  purge_interval: 120
docker:
  socket: /var/run/docker.sock
httpd:
  listen: "127.0.0.1:$PORT"
pools:
  - name: default
    labels: [self-hosted, linux]
    image: "$RUNNER_IMAGE"
    network: host
    max_runners: 5
    idle_timeout: 120
    env:
      EPHEMERD_JIT_CONFIG: "{jit_config}"
      RUNNER_NAME: "{runner_name}"
      RUNNER_LABELS: "{labels}"
      RUNNER_IDLE_SECONDS: "120"
EOF

say "GitHub double on http://$DOUBLE (log: $STATE/double.log, jobs queued:"
say "  $STATE/double.out); runners come and go: docker ps, or"
say "  curl http://127.0.0.1:$PORT/api/v1/runners"
say "API: http://127.0.0.1:$PORT/api/v1/health"
say "Ctrl-C stops ephemerd and the double"
# Not exec: the trap must outlive ephemerd to stop the double.
"$BUILD/ephemerd" -d -f "$CONFIG"
