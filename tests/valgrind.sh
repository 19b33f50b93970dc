#!/bin/bash
# The integration tests with ephemerd under valgrind: no definite leak, no
# invalid read or write, no use of uninitialised memory, in any of its
# processes.  Run it as root from a clone, with dockerd answering:
#
#	tests/valgrind.sh		every integration test (35 minutes)
#	tests/valgrind.sh -k WORD	only the tests named WORD
#
# It builds without the sanitizers (valgrind and ASan exclude each other)
# in build-valgrind/ (or $VALGRIND_BUILD), runs tests/integration/run.py
# with a wrapper that starts ephemerd under valgrind --trace-children=yes
# (so the children that the supervisor re-executes are checked too), and
# reads one valgrind log per process from $LOGDIR/valgrind/processes
# (LOGDIR defaults to tests/logs).  Tests that time out under valgrind's
# slowness are reported by run.py like any other failure (five tests that
# cannot run under it are skipped, see below); the verdict on memory is
# the last line, "valgrind: N processes, N with errors".  The exit status
# is 0 only when every test passed and no process had an error.

set -eu

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
LOGDIR=${LOGDIR:-$SRCDIR/tests/logs}/valgrind
BUILD=${VALGRIND_BUILD:-$SRCDIR/build-valgrind}
JOBS=${JOBS:-2}
ARGS=()

while [ $# -gt 0 ]; do
	case $1 in
	-k) [ $# -ge 2 ] || { echo "usage: $0 [-k WORD]" >&2; exit 2; }
	    ARGS+=(-k "$2"); shift ;;
	*) echo "usage: $0 [-k WORD]" >&2; exit 2 ;;
	esac
	shift
done

if [ "$(id -u)" -ne 0 ]; then
	echo "tests/valgrind.sh must run as root" >&2
	exit 2
fi
command -v valgrind >/dev/null 2>&1 ||
    { echo "valgrind is missing: apt-get install valgrind" >&2; exit 2; }
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR/bin" "$LOGDIR/processes"
# Some tests run ephemerd as another user: it writes its log here too.
chmod 1777 "$LOGDIR/processes"

echo "== building without sanitizers in $BUILD (log: $LOGDIR/build.log)"
[ -x "$SRCDIR/configure" ] || (cd "$SRCDIR" && autoreconf -fi)
mkdir -p "$BUILD"
if ! { (cd "$BUILD" && "$SRCDIR/configure" CFLAGS="-g -O1") &&
    make -C "$BUILD" -j"$JOBS"; } >"$LOGDIR/build.log" 2>&1; then
	tail -15 "$LOGDIR/build.log"
	echo "valgrind: the build failed"
	exit 1
fi

# --run-libc-freeres=no: at exit glibc's freeres would run clearenv(),
# which drops the environ array proctitle_init() made, and valgrind would
# then call that array definitely lost.
cat >"$LOGDIR/bin/ephemerd" <<WRAPPER
#!/bin/sh
exec valgrind --quiet --trace-children=yes --child-silent-after-fork=yes \\
    --run-libc-freeres=no \\
    --leak-check=full --errors-for-leak-kinds=definite \\
    --show-leak-kinds=definite --track-fds=no --num-callers=20 \\
    --log-file="$LOGDIR/processes/vg.%p.log" "$BUILD/ephemerd" "\$@"
WRAPPER
chmod 755 "$LOGDIR/bin/ephemerd"
# The tests take the binary's directory for ephemerctl as well.
ln -sf "$BUILD/ephemerctl" "$LOGDIR/bin/ephemerctl"

echo "== integration tests under valgrind (log: $LOGDIR/integration.log)"
# Under valgrind /proc/PID/cmdline is valgrind's, not the title ephemerd
# sets; the harness then finds the roles by the thread name instead (in
# the churn driver's own process too, which is why that is not a shim).
# Five tests check what valgrind itself changes, and are left out: the
# process titles in /proc/PID/cmdline, the installed files (make install
# from the build directory, whose binary is not the wrapper), and a
# detached daemon found by its executable, which is valgrind's.
SKIPS=(
	--skip "processes.process_tree:the titles are valgrind's cmdline"
	--skip "ops.install_into_staging_root:installs the build, not valgrind"
	--skip "ops.init_script_start_status_reload_restart_stop:runs the \
installed binary"
	--skip "ops.container_deploy:builds an image from the build directory"
	--skip "ops.syslog_without_d_and_logrotate:finds the daemon by its \
executable"
)
# The churn test's bound on PSS growth (16 MiB or 25 %) measures ephemerd
# with the sanitizers; under valgrind the code it translates and the
# freed blocks it holds back (20 MB a process) grow as chaos reaches new
# paths, so the bound here is 256 MiB.  Leaks are valgrind's own verdict.
export CHURN_PSS_SLACK_KIB=262144
python3 "$SRCDIR/tests/integration/run.py" --binary "$LOGDIR/bin/ephemerd" \
    "${SKIPS[@]}" "${ARGS[@]}" 2>&1 | tee "$LOGDIR/integration.log"
tests_status=${PIPESTATUS[0]}

total=0
bad=0
for log in "$LOGDIR"/processes/vg.*.log; do
	[ -f "$log" ] || continue
	total=$((total + 1))
	# --quiet leaves only the errors and the definite leaks.
	if grep -qE "Invalid (read|write|free)|uninitialised|definitely lost|\
Syscall param|Mismatched free|overlap" "$log"; then
		bad=$((bad + 1))
		echo "valgrind: errors in $log:"
		grep -E "Invalid|uninitialised|definitely lost|Syscall param|\
Mismatched|overlap|^==[0-9]+==    (at|by) " "$log" | head -12
	fi
done
echo "valgrind: $total processes, $bad with errors"
[ "$total" -gt 0 ] && [ "$bad" -eq 0 ] && [ "$tests_status" -eq 0 ]
