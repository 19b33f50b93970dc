"""Privilege separation as the kernel sees it: /proc and ss."""

import pwd
import threading
import time

from harness import (USER, Daemon, check, docker_sock_peers, proc_cmdline,
                     proc_environ, proc_ids, proc_root, request_try,
                     wait_for)


def test_process_tree():
    pw = pwd.getpwnam(USER)
    with Daemon() as d:
        roles = d.wait_roles()
        kids = d.children()
        check(len(kids) == 3, "supervisor has %d children, want 3: %s" %
              (len(kids), kids))
        sup = proc_cmdline(d.pid)
        check(sup.startswith("ephemerd: supervisor"),
              "supervisor's title is %r" % sup)
        for role, pid in roles.items():
            cmd = proc_cmdline(pid)
            check(cmd.startswith("ephemerd: " + role),
                  "%s's title is %r" % (role, cmd))
        for role in ("httpd", "poller"):
            # A child drops privileges once its configuration has come.
            wait_for(lambda: proc_ids(roles[role])["Uid"][0] != 0, 5,
                     "%s to drop privileges" % role)
            ids = proc_ids(roles[role])
            check(ids["Uid"] == [pw.pw_uid] * 4,
                  "%s Uid %s, want 4 x %d" % (role, ids["Uid"], pw.pw_uid))
            check(ids["Gid"] == [pw.pw_gid] * 4,
                  "%s Gid %s, want 4 x %d" % (role, ids["Gid"], pw.pw_gid))
            check(0 not in ids["Groups"],
                  "%s keeps group 0: %s" % (role, ids["Groups"]))
        check(not d.zombies(), "zombies under the supervisor: %s" %
              d.zombies())
        check(proc_root(roles["httpd"]) == d.chroot,
              "httpd's root is %r, want %r" %
              (proc_root(roles["httpd"]), d.chroot))
        for name, pid in (("poller", roles["poller"]), ("supervisor", d.pid)):
            check(proc_root(pid) == "/",
                  "%s's root is %r, want /" % (name, proc_root(pid)))


def test_only_docker_worker_talks_to_docker():
    with Daemon() as d:
        roles = d.wait_roles()
        seen = set()
        stop = threading.Event()

        def burst():
            while not stop.is_set():
                request_try("GET", d.port, "/api/v1/health", timeout=5)

        workers = [threading.Thread(target=burst) for _ in range(3)]
        for t in workers:
            t.start()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                seen |= docker_sock_peers()
                if roles["docker"] in seen and \
                        time.monotonic() > deadline - 7:
                    break
                time.sleep(0.01)
        finally:
            stop.set()
            for t in workers:
                t.join()
        ours = {d.pid} | set(roles.values())
        check(roles["docker"] in seen,
              "never saw the docker worker (%d) connected to docker.sock"
              % roles["docker"])
        others = (seen & ours) - {roles["docker"]}
        check(not others, "processes %s other than the docker worker "
              "hold a connection to docker.sock" % sorted(others))


def test_no_secret_in_environment():
    with Daemon(token_in_env=True) as d:
        roles = d.wait_roles()
        token = d.token.encode()
        request_try("GET", d.port, "/api/v1/health")
        # Proof that the token reached the poller: GitHub accepted it.
        wait_for(lambda: [r for r in d.double.requests()
                          if r["status"] == 200], 10,
                 "an authenticated call from the poller to the double")
        for name, pid in roles.items():
            env = proc_environ(pid)
            check(token not in env,
                  "%s's environment holds the token" % name)
            check(b"GITHUB_RUNNER_TOKEN" not in env,
                  "%s's environment has GITHUB_RUNNER_TOKEN" % name)
        check(d.token not in d.log(), "the token appears in the log")
