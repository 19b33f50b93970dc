"""Runners in Docker: create, follow, adopt and destroy real containers.

These run the real daemon against the real engine and the GitHub double,
with the runner image of tests/runner-image (busybox, registers with the
double, takes one job, exits)."""

import json
import os
import subprocess
import time

import harness
from harness import SRCDIR, Daemon, check, request, wait_for

RUNNER_IMAGE = "ephemerd-test-runner:latest"
MANAGED = "io.ephemerd.managed=true"
POOL = """\
  - name: default
    labels: [self-hosted, linux]
    image: %(image)s
    network: host
    max_runners: %(max)d
    memory: 67108864
    cpus: 0.5
    pids_limit: 128
    env:
      EPHEMERD_JIT_CONFIG: "{jit_config}"
      RUNNER_NAME: "{runner_name}"
      SCOPE_NAME: "{scope_name}"
      RUNNER_LABELS: "{labels}"
      DOUBLE_URL: "{double_url}"
      RUNNER_IDLE_SECONDS: "120"
"""


def build_runner_image():
    p = subprocess.run([os.path.join(SRCDIR, "tests", "runner-image",
                                     "build.sh"), RUNNER_IMAGE],
                       capture_output=True, timeout=120)
    check(p.returncode == 0, "runner image build failed: %r" %
          p.stderr[-400:])


def pool(image=RUNNER_IMAGE, max_runners=12):
    return POOL % {"image": image, "max": max_runners}


def docker(*args, check_rc=True):
    p = subprocess.run(["docker"] + list(args), capture_output=True,
                       timeout=60)
    if check_rc:
        check(p.returncode == 0, "docker %s: %r" % (" ".join(args),
                                                     p.stderr[-300:]))
    return p.stdout.decode()


def managed_containers(all_states=False, every=False):
    """{name: id} of the containers with ephemerd's label that belong to
    the daemons of this run (or, with every, to any instance)."""
    args = ["ps", "--no-trunc", "--filter", "label=" + MANAGED,
            "--format",
            '{{.Names}} {{.ID}} {{.Label "io.ephemerd.instance"}}']
    if all_states:
        args.insert(1, "-a")
    out = docker(*args)
    found = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 2 and (every or (len(f) == 3 and
                                      f[2] in harness.INSTANCES)):
            found[f[0]] = f[1]
    return found


def inspect(cid):
    return json.loads(docker("inspect", cid))[0]


def remove_managed(every=False):
    """Leave the engine as we found it, whatever a test did: remove the
    containers of the daemons this run started (each has its own
    instance), or with every, all that carry ephemerd's label."""
    ids = list(managed_containers(all_states=True, every=every).values())
    if ids:
        docker("rm", "-f", *ids, check_rc=False)


def text(r, limit=None):
    """A reply's body as text, for messages."""
    return r.body[:limit].decode("utf-8", "replace")


def post_runners(d, body, ctype="application/json"):
    raw = body.encode() if isinstance(body, str) else body
    return request("POST", d.port, "/api/v1/runners", body=raw,
                   headers={"Content-Type": ctype}, timeout=120)


def api_runners(d):
    r = d.get("/api/v1/runners")
    check(r.status == 200, "GET /api/v1/runners: %d" % r.status)
    return {rn["runner_id"]: rn for rn in r.json()["data"]}


def live_api_runners(d):
    return {k: v for k, v in api_runners(d).items()
            if v["status"] != "exited"}


def double_runners(d):
    return {rn["name"]: rn for rn in d.double.control("GET", "runners")}


def runner_env(info):
    return dict(e.split("=", 1) for e in info["Config"]["Env"])


class Runners:
    """A daemon with the runner pool, and a clean engine afterwards."""

    def __init__(self, image=RUNNER_IMAGE, max_runners=12, github_yaml=""):
        build_runner_image()
        remove_managed()
        self.d = Daemon(pools=pool(image, max_runners),
                        github_yaml=github_yaml)

    def __enter__(self):
        # Ready when every process answers and the engine is connected.
        harness.wait_for(lambda: self.d.api_health()[0].status == 200, 20,
                         "/api/v1/health to be healthy")
        return self.d

    def __exit__(self, etype, value, tb):
        try:
            self.d.close()
        finally:
            remove_managed()
        return False


