"""Churn with chaos: two minutes of jobs while processes, dockerd and the
double misbehave (tests/chaos/churn.py defines the invariants).

The lead's long run is the same driver with another duration:
    python3 tests/chaos/churn.py --binary build/ephemerd --chaos \\
        --duration 1800 --json churn.json
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import harness
from harness import SRCDIR, check

DRIVER = os.path.join(SRCDIR, "tests", "chaos", "churn.py")
DURATION = int(os.environ.get("CHURN_SECONDS", "120"))
# Set by tests/valgrind.sh, which says why.
PSS_SLACK_KIB = os.environ.get("CHURN_PSS_SLACK_KIB")


def test_churn_with_chaos_keeps_every_invariant():
    out = tempfile.mkdtemp(prefix="ephemerd-churn.")
    result_path = os.path.join(out, "churn.json")
    log_path = os.path.join(out, "churn.log")
    args = [sys.executable, DRIVER, "--binary", harness.BINARY,
            "--duration", str(DURATION), "--chaos", "--json", result_path,
            "--dockerd-log", os.path.join(out, "dockerd.log")]
    if PSS_SLACK_KIB:
        args += ["--pss-slack-kib", PSS_SLACK_KIB]
    with open(log_path, "wb") as log:
        p = subprocess.run(
            args, stdout=subprocess.DEVNULL, stderr=log,
            timeout=DURATION + 900,
            env=dict(os.environ, EPHEMERD_KEEP_TMP=out))
    check(os.path.exists(result_path), "the driver wrote no result "
          "(status %d); see %s" % (p.returncode, log_path))
    with open(result_path, encoding="utf-8") as f:
        result = json.load(f)
    check(result["violations"] == [] and p.returncode == 0,
          "seed %s, broken invariants: %s (see %s)" %
          (result.get("seed"), "; ".join(result["violations"]), out))
    jobs = result["jobs"]
    check(jobs["served"] > 0 and sum(result["chaos_counts"].values()) > 0,
          "nothing was served or no fault happened: %r %r" %
          (jobs, result["chaos_counts"]))
    shutil.rmtree(out, ignore_errors=True)
