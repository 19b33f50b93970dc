"""Automatic mode: discovery, demand, webhooks and faults, end to end.

The real daemon discovers the GitHub double's world (repositories and
their workflow files), watches for queued jobs and starts one runner
container per job on the real Docker engine; the runner image takes its
job from the double's broker and exits."""

import calendar
import json
import re
import threading
import time

import harness
from harness import Daemon, check, request, wait_for
import test_runners as tr

AUTO = "io.ephemerd.origin=auto"
SECRET = "It's a Secret to Everybody, 2"

POOL = """\
  - name: %(name)s
    labels: [%(labels)s]
    image: %(image)s
    network: host
    max_runners: %(max)d
    memory: 67108864
    pids_limit: 128
    env:
      EPHEMERD_JIT_CONFIG: "{jit_config}"
      RUNNER_NAME: "{runner_name}"
      RUNNER_LABELS: "{labels}"
      DOUBLE_URL: "{double_url}"
      RUNNER_IDLE_SECONDS: "60"
"""

STRING = "    runs-on: self-hosted\n"
LIST = "    runs-on: [self-hosted, linux]\n"
BLOCK_LIST = "    runs-on:\n      - self-hosted\n      - linux\n"
GROUP = ("    runs-on:\n      group: Default\n"
         "      labels: [self-hosted, linux]\n")
GPU = "    runs-on: [self-hosted, linux, gpu]\n"
MATRIX = ("    strategy:\n      matrix:\n"
          "        os: [self-hosted, ubuntu-latest]\n"
          "    runs-on: ${{ matrix.os }}\n")
HOSTED = "    runs-on: ubuntu-latest\n"
WINDOWS = "    runs-on: [self-hosted, windows]\n"


def workflow(runs_on, name="CI"):
    return ("name: %s\non: [push]\njobs:\n  build:\n%s"
            "    steps:\n      - run: make\n" % (name, runs_on))


# full name, control arguments, the label sets of the jobs to queue
# (None: the repository must never be polled for runs)
WORLD = [
    ("octocat/app-string", {"workflows": {"ci.yml": workflow(STRING)}},
     [["self-hosted"]]),
    ("octocat/app-list", {"workflows": {"ci.yml": workflow(LIST),
                                        "lint.yaml": workflow(HOSTED)}},
     [["self-hosted", "linux"]]),
    ("octocat/app-block", {"private": True,
                           "workflows": {"build.yml": workflow(BLOCK_LIST)}},
     [["self-hosted", "linux"]]),
    ("octocat/app-group", {"workflows": {"deploy.yml": workflow(GROUP)}},
     [["self-hosted", "linux"]]),
    ("octocat/app-matrix", {"workflows": {"m.yml": workflow(MATRIX)}},
     [["self-hosted"]]),
    ("octocat/site", {"workflows": {"pages.yml": workflow(HOSTED)}}, []),
    ("octocat/notes", {}, []),
    ("hubot/shared", {"collaborator": True,
                      "workflows": {"ci.yml": workflow(LIST)}},
     [["self-hosted", "linux"]]),
    ("hubot/private-stuff", {"workflows": {"ci.yml": workflow(LIST)}},
     None),
    ("octo-org/api", {"owner_type": "Organization",
                      "workflows": {"ci.yml": workflow(LIST),
                                    "win.yml": workflow(WINDOWS)}},
     [["self-hosted", "linux"]]),
    ("octo-org/ml", {"owner_type": "Organization",
                     "workflows": {"train.yml": workflow(GPU)}},
     [["self-hosted", "linux", "gpu"]]),
    ("octo-org/web", {"owner_type": "Organization",
                      "workflows": {"ci.yml": workflow(HOSTED)}}, []),
    ("octo-org/legacy", {"owner_type": "Organization", "archived": True,
                         "workflows": {"ci.yml": workflow(LIST)}}, None),
    ("octo-org/frozen", {"owner_type": "Organization", "disabled": True,
                         "workflows": {"ci.yml": workflow(LIST)}}, None),
]


def pools(*specs, image=tr.RUNNER_IMAGE, max_runners=12):
    return "".join(POOL % {"name": name, "labels": ", ".join(labels),
                           "image": image, "max": max_runners}
                   for name, labels in specs)


