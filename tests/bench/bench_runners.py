#!/usr/bin/python3
"""Benchmark: 20 runner containers from one request, against a shell loop.

    python3 tests/bench/bench_runners.py --binary build/ephemerd [-n 20]

Prints the wall time from the POST until `docker ps` shows every runner
running, the same for a shell loop of `docker run -d` on the same image
with the same environment (its JIT configurations are fetched from the
GitHub double before the clock starts), and their ratio.  To compare
like with like, ephemerd's JIT requests are not paced for the ratio
(github.mutation_interval_ms: 0); the time with GitHub's pacing (one
POST a second, the default) is printed apart.  Run as root with the
Docker engine up; it leaves no container behind."""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402
import test_runners as tr  # noqa: E402


def wait_running(prefix_filter, n, timeout=120):
    """Seconds until n containers matching the filter are running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["docker", "ps", "-q", "--filter",
                              prefix_filter], capture_output=True).stdout
        if len(out.split()) >= n:
            return
        time.sleep(0.01)
    raise SystemExit("bench: %d containers did not run within %d s" %
                     (n, timeout))


UNPACED = "  mutation_interval_ms: 0\n"


def bench_ephemerd(n, github_yaml=UNPACED):
    with tr.Runners(max_runners=n, github_yaml=github_yaml) as d:
        t0 = time.monotonic()
        r = tr.post_runners(d, {"scope": "repo", "scope_name": "octo/hello",
                                "count": n})
        if r.status != 201:
            raise SystemExit("bench: POST answered %d: %s" %
                             (r.status, r.body[:300]))
        wait_running("label=" + tr.MANAGED, n)
        return time.monotonic() - t0


def jit_config(d, name):
    r = harness.request(
        "POST", d.double.port,
        "/repos/octo/hello/actions/runners/generate-jitconfig",
        body={"name": name, "runner_group_id": 1,
              "labels": ["self-hosted", "linux"], "work_folder": "_work"},
        headers={"Authorization": "Bearer " + d.token,
                 "User-Agent": "bench", "Content-Type": "application/json"})
    if r.status != 201:
        raise SystemExit("bench: jitconfig %d: %s" % (r.status, r.body))
    return r.json()["encoded_jit_config"]


def bench_loop(n):
    with tr.Runners(max_runners=n) as d:
        script = ["set -e"]
        for i in range(n):
            name = "bench-loop-%d" % i
            env = {"EPHEMERD_JIT_CONFIG": jit_config(d, name),
                   "RUNNER_NAME": name, "SCOPE_NAME": "octo/hello",
                   "RUNNER_LABELS": "self-hosted,linux",
                   "DOUBLE_URL": d.double.url, "RUNNER_IDLE_SECONDS": "120"}
            args = " ".join("-e %s='%s'" % kv for kv in env.items())
            script.append("docker run -d --name %s --network host "
                          "--label bench-loop=1 --memory 67108864 "
                          "--cpus 0.5 --pids-limit 128 %s %s >/dev/null" %
                          (name, args, tr.RUNNER_IMAGE))
        try:
            t0 = time.monotonic()
            subprocess.run(["sh", "-c", "\n".join(script)], check=True)
            wait_running("label=bench-loop=1", n)
            return time.monotonic() - t0
        finally:
            ids = subprocess.run(["docker", "ps", "-aq", "--filter",
                                  "label=bench-loop=1"],
                                 capture_output=True).stdout.split()
            if ids:
                subprocess.run(["docker", "rm", "-f"] +
                               [i.decode() for i in ids],
                               capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("-n", type=int, default=20)
    opts = ap.parse_args()
    harness.BINARY = os.path.abspath(opts.binary)
    harness.ensure_busybox_image()

    eph = bench_ephemerd(opts.n)
    loop = bench_loop(opts.n)
    paced = bench_ephemerd(opts.n, github_yaml="")
    print("ephemerd, one POST of %d runners: %.2f s" % (opts.n, eph))
    print("shell loop of %d docker run -d:   %.2f s" % (opts.n, loop))
    print("ratio ephemerd / loop: %.2f" % (eph / loop))
    print("ephemerd with GitHub's pacing of 1 s between JIT requests: "
          "%.2f s" % paced)
    return 0


if __name__ == "__main__":
    sys.exit(main())
