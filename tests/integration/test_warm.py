"""Warm pools (min_idle), the labels runners really register with, and
the time-to-start histograms, end to end: the real daemon, the real
Docker engine and the test runner image against the GitHub double."""

import platform
import re
import time

import harness
from harness import Daemon, check, wait_for
import test_auto as ta
import test_runners as tr

SECRET = "warm pools are ready"
ORG = "octo-org"
REPO = "octo-org/api"
WORLD = [(REPO, {"owner_type": "Organization",
                 "workflows": {"ci.yml": ta.workflow(ta.LIST)}}, [])]

TOKEN_POOL = """\
  - name: %(name)s
    labels: [%(labels)s]
    image: %(image)s
    network: host
    max_runners: 4
    memory: 67108864
    pids_limit: 128
    no_default_labels: %(bare)s
    env:
      RUNNER_TOKEN: "{registration_token}"
      RUNNER_NAME: "{runner_name}"
      RUNNER_LABELS: "{labels}"
      DOUBLE_URL: "{double_url}"
      RUNNER_IDLE_SECONDS: "60"
%(extra)s"""


def warm_pool(name, labels, min_idle, max_runners=6, scope=""):
    """A JIT pool of test_auto's kind that keeps min_idle runners."""
    return (ta.pools((name, labels), max_runners=max_runners) +
            "    min_idle: %d\n%s" % (min_idle, scope))


class Warm(ta.Auto):
    """test_auto's Auto with the discovery section given whole, and a
    webhook from the double to the daemon."""

    def __init__(self, pool_text, discovery_yaml, webhook=True):
        tr.build_runner_image()
        tr.remove_managed()
        self.world = WORLD
        self.webhook = webhook
        self.d = Daemon(pools=pool_text, start=False,
                        extra_yaml=discovery_yaml,
                        github_yaml="  webhook_secret: \"%s\"\n" % SECRET)
        self.containers = None

    def __enter__(self):
        super().__enter__()
        if self.webhook:
            self.d.double.control("POST", "webhook", {
                "url": "http://127.0.0.1:%d/api/v1/webhook" % self.d.port,
                "secret": SECRET})
        return self

    def runners(self, **want):
        """The double's runners with these field values."""
        return [r for r in self.d.double.control("GET", "runners")
                if all(r.get(k) == v for k, v in want.items())]

    def idle(self):
        return {r["name"] for r in self.runners(online=True, busy=False)}

    def mine(self):
        """The containers seen of this daemon: other daemons may share
        the engine."""
        prefix = "eph-%s-" % self.d.instance
        return {n: labels for n, labels in self.containers.seen.items()
                if n.startswith(prefix)}

    def pool_containers(self, pool):
        return [n for n, labels in self.mine().items()
                if labels.get("io.ephemerd.pool") == pool]

    def metrics(self):
        r = harness.request("GET", self.d.port, "/metrics")
        check(r.status == 200, "/metrics: %d" % r.status)
        return r.body.decode()


def org_discovery(interval=2, auto_create=True):
    return ("discovery:\n  auto_create: %s\n  mode: organization\n"
            "  organization: %s\n  interval: %d\n  purge_interval: 30\n"
            % ("true" if auto_create else "false", ORG, interval))


