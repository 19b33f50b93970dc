#!/usr/bin/python3
"""Benchmark: what automatic mode costs on GitHub, and how fast a webhook
becomes a runner.

    python3 tests/bench/bench_auto.py --binary build/ephemerd
        [--repos 200] [--interval 5] [--deliveries 20]

With 200 repositories and 3 workflow files each in the GitHub double, it
prints the requests of the first discovery (in all, charged against the
rate limit, answered 304), the requests of an idle cycle in steady state
(charged and 304, averaged over 5 cycles), and the milliseconds from a
webhook delivery to the start of its runner container (median and p99 of
sequential deliveries, with polling too slow to be what starts them).
It asserts nothing about time.  Run as root with the Docker engine up; it
leaves no container behind."""

import argparse
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402
import test_auto as ta  # noqa: E402
import test_runners as tr  # noqa: E402

POOLS = (("linux", ["self-hosted", "linux"]),)


def world(n):
    """n repositories, half a user's and half an organization's, each
    with a self-hosted, a hosted-only and a matrix workflow."""
    files = {"ci.yml": ta.workflow(ta.LIST),
             "docs.yml": ta.workflow(ta.HOSTED, "Docs"),
             "test.yml": ta.workflow(ta.MATRIX, "Test")}
    out = []
    for i in range(n):
        if i % 2:
            out.append(("bench-org/svc-%03d" % i,
                        {"owner_type": "Organization", "workflows": files},
                        []))
        else:
            out.append(("octocat/app-%03d" % i, {"workflows": files}, []))
    return out


def counts(reqs):
    charged = sum(1 for r in reqs if r["charged"])
    cached = sum(1 for r in reqs if r["status"] == 304)
    return len(reqs), charged, cached


def first_discovery(a, files, interval):
    """The requests until every workflow file was read, or until the
    discovery requests stop for three intervals."""
    rx = re.compile(r"/contents/\.github/workflows/[^/?]+")
    deadline = time.monotonic() + 300
    last_change, last_len = time.monotonic(), -1
    while time.monotonic() < deadline:
        reqs = a.d.double.requests()
        read = {r["path"].split("?")[0] for r in reqs
                if rx.search(r["path"])}
        if len(read) >= files:
            return reqs, time.monotonic()
        if len(read) != last_len:
            last_len, last_change = len(read), time.monotonic()
        elif time.monotonic() - last_change > 3 * interval:
            return reqs, last_change
        time.sleep(0.2)
    raise SystemExit("bench: discovery did not settle in 300 s")


def settle(a, interval, limit=300):
    """Steady state: two intervals in a row in which every GET was
    conditional, so that every validator is known (the first pass of the
    GitHub cleanup over the runner lists of every repository takes a
    while)."""
    deadline = time.monotonic() + limit
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        a.d.double.clear_requests()
        time.sleep(interval)
        reqs = a.d.double.requests()
        if reqs and all("If-None-Match" in r["headers"] for r in reqs
                        if r["method"] == "GET"):
            quiet += 1
        else:
            quiet = 0
    if quiet < 2:
        raise SystemExit("bench: no steady state in %d s" % limit)


def bench_polling(n, interval):
    with ta.Auto(ta.pools(*POOLS), interval=interval, purge=interval,
                 world=world(n)) as a:
        t0 = time.monotonic()
        reqs, done = first_discovery(a, 3 * n, interval)
        total, charged, cached = counts(reqs)
        print("first discovery of %d repositories, %d workflow files: "
              "%.1f s" % (n, 3 * n, done - t0))
        print("  requests: %d in all, %d charged, %d answered 304" %
              (total, charged, cached))
        settle(a, interval)
        a.d.double.clear_requests()
        time.sleep(5 * interval)
        total, charged, cached = counts(a.d.double.requests())
        print("idle cycle in steady state (average of 5, every %d s): "
              "%.1f requests, %.1f charged, %.1f answered 304" %
              (interval, total / 5.0, charged / 5.0, cached / 5.0))


def bench_webhooks(deliveries):
    hook_world = [("bench-org/hooked", {
        "owner_type": "Organization",
        "workflows": {"ci.yml": ta.workflow(ta.LIST)}}, [])]
    with ta.Auto(ta.pools(*POOLS), interval=300, purge=300,
                 world=hook_world,
                 github_yaml='  webhook_secret: "%s"\n' % ta.SECRET) as a:
        d = a.d
        a.wait_discovered()
        d.double.control("POST", "webhook", {
            "url": "http://127.0.0.1:%d/api/v1/webhook" % d.port,
            "secret": ta.SECRET})
        samples = []
        for _ in range(deliveries):
            # Long enough for `docker ps` to see the container run.
            job = a.queue("bench-org/hooked", ["self-hosted", "linux"],
                          duration=2)
            sent = harness.wait_for(
                lambda: [x for x in d.double.deliveries()
                         if x["job_id"] == job["id"] and
                         x["action"] == "queued" and x["sent_at"]],
                10, "the queued delivery")[0]
            running = harness.wait_for(tr.managed_containers, 30,
                                       "the runner container")
            cid = list(running.values())[0]
            samples.append((ta.started_at(cid) - sent["sent_at"]) * 1000)
            a.wait_completed([job["id"]], timeout=60)
            harness.wait_for(
                lambda: not tr.managed_containers(all_states=True), 30,
                "the runner container to go")
        samples.sort()
        p99 = samples[min(len(samples) - 1,
                          int(round(0.99 * (len(samples) - 1))))]
        print("webhook delivery to container start, %d sequential: "
              "median %.0f ms, p99 %.0f ms (min %.0f, max %.0f)" %
              (len(samples), statistics.median(samples), p99,
               samples[0], samples[-1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--repos", type=int, default=200)
    ap.add_argument("--interval", type=int, default=5)
    ap.add_argument("--deliveries", type=int, default=20)
    opts = ap.parse_args()
    harness.BINARY = os.path.abspath(opts.binary)
    harness.ensure_busybox_image()

    bench_polling(opts.repos, opts.interval)
    bench_webhooks(opts.deliveries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
