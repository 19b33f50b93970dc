#!/bin/bash
# The one test command of ephemerd.  Run it as root from a clone, on
# Debian 12:
#
#	tests/run-tests.sh		everything (about 15 minutes on 2 cores)
#	tests/run-tests.sh --quick	no distcheck, no fuzzing
#	tests/run-tests.sh --fuzz-only	the fuzz harnesses only; for a long
#					run: FUZZ_SECONDS=600 tests/run-tests.sh --fuzz-only
#	tests/run-tests.sh -k WORD	only the integration tests named WORD
#
# The integration tests include two minutes of churn with chaos
# (tests/integration/test_churn.py; CHURN_SECONDS=1800 for a longer one,
# or tests/chaos/churn.py alone).  Memory checks under valgrind are a
# command of their own: tests/valgrind.sh.  Benchmarks and their report:
# tests/bench/report.py.
#
# It installs what is missing, starts dockerd when none answers (and stops
# it at the end), builds with the sanitizers in build/, then runs the unit
# tests, make distcheck, a short fuzzing round and the integration tests.
# Logs go to $LOGDIR (default tests/logs).  The last line of its output is
# "N passed, N failed"; the exit status is non-zero when anything failed.

set -eu

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
LOGDIR=${LOGDIR:-$SRCDIR/tests/logs}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
JOBS=${JOBS:-2}
PASSED=0
FAILED=0
STARTED_DOCKERD=
MODE=all
PATTERN=

PACKAGES="build-essential autoconf automake libtool pkg-config libevent-dev
libcurl4-openssl-dev libyaml-dev libjsmn-dev libssl-dev libcmocka-dev clang
libclang-rt-14-dev busybox-static nginx python3 iproute2 procps psmisc curl
ca-certificates util-linux tar openssl chromium wrk mandoc rsyslog
logrotate debootstrap docker-compose systemd"

# Python must not leave __pycache__ in directories that make dist ships.
export PYTHONDONTWRITEBYTECODE=1

usage() {
	echo "usage: $0 [--quick | --fuzz-only] [-k WORD]" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) MODE=quick ;;
	--fuzz-only) MODE=fuzz ;;
	-k) [ $# -ge 2 ] || usage; PATTERN=$2; shift ;;
	*) usage ;;
	esac
	shift
done

pass() {
	PASSED=$((PASSED + $1))
	echo "PASS $2"
}

fail() {
	FAILED=$((FAILED + $1))
	echo "FAIL $2"
}

finish() {
	echo "$PASSED passed, $FAILED failed"
	if [ "$FAILED" -eq 0 ]; then
		exit 0
	fi
	exit 1
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local pids
	if [ -n "$STARTED_DOCKERD" ]; then
		# A test restarts the engine, so the one we started may have
		# a new pid by now.
		pids="$STARTED_DOCKERD $(pidof dockerd || true)"
		# shellcheck disable=SC2086 # one word per pid
		kill $pids 2>/dev/null || true
		for _ in $(seq 1 40); do
			local alive=0 p
			for p in $pids; do
				kill -0 "$p" 2>/dev/null && alive=1
			done
			[ "$alive" = 0 ] && break
			sleep 0.5
		done
	fi
}
trap cleanup EXIT

step() {
	echo "== $*"
}

install_packages() {
	local missing="" p
	for p in $PACKAGES; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q "install ok installed"; then
			missing="$missing $p"
		fi
	done
	# Any Docker engine will do (docker.io, or docker-ce from Docker).
	if ! command -v dockerd >/dev/null 2>&1; then
		missing="$missing docker.io"
	fi
	[ -n "$missing" ] || return 0
	step "installing:$missing"
	# shellcheck disable=SC2086 # one word per package
	if ! { apt-get update &&
	    DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends $missing; } >"$LOGDIR/apt.log" 2>&1; then
		tail -20 "$LOGDIR/apt.log"
		fail 1 "packages: apt-get install failed (see $LOGDIR/apt.log)"
	fi
}