def samples(text, family, pool):
    """{suffix+le: value} of one histogram family and pool."""
    out = {}
    for line in text.splitlines():
        m = re.match(r'%s_(bucket|sum|count)\{pool="%s"(?:,le="([^"]+)")?\}'
                     r' (\S+)$' % (family, re.escape(pool)), line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def check_histogram(text, family, pool, count):
    h = samples(text, family, pool)
    check(h.get("count") == count, "%s{pool=%s} count %r, want %d: %r" %
          (family, pool, h.get("count"), count, h))
    les = sorted((float(k[6:]), v) for k, v in h.items()
                 if k.startswith("bucket") and k != "bucket+Inf")
    values = [v for _, v in les] + [h["bucket+Inf"]]
    check(values == sorted(values) and values[-1] == count,
          "%s buckets not cumulative up to the count: %r" % (family, les))
    return h


def test_warm_pool_serves_at_once_and_is_replaced():
    pools = (warm_pool("warm", ["self-hosted", "linux"], 2) +
             warm_pool("cold", ["self-hosted", "linux", "gpu"], 0))
    with Warm(pools, org_discovery()) as a:
        # Two registered, idle runners before any job.
        wait_for(lambda: len(a.idle()) == 2, 60, "two idle runners")
        before = a.idle()
        time.sleep(3)
        check(a.idle() == before and len(a.pool_containers("warm")) == 2,
              "min_idle 2 gave %r, containers %r" % (
                  a.idle(), a.mine()))
        check(not a.pool_containers("cold"), "the min_idle 0 pool keeps "
              "runners: %r" % a.pool_containers("cold"))

        job = a.queue(REPO, ["self-hosted", "linux"], duration=2)["id"]
        a.wait_completed([job], timeout=30)
        taker = a.jobs()[job]["runner_name"]
        check(taker in before, "job %d ran on %r, not on a warm runner %r"
              % (job, taker, sorted(before)))

        # The runner that took the job is replaced; two idle again.
        wait_for(lambda: len(a.idle()) == 2 and a.idle() != before, 60,
                 "a replacement for %s" % taker)
        check(len(a.pool_containers("warm")) == 3 and
              not a.pool_containers("cold"),
              "containers %r" % a.mine())

        text = a.metrics()
        q = check_histogram(text, "ephemerd_job_queued_to_running_seconds",
                            "warm", 1)
        check(q["bucket0.5"] == 1 and q["sum"] == 0,
              "a warm runner waited for its job: %r" % q)
        p = check_histogram(text, "ephemerd_job_running_to_picked_seconds",
                            "warm", 1)
        check(p["sum"] < 5, "picked %.1f s after queued" % p["sum"])


def test_warm_churn_histogram():
    jobs = 20
    with Warm(warm_pool("warm", ["self-hosted", "linux"], 2,
                        max_runners=6), org_discovery()) as a:
        wait_for(lambda: len(a.idle()) == 2, 60, "two idle runners")
        ids = [a.queue(REPO, ["self-hosted", "linux"], duration=1)["id"]
               for _ in range(jobs)]
        a.wait_completed(ids, timeout=240)
        text = a.metrics()
        lines = [x for x in text.splitlines()
                 if x.startswith("ephemerd_job_")]
        print("\n".join(["time to start, %d jobs, min_idle 2, "
                         "max_runners 6:" % jobs] + lines))
        q = check_histogram(text, "ephemerd_job_queued_to_running_seconds",
                            "warm", jobs)
        check_histogram(text, "ephemerd_job_running_to_picked_seconds",
                        "warm", jobs)
        check(q["bucket0.5"] >= 2, "the warm runners' jobs: %r" % q)
        takers = {a.jobs()[i]["runner_name"] for i in ids}
        check(len(takers) == jobs, "%d runners for %d jobs" % (
            len(takers), jobs))


def test_warm_without_auto_create():
    scope = "    scope: repo\n    scope_name: %s\n" % REPO
    with Warm(warm_pool("warm", ["self-hosted", "linux"], 1, scope=scope),
              org_discovery(interval=2, auto_create=False),
              webhook=False) as a:
        wait_for(lambda: len(a.idle()) == 1, 60, "one idle runner")
        time.sleep(5)
        check(len(a.pool_containers("warm")) == 1, "containers %r" %
              a.mine())
        r = a.runners(online=True)[0]
        check((r["scope"], r["scope_name"]) == ("repo", REPO),
              "the idle runner registered at %r" % r)
        check(not a.requests(r"/actions/runs"), "GitHub was polled for "
              "jobs with auto_create off")

        job = a.queue(REPO, ["self-hosted", "linux"], duration=1)["id"]
        a.wait_completed([job], timeout=30)
        wait_for(lambda: len(a.pool_containers("warm")) == 2 and
                 len(a.idle()) == 1, 60, "a replacement")


def token_pool(name, labels, bare):
    return TOKEN_POOL % {"name": name, "labels": ", ".join(labels),
                         "image": tr.RUNNER_IMAGE,
                         "bare": "true" if bare else "false",
                         "extra": '      NO_DEFAULT_LABELS: "1"\n'
                         if bare else ""}


def test_labels_as_registered():
    arch = {"aarch64": "ARM64", "x86_64": "X64"}[platform.machine()]
    pools = (token_pool("tok", ["self-hosted", "linux"], False) +
             token_pool("bare", ["self-hosted", "bare"], True))
    with Warm(pools, org_discovery()) as a:
        default_job = a.queue(REPO, ["self-hosted", arch],
                              duration=6)["id"]
        bare_job = a.queue(REPO, ["self-hosted", "bare"], duration=6)["id"]
        # Read while they run: a runner is deregistered once it is done.
        wait_for(lambda: all(a.jobs()[i]["status"] == "in_progress"
                             for i in (default_job, bare_job)), 60,
                 "both jobs to run")
        jobs = a.jobs()
        labels = {r["name"]: [x.lower() for x in r["labels"]]
                  for r in a.d.double.control("GET", "runners")}
        got = labels.get(jobs[default_job]["runner_name"])
        check(got is not None and sorted(got) ==
              sorted(["self-hosted", "linux", arch.lower()]),
              "the token runner registered with %r" % got)
        got = labels.get(jobs[bare_job]["runner_name"])
        check(got == ["self-hosted", "bare"],
              "the no_default_labels runner registered with %r" % got)
        want = {jobs[default_job]["runner_name"]: "tok",
                jobs[bare_job]["runner_name"]: "bare"}

        def pools_seen():
            return {n: x.get("io.ephemerd.pool")
                    for n, x in a.mine().items()}
        try:
            wait_for(lambda: pools_seen() == want, 5, "the containers")
        except harness.TestFailure:
            check(False, "pools %r, want %r" % (pools_seen(), want))
        a.wait_completed([default_job, bare_job], timeout=60)

        # Only a default label could serve it; the bare pool has none.
        lost = a.queue(REPO, ["self-hosted", "bare", arch])["id"]
        time.sleep(6)
        check(a.jobs()[lost]["status"] == "queued" and
              len(a.mine()) == 2,
              "a job for [self-hosted, bare, %s] was served: %r" %
              (arch, a.mine()))