def discovery(interval=2, purge=5, mode="all", org=None):
    text = ("discovery:\n  auto_create: true\n  mode: %s\n"
            "  interval: %d\n  purge_interval: %d\n"
            "  cleanup_github: true\n" % (mode, interval, purge))
    if org:
        text += "  organization: %s\n" % org
    return text


class Containers:
    """Watches `docker ps` in the background: every managed container
    seen, with its labels and when it was first seen."""

    def __init__(self):
        self.seen = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    KEYS = ("io.ephemerd.pool", "io.ephemerd.origin")

    def run(self):
        # Label values may hold commas: ask for each label by name.
        fmt = "\t".join(["{{.Names}}"] + ['{{.Label "%s"}}' % k
                                          for k in self.KEYS])
        while not self.stop.is_set():
            out = tr.docker("ps", "-a", "--filter", "label=" + tr.MANAGED,
                            "--format", fmt, check_rc=False)
            for line in out.splitlines():
                fields = line.split("\t")
                if len(fields) == 3 and fields[0] not in self.seen:
                    self.seen[fields[0]] = dict(zip(self.KEYS, fields[1:]))
            self.stop.wait(0.2)

    def close(self):
        self.stop.set()
        self.thread.join(5)


class Auto:
    """A daemon in automatic mode with its world, and a clean engine and
    no leftover watcher afterwards."""

    def __init__(self, pool_text, interval=2, purge=5, github_yaml="",
                 world=WORLD):
        tr.build_runner_image()
        tr.remove_managed()
        self.world = world
        self.d = Daemon(pools=pool_text, start=False,
                        extra_yaml=discovery(interval, purge),
                        github_yaml=github_yaml)
        self.containers = None

    def __enter__(self):
        try:
            for full_name, args, _ in self.world:
                self.d.double.control("POST", "repos",
                                      dict(args, full_name=full_name))
            self.d.start()
            wait_for(lambda: self.d.api_health()[0].status == 200, 20,
                     "/api/v1/health to be healthy")
            self.containers = Containers()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, etype, value, tb):
        self.close()
        return False

    def close(self):
        try:
            if self.containers is not None:
                self.containers.close()
            self.d.close()
        finally:
            tr.remove_managed()

    # -- what the double saw

    def requests(self, rx):
        return [r for r in self.d.double.requests() if re.search(rx,
                                                                 r["path"])]

    def registrations(self):
        """Runner registrations ephemerd asked the double for."""
        return [r for r in self.d.double.requests()
                if r["method"] == "POST" and r["status"] == 201 and
                re.search(r"/actions/runners/(generate-jitconfig|"
                          r"registration-token)$", r["path"])]

    def wait_discovered(self, timeout=30):
        """Until every reachable repository with workflow files had them
        listed: then ephemerd knows the world."""
        want = {full for full, args, jobs in self.world
                if jobs is not None and args.get("workflows") and
                not args.get("archived") and not args.get("disabled")}

        def done():
            seen = {m.group(1) for r in self.d.double.requests()
                    for m in [re.match(r"/repos/([^/]+/[^/]+)/contents/",
                                       r["path"])] if m}
            return want <= seen
        wait_for(done, timeout, "discovery of %s" % sorted(want),
                 interval=0.2)

    def queue(self, repo, labels, duration=1, **extra):
        return self.d.double.control("POST", "jobs", dict(
            extra, repo=repo, labels=labels, duration=duration))

    def jobs(self):
        return {j["id"]: j for j in self.d.double.control("GET", "jobs")}

    def wait_completed(self, ids, timeout=90):
        def done():
            jobs = self.jobs()
            return all(jobs[i]["status"] == "completed" for i in ids)
        try:
            wait_for(done, timeout, "jobs %s to complete" % sorted(ids),
                     interval=0.25)
        except harness.TestFailure as e:
            jobs = self.jobs()
            raise harness.TestFailure("%s: %s; log: %s" % (
                e, {i: jobs[i]["status"] for i in ids}, self.d.tail(15)))

    def wait_gone(self, timeout=30):
        wait_for(lambda: not tr.managed_containers(all_states=True),
                 timeout, "every runner container to be removed")
        wait_for(lambda: not self.d.double.control("GET", "runners"),
                 timeout, "the double's runner list to empty")