start_docker() {
	if docker info >/dev/null 2>&1; then
		return 0
	fi
	step "starting dockerd (log: $LOGDIR/dockerd.log)"
	setsid dockerd >"$LOGDIR/dockerd.log" 2>&1 </dev/null &
	STARTED_DOCKERD=$!
	for _ in $(seq 1 60); do
		if docker info >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	tail -20 "$LOGDIR/dockerd.log"
	fail 1 "docker: dockerd did not answer within 60 s"
}

make_user() {
	if ! id _ephemerd >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin \
		    _ephemerd
	fi
}

# configure_in DIR LOG ARGS...: a fresh out-of-tree configure.
configure_in() {
	local dir=$1 log=$2
	shift 2
	mkdir -p "$SRCDIR/$dir"
	(cd "$SRCDIR/$dir" && "$SRCDIR/configure" "$@") >"$log" 2>&1
}

build() {
	local log=$LOGDIR/build.log
	step "building in build/ with the sanitizers (log: $log)"
	if ! (cd "$SRCDIR" && autoreconf -fi) >"$log" 2>&1; then
		tail -15 "$log"
		fail 1 "build: autoreconf (see $log)"
		return 1
	fi
	if ! configure_in build "$log.configure" --enable-sanitizers; then
		tail -15 "$log.configure"
		fail 1 "build: configure (see $log.configure)"
		return 1
	fi
	if ! make -C "$SRCDIR/build" -j"$JOBS" >>"$log" 2>&1; then
		grep -E "error:|\*\*\*" "$log" | head -30 || true
		fail 1 "build: make (see $log)"
		return 1
	fi
	pass 1 "build"
}

# Counts cmocka's own lines in each unit program's log; a program that
# crashed or never ran counts as one failure.
unit_tests() {
	local names name log p f result
	step "unit tests: make check (log: $LOGDIR/unit.log)"
	# A log left by an earlier run must not count for this one.
	rm -f "$SRCDIR"/build/tests/unit/*.log "$SRCDIR"/build/tests/unit/*.trs
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    make -C "$SRCDIR/build" -j"$JOBS" check >"$LOGDIR/unit.log" 2>&1 ||
	    grep -E "error:|No rule" "$LOGDIR/unit.log" | head -20 || true
	# The programs Makefile.am promises, and any other test source.
	names=$({ sed -n '/^check_PROGRAMS *=/,/[^\\]$/p' \
	    "$SRCDIR/Makefile.am" | grep -o 'tests/unit/test_[a-z0-9_]*'
	    ls "$SRCDIR"/tests/unit/test_*.c 2>/dev/null; } |
	    sed 's|.*/||; s|\.c$||' | sort -u)
	for name in $names; do
		log="$SRCDIR/build/tests/unit/$name.log"
		if [ ! -f "$log" ]; then
			fail 1 "unit $name: no log; it did not build or run"
			continue
		fi
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" |
		    awk '{ s += $1 } END { print s + 0 }')
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" |
		    awk '{ s += $1 } END { print s + 0 }')
		result=$(sed -n 's/^:test-result: //p' \
		    "$SRCDIR/build/tests/unit/$name.trs" 2>/dev/null || true)
		if [ "$result" != PASS ] && [ "$f" -eq 0 ]; then
			f=1
			grep -E "ERROR: |runtime error|Sanitizer" "$log" |
			    head -5 || true
			echo "unit $name: exited badly ($result), see $log"
		fi
		[ "$p" -eq 0 ] || pass "$p" "unit $name: $p test(s)"
		[ "$f" -eq 0 ] || fail "$f" "unit $name: $f test(s)"
		grep '^\[  FAILED  \] ' "$log" | grep -v 'test(s)' | sort -u || true
	done
}

