#!/usr/bin/python3
"""Churn, and chaos on top of it: ephemerd in automatic mode under load.

    python3 tests/chaos/churn.py --binary build/ephemerd [--duration 120]
        [--rate 0.5] [--chaos] [--no-dockerd] [--seed N] [--json FILE]
        [--drain 150] [--fd-slack 16] [--pss-slack-kib 16384] [--self-check]

It starts the GitHub double and the real daemon (tests/integration's
harness) with two pools, then queues jobs at --rate per second, each
lasting 2 to 5 s, with a mix of labels, for --duration seconds.  Every
15 s the double's webhook is switched on or off, so some jobs reach
ephemerd by webhook and the others only by polling.  With --chaos a
second thread does, at random moments 3 to 9 s apart, one of:

  kill      SIGKILL to a random process of ephemerd: httpd, poller,
            docker, or the supervisor (then started again, as systemd
            would)
  dockerd   dockerd stopped and started with the same arguments (not
            with --no-dockerd)
  500s      the double answers the next 3 API requests with 500
  timeout   the next 2 API requests wait 12 s (ephemerd gives up at 10)
  ratelimit the budget is spent until 5 s from now, or a secondary limit
            (403 with Retry-After) or a 429 for the next 3 requests
  malformed the next 3 API answers are a 200 with half their JSON
  webhook   malformed, unsigned, wrongly signed and signed-but-garbage
            bodies to POST /api/v1/webhook

Then it stops queuing and faults, waits for the work to drain, and checks
the invariants below.  The result is a JSON object (stdout, or --json);
the exit status is 0 when no invariant is broken, 1 otherwise.
--self-check starts halfway through, by POST /api/v1/runners, one runner
on a repository that never gets a job: such a run must fail with "one
too many".

Jobs.  Label sets: each servable one is covered by exactly one pool
(pool linux [self-hosted, linux], pool arm [self-hosted, arm64]).  A
label set two pools cover ([self-hosted] alone) is left out on purpose:
GitHub's broker gives a job to any runner whose labels cover it, so a
runner started for one job may take another one, and the runner left
over then waits for a job that is not for it; that is GitHub's
behaviour, not a duplicate.  Unservable jobs ask for labels no pool has
([self-hosted, windows], [ubuntu-latest], [self-hosted, linux, gpu]).

Invariants (a violation is any of these):

  served        every servable job is completed, or is "lost mid-job":
                in progress with its runner's container gone, while a
                dockerd restart happened between the job's start and
                its end (start + duration + 5 s).  Stopping dockerd
                kills the containers: GitHub would fail such a job; it
                is no fault of ephemerd (a restart of ephemerd itself
                never kills a job) and is counted apart.  A restart of
                dockerd by someone else (its pid changes) counts too,
                from 20 s before its old process was gone.  A servable job
                still queued when the drain ends is a violation.
  exactly one   no runner ephemerd started went idle: a container that
                took no job exits 3 after RUNNER_IDLE_SECONDS (20 s).
                One runner too many for a job is exactly such a
                container (the broker never gives a job to two runners,
                so the surplus one waits); the `docker events` die
                events with exit code 3 are counted.  A runner killed by
                a dockerd restart before it took its job exits otherwise
                and is no duplicate: its job is still queued and needs a
                runner.
  not covered   no unservable job was taken or started a runner: each
                stays queued with no runner name.
  leftovers     after the drain: no container of this instance (any
                state), and no runner entry on the double (a JIT
                configuration generated and never used is such an
                entry; ephemerd's GitHub cleanup must delete it) but
                for the busy runners of jobs lost mid-job, which GitHub
                keeps until it fails their job.
  resources     the open file descriptors of ephemerd's processes
                (summed over supervisor, httpd, poller, docker) after
                the drain exceed the sum taken at the end of the
                warm-up (the first fifth of the run, no chaos yet) by at
                most --fd-slack (16); their PSS by at most --pss-slack
                (max of 16 MiB and 25 %).  The final sample is taken
                idle and the baseline under load, so growth means
                something was kept per job.
  alive         ephemerd and its three children run at the end, and its
                log holds no sanitizer report and no GitHub token.
"""

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402
from harness import Daemon, request_try, wait_for  # noqa: E402
import test_auto as ta  # noqa: E402
import test_runners as tr  # noqa: E402

SECRET = "churn-webhook-secret-0f3a"
IDLE_SECONDS = 20
HOOK_PERIOD = 15
SERVABLE = [["self-hosted", "linux"], ["linux"],
            ["self-hosted", "arm64"], ["arm64"]]