def test_auto_world_one_runner_per_job():
    with Auto(pools(("linux", ["self-hosted", "linux"]),
                    ("gpu", ["self-hosted", "linux", "gpu"]))) as a:
        a.wait_discovered()
        servable = []
        for full_name, _, label_sets in WORLD:
            for labels in label_sets or []:
                servable.append(a.queue(full_name, labels)["id"])
        matrix_run = [j for j in a.jobs().values()
                      if j["repo"] == "octocat/app-matrix"][0]["run_id"]
        hosted = [a.queue("octocat/app-matrix", ["ubuntu-latest"],
                          run_id=matrix_run)["id"],
                  a.queue("octocat/site", ["ubuntu-latest"])["id"]]
        orphan = a.queue("octo-org/api", ["self-hosted", "windows"])["id"]

        a.wait_completed(servable)
        a.wait_gone()
        jobs = a.jobs()
        takers = [jobs[i]["runner_name"] for i in servable]
        check(len(set(takers)) == len(servable),
              "each job its own runner: %r" % takers)
        regs = a.registrations()
        check(len(regs) <= len(servable),
              "%d runners registered for %d servable jobs: %r" %
              (len(regs), len(servable), [r["path"] for r in regs]))
        for i in hosted + [orphan]:
            check(jobs[i]["status"] == "queued" and
                  jobs[i]["runner_name"] is None,
                  "job %d (%s) was served: %r" % (i, jobs[i]["labels"],
                                                  jobs[i]))
        # Other daemons may share the engine: look at this one's runners.
        seen = {t: a.containers.seen.get(t) for t in takers}
        check(all(labels is not None and
                  labels.get("io.ephemerd.origin") == "auto"
                  for labels in seen.values()),
              "containers %r" % seen)
        gpu_job = [i for i in servable if "gpu" in jobs[i]["labels"]][0]
        gpu_runner = jobs[gpu_job]["runner_name"]
        check(seen.get(gpu_runner, {}).get("io.ephemerd.pool") == "gpu",
              "the gpu job ran on %r" % seen.get(gpu_runner))

        for full_name, _, label_sets in WORLD:
            if label_sets is None:
                polled = a.requests(r"^/repos/%s/actions/" % full_name)
                check(not polled, "%s was polled: %r" %
                      (full_name, [r["path"] for r in polled[:3]]))
        # The job no pool serves is reported once, not every cycle.
        time.sleep(5)
        lines = [x for x in a.d.log_lines()
                 if str(orphan) in x and re.search("pool", x, re.I)]
        check(len(lines) == 1, "%d log lines about job %d: %r" %
              (len(lines), orphan, lines[:3]))


def test_auto_smallest_pool_serves():
    world = [("octo-org/api", {"owner_type": "Organization",
                               "workflows": {"ci.yml": workflow(LIST),
                                             "gpu.yml": workflow(GPU)}},
              [])]
    with Auto(pools(("big", ["self-hosted", "linux", "gpu"]),
                    ("small", ["self-hosted", "linux"])),
              world=world) as a:
        a.wait_discovered()
        # One after the other: a big runner may take a small job (GitHub
        # gives a job to any runner whose labels cover it).
        pool_of = {}
        for labels in (["self-hosted", "linux"],
                       ["self-hosted", "linux", "gpu"]):
            job = a.queue("octo-org/api", labels)["id"]
            a.wait_completed([job])
            a.wait_gone()
            pools_seen = sorted(x["io.ephemerd.pool"] for x in
                                a.containers.seen.values())
            pool_of[",".join(labels)] = pools_seen
            a.containers.seen.clear()
        check(pool_of == {"self-hosted,linux": ["small"],
                          "self-hosted,linux,gpu": ["big"]},
              "pools started per job: %r" % pool_of)


def started_at(cid):
    """The container's State.StartedAt as epoch seconds."""
    text = tr.inspect(cid)["State"]["StartedAt"]
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", text)
    check(m is not None, "StartedAt %r" % text)
    whole = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return whole + float(m.group(2) or 0)


