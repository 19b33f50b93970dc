"""Cleaning up GitHub: idle registrations this instance made and that
have no container are deleted, on request (with a dry run) and every
purge_interval; GET github-status shows them as GitHub does.

The registrations are made in the double through its real API with the
daemon's token; the runner with a container is made through ephemerd's
API, with a pool whose container never registers (it stays offline)."""

import os
import shutil
import signal
import subprocess
import tempfile

from harness import Daemon, check, request, wait_for

SCOPE = "/repos/octo/hello/actions/runners"
SLEEPER = "ephemerd-it-sleeper:latest"
POOL = """\
  - name: default
    labels: [self-hosted, linux]
    image: %s
    command: "sleep 300"
    max_runners: 2
""" % SLEEPER
PERIODIC = "discovery:\n  cleanup_github: true\n  purge_interval: 2\n"


def remove_managed(instance):
    """Removes the containers of this daemon's instance, only."""
    p = subprocess.run(["docker", "ps", "-a", "--filter",
                        "label=io.ephemerd.managed=true", "--format",
                        "{{.ID}} {{.Names}}"],
                       capture_output=True, timeout=30)
    ids = [line.split()[0] for line in p.stdout.decode().splitlines()
           if line.split()[1:] and
           line.split()[1].startswith("eph-%s-" % instance)]
    if ids:
        subprocess.run(["docker", "rm", "-f"] + ids, capture_output=True,
                       timeout=60)


def build_sleeper():
    """An image with a shell and sleep only: its runner never registers."""
    root = tempfile.mkdtemp(prefix="sleeper-root.")
    try:
        os.makedirs(os.path.join(root, "bin"))
        for d in ("tmp", "proc", "sys", "dev", "etc"):
            os.makedirs(os.path.join(root, d))
        shutil.copy(shutil.which("busybox") or "/bin/busybox",
                    os.path.join(root, "bin", "busybox"))
        for applet in ("sh", "sleep"):
            os.symlink("busybox", os.path.join(root, "bin", applet))
        tar = subprocess.Popen(["tar", "-C", root, "--numeric-owner",
                                "-cf", "-", "."], stdout=subprocess.PIPE)
        p = subprocess.run(["docker", "import", "-c", "ENV PATH=/bin", "-",
                            SLEEPER], stdin=tar.stdout, capture_output=True,
                           timeout=60)
        tar.wait()
        check(p.returncode == 0, "docker import: %r" % p.stderr[-300:])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def config(d, extra=""):
    """The harness names each daemon's instance (d.instance)."""
    return d.config_text(extra=extra)


def register(d, name):
    """A JIT registration in the double, offline until a runner uses it."""
    r = request("POST", d.double.port, SCOPE + "/generate-jitconfig",
                body={"name": name, "runner_group_id": 1,
                      "labels": ["self-hosted", "linux"]},
                headers={"Authorization": "Bearer " + d.token})
    check(r.status == 201, "generate-jitconfig %s: %d %r" %
          (name, r.status, r.body[:200]))
    return r.json()


def make_online(d, name):
    """Registers and comes online, then its process is gone: GitHub
    still shows it online and idle for a while."""
    jit = register(d, name)["encoded_jit_config"]
    r = request("POST", d.double.port, "/_double/runner/register",
                body={"jit_config": jit})
    check(r.status == 200, "register %s: %d" % (name, r.status))


def make_busy(d, name):
    """Registers, comes online and takes a job: busy on the double."""
    jit = register(d, name)["encoded_jit_config"]
    r = request("POST", d.double.port, "/_double/runner/register",
                body={"jit_config": jit})
    check(r.status == 200, "register %s: %d" % (name, r.status))
    session = r.json()
    d.double.control("POST", "jobs", {"repo": "octo/hello",
                                      "labels": ["self-hosted"],
                                      "duration": 600})
    r = request("POST", d.double.port, "/_double/runner/poll",
                body={"runner_id": session["runner_id"],
                      "session": session["session"]})
    check(r.status == 200 and r.json().get("job_id"),
          "%s took no job: %r" % (name, r.body[:200]))


def on_double(d):
    return {r["name"]: r for r in d.double.control("GET", "runners")}


def api(d, method, path):
    r = request(method, d.port, path, timeout=60)
    env = r.json()
    return r.status, env