UNSERVABLE = [["self-hosted", "windows"], ["ubuntu-latest"],
              ["self-hosted", "linux", "gpu"]]
WORLD = [
    ("octocat/churn-a", {"workflows": {"ci.yml": ta.workflow(ta.LIST)}}),
    ("octocat/churn-b", {"workflows": {"ci.yml": ta.workflow(ta.STRING)}}),
    ("octo-org/churn-c", {"owner_type": "Organization",
                          "workflows": {"ci.yml": ta.workflow(ta.GPU)}}),
]
IDLE_REPO = "octocat/churn-idle"     # no job ever: for --self-check
ACTIONS = ("kill", "dockerd", "500s", "timeout", "ratelimit", "malformed",
           "webhook")


def log(msg):
    print("churn: %s" % msg, file=sys.stderr, flush=True)


# ---- dockerd -------------------------------------------------------------

def docker_up():
    return subprocess.run(["docker", "info"], capture_output=True,
                          timeout=30).returncode == 0


def dockerd_pid():
    out = subprocess.run(["pidof", "dockerd"], capture_output=True,
                         text=True).stdout.split()
    return int(out[0]) if out else None


def restart_dockerd(logpath):
    """Stop dockerd, start it again with the same arguments and wait
    until it answers; returns the seconds it was away."""
    pid = dockerd_pid()
    if pid is None:
        raise harness.TestFailure("no dockerd to restart")
    args = harness.proc_cmdline(pid).split()
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not harness.alive(pid), 60, "dockerd %d to exit" % pid,
             interval=0.2)
    # A service manager may start it again by itself.
    time.sleep(1)
    if dockerd_pid() is None:
        with open(logpath, "ab") as out:
            subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=out, start_new_session=True)
    wait_for(docker_up, 60, "dockerd to answer again", interval=0.5)
    return time.monotonic() - t0


# ---- watching the engine ---------------------------------------------------

