#!/usr/bin/python3
"""Every benchmark of ephemerd in one run, as a Markdown table.

    python3 tests/bench/report.py [--binary B] [-o build/report.md]
        [--churn-seconds 120] [--runners 200] [--quick]

Without --binary it builds ephemerd without sanitizers, with -O2, in
build-bench/ (the sanitizers would distort time and memory).  Then it
runs, one after the other, with the references each is compared to:

  bench_runners.py  20 runners from one POST; ref: a shell loop of
                    `docker run -d` with the same settings
  bench_api.py      GET /api/v1/runners and /health under wrk; ref:
                    nginx serving the same JSON as a static file
  bench_auto.py     GitHub requests per idle cycle with 200 repositories;
                    ref: the one request per repository a naive poller
                    makes.  Webhook delivery to container start, median
                    and p99; ref: `docker run -d` to container start,
                    measured here the same way
  scale200.py       ephemerd's PSS, RSS and CPU idle and with 200 runners
                    churning; ref: dockerd and containerd meanwhile
  chaos/churn.py    churn with chaos for --churn-seconds; ref: the jobs
                    queued and servable, and the invariants

Each program's own output is kept next to the report (NAME.log).  The
table says "failed" for a benchmark that did not finish; the exit status
is 1 then, or when the churn broke an invariant.  --quick: smaller runs
(50 runners, 20 repositories, 5 deliveries, 60 s of churn) to try it.
Run as root with the Docker engine up.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))

import test_auto as ta  # noqa: E402
import test_runners as tr  # noqa: E402


def build(jobs):
    out = os.path.join(SRCDIR, "build-bench")
    os.makedirs(out, exist_ok=True)
    if not os.path.exists(os.path.join(SRCDIR, "configure")):
        subprocess.run(["autoreconf", "-fi"], cwd=SRCDIR, check=True)
    with open(os.path.join(out, "report-build.log"), "wb") as log:
        subprocess.run([os.path.join(SRCDIR, "configure"), "CFLAGS=-O2 -g"],
                       cwd=out, stdout=log, stderr=log, check=True)
        subprocess.run(["make", "-j%d" % jobs], cwd=out, stdout=log,
                       stderr=log, check=True)
    return os.path.join(out, "ephemerd")


def run(logdir, name, args, timeout):
    """The program's stdout, or None when it failed (log kept)."""
    path = os.path.join(logdir, name + ".log")
    t0 = time.monotonic()
    with open(path, "wb") as log:
        try:
            p = subprocess.run([sys.executable] + args, stdout=subprocess.PIPE,
                               stderr=log, timeout=timeout)
        except subprocess.TimeoutExpired:
            print("report: %s timed out" % name, file=sys.stderr)
            return None
        log.write(b"\n---- stdout ----\n" + p.stdout)
    print("report: %s done in %.0f s (status %d)" %
          (name, time.monotonic() - t0, p.returncode), file=sys.stderr)
    text = p.stdout.decode("utf-8", "replace")
    return text if p.returncode == 0 or name == "churn" else None


def grab(rx, text, cast=float):
    m = re.search(rx, text or "", re.M)
    return cast(m.group(1)) if m else None


def docker_run_latency(n):
    """Milliseconds from `docker run -d` to the container's StartedAt, for
    the test runner image: the reference of delivery to container."""
    samples = []
    for i in range(n):
        name = "report-ref-%d-%d" % (os.getpid(), i)
        t0 = time.time()
        tr.docker("run", "-d", "--name", name, "--network", "host",
                  "--label", "report-ref=1", "--entrypoint", "sleep",
                  tr.RUNNER_IMAGE, "2")
        samples.append((ta.started_at(name) - t0) * 1000)
        tr.docker("rm", "-f", name, check_rc=False)
    samples.sort()
    return statistics.median(samples), samples[
        min(len(samples) - 1, int(round(0.99 * (len(samples) - 1))))]


def mib(kib):
    return "%.1f MiB" % (kib / 1024.0) if kib is not None else "failed"


def fmt(v, pattern):
    return pattern % v if v is not None else "failed"