def check_container(info, name, d):
    labels = info["Config"]["Labels"]
    want = {"io.ephemerd.managed": "true", "io.ephemerd.pool": "default",
            "io.ephemerd.runner": name, "io.ephemerd.scope": "repo",
            "io.ephemerd.scope-name": "octo/hello",
            "io.ephemerd.origin": "api"}
    for k, v in want.items():
        check(labels.get(k) == v, "%s: label %s=%r, want %r" %
              (name, k, labels.get(k), v))
    check(labels.get("io.ephemerd.github-runner-id", "0") != "0",
          "%s: no GitHub runner id label" % name)
    host = info["HostConfig"]
    check(host["Memory"] == 67108864, "%s: memory %r" % (name,
                                                          host["Memory"]))
    check(host["NanoCpus"] == 500000000, "%s: cpus %r" % (name,
                                                           host["NanoCpus"]))
    check(host["PidsLimit"] == 128, "%s: pids %r" % (name,
                                                     host["PidsLimit"]))
    check(host["NetworkMode"] == "host", "%s: network %r" %
          (name, host["NetworkMode"]))
    check(not host["Privileged"], "%s: privileged" % name)
    check(not host.get("Binds"), "%s: binds %r" % (name, host.get("Binds")))
    env = runner_env(info)
    check(env.get("RUNNER_NAME") == name, "%s: RUNNER_NAME %r" %
          (name, env.get("RUNNER_NAME")))
    check(env.get("SCOPE_NAME") == "octo/hello", "%s: SCOPE_NAME" % name)
    check(env.get("RUNNER_LABELS") == "self-hosted,linux",
          "%s: RUNNER_LABELS %r" % (name, env.get("RUNNER_LABELS")))
    check(len(env.get("EPHEMERD_JIT_CONFIG", "")) > 10,
          "%s: no JIT configuration in the environment" % name)
    check("{" not in "".join(env.values()),
          "%s: an unresolved placeholder in %r" % (name, env))


def test_ten_runners_register_take_jobs_and_go():
    with Runners() as d:
        r = post_runners(d, {"scope": "repo", "scope_name": "octo/hello",
                             "count": 10})
        check(r.status == 201, "POST: %d %s" % (r.status, text(r, 300)))
        body = r.json()
        names = [x["runner_id"] for x in body["data"]]
        check(len(names) == 10 and len(set(names)) == 10,
              "10 distinct runners, got %r" % names)
        check(all(x["status"] == "created" for x in body["data"]),
              "statuses %r" % body["data"])

        running = wait_for(lambda: (lambda m: m if len(m) == 10 else None)
                           (managed_containers()), 30, "10 containers")
        check(set(running) == set(names), "containers %r, want %r" %
              (sorted(running), sorted(names)))
        for name, cid in running.items():
            check_container(inspect(cid), name, d)

        wait_for(lambda: all(double_runners(d).get(n, {}).get("online")
                             for n in names), 30,
                 "every runner online on the double")
        check(set(live_api_runners(d)) == set(names),
              "GET /api/v1/runners lists %r" % sorted(api_runners(d)))

        for _ in range(10):
            d.double.control("POST", "jobs", {
                "repo": "octo/hello", "labels": ["self-hosted", "linux"],
                "duration": 1})
        wait_for(lambda: not managed_containers(all_states=True), 60,
                 "every runner to take its job, exit and be removed")
        jobs = d.double.control("GET", "jobs")
        check(all(j["status"] == "completed" for j in jobs),
              "jobs %r" % jobs)
        takers = [j["runner_name"] for j in jobs]
        check(sorted(takers) == sorted(names),
              "each runner took one job: %r" % takers)
        rns = api_runners(d)
        check(all(rns[n]["status"] == "exited" and rns[n]["exit_code"] == 0
                  for n in names), "exited with 0: %r" % rns)
        wait_for(lambda: not double_runners(d), 10,
                 "no runner left registered on the double")


def test_killed_container_is_seen_within_a_second():
    with Runners() as d:
        r = post_runners(d, {"scope": "repo", "scope_name": "octo/hello"})
        check(r.status == 201, "POST: %d %s" % (r.status, text(r, 300)))
        name = r.json()["data"][0]["runner_id"]
        cid = wait_for(lambda: managed_containers().get(name), 20,
                       "the container")
        wait_for(lambda: double_runners(d).get(name, {}).get("online"), 20,
                 "the runner online")
        t0 = time.monotonic()
        docker("kill", cid)
        wait_for(lambda: (api_runners(d).get(name, {}).get("status") ==
                          "exited" and
                          name not in managed_containers(all_states=True)),
                 5, "the exit seen and the container removed")
        took = time.monotonic() - t0
        print("     kill seen and container removed in %.2fs" % took)
        check(took < 1.0, "took %.2fs, more than 1 s" % took)
        check(api_runners(d)[name]["exit_code"] == 137,
              "exit code %r" % api_runners(d)[name].get("exit_code"))
        wait_for(lambda: name not in double_runners(d), 10,
                 "the runner deregistered from GitHub")