class DieEvents:
    """`docker events` for this instance's containers that die, again
    after each dockerd restart (from the last event seen on)."""

    def __init__(self, instance):
        self.filter = "label=io.ephemerd.instance=" + instance
        self.seen = {}          # (container id, time) -> event
        self.stop = threading.Event()
        self.proc = None
        self.since = int(time.time()) - 1
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            self.proc = subprocess.Popen(
                ["docker", "events", "--since", str(self.since),
                 "--filter", "type=container", "--filter", "event=die",
                 "--filter", self.filter, "--format", "{{json .}}"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            for line in self.proc.stdout:
                with contextlib.suppress(ValueError):
                    ev = json.loads(line)
                    self.seen[(ev.get("id"), ev.get("timeNano"))] = ev
                    self.since = max(self.since, int(ev.get("time", 0)) - 1)
            self.proc.wait()
            self.stop.wait(1)

    def exits(self):
        """[(name, exit code)] of each container that died."""
        out = []
        for ev in list(self.seen.values()):
            attrs = ev.get("Actor", {}).get("Attributes", {})
            with contextlib.suppress(ValueError, TypeError):
                out.append((attrs.get("name"), int(attrs.get("exitCode"))))
        return out

    def close(self):
        self.stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
        self.thread.join(5)


class EngineWatch:
    """Restarts of dockerd that the driver did not make (a service
    manager, another test): each is a window (from, to) in epoch seconds.
    Stopping dockerd first stops its containers, which may take up to
    SHUTDOWN_SECONDS before the process is gone."""

    SHUTDOWN_SECONDS = 20

    def __init__(self):
        self.windows = []
        self.ours = threading.Event()     # set while the driver restarts it
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        last = dockerd_pid()
        gone = None
        while not self.stop.wait(0.5):
            pid = dockerd_pid()
            if pid == last:
                continue
            if gone is None and not self.ours.is_set():
                gone = time.time()
            if pid is not None and gone is not None:
                self.windows.append((gone - self.SHUTDOWN_SECONDS,
                                     time.time()))
                log("dockerd restarted by someone else")
                gone = None
            last = pid

    def close(self):
        self.stop.set()
        self.thread.join(5)


def instance_containers(instance):
    out = tr.docker("ps", "-a", "--filter",
                    "label=io.ephemerd.instance=" + instance,
                    "--format", "{{.Names}}", check_rc=False)
    return sorted(out.split())


def remove_instance_containers(instance):
    names = instance_containers(instance)
    if names:
        tr.docker("rm", "-f", *names, check_rc=False)


# ---- ephemerd's processes --------------------------------------------------

def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def pss_kib(pid):
    raw = harness.proc_read(pid, "smaps_rollup") or b""
    m = re.search(rb"^Pss:\s+(\d+) kB", raw, re.M)
    return int(m.group(1)) if m else 0


def resources(d):
    pids = {"supervisor": d.pid}
    pids.update(d.roles())
    per = {role: {"pid": pid, "fds": fd_count(pid), "pss_kib": pss_kib(pid)}
           for role, pid in pids.items()}
    return {"per_process": per,
            "fds": sum(p["fds"] for p in per.values()),
            "pss_kib": sum(p["pss_kib"] for p in per.values())}


class ChurnDaemon(Daemon):
    """The harness's daemon, with a small ASan quarantine: the default
    256 MB of freed memory held back would look like growth."""

    def start(self, wait=True):
        saved = harness.DAEMON_ENV
        env = dict(saved)
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + \
            ":quarantine_size_mb=4"
        harness.DAEMON_ENV = env
        try:
            super().start(wait)
        finally:
            harness.DAEMON_ENV = saved


# ---- the run -----------------------------------------------------------

class Churn:
    def __init__(self, opts):
        self.opts = opts
        self.rng = random.Random(opts.seed)
        self.t0 = time.monotonic()
        self.epoch0 = time.time()
        self.queued = {}            # job id -> {"labels", "servable", ...}
        self.chaos_log = []
        self.dockerd_restarts = []  # (epoch stopped, epoch back)
        self.webhook_answers = {}
        self.violations = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.d = None
        self.events = None
        self.engine = EngineWatch()
        self.hook_on = False

    def now(self):
        return time.monotonic() - self.t0

    def note(self, what, **extra):
        entry = dict(extra, t=round(self.now(), 1), what=what)
        with self.lock:
            self.chaos_log.append(entry)
        log("%5.1fs %s %s" % (entry["t"], what, extra or ""))

    # -- setting up

    def pools(self):
        text = ta.pools(("linux", ["self-hosted", "linux"]),
                        ("arm", ["self-hosted", "arm64"]), max_runners=16)
        return text.replace('RUNNER_IDLE_SECONDS: "60"',
                            'RUNNER_IDLE_SECONDS: "%d"' % IDLE_SECONDS)

    def start(self):
        tr.build_runner_image()
        self.d = ChurnDaemon(
            pools=self.pools(), start=False, level="info",
            extra_yaml=ta.discovery(interval=2, purge=5),
            github_yaml="  webhook_secret: \"%s\"\n" % SECRET)
        for full_name, args in WORLD:
            self.d.double.control("POST", "repos",
                                  dict(args, full_name=full_name))
        if self.opts.self_check:
            self.d.double.control("POST", "repos", {"full_name": IDLE_REPO})
        self.d.start()
        wait_for(lambda: self.d.api_health()[0].status == 200, 30,
                 "/api/v1/health to be healthy")
        self.events = DieEvents(self.d.instance)
        self.set_hook(True)

    def set_hook(self, on):
        if on:
            self.d.double.control("POST", "webhook", {
                "url": "http://127.0.0.1:%d/api/v1/webhook" % self.d.port,
                "secret": SECRET})
        else:
            self.d.double.control("DELETE", "webhook")
        self.hook_on = on

    # -- the load

    def queue_one(self):
        servable = self.rng.random() < 0.85
        labels = self.rng.choice(SERVABLE if servable else UNSERVABLE)
        repo = self.rng.choice(WORLD)[0]
        duration = round(self.rng.uniform(2, 5), 1)
        job = self.d.double.control("POST", "jobs", {
            "repo": repo, "labels": labels, "duration": duration})
        with self.lock:
            self.queued[job["id"]] = {"labels": labels, "servable": servable,
                                      "duration": duration,
                                      "hook": self.hook_on}

    def extra_runner(self):
        """One runner no job asked for, through the REST API, on a
        repository that never gets a job: the driver's own check that a
        runner too many is seen."""
        r = harness.request("POST", self.d.port, "/api/v1/runners", body={
            "scope": "repo", "scope_name": IDLE_REPO,
            "labels": ["self-hosted", "linux"]}, timeout=60)
        self.note("extra-runner", status=r.status)

    def load(self, until):
        next_hook = self.now() + HOOK_PERIOD
        extra_at = until / 2 if self.opts.self_check else None
        while self.now() < until and not self.stop.is_set():
            self.queue_one()
            if extra_at is not None and self.now() >= extra_at:
                self.extra_runner()
                extra_at = None
            if self.now() >= next_hook:
                self.set_hook(not self.hook_on)
                next_hook += HOOK_PERIOD
            self.stop.wait(self.rng.expovariate(self.opts.rate))

    # -- the faults

    def chaos(self, until):
        actions = [a for a in ACTIONS
                   if not (a == "dockerd" and self.opts.no_dockerd)]
        while not self.stop.wait(self.rng.uniform(3, 9)):
            if self.now() >= until:
                return
            what = self.rng.choice(actions)
            try:
                getattr(self, "fault_" + what)()
            except (harness.TestFailure, OSError, ValueError) as e:
                self.violations.append("chaos %s failed: %s" % (what, e))
                self.note(what, error=str(e))

    def fault_kill(self):
        roles = self.d.roles()
        role = self.rng.choice(sorted(roles) + ["supervisor"])
        if role == "supervisor":
            kids = self.d.children()
            self.d.kill(signal.SIGKILL)
            self.d.proc.wait(10)
            # The children get SIGTERM from PR_SET_PDEATHSIG.
            wait_for(lambda: not [p for p in kids if harness.alive(p)], 30,
                     "the children of the killed supervisor to exit")
            self.d.err.close()
            self.d.start()
            self.note("kill", role=role)
            return
        os.kill(roles[role], signal.SIGKILL)
        self.note("kill", role=role, pid=roles[role])

    def fault_dockerd(self):
        stopped = time.time()
        self.engine.ours.set()
        try:
            away = restart_dockerd(self.opts.dockerd_log)
        finally:
            # The watcher sees the new pid within half a second.
            time.sleep(1)
            self.engine.ours.clear()
        self.dockerd_restarts.append((stopped, time.time()))
        self.note("dockerd", away=round(away, 1))

    def fault_500s(self):
        self.d.double.control("POST", "fail", {"status": 500, "count": 3})
        self.note("500s")

    def fault_timeout(self):
        self.d.double.control("POST", "delay", {"seconds": 12, "count": 2})
        self.note("timeout")

    def fault_ratelimit(self):
        kind = self.rng.choice(("primary", "secondary", "429"))
        if kind == "primary":
            self.d.double.control("POST", "budget",
                                  {"remaining": 0, "reset_in": 5})
        elif kind == "secondary":
            self.d.double.control("POST", "fail", {
                "status": 403, "count": 3, "retry_after": 3,
                "message": "You have exceeded a secondary rate limit."})
        else:
            self.d.double.control("POST", "fail", {
                "status": 429, "count": 3, "retry_after": 2})
        self.note("ratelimit", kind=kind)

    def fault_malformed(self):
        self.d.double.control("POST", "fail", {"mode": "malformed",
                                               "count": 3})
        self.note("malformed")

    def fault_webhook(self):
        """Bodies the endpoint must refuse with a 4xx; none may start a
        runner (the exit-3 count would show it)."""
        job = {"action": "queued", "workflow_job": {
            "id": 1, "run_id": 2, "status": "queued",
            "labels": ["self-hosted", "linux"]},
            "repository": {"full_name": WORLD[0][0]}}
        garbage = bytes(self.rng.getrandbits(8) for _ in range(200))
        raw = json.dumps(job).encode()
        cases = [("truncated", raw[:len(raw) // 2], True),
                 ("garbage", garbage, True),
                 ("types", json.dumps({"action": 7, "workflow_job": []})
                  .encode(), True),
                 ("deep", b"[" * 5000, True),
                 ("unsigned", raw, None),
                 ("bad-signature", raw, False)]
        answers = {}
        for name, body, sign in cases:
            headers = {"X-GitHub-Event": "workflow_job",
                       "X-GitHub-Delivery": "chaos-%d" % self.rng.getrandbits(
                           32)}
            if sign:
                headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(
                    SECRET.encode(), body, hashlib.sha256).hexdigest()
            elif sign is False:
                headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
            r = request_try("POST", self.d.port, "/api/v1/webhook",
                            body=body, headers=headers, timeout=5)
            answers[name] = None if r is None else r.status
            if r is not None and not 400 <= r.status < 500:
                self.violations.append("webhook %s answered %d" %
                                       (name, r.status))
        self.note("webhook", answers=answers)

    def clear_faults(self):
        dbl = self.d.double
        dbl.control("POST", "fail", {"status": 500, "count": 0})
        dbl.control("POST", "delay", {"seconds": 0, "count": 0})
        dbl.control("POST", "budget", {"remaining": 5000, "reset_in": 3600})

    # -- the end

    def settle(self):
        """ephemerd and dockerd up again, faults cleared."""
        if not docker_up():
            wait_for(docker_up, 60, "dockerd to answer", interval=0.5)
        self.clear_faults()
        if self.d.proc.poll() is not None:
            self.violations.append("ephemerd exited with %d" %
                                   self.d.proc.returncode)
            self.d.err.close()
            self.d.start()
        self.d.wait_roles(timeout=60)

    def lost_mid_job(self, job):
        end = job["started_at"] + job["duration"] + 5
        return any(stopped <= end and back >= job["started_at"]
                   for stopped, back in self.dockerd_restarts +
                   self.engine.windows)

    def drain(self, timeout):
        """Until no servable job is queued, and none in progress but for
        those lost to a dockerd restart."""
        def pending():
            jobs = {j["id"]: j for j in
                    self.d.double.control("GET", "jobs")}
            return [i for i, q in self.queued.items() if q["servable"] and
                    (jobs[i]["status"] == "queued" or
                     (jobs[i]["status"] == "in_progress" and
                      not self.lost_mid_job(jobs[i])))]
        with contextlib.suppress(harness.TestFailure):
            wait_for(lambda: not pending(), timeout,
                     "servable jobs to finish", interval=1)
        with contextlib.suppress(harness.TestFailure):
            wait_for(lambda: not instance_containers(self.d.instance) and
                     all(r["busy"] for r in
                         self.d.double.control("GET", "runners")),
                     timeout, "containers and idle runner entries to go",
                     interval=1)

    def check(self, baseline, final):
        jobs = {j["id"]: j for j in self.d.double.control("GET", "jobs")}
        res = {"served": 0, "lost_mid_job": [], "unserved": [],
               "unservable_taken": [], "via_webhook": 0, "via_polling": 0}
        delivered = {x["job_id"] for x in self.d.double.deliveries()
                     if x.get("action") == "queued" and
                     200 <= (x.get("status_code") or 0) < 300}
        for i, q in sorted(self.queued.items()):
            j = jobs[i]
            if not q["servable"]:
                if j["status"] != "queued" or j["runner_name"] is not None:
                    res["unservable_taken"].append(i)
                continue
            if i in delivered:
                res["via_webhook"] += 1
            else:
                res["via_polling"] += 1
            if j["status"] == "completed":
                res["served"] += 1
            elif j["status"] == "in_progress" and self.lost_mid_job(j):
                res["lost_mid_job"].append(i)
            else:
                res["unserved"].append({"id": i, "status": j["status"],
                                        "labels": j["labels"],
                                        "runner": j["runner_name"]})
        exits = self.events.exits()
        idle = sorted(n for n, code in exits if code == 3)
        codes = {}
        for _, code in exits:
            codes[str(code)] = codes.get(str(code), 0) + 1
        # A runner whose job was lost mid-job is busy on GitHub until
        # GitHub fails the job; the double never does.
        lost = {jobs[i]["runner_name"] for i in res["lost_mid_job"]}
        left = {"containers": instance_containers(self.d.instance),
                "github_runners": [r["name"] for r in
                                   self.d.double.control("GET", "runners")
                                   if r["name"] not in lost]}

        v = self.violations
        if res["unserved"]:
            v.append("%d servable job(s) not served: %r" %
                     (len(res["unserved"]), res["unserved"][:5]))
        if res["unservable_taken"]:
            v.append("unservable job(s) taken: %r" %
                     res["unservable_taken"])
        if idle:
            v.append("%d runner(s) went idle (exit 3), one too many for "
                     "a job: %r" % (len(idle), idle[:5]))
        if left["containers"] or left["github_runners"]:
            v.append("left behind: %r" % left)
        if final["fds"] > baseline["fds"] + self.opts.fd_slack:
            v.append("file descriptors grew from %d to %d" %
                     (baseline["fds"], final["fds"]))
        pss_bound = baseline["pss_kib"] + max(self.opts.pss_slack_kib,
                                              baseline["pss_kib"] // 4)
        if final["pss_kib"] > pss_bound:
            v.append("PSS grew from %d to %d KiB (bound %d)" %
                     (baseline["pss_kib"], final["pss_kib"], pss_bound))
        if self.opts.duration >= 60 and not (res["via_webhook"] and
                                             res["via_polling"]):
            v.append("no mix of webhook and polling: %d by webhook, %d "
                     "by polling" % (res["via_webhook"], res["via_polling"]))
        return {"jobs": dict(res, queued=len(self.queued),
                             servable=sum(q["servable"] for q in
                                          self.queued.values())),
                "runners": {"containers_died": len(exits),
                            "exit_codes": codes, "idle": idle},
                "leftovers": left}

    def run(self):
        opts = self.opts
        warmup = max(15.0, opts.duration / 5.0)
        self.start()
        log("instance %s, ephemerd on port %d, double on %d" %
            (self.d.instance, self.d.port, self.d.double.port))
        loader = threading.Thread(target=self.load, args=(opts.duration,),
                                  daemon=True)
        loader.start()
        self.stop.wait(warmup)
        baseline = resources(self.d)
        chaos = None
        if opts.chaos:
            chaos = threading.Thread(target=self.chaos,
                                     args=(opts.duration,), daemon=True)
            chaos.start()
        loader.join()
        if chaos is not None:
            chaos.join()
        self.set_hook(True)
        self.settle()
        self.drain(opts.drain)
        final = resources(self.d)
        result = self.check(baseline, final)
        self.finish_daemon()
        result.update({
            "duration": opts.duration, "rate": opts.rate,
            "chaos": opts.chaos, "seed": opts.seed,
            "chaos_events": self.chaos_log,
            "chaos_counts": self.counts(),
            "dockerd_restarts": len(self.dockerd_restarts),
            "dockerd_restarts_by_others": len(self.engine.windows),
            "resources": {"baseline": baseline, "final": final,
                          "fd_slack": opts.fd_slack,
                          "pss_slack_kib": opts.pss_slack_kib},
            "elapsed": round(self.now(), 1)})
        return result

    def finish_daemon(self):
        alive = self.d.proc.poll() is None and \
            set(self.d.roles()) == set(harness.ROLES)
        if not alive:
            self.violations.append("ephemerd is not whole at the end: %r" %
                                   self.d.roles())
        try:
            self.d.close()
        except harness.TestFailure as e:
            self.violations.append(str(e))
        self.d = _Closed(self.d)

    def counts(self):
        out = {}
        for e in self.chaos_log:
            out[e["what"]] = out.get(e["what"], 0) + 1
        return out

    def close(self):
        self.stop.set()
        self.engine.close()
        if self.events is not None:
            self.events.close()
        if self.d is not None and not isinstance(self.d, _Closed):
            instance = self.d.instance
            with contextlib.suppress(harness.TestFailure):
                self.d.close()
            remove_instance_containers(instance)
        elif isinstance(self.d, _Closed):
            remove_instance_containers(self.d.instance)


class _Closed:
    """What is left of a daemon once closed: its instance name."""

    def __init__(self, d):
        self.instance = d.instance


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--duration", type=float, default=120,
                    help="seconds of load (default 120)")
    ap.add_argument("--rate", type=float, default=0.5,
                    help="jobs queued per second (default 0.5)")
    ap.add_argument("--chaos", action="store_true")
    ap.add_argument("--no-dockerd", action="store_true",
                    help="no dockerd restarts among the faults")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--drain", type=float, default=150,
                    help="seconds allowed for the work to drain")
    ap.add_argument("--fd-slack", type=int, default=16)
    ap.add_argument("--pss-slack-kib", type=int, default=16384)
    ap.add_argument("--dockerd-log", default="/tmp/churn-dockerd.log")
    ap.add_argument("--json", help="write the result there too")
    ap.add_argument("--self-check", action="store_true",
                    help="start one runner too many halfway through, "
                    "through the REST API: the run must then fail")
    opts = ap.parse_args(argv)
    if opts.seed is None:
        opts.seed = random.randrange(1 << 30)
    if opts.rate <= 0 or opts.duration <= 0:
        ap.error("--rate and --duration must be positive")
    return opts


def main(argv=None):
    opts = parse(argv)
    harness.BINARY = os.path.abspath(opts.binary)
    churn = Churn(opts)
    try:
        result = churn.run()
    except harness.TestFailure as e:
        churn.violations.append("the run itself failed: %s" % e)
        result = {"seed": opts.seed, "chaos_events": churn.chaos_log}
    finally:
        churn.close()
    result["violations"] = churn.violations
    result["ok"] = not churn.violations
    text = json.dumps(result, indent=1, sort_keys=True)
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
