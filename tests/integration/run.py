#!/usr/bin/python3
"""Run ephemerd's integration tests against a built binary, as root.

    python3 tests/integration/run.py --binary build/ephemerd [-k WORD]
        [--skip NAME:WHY ...]

Each test_*.py module here holds test_* functions; each runs on its own
and tears down what it started.  Prints "PASS name (secs)" or
"FAIL name: reason (secs)" per test, "SKIP name: why" for each test
named by --skip, then "N passed, N failed".
"""

import argparse
import importlib
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


def collect():
    tests = []
    for name in sorted(os.listdir(HERE)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        mod = importlib.import_module(name[:-3])
        fns = [(fn.__code__.co_firstlineno, attr, fn)
               for attr, fn in vars(mod).items()
               if attr.startswith("test_") and callable(fn)]
        for _, attr, fn in sorted(fns):
            tests.append(("%s.%s" % (name[5:-3], attr[5:]), fn))
    return tests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("-k", dest="pattern", help="run tests whose name has it")
    ap.add_argument("--skip", action="append", default=[], metavar="NAME:WHY",
                    help="leave out the test NAME, saying why")
    opts = ap.parse_args()
    skips = dict(s.partition(":")[::2] for s in opts.skip)

    harness.BINARY = os.path.abspath(opts.binary)
    if os.geteuid() != 0:
        print("FAIL setup: the integration tests must run as root")
        print("0 passed, 1 failed")
        return 1
    if not os.access(harness.BINARY, os.X_OK):
        print("FAIL setup: no executable %s" % harness.BINARY)
        print("0 passed, 1 failed")
        return 1
    try:
        harness.ensure_busybox_image()
    except Exception as e:      # the tests that need it will say so
        print("WARNING: could not make busybox:latest: %s" % e, flush=True)

    tests = collect()
    passed = failed = 0
    for name, fn in tests:
        if opts.pattern is not None and opts.pattern not in name:
            continue
        if name in skips:
            print("SKIP %s: %s" % (name, skips[name]), flush=True)
            continue
        print("RUN  %s" % name, flush=True)
        t0 = time.monotonic()
        try:
            fn()
        except harness.TestFailure as e:
            failed += 1
            print("FAIL %s: %s (%.2fs)" % (name, e, time.monotonic() - t0),
                  flush=True)
            continue
        except Exception as e:
            failed += 1
            print("FAIL %s: %s: %s (%.2fs)\n%s" % (
                name, type(e).__name__, e, time.monotonic() - t0,
                traceback.format_exc()), flush=True)
            continue
        passed += 1
        print("PASS %s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
    for name in sorted(set(skips) - {name for name, _ in tests}):
        # A skip that names no test is a typo that would hide nothing.
        failed += 1
        print("FAIL %s: --skip names no such test" % name, flush=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