def hook_post(d, body, headers):
    return request("POST", d.port, "/api/v1/webhook", body=body,
                   headers=dict({"Content-Type": "application/json",
                                 "X-GitHub-Event": "workflow_job",
                                 "X-GitHub-Delivery": "x-%f" % time.time()},
                                **headers))


def hooked_org():
    """One organization repository, polled rarely: its jobs come by
    webhook, once subscribe() has pointed the double's hook at ephemerd."""
    world = [("octo-org/api", {"owner_type": "Organization",
                               "workflows": {"ci.yml": workflow(LIST)}},
              [])]
    return Auto(pools(("linux", ["self-hosted", "linux"])), interval=300,
                purge=300, world=world,
                github_yaml="  webhook_secret: \"%s\"\n" % SECRET)


def subscribe(d):
    return d.double.control("POST", "webhook", {
        "url": "http://127.0.0.1:%d/api/v1/webhook" % d.port,
        "secret": SECRET})


def test_auto_webhooks_start_runners_at_once():
    with hooked_org() as a:
        d = a.d
        a.wait_discovered()
        hook = subscribe(d)
        ping = wait_for(lambda: [x for x in d.double.deliveries()
                                 if x["guid"] == hook["ping"] and
                                 x["answered_at"]], 10, "the ping")[0]
        check(ping["status_code"] is not None and
              200 <= ping["status_code"] < 300, "ping answered %r" % ping)

        job = a.queue("octo-org/api", ["self-hosted", "linux"], duration=3)
        sent = wait_for(lambda: [x for x in d.double.deliveries()
                                 if x["job_id"] == job["id"] and
                                 x["action"] == "queued" and
                                 x["answered_at"]], 10,
                        "the queued delivery")[0]
        check(200 <= (sent["status_code"] or 0) < 300,
              "queued delivery answered %r" % sent)
        running = wait_for(lambda: tr.managed_containers(), 10,
                           "a runner container")
        cid = list(running.values())[0]
        delay = started_at(cid) - sent["sent_at"]
        check(delay < 1.0, "container started %.3f s after the delivery" %
              delay)
        a.wait_completed([job["id"]], timeout=30)
        regs = len(a.registrations())
        check(regs == 1, "%d registrations for one job" % regs)

        again = d.double.control("POST", "webhook/redeliver",
                                 {"guid": sent["guid"]})
        check(200 <= (again["status_code"] or 0) < 300,
              "redelivery answered %r" % again)
        body = json.loads([x for x in d.double.deliveries(body=True)
                           if x["guid"] == sent["guid"]][0]["body"])
        forged = dict(body)
        forged["workflow_job"] = dict(body["workflow_job"],
                                      id=body["workflow_job"]["id"] + 7,
                                      status="queued")
        raw = json.dumps(forged)
        bad = d.double.control("POST", "webhook/raw", {
            "body": raw, "signature": "sha256=" + "0" * 64})
        missing = d.double.control("POST", "webhook/raw", {
            "body": raw, "signature": None})
        malformed = d.double.control("POST", "webhook/raw",
                                     {"body": raw[:len(raw) // 2]})
        check((bad["status_code"], missing["status_code"],
               malformed["status_code"]) == (401, 401, 400),
              "bad, missing signature, malformed: %s %s %s" %
              (bad["status_code"], missing["status_code"],
               malformed["status_code"]))
        r = hook_post(d, b"{}", {"X-Hub-Signature-256": "sha256=zz"})
        check(r.status == 401, "a signature that is not hex: %d" % r.status)
        time.sleep(3)
        check(len(a.registrations()) == regs and
              not tr.managed_containers(all_states=True),
              "a duplicate or refused delivery started a runner")
        check(d.proc.poll() is None, "ephemerd exited")


def test_auto_late_queued_delivery_starts_nothing():
    """GitHub delivers out of order: a queued delivery that comes after
    the job went in progress is read back from the job itself and, since
    the job runs, starts no second runner."""
    with hooked_org() as a:
        d = a.d
        a.wait_discovered()
        subscribe(d)
        job = a.queue("octo-org/api", ["self-hosted", "linux"], duration=12)

        def delivered(action):
            return [x for x in d.double.deliveries(body=True)
                    if x["job_id"] == job["id"] and x["action"] == action
                    and x["answered_at"]]
        queued = wait_for(lambda: delivered("queued"), 10,
                          "the queued delivery")[0]
        wait_for(lambda: delivered("in_progress"), 20,
                 "the in_progress delivery")
        check(a.jobs()[job["id"]]["status"] == "in_progress",
              "the job is not in progress")
        # Only a runner known to be busy leaves a queued job uncovered.
        wait_for(lambda: [r for r in tr.api_runners(d).values()
                          if r["status"] == "busy"], 15,
                 "the runner to show busy")

        late = d.double.control("POST", "webhook/raw",
                                {"body": queued["body"]})
        check(200 <= (late["status_code"] or 0) < 300,
              "the late queued delivery answered %r" % late)
        time.sleep(3)
        check(len(a.registrations()) == 1 and
              len(tr.managed_containers(all_states=True)) <= 1,
              "the late delivery started a second runner: %d "
              "registrations" % len(a.registrations()))
        path = "/repos/octo-org/api/actions/jobs/%d" % job["id"]
        check(a.requests("^%s$" % re.escape(path)),
              "ephemerd did not read the job back")
        check("queued delivery came after it went in progress" in
              d.log(), "the log does not say the delivery was ignored")
        a.wait_completed([job["id"]], timeout=40)


def test_auto_survives_faults_and_serves_after():
    world = [("octo-org/api", {"owner_type": "Organization",
                               "workflows": {"ci.yml": workflow(LIST)}},
              []),
             ("octocat/app", {"workflows": {"ci.yml": workflow(STRING)}},
              [])]
    with Auto(pools(("linux", ["self-hosted", "linux"])),
              world=world) as a:
        d = a.d
        a.wait_discovered()
        roles = d.wait_roles()
        faults = [
            # Each 500 doubles the pause (1, 2, 4, 8 s, +-20%) and only
            # one probe goes out when it ends: 5 in a row cost ~30 s.
            ("500s", "fail", {"status": 500, "count": 5}),
            ("secondary limit", "fail", {"status": 403, "count": 3,
                                         "retry_after": 2}),
            ("exhausted limit", "budget", {"remaining": 0,
                                           "reset_in": 4}),
            ("malformed JSON", "fail", {"mode": "malformed",
                                        "count": 6}),
        ]
        for what, endpoint, args in faults:
            d.double.control("POST", endpoint, args)
            ids = [a.queue("octo-org/api", ["self-hosted", "linux"])["id"],
                   a.queue("octocat/app", ["self-hosted"])["id"]]
            try:
                a.wait_completed(ids, timeout=60)
            except harness.TestFailure as e:
                raise harness.TestFailure("after %s: %s" % (what, e))
            check(d.proc.poll() is None, "ephemerd exited after %s" % what)
            check(d.roles() == roles, "after %s the processes are %r, "
                  "were %r" % (what, d.roles(), roles))
        a.wait_gone()


def test_auto_idle_cycles_are_cheap():
    interval = 2
    with Auto(pools(("linux", ["self-hosted", "linux"]),
                    ("gpu", ["self-hosted", "linux", "gpu"])),
              interval=interval) as a:
        a.wait_discovered()
        # Settle: every validator is known, the first cleanup pass
        # (purge_interval 5 s) has read each runner list once.
        time.sleep(5 + 2 * interval)
        a.d.double.clear_requests()
        time.sleep(3 * interval)
        reqs = a.d.double.requests()
        charged = [r for r in reqs if r["charged"]]
        not_modified = [r for r in reqs if r["status"] == 304]
        per_cycle = len(charged) / 3.0
        check(per_cycle <= 2, "%.1f charged requests per idle cycle "
              "(%d charged, %d answered 304, %d in all over 3 cycles): %r"
              % (per_cycle, len(charged), len(not_modified), len(reqs),
                 ["%s %s %d%s" % (r["method"], r["path"], r["status"],
                                  " (conditional)" if "If-None-Match" in
                                  r["headers"] else "")
                  for r in charged[:12]]))