def test_delete_logs_and_foreign_containers():
    foreign = "ephemerd-it-foreign"
    docker("rm", "-f", foreign, check_rc=False)
    docker("run", "-d", "--name", foreign, "busybox:latest",
           "/bin/busybox", "sleep", "300")
    try:
        with Runners() as d:
            r = post_runners(d, {"scope": "repo", "scope_name": "octo/hello",
                                 "runner_name": "it-delete-me"})
            check(r.status == 201, "POST: %d %s" % (r.status, text(r, 300)))
            wait_for(lambda: managed_containers().get("it-delete-me"), 20,
                     "the container")
            wait_for(lambda: double_runners(d).get("it-delete-me", {})
                     .get("online"), 20, "the runner online")

            r = d.get("/api/v1/runners/it-delete-me/logs?tail=50")
            check(r.status == 200, "logs: %d %s" % (r.status, text(r, 200)))
            check(isinstance(r.json()["data"]["logs"], str), "logs text")

            r = request("DELETE", d.port, "/api/v1/runners/" + foreign)
            check(r.status == 404, "DELETE of a foreign container: %d" %
                  r.status)
            check(foreign in docker("ps", "--format", "{{.Names}}"),
                  "the foreign container was touched")
            t0 = time.monotonic()
            r = request("DELETE", d.port, "/api/v1/runners/it-delete-me",
                        timeout=30)
            print("     DELETE took %.2fs" % (time.monotonic() - t0))
            check(r.status == 200, "DELETE: %d %s" % (r.status,
                                                      text(r, 200)))
            check("it-delete-me" not in managed_containers(all_states=True),
                  "the container is still there")
            wait_for(lambda: "it-delete-me" not in double_runners(d), 10,
                     "the runner deregistered from GitHub")
    finally:
        docker("rm", "-f", foreign, check_rc=False)


def test_bad_requests_change_nothing():
    with Runners(max_runners=3) as d:
        bad = [
            ({"scope": "repo", "scope_name": "octo/hello", "count": 0},
             400, "count"),
            ({"scope": "repo", "scope_name": "octo/hello", "count": 4},
             400, "count"),
            ({"scope": "team", "scope_name": "octo/hello"}, 400, "scope"),
            ({"scope": "repo", "scope_name": "octo"}, 400, "scope_name"),
            ({"scope": "org", "scope_name": "octo/hello"}, 400,
             "scope_name"),
            ({"scope": "repo", "scope_name": "octo/hello",
              "runner_name": "bad name!"}, 400, "runner_name"),
            ({"scope": "repo", "scope_name": "octo/hello", "colour": 1},
             400, "colour"),
            ({"scope": "repo", "scope_name": "octo/hello",
              "labels": ["gpu"]}, 400, "gpu"),
            ('{"scope": "repo",', 400, "JSON"),
        ]
        for body, status, word in bad:
            r = post_runners(d, body)
            check(r.status == status, "%r: %d, want %d" %
                  (body, r.status, status))
            msg = r.json()["message"]
            check(word in msg, "%r: message %r does not name %r" %
                  (body, msg, word))
        r = post_runners(d, {"scope": "repo", "scope_name": "o/r"},
                         ctype="text/plain")
        check(r.status == 415, "text/plain: %d" % r.status)
        for method, path in (("GET", "/api/v1/runners/no-such"),
                             ("DELETE", "/api/v1/runners/no-such"),
                             ("GET", "/api/v1/runners/no-such/logs")):
            r = request(method, d.port, path)
            check(r.status == 404, "%s %s: %d" % (method, path, r.status))
            check("no-such" in r.json()["message"], "message names it")
        check(not managed_containers(all_states=True),
              "a bad request started a container")
        check(not double_runners(d), "a bad request registered a runner")

        r = post_runners(d, {"scope": "repo", "scope_name": "octo/hello",
                             "count": 3})
        check(r.status == 201, "3 of 3: %d %s" % (r.status, text(r, 200)))
        r = post_runners(d, {"scope": "repo", "scope_name": "octo/hello"})
        check(r.status == 409, "over max_runners: %d %s" %
              (r.status, text(r, 200)))
        check(len(managed_containers(all_states=True)) == 3,
              "max_runners exceeded")


def test_github_refusal_starts_nothing():
    with Runners() as d:
        d.double.control("POST", "fail", {"status": 403, "count": 1,
                                          "message": "Resource not "
                                          "accessible by integration"})
        r = post_runners(d, {"scope": "repo", "scope_name": "octo/hello"})
        check(r.status >= 400, "POST with GitHub refusing: %d" % r.status)
        check("not accessible" in text(r), "GitHub's reason not given: %s" %
              text(r, 300))
        time.sleep(0.5)
        check(not managed_containers(all_states=True),
              "a container was started although GitHub refused")


