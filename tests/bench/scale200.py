#!/usr/bin/python3
"""Benchmark: 200 runner containers alive at once under ephemerd.

    python3 tests/bench/scale200.py --binary build/ephemerd [-n 200]
        [--seconds 60] [--json FILE]

ephemerd runs in automatic mode with one pool of max_runners n.  The
GitHub double gets n jobs of 60 s, long enough for all n runners to be
alive at once (peak_running), then each job that completes is replaced
by one of 20 to 40 s, so that n runners stay busy while they churn for
--seconds.  Measured, summed over ephemerd's four processes (supervisor,
httpd, poller, docker): PSS and RSS idle (discovery done, no job) and
the average and peak while the runners churn, and the CPU time used
during the churn as a share of one core; the same for the engine
(dockerd and containerd) as the reference.  Also: the peak of runner
containers running at once, and jobs completed.  Prints one line per
figure; asserts nothing.  Run as root with the Docker engine up; it
leaves none of its containers behind.
"""

import argparse
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402
from harness import Daemon, wait_for  # noqa: E402
import test_auto as ta  # noqa: E402
import test_runners as tr  # noqa: E402

REPO = "bench-org/scale"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def processes(d):
    pids = {"supervisor": d.pid}
    pids.update(d.roles())
    return pids


def memory(pids):
    """(PSS, RSS) in KiB, summed."""
    pss = rss = 0
    for pid in pids.values():
        raw = harness.proc_read(pid, "smaps_rollup") or b""
        m = re.search(rb"^Pss:\s+(\d+) kB", raw, re.M)
        pss += int(m.group(1)) if m else 0
        m = re.search(rb"^Rss:\s+(\d+) kB", raw, re.M)
        rss += int(m.group(1)) if m else 0
    return pss, rss


def cpu_ticks(pids):
    total = 0
    for pid in pids.values():
        raw = harness.proc_read(pid, "stat")
        if raw is None:
            continue
        rest = raw.decode().rsplit(")", 1)[1].split()
        total += int(rest[11]) + int(rest[12])      # utime, stime
    return total


def engine():
    """dockerd and containerd, the reference: the engine that runs the
    same containers."""
    out = {}
    for name in ("dockerd", "containerd"):
        pids = subprocess.run(["pidof", name], capture_output=True,
                                 text=True).stdout.split()
        if pids:
            out[name] = int(pids[0])
    return out


def running(instance):
    out = tr.docker("ps", "-q", "--filter",
                    "label=io.ephemerd.instance=" + instance, check_rc=False)
    return len(out.split())


def remove_instance(instance):
    out = tr.docker("ps", "-aq", "--filter",
                    "label=io.ephemerd.instance=" + instance, check_rc=False)
    ids = out.split()
    for i in range(0, len(ids), 50):
        tr.docker("rm", "-f", *ids[i:i + 50], check_rc=False)


def queue(d, rng, duration=None):
    d.double.control("POST", "jobs", {
        "repo": REPO, "labels": ["self-hosted", "linux"],
        "duration": duration or rng.randint(20, 40)})


def measure(d, n, seconds, rng):
    world = {"owner_type": "Organization",
             "workflows": {"ci.yml": ta.workflow(ta.LIST)}}
    d.double.control("POST", "repos", dict(world, full_name=REPO))
    d.start()
    wait_for(lambda: d.api_health()[0].status == 200, 30, "health")
    time.sleep(15)          # discovery and the first cleanup pass
    pids = processes(d)
    idle_pss, idle_rss = memory(pids)
    eng = engine()
    eng_idle_pss, eng_idle_rss = memory(eng)

    for _ in range(n):
        queue(d, rng, duration=60)
    t_start = time.monotonic()
    peak_running = 0

    def all_running():
        nonlocal peak_running
        peak_running = max(peak_running, running(d.instance))
        return peak_running >= n
    # Slower than a minute, the first jobs end before the last start.
    with contextlib.suppress(harness.TestFailure):
        wait_for(all_running, 60, "%d runners running" % n, interval=1)
    ramp = time.monotonic() - t_start
    completed_before = sum(j["status"] == "completed"
                           for j in d.double.control("GET", "jobs"))
    pids = processes(d)
    eng = engine()
    ticks0, t0 = cpu_ticks(pids), time.monotonic()
    eng_ticks0 = cpu_ticks(eng)
    samples, eng_samples = [], []
    done_seen = completed_before
    while time.monotonic() - t0 < seconds:
        jobs = d.double.control("GET", "jobs")
        done = sum(j["status"] == "completed" for j in jobs)
        for _ in range(done - done_seen):
            queue(d, rng)
        done_seen = done
        samples.append(memory(pids))
        eng_samples.append(memory(eng))
        peak_running = max(peak_running, running(d.instance))
        time.sleep(2)
    elapsed = time.monotonic() - t0
    cpu = (cpu_ticks(processes(d)) - ticks0) / CLK_TCK / elapsed
    eng_cpu = (cpu_ticks(eng) - eng_ticks0) / CLK_TCK / elapsed
    return {
        "runners": n, "seconds": seconds,
        "ramp_seconds": round(ramp, 1),
        "idle_pss_kib": idle_pss, "idle_rss_kib": idle_rss,
        "load_pss_kib_avg": sum(s[0] for s in samples) // len(samples),
        "load_pss_kib_max": max(s[0] for s in samples),
        "load_rss_kib_avg": sum(s[1] for s in samples) // len(samples),
        "load_rss_kib_max": max(s[1] for s in samples),
        "cpu_share_of_one_core": round(cpu, 3),
        "engine_idle_pss_kib": eng_idle_pss,
        "engine_idle_rss_kib": eng_idle_rss,
        "engine_load_pss_kib_avg":
            sum(s[0] for s in eng_samples) // len(eng_samples),
        "engine_load_rss_kib_avg":
            sum(s[1] for s in eng_samples) // len(eng_samples),
        "engine_cpu_share_of_one_core": round(eng_cpu, 3),
        "peak_running": peak_running,
        "jobs_completed_during": done_seen - completed_before,
        "processes_restarted": processes(d) != pids,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--json")
    opts = ap.parse_args()
    harness.BINARY = os.path.abspath(opts.binary)
    harness.ensure_busybox_image()
    tr.build_runner_image()
    rng = random.Random(200)

    pool = ta.pools(("linux", ["self-hosted", "linux"]),
                    max_runners=opts.n).replace(
        'RUNNER_IDLE_SECONDS: "60"', 'RUNNER_IDLE_SECONDS: "300"')
    # 200 JIT requests at GitHub's pace of one a second would take more
    # than three minutes; this measures ephemerd, not the pacing.
    d = Daemon(pools=pool, start=False, level="info",
               extra_yaml=ta.discovery(interval=5, purge=30),
               github_yaml="  mutation_interval_ms: 0\n")
    try:
        result = measure(d, opts.n, opts.seconds, rng)
    finally:
        instance = d.instance
        try:
            d.close()
        finally:
            remove_instance(instance)
    for k, v in result.items():
        print("%s: %s" % (k, v))
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
