#!/bin/sh
# The test runner: a stand-in for GitHub's runner that talks to the GitHub
# double (tests/double/ghdouble.py) instead of GitHub.  It registers,
# takes one job, runs it (a sleep), reports it done and exits 0.
#
# Environment (as a pool's env gives it):
#   EPHEMERD_JIT_CONFIG  just-in-time configuration (or the argument
#                        --jitconfig CONFIG); it names the runner
#   RUNNER_TOKEN         registration token, when there is no JIT config,
#   RUNNER_NAME          with the runner's name,
#   RUNNER_LABELS        its labels, comma-separated (default self-hosted),
#   NO_DEFAULT_LABELS    non-empty: exactly RUNNER_LABELS; otherwise
#                        self-hosted, Linux and X64/ARM64 are added, as
#                        GitHub's runner does without --no-default-labels,
#   SCOPE_NAME/REPO_URL  informational: the token already names the scope
#   DOUBLE_URL           http://127.0.0.1:PORT of the double; for JIT it
#                        defaults to the url inside the configuration
#   RUNNER_IDLE_SECONDS  how long to wait for a job (default 300)
#
# Exit status: 0 after one job, 1 when registration or the protocol
# fails, 3 when no job came within RUNNER_IDLE_SECONDS.

say() {
	echo "$(date -u '+%Y-%m-%d %H:%M:%SZ'): $*"
}

# As process 1 the shell would ignore SIGTERM; a real runner stops on it.
trap 'say "stopped by SIGTERM"; exit 143' TERM

die() {
	say "$*" >&2
	exit 1
}

# POST JSON to the double's runner protocol; answers are key=value lines.
# (busybox 1.35's wget crashes with -T, hence timeout(1).)
post() {
	timeout 10 wget -q -O - --header 'Accept: text/plain' \
	    --header 'Content-Type: application/json' \
	    --post-data "$2" "$DOUBLE_URL/_double/runner/$1" 2>&1
}

field() {
	printf '%s\n' "$1" | sed -n "s/^$2=//p" | head -n 1
}

# The labels with the runner's defaults added, each once (any case).
with_defaults() {
	case "$(uname -m)" in
	aarch64|arm64) arch=ARM64 ;;
	arm*) arch=ARM ;;
	i?86) arch=X86 ;;
	*) arch=X64 ;;
	esac
	out=$1
	for d in self-hosted Linux "$arch"; do
		printf ',%s,' "$out" | grep -qi ",$d," || out="$out,$d"
	done
	printf '%s' "$out"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--jitconfig)
		[ $# -ge 2 ] || die "--jitconfig needs a value"
		EPHEMERD_JIT_CONFIG=$2
		shift 2
		;;
	*)
		shift
		;;
	esac
done

IDLE=${RUNNER_IDLE_SECONDS:-300}
case "$IDLE" in
''|*[!0-9]*) die "RUNNER_IDLE_SECONDS must be a number of seconds" ;;
esac

if [ -n "$EPHEMERD_JIT_CONFIG" ]; then
	case "$EPHEMERD_JIT_CONFIG" in
	*[!A-Za-z0-9+/=]*) die "the JIT configuration is not base64" ;;
	esac
	decoded=$(printf '%s' "$EPHEMERD_JIT_CONFIG" | base64 -d 2>/dev/null) ||
	    die "the JIT configuration cannot be decoded"
	if [ -z "$DOUBLE_URL" ]; then
		DOUBLE_URL=$(printf '%s' "$decoded" |
		    sed -n 's/.*"url": *"\([^"]*\)".*/\1/p')
	fi
	[ -n "$DOUBLE_URL" ] || die "DOUBLE_URL is not set"
	body="{\"jit_config\": \"$EPHEMERD_JIT_CONFIG\"}"
elif [ -n "$RUNNER_TOKEN" ]; then
	labels=${RUNNER_LABELS:-self-hosted}
	[ -n "${NO_DEFAULT_LABELS:-}" ] || labels=$(with_defaults "$labels")
	[ -n "$DOUBLE_URL" ] || die "DOUBLE_URL is not set"
	[ -n "$RUNNER_NAME" ] || die "RUNNER_NAME is not set"
	case "$RUNNER_TOKEN$RUNNER_NAME${RUNNER_LABELS:-}" in
	*[\"\\]*) die "quotes or backslashes in the token, name or labels" ;;
	esac
	body="{\"token\": \"$RUNNER_TOKEN\", \"name\": \"$RUNNER_NAME\",
	    \"labels\": \"$labels\"}"
else
	die "neither EPHEMERD_JIT_CONFIG nor RUNNER_TOKEN is set"
fi

answer=$(post register "$body") || die "registration failed: $answer"
id=$(field "$answer" runner_id)
session=$(field "$answer" session)
[ -n "$id" ] && [ -n "$session" ] ||
    die "registration failed: unexpected answer"
echo "√ Connected to GitHub"
say "runner $(field "$answer" name) (id $id) registered," \
    "labels $(field "$answer" labels)"
say "Listening for Jobs"

me="\"runner_id\": $id, \"session\": \"$session\""
tries=$((IDLE * 2))
while :; do
	answer=$(post poll "{$me}") || die "polling failed: $answer"
	job=$(field "$answer" job_id)
	[ -n "$job" ] && break
	tries=$((tries - 1))
	if [ "$tries" -le 0 ]; then
		say "no job within $IDLE seconds"
		exit 3
	fi
	sleep 0.5
done

say "Running job: $job of $(field "$answer" repo)"
sleep "$(field "$answer" duration)" || sleep 1
answer=$(post complete "{$me, \"job_id\": $job, \"conclusion\": \"success\"}") ||
    die "reporting job $job failed: $answer"
say "Job $job completed with result: Succeeded"
exit 0
