"""Restarts, reloads, shutdown, the log's format, and running as a user."""

import os
import signal
import time

from harness import (LOG_LINE, ROLES, SANITIZER_MARKS, USER, Daemon, alive,
                     check, request_try, wait_for)


def healthy(d):
    r = request_try("GET", d.port, "/api/v1/health", timeout=2)
    if r is None or r.status != 200:
        return False
    try:
        return r.json()["data"]["healthy"] is True
    except (KeyError, TypeError, ValueError):
        return False


def test_children_restart():
    with Daemon() as d:
        roles = d.wait_roles()
        wait_for(lambda: healthy(d), 10, "a healthy daemon")
        for role in ROLES:
            old = roles[role]
            mark = len(d.log_lines())
            t0 = time.monotonic()
            os.kill(old, signal.SIGKILL)

            def back():
                r = d.roles()
                return r if set(r) == set(ROLES) and r[role] != old and \
                    healthy(d) else None
            roles = wait_for(back, 10, "%s to come back healthy" % role,
                             interval=0.02)
            took = time.monotonic() - t0
            print("     %s restarted as %d, healthy after %.2fs" %
                  (role, roles[role], took))
            check(took <= 3, "%s took %.2fs to come back, more than 3s" %
                  (role, took))
            r, body = d.api_health()
            pid = body["data"]["processes"][role].get("pid")
            check(pid == roles[role], "/api/v1/health says %s is %r, /proc "
                  "says %d" % (role, pid, roles[role]))
            line = d.wait_log(r"MONITOR .*%s" % role, start=mark)
            check(LOG_LINE.match(line), "bad MONITOR line %r" % line)
            check(not d.zombies(), "zombies under the supervisor: %s" %
                  d.zombies())
            check(len(d.children()) == 3, "children now %s" % d.children())


def test_child_keeps_dying():
    with Daemon() as d:
        roles = d.wait_roles()
        seen = set(roles.values())
        victim = roles["poller"]
        kills = 0
        deadline = time.monotonic() + 60
        while kills < 6 and d.proc.poll() is None:
            check(time.monotonic() < deadline, "only %d kills in 60s" % kills)
            os.kill(victim, signal.SIGKILL)
            kills += 1

            def reborn():
                if d.proc.poll() is not None:
                    return -1
                pid = d.roles().get("poller")
                return pid if pid is not None and pid != victim else None
            victim = wait_for(reborn, 30, "poller restart #%d" % kills,
                              interval=0.005)
            if victim == -1:        # never pass -1 to kill(2)
                break
            seen.add(victim)
        rc = d.wait_exit(10)
        check(rc is not None, "supervisor still running 10s after %d kills"
              % kills)
        check(rc != 0, "supervisor exited 0 after the poller kept dying")
        line = d.wait_log(r"ERROR .*keeps dying", timeout=1)
        check("poller" in line, "the keeps-dying line does not name the "
              "poller: %r" % line)
        time.sleep(0.5)
        left = sorted(p for p in seen | set(d.children()) if alive(p))
        check(not left, "processes still alive: %s" % left)


def test_sighup_reload():
    with Daemon() as d:
        roles = d.wait_roles()
        mark = len(d.log_lines())
        d.write(level="info")
        d.kill(signal.SIGHUP)
        d.wait_log(r"^CONFIG .*reloaded", start=mark)
        time.sleep(0.5)
        check(d.roles() == roles, "pids changed on reload: %s -> %s" %
              (roles, d.roles()))
        mark = len(d.log_lines())
        text = d.config_text(level="info").replace(
            "log:\n", "log:\n  verbosity: 11\n")
        line_no = text.splitlines().index("  verbosity: 11") + 1
        d.write(text=text)
        d.kill(signal.SIGHUP)
        d.wait_log(r"^ERROR .*%s:%d" % (d.config, line_no), start=mark)
        time.sleep(0.5)
        r = d.get("/health")
        check(r.status == 200, "/health after a broken reload: %d" %
              r.status)
        check(d.roles() == roles, "pids changed on a broken reload")
        check(d.proc.poll() is None, "supervisor exited on a broken reload")


def shutdown(signum):
    with Daemon() as d:
        roles = d.wait_roles()
        t0 = time.monotonic()
        rc = d.stop(signum, timeout=5)
        print("     stopped in %.2fs" % (time.monotonic() - t0))
        check(rc == 0, "exit status %d after signal %d" % (rc, signum))
        left = [p for p in roles.values() if alive(p)]
        check(not left, "children still alive: %s" % left)
        check(any(ln.startswith("SHUTDOWN ") for ln in d.log_lines()),
              "no SHUTDOWN line in the log")


def test_sigterm():
    shutdown(signal.SIGTERM)


def test_sigint():
    shutdown(signal.SIGINT)


def test_log_format():
    with Daemon() as d:
        d.wait_roles()
        d.get("/health")
        d.get("/api/v1/health")
        d.get("/nothing-here")
        d.kill(signal.SIGHUP)
        d.wait_log(r"reloaded")
        d.stop()
        bad = [ln for ln in d.log_lines() if ln.strip() and
               not LOG_LINE.match(ln) and
               not any(m in ln for m in SANITIZER_MARKS)]
        check(len(d.log_lines()) >= 5, "only %d log lines" %
              len(d.log_lines()))
        check(not bad, "%d malformed log lines, first: %r" %
              (len(bad), bad[:3]))


def test_not_root():
    with Daemon(as_user=USER, chroot=False) as d:
        r = d.get("/health")
        check(r.status == 200, "/health as %s: %d" % (USER, r.status))
        warn = [ln for ln in d.log_lines()
                if "WARNING" in ln and "not running as root" in ln]
        check(len(warn) == 1, "%d 'not running as root' warnings, want 1" %
              len(warn))