def test_missing_image_is_a_clear_error():
    with Runners(image="ephemerd-it-no-such-image:latest") as d:
        r = post_runners(d, {"scope": "repo", "scope_name": "octo/hello"})
        check(r.status >= 400, "POST: %d" % r.status)
        check("ephemerd-it-no-such-image" in text(r),
              "the message does not name the image: %s" % text(r, 300))
        check(not managed_containers(all_states=True),
              "something was left half-created")
        wait_for(lambda: not double_runners(d), 10,
                 "the registration withdrawn from GitHub")


def restart_dockerd():
    """Stop the engine and start it again with the same command line."""
    pid = int(subprocess.run(["pidof", "dockerd"], capture_output=True)
              .stdout.split()[0])
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    os.kill(pid, 15)
    wait_for(lambda: not os.path.exists("/proc/%d" % pid), 30,
             "dockerd to stop")
    log = open(os.path.join(SRCDIR, "tests", "logs", "dockerd-restart.log")
               if os.path.isdir(os.path.join(SRCDIR, "tests", "logs"))
               else "/dev/null", "ab")
    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                     start_new_session=True)
    wait_for(lambda: subprocess.run(["docker", "info"], capture_output=True)
             .returncode == 0, 60, "dockerd to answer again")


def test_table_matches_docker_after_engine_restart():
    with Runners() as d:
        r = post_runners(d, {"scope": "repo", "scope_name": "octo/hello",
                             "count": 3})
        check(r.status == 201, "POST: %d %s" % (r.status, text(r, 300)))
        wait_for(lambda: len(managed_containers()) == 3, 30,
                 "3 containers")
        restart_dockerd()
        wait_for(lambda: set(live_api_runners(d)) ==
                 set(managed_containers()), 30,
                 "the table to match docker ps after the engine restart")
        r, body = d.api_health()
        check(r.status == 200, "health after engine restart: %d" % r.status)


def test_adoption_after_ephemerd_restart():
    with Runners() as d:
        r = post_runners(d, {"scope": "repo", "scope_name": "octo/hello",
                             "count": 2})
        check(r.status == 201, "POST: %d %s" % (r.status, text(r, 300)))
        names = {x["runner_id"] for x in r.json()["data"]}
        wait_for(lambda: set(managed_containers()) == names, 30,
                 "2 containers")
        check(d.stop() == 0, "ephemerd did not stop cleanly")
        time.sleep(0.5)
        check(set(managed_containers()) == names,
              "stopping ephemerd stopped its runners")
        d.start()
        wait_for(lambda: set(live_api_runners(d)) == names, 20,
                 "the running runners adopted")
        check(set(managed_containers()) == names, "containers changed")


def test_cleanup_removes_exited_and_stuck_runners():
    stuck_pool = pool() + """\
  - name: stuck
    labels: [self-hosted, stuck]
    image: %s
    network: host
    command: "exec /bin/busybox sleep 300"
    bootstrap_timeout: 2
    max_runners: 2
    env:
      EPHEMERD_JIT_CONFIG: "{jit_config}"
""" % RUNNER_IMAGE
    build_runner_image()
    remove_managed()
    d = Daemon(pools=stuck_pool)
    try:
        harness.wait_for(lambda: d.api_health()[0].status == 200, 20,
                         "/api/v1/health to be healthy")
        r = post_runners(d, {"scope": "repo", "scope_name": "octo/hello",
                             "labels": ["stuck"]})
        check(r.status == 201, "stuck POST: %d" % r.status)
        stuck = r.json()["data"][0]["runner_id"]
        r = post_runners(d, {"scope": "repo", "scope_name": "octo/hello"})
        check(r.status == 201, "POST: %d" % r.status)
        done = r.json()["data"][0]["runner_id"]
        check(api_runners(d)[stuck]["pool"] == "stuck",
              "the stuck runner is not in pool stuck")

        d.double.control("POST", "jobs", {"repo": "octo/hello",
                                          "labels": ["linux"],
                                          "duration": 0})
        wait_for(lambda: api_runners(d).get(done, {}).get("status") ==
                 "exited", 30, "the runner with a job to exit")
        time.sleep(2.5)     # past the stuck pool's bootstrap_timeout
        r = request("POST", d.port, "/api/v1/runners/cleanup", body={})
        check(r.status == 200, "cleanup: %d" % r.status)
        # The docker worker's own sweep may have taken the stuck one
        # first; then the cleanup finds only the exited one.
        swept = "runner %s did not come online" % stuck in d.log()
        check(r.json()["data"]["removed"] >= (1 if swept else 2),
              "cleanup removed %r" % r.json()["data"])
        wait_for(lambda: not managed_containers(all_states=True), 15,
                 "the stuck container removed")
        wait_for(lambda: stuck not in api_runners(d) and
                 done not in api_runners(d), 10,
                 "both runners gone from the table")
        wait_for(lambda: stuck not in double_runners(d), 10,
                 "the stuck runner deregistered")
    finally:
        try:
            d.close()
        finally:
            remove_managed()