distcheck() {
	step "make distcheck in build-dist/ (log: $LOGDIR/distcheck.log)"
	rm -rf "$SRCDIR/build-dist"
	if configure_in build-dist "$LOGDIR/distcheck.log" &&
	    make -C "$SRCDIR/build-dist" -j"$JOBS" distcheck \
	    >>"$LOGDIR/distcheck.log" 2>&1; then
		pass 1 "make distcheck"
	else
		grep -E "error:|\*\*\*|^FAIL|^ERROR" "$LOGDIR/distcheck.log" |
		    head -20 || true
		tail -5 "$LOGDIR/distcheck.log"
		fail 1 "make distcheck (see $LOGDIR/distcheck.log)"
	fi
}

fuzz() {
	local bin name corpus n=0
	step "fuzzing, ${FUZZ_SECONDS}s per harness (logs: $LOGDIR/fuzz-*)"
	rm -rf "$SRCDIR/build-fuzz"
	if ! { [ -x "$SRCDIR/configure" ] ||
	    (cd "$SRCDIR" && autoreconf -fi); } >"$LOGDIR/fuzz-build.log" 2>&1 ||
	    ! configure_in build-fuzz "$LOGDIR/fuzz-build.log" CC=clang \
	    --enable-fuzzers --enable-sanitizers ||
	    ! make -C "$SRCDIR/build-fuzz" -j"$JOBS" \
	    >>"$LOGDIR/fuzz-build.log" 2>&1; then
		grep -E "error:|\*\*\*" "$LOGDIR/fuzz-build.log" | head -20 ||
		    tail -15 "$LOGDIR/fuzz-build.log"
		fail 1 "fuzz build (see $LOGDIR/fuzz-build.log)"
		return 0
	fi
	for bin in "$SRCDIR"/build-fuzz/tests/fuzz/fuzz_*; do
		if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
			continue
		fi
		case $bin in *.o) continue ;; esac
		name=$(basename "$bin")
		n=$((n + 1))
		# The seed corpus stays clean: libFuzzer adds to a copy.
		corpus="$LOGDIR/fuzz-corpus/${name#fuzz_}"
		rm -rf "$corpus"
		mkdir -p "$corpus"
		if [ -d "$SRCDIR/tests/fuzz/corpus/${name#fuzz_}" ]; then
			cp -R "$SRCDIR/tests/fuzz/corpus/${name#fuzz_}/." "$corpus"
		fi
		if "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 \
		    -artifact_prefix="$LOGDIR/$name-" "$corpus" \
		    >"$LOGDIR/$name.log" 2>&1; then
			pass 1 "fuzz $name"
		else
			grep -E "ERROR|SUMMARY|Test unit written" \
			    "$LOGDIR/$name.log" | head -10 || true
			fail 1 "fuzz $name (see $LOGDIR/$name.log)"
		fi
	done
	[ "$n" -gt 0 ] || fail 1 "fuzz: no tests/fuzz/fuzz_* harness was built"
}

integration() {
	local out p f
	step "integration tests (log: $LOGDIR/integration.log)"
	set -- --binary "$SRCDIR/build/ephemerd"
	[ -z "$PATTERN" ] || set -- "$@" -k "$PATTERN"
	python3 "$SRCDIR/tests/integration/run.py" "$@" 2>&1 |
	    tee "$LOGDIR/integration.log" || true
	out=$(tail -1 "$LOGDIR/integration.log")
	case $out in
	*" passed, "*" failed")
		p=${out%% passed*}
		f=${out#*passed, }
		f=${f%% failed}
		PASSED=$((PASSED + p))
		FAILED=$((FAILED + f))
		;;
	*)
		fail 1 "integration: run.py ended without counts"
		;;
	esac
}

if [ "$(id -u)" -ne 0 ]; then
	echo "tests/run-tests.sh must run as root" >&2
	FAILED=1
	finish
fi
mkdir -p "$LOGDIR"
LOGDIR=$(cd "$LOGDIR" && pwd)
echo "logs: $LOGDIR"

install_packages
if [ "$MODE" = fuzz ]; then
	fuzz
	finish
fi
start_docker
make_user
if build; then
	unit_tests
	[ "$MODE" = quick ] || distcheck
	[ "$MODE" = quick ] || fuzz
	integration
fi
finish