def test_cleanup_on_request_and_periodic():
    build_sleeper()
    d = Daemon(start=False, pools=POOL)
    instance = d.instance
    try:
        d.write(text=config(d))
        d.start()
        wait_for(lambda: d.api_health()[0].status == 200, 20,
                 "/api/v1/health to be healthy")
        stale = ["eph-%s-default-0000000%d" % (instance, i) for i in (1, 2)]
        foreign = ["eph-other-default-00000003",
                   "eph-%s-x-default-00000004" % instance,
                   "eph-%s-default-zzzz" % instance, "my-own-runner"]
        busy = "eph-%s-default-0000000b" % instance
        for name in stale + foreign:
            register(d, name)
        make_busy(d, busy)
        # A runner whose process died idle: online, not busy, no box.
        ghost = "eph-%s-default-0000000e" % instance
        make_online(d, ghost)
        stale.append(ghost)

        # A runner of ours with a container; it never registers itself.
        r = request("POST", d.port, "/api/v1/runners",
                    body={"scope": "repo", "scope_name": "octo/hello"},
                    timeout=120)
        check(r.status == 201, "POST runner: %d %r" % (r.status,
                                                       r.body[:300]))
        boxed = r.json()["data"][0]["runner_id"]
        check(boxed.startswith("eph-%s-default-" % instance),
              "runner name %r" % boxed)
        check(not on_double(d)[boxed]["online"], "the boxed runner is "
              "online; the test needs it offline")
        everyone = set(on_double(d))

        # github-status: ours only, as GitHub lists them.
        status, env = api(d, "GET", "/api/v1/runners/github-status")
        check(status == 200, "github-status: %d %r" % (status, env))
        seen = {x["runner_id"]: x for x in env["data"]}
        check(set(seen) == set(stale) | {busy, boxed},
              "github-status lists %r" % sorted(seen))
        check(seen[boxed]["container"] and not seen[stale[0]]["container"],
              "container flags %r" % seen)
        check(seen[busy]["busy"] and seen[busy]["status"] == "online" and
              seen[stale[0]]["status"] == "offline" and
              seen[ghost]["status"] == "online" and
              not seen[ghost]["busy"], "states %r" % seen)
        check(seen[stale[0]]["labels"] == ["self-hosted", "linux"] and
              seen[boxed]["scope_name"] == "octo/hello" and
              seen[boxed]["github_runner_id"] ==
              on_double(d)[boxed]["id"], "fields %r" % seen[boxed])

        # Strict query; then a dry run that deletes nothing.
        for q in ("dry_run=maybe", "dry_run=yes", "dry_run=1&dry_run=0",
                  "force=true"):
            status, env = api(d, "POST",
                              "/api/v1/runners/cleanup-github?" + q)
            check(status == 400, "?%s: %d" % (q, status))
        status, env = api(d, "POST",
                          "/api/v1/runners/cleanup-github?dry_run=true")
        check(status == 200, "dry run: %d %r" % (status, env))
        would = {x["name"] for x in env["data"]["would_delete"]}
        check(would == set(stale), "would delete %r" % sorted(would))
        check(env["data"]["kept"] == 2 and env["data"]["errors"] == [],
              "dry run data %r" % env["data"])
        check(all(x["scope"] == "repo" and x["scope_name"] == "octo/hello"
                  and x["id"] > 0 for x in env["data"]["would_delete"]),
              "entries %r" % env["data"]["would_delete"])
        check(set(on_double(d)) == everyone, "a dry run deleted runners")

        # The real run deletes exactly the stale ones.
        status, env = api(d, "POST",
                          "/api/v1/runners/cleanup-github?dry_run=0")
        check(status == 200, "cleanup: %d %r" % (status, env))
        gone = {x["name"] for x in env["data"]["deleted"]}
        check(gone == set(stale), "deleted %r" % sorted(gone))
        check(set(on_double(d)) == everyone - set(stale),
              "left on the double: %r" % sorted(on_double(d)))
        d.wait_log(r"INFO poller: runner %s \(GitHub id \d+\) deleted from "
                   r"repo octo/hello" % stale[0], 3)

        # Periodic, after a reload: a new stale runner goes by itself.
        d.write(text=config(d, PERIODIC))
        mark = len(d.log_lines())
        d.kill(signal.SIGHUP)
        d.wait_log(r"CONFIG poller: GitHub cleanup every 2 s", 10,
                   start=mark)
        late = "eph-%s-default-0000000c" % instance
        register(d, late)
        wait_for(lambda: late not in on_double(d), 8,
                 "the periodic cleanup to delete %s" % late)
        d.wait_log(r"INFO poller: periodic GitHub cleanup: deleted 1 "
                   r"idle runner", 3, start=mark)
        left = set(on_double(d))
        check(left == everyone - set(stale),
              "after the periodic cleanup: %r" % sorted(left))
    finally:
        try:
            d.close()
        finally:
            remove_managed(instance)


def test_cleanup_without_scopes():
    """Without runners or watched scopes no runner list is read."""
    d = Daemon(start=False)
    try:
        d.write(text=config(d))
        d.start()
        register(d, "eph-%s-default-00000001" % d.instance)
        # Until the docker worker's table is in, cleanup answers 503.
        seen = []

        def answered():
            seen[:] = api(d, "POST", "/api/v1/runners/cleanup-github")
            return seen[0] != 503
        wait_for(answered, 10, "the poller to know the runner table")
        status, env = seen
        check(status == 200 and env["data"]["deleted"] == [],
              "no scopes: %d %r" % (status, env))
        check(len(on_double(d)) == 1, "a runner outside every scope went")
    finally:
        d.close()