def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("-o", "--output",
                    default=os.path.join(SRCDIR, "build", "report.md"))
    ap.add_argument("--churn-seconds", type=int, default=120)
    ap.add_argument("--runners", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    opts = ap.parse_args()
    if opts.quick:
        opts.runners, opts.churn_seconds = 50, 60
    repos, deliveries = (20, 5) if opts.quick else (200, 20)
    binary = os.path.abspath(opts.binary) if opts.binary else \
        build(opts.jobs)
    out_dir = os.path.dirname(os.path.abspath(opts.output))
    os.makedirs(out_dir, exist_ok=True)
    logdir = os.path.join(out_dir, "report-logs")
    os.makedirs(logdir, exist_ok=True)
    tr.build_runner_image()
    b = ["--binary", binary]

    runners = run(logdir, "bench_runners",
                  [os.path.join(HERE, "bench_runners.py")] + b, 900)
    api = run(logdir, "bench_api", [os.path.join(HERE, "bench_api.py")] +
              b, 1200)
    auto = run(logdir, "bench_auto",
               [os.path.join(HERE, "bench_auto.py"), "--repos", str(repos),
                "--deliveries", str(deliveries)] + b, 1800)
    ref_median, ref_p99 = docker_run_latency(deliveries)
    scale_json = os.path.join(logdir, "scale200.json")
    scale_text = run(logdir, "scale200",
                     [os.path.join(HERE, "scale200.py"), "-n",
                      str(opts.runners), "--json", scale_json] + b, 1800)
    scale = json.load(open(scale_json)) if scale_text else {}
    churn_json = os.path.join(logdir, "churn.json")
    churn_text = run(logdir, "churn",
                     [os.path.join(SRCDIR, "tests", "chaos", "churn.py"),
                      "--chaos", "--duration", str(opts.churn_seconds),
                      "--json", churn_json] + b,
                     opts.churn_seconds + 1200)
    churn = json.load(open(churn_json)) if churn_text and \
        os.path.exists(churn_json) else {}

    rows = []
    eph = grab(r"^ephemerd, one POST of \d+ runners: ([\d.]+) s", runners)
    loop = grab(r"^shell loop of \d+ docker run -d: +([\d.]+) s", runners)
    paced = grab(r"^ephemerd with GitHub's pacing .*: ([\d.]+) s", runners)
    rows.append(("20 runners running, from one request (JIT requests "
                 "unpaced, as the loop's)", fmt(eph, "%.2f s"),
                 "shell loop of docker run -d: " + fmt(loop, "%.2f s"),
                 ratio(eph, loop)))
    rows.append(("the same with GitHub's pacing, one POST a second",
                 fmt(paced, "%.2f s"), "19 s of pacing alone", ""))
    static = grab(r"^nginx static JSON +([\d.]+)", api)
    for what in ("GET /api/v1/runners", "GET /health"):
        rps = grab(r"^%s +([\d.]+)" % re.escape(what), api)
        p99 = grab(r"^%s +[\d.]+ +([\d.]+)" % re.escape(what), api)
        rows.append((what + " (100 runners), requests/s, p99",
                     "%s, p99 %s" % (fmt(rps, "%.0f"), fmt(p99, "%.2f ms")),
                     "nginx static file: " + fmt(static, "%.0f"),
                     ratio(rps, static)))
    cyc = grab(r"^idle cycle .*: ([\d.]+) requests, ([\d.]+) charged", auto)
    charged = grab(r"^idle cycle .*requests, ([\d.]+) charged", auto)
    rows.append(("GitHub requests per idle cycle, %d repositories" % repos,
                 "%s (%s charged)" % (fmt(cyc, "%.1f"),
                                      fmt(charged, "%.1f")),
                 "naive poller: %d" % repos, ratio(charged, repos)))
    med = grab(r"median ([\d.]+) ms", auto)
    p99 = grab(r"median [\d.]+ ms, p99 ([\d.]+) ms", auto)
    rows.append(("webhook delivery to container start, median",
                 fmt(med, "%.0f ms"), "docker run -d to start: %.0f ms" %
                 ref_median, ratio(med, ref_median)))
    rows.append(("webhook delivery to container start, p99",
                 fmt(p99, "%.0f ms"), "docker run -d to start: %.0f ms" %
                 ref_p99, ratio(p99, ref_p99)))
    n = opts.runners
    rows.append(("PSS idle (4 processes)", mib(scale.get("idle_pss_kib")),
                 "engine idle: " + mib(scale.get("engine_idle_pss_kib")),
                 ratio(scale.get("idle_pss_kib"),
                       scale.get("engine_idle_pss_kib"))))
    rows.append(("RSS idle (4 processes)", mib(scale.get("idle_rss_kib")),
                 "engine idle: " + mib(scale.get("engine_idle_rss_kib")),
                 ratio(scale.get("idle_rss_kib"),
                       scale.get("engine_idle_rss_kib"))))
    rows.append(("PSS with %d runners churning (avg, max)" % n,
                 "%s, %s" % (mib(scale.get("load_pss_kib_avg")),
                             mib(scale.get("load_pss_kib_max"))),
                 "engine: " + mib(scale.get("engine_load_pss_kib_avg")),
                 ratio(scale.get("load_pss_kib_avg"),
                       scale.get("engine_load_pss_kib_avg"))))
    rows.append(("RSS with %d runners churning (avg, max)" % n,
                 "%s, %s" % (mib(scale.get("load_rss_kib_avg")),
                             mib(scale.get("load_rss_kib_max"))),
                 "engine: " + mib(scale.get("engine_load_rss_kib_avg")),
                 ratio(scale.get("load_rss_kib_avg"),
                       scale.get("engine_load_rss_kib_avg"))))
    rows.append(("CPU with %d runners churning, share of a core" % n,
                 fmt(scale.get("cpu_share_of_one_core"), "%.3f"),
                 "engine: " + fmt(scale.get("engine_cpu_share_of_one_core"),
                                  "%.3f"),
                 ratio(scale.get("cpu_share_of_one_core"),
                       scale.get("engine_cpu_share_of_one_core"))))
    rows.append(("peak runners running at once; jobs done in %s s" %
                 scale.get("seconds", "?"),
                 "%s; %s" % (scale.get("peak_running", "failed"),
                             scale.get("jobs_completed_during", "failed")),
                 "asked: %d" % n, ""))
    jobs = churn.get("jobs", {})
    if churn:
        faults = ", ".join("%s %d" % kv for kv in
                           sorted(churn.get("chaos_counts", {}).items()))
        rows.append(("churn with chaos, %d s: jobs served" %
                     opts.churn_seconds,
                     "%s served, %d lost mid-job (dockerd restarts)" %
                     (jobs.get("served"), len(jobs.get("lost_mid_job", []))),
                     "%s servable of %s queued" % (jobs.get("servable"),
                                                   jobs.get("queued")), ""))
        rows.append(("churn with chaos: invariants",
                     "all held" if churn.get("ok") else
                     "BROKEN: " + "; ".join(churn.get("violations", [])),
                     "faults: " + faults, ""))
        res = churn.get("resources", {})
        rows.append(("churn: fds and PSS, after warm-up and after drain",
                     "%s -> %s fds, %s -> %s" % (
                         res.get("baseline", {}).get("fds"),
                         res.get("final", {}).get("fds"),
                         mib(res.get("baseline", {}).get("pss_kib")),
                         mib(res.get("final", {}).get("pss_kib"))),
                     "bound: +%s fds, +max(%s, 25%%)" % (
                         res.get("fd_slack"),
                         mib(res.get("pss_slack_kib"))), ""))
    else:
        rows.append(("churn with chaos", "failed", "", ""))

    lines = ["# ephemerd benchmarks",
             "",
             "%s, %s, %d CPUs; binary %s." % (
                 time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 os.uname().nodename, os.cpu_count(), binary),
             "",
             "| figure | ephemerd | reference (same run) | ratio |",
             "|---|---|---|---|"]
    lines += ["| %s |" % " | ".join(str(c).replace("|", "/") for c in row)
              for row in rows]
    lines += ["", "Logs of each program: %s." % logdir, ""]
    with open(opts.output, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    failed = any("failed" in str(r[1]) for r in rows) or not churn.get("ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
