"""Operations: install, init script, syslog, systemd unit, container,
ephemerctl, manuals and the release script, each run for real.

Slow parts are cached: the base image debian:bookworm (debootstrap, about
a minute the first time) is made only when missing, and the ephemerd image
is rebuilt only when the source tarball's contents change."""

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time

import harness
from harness import (SRCDIR, Daemon, TestFailure, check, request_try,
                     wait_for)

BASE_IMAGE = "debian:bookworm"
IMAGE = "ephemerd-ops-test:latest"
MANUALS = ("ephemerd.8", "ephemerd.yaml.5", "ephemerctl.1")
TEST_ENV = dict(harness.DAEMON_ENV)


def run(args, timeout=120, env=None, ok=True, **kw):
    """Run a command; (status, stdout, stderr) as text."""
    p = subprocess.run(args, capture_output=True, timeout=timeout,
                       env=env, stdin=subprocess.DEVNULL, **kw)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if ok:
        check(p.returncode == 0, "%s: exit %d: %s" %
              (" ".join(args)[:120], p.returncode, (err or out)[-600:]))
    return p.returncode, out, err


def builddir():
    d = os.path.dirname(harness.BINARY)
    check(os.path.isfile(os.path.join(d, "Makefile")),
          "no Makefile next to %s: the build directory is needed" %
          harness.BINARY)
    return d


def make_var(name):
    """A variable of the build's Makefile, expanded by make itself."""
    p = subprocess.run(["make", "-s", "--no-print-directory", "-C",
                        builddir(), "-f", "Makefile", "-f", "-",
                        "ops-print-var"],
                       input=("ops-print-var:\n\t@echo $(%s)\n" % name)
                       .encode(), capture_output=True, timeout=30)
    check(p.returncode == 0, "make cannot print %s: %r" %
          (name, p.stderr[-300:]))
    return p.stdout.decode().strip()


class Staging:
    """`make install DESTDIR=...` of the build, once per run."""

    root = None

    @classmethod
    def get(cls):
        if cls.root is None:
            root = tempfile.mkdtemp(prefix="ephemerd-stage.")
            run(["make", "-C", builddir(), "install", "DESTDIR=" + root],
                timeout=300)
            cls.root = root
            atexit.register(shutil.rmtree, root, True)
        return cls.root

    @classmethod
    def path(cls, var, *rest):
        return os.path.join(cls.get() + make_var(var), *rest)


def supervisors(exe):
    """Pids of the ephemerd supervisors running exe: their parent is not
    an ephemerd of the same file (the init script's rule)."""
    exe = os.path.realpath(exe)
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/exe" % name) != exe:
                continue
        except OSError:
            continue
        st = harness.proc_stat(int(name))
        if st is None or st[0] == "Z":
            continue
        try:
            parent = os.readlink("/proc/%d/exe" % st[1])
        except OSError:
            parent = None
        if parent != exe:
            out.append(int(name))
    return sorted(out)


def wait_gone(pids, timeout):
    wait_for(lambda: not [p for p in pids if harness.alive(p)], timeout,
             "processes %s to exit" % pids)


# ---- a private rsyslogd -------------------------------------------------

class Syslog:
    """rsyslogd with a private configuration that includes the snippet of
    etc/ with its file moved into a temp dir.  It listens on /dev/log when
    there is none; when one exists (another syslog daemon's), it listens
    on a socket of its own, and wrap() runs commands in a mount namespace
    where that socket is bound over /dev/log."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="ephemerd-syslog.")
        self.file = os.path.join(self.tmp, "ephemerd.log")
        self.other = os.path.join(self.tmp, "other.log")
        self.pidfile = os.path.join(self.tmp, "rsyslogd.pid")
        self.proc = None
        self.own_devlog = not os.path.exists("/dev/log")
        self.sock = "/dev/log" if self.own_devlog else \
            os.path.join(self.tmp, "log.sock")
        with open(os.path.join(SRCDIR, "etc", "ephemerd.rsyslog.conf"),
                  encoding="utf-8") as f:
            snippet = f.read()
        check("/var/log/ephemerd.log" in snippet,
              "the rsyslog snippet does not name /var/log/ephemerd.log")
        self.conf = os.path.join(self.tmp, "rsyslog.conf")
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write('global(workDirectory="%s")\n'
                    'module(load="imuxsock" SysSock.Name="%s"\n'
                    '    SysSock.RateLimit.Interval="0")\n'
                    '%s\n'
                    '*.* action(type="omfile" file="%s")\n' %
                    (self.tmp, self.sock,
                     snippet.replace("/var/log/ephemerd.log", self.file),
                     self.other))
        try:
            run(["rsyslogd", "-N1", "-f", self.conf], timeout=30)
            self.err = open(os.path.join(self.tmp, "rsyslogd.err"), "wb")
            self.proc = subprocess.Popen(
                ["rsyslogd", "-n", "-f", self.conf, "-i", self.pidfile],
                stdin=subprocess.DEVNULL, stdout=self.err,
                stderr=self.err)
            wait_for(lambda: os.path.exists(self.sock), 10,
                     "rsyslogd's socket %s" % self.sock)
            self.sock_ino = os.stat(self.sock).st_ino
        except BaseException:
            self.close()
            raise

    def wrap(self, args):
        if self.own_devlog:
            return list(args)
        return ["unshare", "--mount", "--propagation", "private", "sh",
                "-c", 'mount --bind "$0" /dev/log && exec "$@"',
                self.sock] + list(args)

    def lines(self, path=None):
        try:
            with open(path or self.file, encoding="utf-8",
                      errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def wait_line(self, pattern, timeout=10, path=None):
        rx = re.compile(pattern)
        return wait_for(lambda: next((ln for ln in self.lines(path)
                                      if rx.search(ln)), None),
                        timeout, "a syslog line matching /%s/ in %s" %
                        (pattern, path or self.file))

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.err.close()
        # Only our own socket is removed, never another daemon's.
        if self.own_devlog:
            with contextlib.suppress(OSError):
                if os.stat("/dev/log").st_ino == getattr(self, "sock_ino",
                                                         None):
                    os.unlink("/dev/log")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ---- manuals, unit, release script ---------------------------------------

def man_path(name):
    return os.path.join(SRCDIR, "deploy", "man", name)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_manuals_are_clean_and_complete():
    for name in MANUALS:
        rc, out, err = run(["mandoc", "-Tlint", "-Wwarning", man_path(name)],
                           ok=False)
        check(rc == 0 and not out.strip() and not err.strip(),
              "mandoc -Tlint %s: %s" % (name, out + err))
    # The check itself can fail: a page with a broken macro does.
    with tempfile.NamedTemporaryFile("w", suffix=".8") as bad:
        bad.write(read(man_path("ephemerd.8")).replace(".Sh NAME",
                                                       ".Sh", 1))
        bad.flush()
        rc, out, err = run(["mandoc", "-Tlint", "-Wwarning", bad.name],
                           ok=False)
        check(rc != 0, "mandoc -Tlint accepted a broken page")

    eight = read(man_path("ephemerd.8"))
    for sec in ("SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "FILES",
                "SIGNALS", "EXIT STATUS", "SEE ALSO", "CAVEATS"):
        check(".Sh " + sec in eight, "ephemerd.8 has no %s" % sec)
    for flag in "dfnvV":
        check(".Fl %s" % flag in eight or
              re.search(r"\.Op Fl [a-zA-Z]*%s" % flag, eight),
              "ephemerd.8 does not describe -%s" % flag)
    # Every variable that the configuration code reads.
    names = set(re.findall(r'strcmp\(name, "([A-Z_]+)"\)',
                           read(os.path.join(SRCDIR, "lib", "config.c"))))
    check(len(names) >= 10, "found only %r in lib/config.c" % names)
    for var in names | {"runnerenv_", "REGISTRY", "IMAGE_VERSION"}:
        check(var in eight, "ephemerd.8 does not mention %s" % var)

    # Every key of the sample configuration.
    five = read(man_path("ephemerd.yaml.5"))
    keys = set(re.findall(r"^\s*(?:- )?([a-z_]+):",
                          read(os.path.join(SRCDIR, "etc",
                                            "ephemerd.yaml")), re.M))
    check(len(keys) >= 30, "found only %d keys in the sample" % len(keys))
    for key in keys:
        check(re.search(r"\bIc %s\b" % key, five) or
              re.search(r"\.Ss %s\b" % key, five),
              "ephemerd.yaml.5 does not describe the key %s" % key)

    # Every command and option that ephemerctl --help names.
    one = read(man_path("ephemerctl.1"))
    ctl = os.path.join(os.path.dirname(harness.BINARY), "ephemerctl")
    _, out, _ = run([ctl, "--help"], env=TEST_ENV)
    words = set(re.findall(r"^  ([a-z]+)", out, re.M))
    check({"list", "show", "create", "destroy", "logs", "cleanup",
           "health"} <= words, "ephemerctl --help lists %r" % words)
    for w in words:
        check(".It Cm %s" % w in one, "ephemerctl.1 lacks %s" % w)
    for opt in set(re.findall(r"--([a-z-]+)", out)):
        check("Fl -%s" % opt in one, "ephemerctl.1 lacks --%s" % opt)
    for sec in ("EXIT STATUS", "ENVIRONMENT", "SEE ALSO"):
        check(".Sh " + sec in one, "ephemerctl.1 has no %s" % sec)


def test_systemd_unit_verifies():
    unit = read(os.path.join(SRCDIR, "deploy", "systemd",
                             "ephemerd.service"))
    for want in (r"^ExecReload=.*kill -HUP \$MAINPID$",
                 r"^EnvironmentFile=-/etc/default/ephemerd$",
                 r"^ExecStart=/usr/sbin/ephemerd -d ",
                 r"^ProtectSystem=strict$", r"^ProtectHome=yes$",
                 r"^PrivateTmp=yes$", r"^CapabilityBoundingSet=CAP_",
                 r"^Restart=on-failure$", r"^RestartSec=",
                 r"^RestrictAddressFamilies=.*AF_UNIX"):
        check(re.search(want, unit, re.M), "the unit lacks /%s/" % want)
    check(not re.search(r"^PrivateNetwork=yes", unit, re.M),
          "PrivateNetwork would cut ephemerd off GitHub")

    tmp = tempfile.mkdtemp(prefix="ephemerd-unit.")
    try:
        # Man pages for Documentation=, the binary for ExecStart=.
        for name in MANUALS:
            sec = os.path.join(tmp, "man", "man" + name[-1])
            os.makedirs(sec, exist_ok=True)
            shutil.copy(man_path(name), sec)
        env = dict(TEST_ENV, MANPATH=os.path.join(tmp, "man"))
        good = os.path.join(tmp, "ephemerd.service")
        with open(good, "w", encoding="utf-8") as f:
            f.write(unit.replace("/usr/sbin/ephemerd", harness.BINARY))
        rc, out, err = run(["systemd-analyze", "verify", good], env=env,
                           ok=False, timeout=60)
        check(rc == 0 and not (out + err).strip(),
              "systemd-analyze verify: exit %d: %s" % (rc, out + err))
        # It reports a bad unit (with exit 0!), so silence is the test.
        bad_dir = os.path.join(tmp, "bad")
        os.mkdir(bad_dir)
        bad = os.path.join(bad_dir, "ephemerd.service")
        with open(bad, "w", encoding="utf-8") as f:
            f.write(unit.replace("/usr/sbin/ephemerd", harness.BINARY)
                    .replace("Type=exec", "Type=no-such-type"))
        rc, out, err = run(["systemd-analyze", "verify", bad], env=env,
                           ok=False, timeout=60)
        check((out + err).strip(), "a broken unit passed verify")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_release_script_sets_the_version():
    tmp = tempfile.mkdtemp(prefix="ephemerd-release.")
    try:
        os.mkdir(os.path.join(tmp, "deploy"))
        script = os.path.join(tmp, "deploy", "release.sh")
        shutil.copy(os.path.join(SRCDIR, "deploy", "release.sh"), script)
        ac = os.path.join(tmp, "configure.ac")
        shutil.copy(os.path.join(SRCDIR, "configure.ac"), ac)
        before = read(ac)
        old = harness.version_from_configure()
        _, out, _ = run(["sh", script])
        check(out.strip() == old, "it prints %r, not %r" % (out, old))
        for bad in ("1.2", "v1.2.3", "1.2.3;rm", "01.2.3", ""):
            rc, _, err = run(["sh", script, bad], ok=False)
            check(rc == 2 and "not a version" in err,
                  "%r: exit %d %r" % (bad, rc, err))
            check(read(ac) == before, "%r changed configure.ac" % bad)
        run(["sh", script, "7.8.9-rc1"])
        after = read(ac)
        check("AC_INIT([ephemerd], [7.8.9-rc1]" in after,
              "AC_INIT not updated: %r" % after[:200])
        check(after.replace("7.8.9-rc1", old) == before,
              "the script changed more than the version")
        rc, _, _ = run(["sh", script, "7.8.9-rc1"], ok=False)
        check(rc == 1, "setting the same version again succeeded")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- install ----------------------------------------------------------

def test_install_into_staging_root():
    root = Staging.get()
    sbin = Staging.path("sbindir", "ephemerd")
    ctl = Staging.path("bindir", "ephemerctl")
    conf = Staging.path("sysconfdir", "ephemerd", "ephemerd.yaml")
    man = Staging.path("mandir")
    share = Staging.path("datadir", "ephemerd")
    for path in (sbin, ctl):
        check(os.access(path, os.X_OK), "%s is not installed" % path)
    for name in MANUALS:
        path = os.path.join(man, "man" + name[-1], name)
        check(os.path.isfile(path), "%s is not installed" % path)
    sample = read(os.path.join(SRCDIR, "etc", "ephemerd.yaml"))
    check(read(conf) == sample, "%s is not the sample" % conf)
    for name in ("ephemerd.default", "ephemerd.rsyslog.conf",
                 "ephemerd.logrotate", "ephemerd.service"):
        check(os.path.isfile(os.path.join(share, name)),
              "%s/%s is not installed" % (share, name))
    init = os.path.join(share, "ephemerd.init")
    check(os.access(init, os.X_OK), "%s is not executable" % init)
    unit = read(os.path.join(share, "ephemerd.service"))
    check("ExecStart=%s -d -f %s\n" % (make_var("sbindir") + "/ephemerd",
                                       make_var("sysconfdir") +
                                       "/ephemerd/ephemerd.yaml") in unit,
          "the installed unit does not use the prefix's paths")

    _, out, _ = run([sbin, "-V"], env=TEST_ENV)
    check(out.strip() == "ephemerd " + harness.version_from_configure(),
          "ephemerd -V: %r" % out)
    _, out, _ = run([sbin, "-n", "-f", conf], env=TEST_ENV)
    check("configuration OK" in out, "the sample does not check: %r" % out)

    # A second install keeps an edited configuration...
    with open(conf, "a", encoding="utf-8") as f:
        f.write("# edited by the operator\n")
    run(["make", "-C", builddir(), "install", "DESTDIR=" + root],
        timeout=300)
    check(read(conf).endswith("# edited by the operator\n"),
          "make install overwrote the configuration")
    # ...and uninstall removes everything else.
    run(["make", "-C", builddir(), "uninstall", "DESTDIR=" + root],
        timeout=120)
    left = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    check(left == [conf], "after uninstall: %r" % left)
    os.unlink(conf)
    run(["make", "-C", builddir(), "install", "DESTDIR=" + root],
        timeout=300)
    check(read(conf) == sample, "the sample is not installed again")
    _, out, _ = run(["du", "-sk", root])
    print("INFO installed size: %s KiB (binaries with the build's "
          "flags)" % out.split()[0], flush=True)


# ---- init script and syslog -------------------------------------------

def init_env(defaults):
    env = dict(TEST_ENV, EPHEMERD_DEFAULTS=defaults)
    return env


def test_init_script_start_status_reload_restart_stop():
    init = Staging.path("datadir", "ephemerd", "ephemerd.init")
    daemon = Staging.path("sbindir", "ephemerd")
    check(not supervisors(daemon), "an ephemerd of %s already runs" % daemon)
    with Syslog() as sl, Daemon(start=False) as d:
        # The port comes from the environment file, not the configuration:
        # its variables must reach the daemon.
        port = harness.free_port()
        pidfile = os.path.join(d.tmp, "ephemerd.pid")
        defaults = os.path.join(d.tmp, "default")
        with open(defaults, "w", encoding="utf-8") as f:
            f.write("DAEMON=%s\nCONFIG=%s\nPIDFILE=%s\n"
                    "API_GATEWAY_PORT=%d\n" % (daemon, d.config, pidfile,
                                               port))
        env = init_env(defaults)

        def svc(action, ok=True):
            return run(sl.wrap(["sh", init, action]), env=env, ok=ok,
                       timeout=90)

        started = []
        try:
            svc("start")
            pid = int(read(pidfile))
            started.append(pid)
            check(supervisors(daemon) == [pid],
                  "pid file %d, supervisors %r" % (pid,
                                                   supervisors(daemon)))
            check(harness.role_of(pid) == "supervisor",
                  "pid %d is %r" % (pid, harness.proc_cmdline(pid)))
            wait_for(lambda: (lambda r: r is not None and r.status == 200)
                     (request_try("GET", port, "/health")), 20,
                     "the API on port %d (API_GATEWAY_PORT)" % port)
            sl.wait_line(r"ephemerd\[%d\]: START supervisor: " % pid)
            for role in ("httpd", "poller", "docker"):
                sl.wait_line(r"ephemerd\[%d\]: START %s: " % (pid, role))

            svc("start")
            check(int(read(pidfile)) == pid, "a second start restarted it")
            _, out, _ = svc("status")
            check(str(pid) in out, "status: %r" % out)

            svc("reload")
            sl.wait_line(r"ephemerd\[%d\]: CONFIG supervisor: reloaded "
                         % pid)
            check(harness.alive(pid), "reload killed it")

            # A broken file is refused before the daemon is signalled.
            good = read(d.config)
            with open(d.config, "a", encoding="utf-8") as f:
                f.write("no_such_key: 1\n")
            rc, out, err = svc("reload", ok=False)
            check(rc != 0, "reload with a broken file succeeded")
            with open(d.config, "w", encoding="utf-8") as f:
                f.write(good)

            svc("restart")
            new = int(read(pidfile))
            started.append(new)
            check(new != pid and not harness.alive(pid),
                  "restart: old %d, new %d" % (pid, new))
            wait_for(lambda: (lambda r: r is not None and r.status == 200)
                     (request_try("GET", port, "/health")), 20,
                     "the API after restart")

            kids = harness.children_of(new)
            svc("stop")
            wait_gone([new] + kids, 5)
            check(not os.path.exists(pidfile), "stop left the pid file")
            sl.wait_line(r"ephemerd\[%d\]: SHUTDOWN supervisor: " % new)
            rc, out, _ = svc("status", ok=False)
            check(rc == 3, "status after stop: %d %r" % (rc, out))
            svc("stop")
            check(not [ln for ln in sl.lines(sl.other) if "ephemerd[" in
                       ln], "ephemerd's lines reached the catch-all file")
        finally:
            for p in supervisors(daemon):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGTERM)
            with contextlib.suppress(TestFailure):
                wait_gone(supervisors(daemon), 10)


def test_syslog_without_d_and_logrotate():
    with Syslog() as sl, Daemon(start=False) as d:
        before = set(supervisors(harness.BINARY))
        run(sl.wrap([harness.BINARY, "-f", d.config]), env=TEST_ENV,
            timeout=30)
        pid = wait_for(lambda: (lambda s: s[0] if len(s) == 1 else None)
                       (sorted(set(supervisors(harness.BINARY)) - before)),
                       10, "the detached supervisor")
        try:
            check(harness.proc_stat(pid)[1] != os.getpid(),
                  "ephemerd did not detach")
            for role in ("supervisor", "httpd", "poller", "docker"):
                sl.wait_line(r"ephemerd\[%d\]: START %s: " % (pid, role))
            wait_for(lambda: (lambda r: r is not None and r.status == 200)
                     (request_try("GET", d.port, "/health")), 20,
                     "the API")
            # The snippet's "stop": nothing of ephemerd elsewhere, while
            # other programs still are.
            run(sl.wrap(["logger", "-t", "not-ephemerd", "hello other"]))
            sl.wait_line("not-ephemerd: hello other", path=sl.other)
            check(not [ln for ln in sl.lines(sl.other)
                       if "ephemerd[" in ln],
                  "ephemerd's lines reached the catch-all file")
            check(not [ln for ln in sl.lines() if "not-ephemerd" in ln],
                  "another program's line reached ephemerd.log")
            check(d.token not in "\n".join(sl.lines()),
                  "the GitHub token is in the log")

            # logrotate with the entry of etc/, on the temp file.
            entry = read(os.path.join(SRCDIR, "etc", "ephemerd.logrotate"))
            check("/var/log/ephemerd.log" in entry and
                  "/run/rsyslogd.pid" in entry, "unexpected logrotate entry")
            conf = os.path.join(sl.tmp, "logrotate.conf")
            with open(conf, "w", encoding="utf-8") as f:
                f.write(entry.replace("/var/log/ephemerd.log", sl.file)
                        .replace("/run/rsyslogd.pid", sl.pidfile)
                        .replace("create 0640 root adm",
                                 "create 0640 root root"))
            run(["logrotate", "-f", "-s", os.path.join(sl.tmp, "state"),
                 conf], timeout=30)
            rotated = sl.file + ".1"
            check(os.path.isfile(rotated), "no %s after rotation" % rotated)
            check(any("START supervisor" in ln for ln in
                      sl.lines(rotated)), "the old lines were not rotated")
            os.kill(pid, signal.SIGHUP)
            sl.wait_line(r"ephemerd\[%d\]: CONFIG supervisor: reloaded "
                         % pid)
            check(not any("START" in ln for ln in sl.lines()),
                  "the new file holds old lines")
        finally:
            kids = harness.children_of(pid)
            os.kill(pid, signal.SIGTERM)
            wait_gone([pid] + kids, 10)
        sl.wait_line(r"ephemerd\[%d\]: SHUTDOWN supervisor: " % pid)


# ---- container ----------------------------------------------------------

def docker(*args, timeout=120, ok=True):
    return run(["docker"] + list(args), timeout=timeout, ok=ok)


def ensure_base_image():
    """debian:bookworm from debootstrap, when no such image exists."""
    rc, _, _ = docker("image", "inspect", BASE_IMAGE, ok=False)
    if rc == 0:
        return
    check(shutil.which("debootstrap") is not None,
          "debootstrap is missing (apt-get install debootstrap)")
    t0 = time.monotonic()
    root = tempfile.mkdtemp(prefix="ephemerd-bookworm.")
    try:
        run(["debootstrap", "--variant=minbase", "bookworm", root,
             "http://deb.debian.org/debian"], timeout=900)
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."],
                               stdout=subprocess.PIPE)
        p = subprocess.run(["docker", "import", "-", BASE_IMAGE],
                           stdin=tar.stdout, capture_output=True,
                           timeout=300)
        tar.stdout.close()
        tar.wait()
        check(p.returncode == 0, "docker import: %r" % p.stderr[-300:])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("INFO made %s with debootstrap in %.0f s" %
          (BASE_IMAGE, time.monotonic() - t0), flush=True)


def tarball_digest(path):
    """A digest of the files in a tarball, whatever their time stamps."""
    h = hashlib.sha256()
    with tarfile.open(path) as tf:
        for m in sorted(tf.getmembers(), key=lambda m: m.name):
            h.update(m.name.encode() + b"\0" + str(m.mode).encode())
            if m.isfile():
                h.update(tf.extractfile(m).read())
    return h.hexdigest()


def ensure_image(tmp):
    """The image of deploy/Dockerfile, built from `make dist`'s tarball;
    reused while the tarball's contents are the same."""
    run(["make", "-C", builddir(), "dist-gzip"], timeout=300)
    version = harness.version_from_configure()
    tarball = os.path.join(builddir(), "ephemerd-%s.tar.gz" % version)
    digest = tarball_digest(tarball)
    rc, out, _ = docker("image", "inspect", "--format",
                        '{{index .Config.Labels "io.ephemerd.source"}}',
                        IMAGE, ok=False)
    if rc == 0 and out.strip() == digest:
        return
    ctx = os.path.join(tmp, "context")
    os.mkdir(ctx)
    shutil.move(tarball, ctx)
    shutil.copy(os.path.join(SRCDIR, "deploy", "Dockerfile"), ctx)
    t0 = time.monotonic()
    docker("build", "--network", "host", "--label",
           "io.ephemerd.source=" + digest, "-t", IMAGE, ctx, timeout=900)
    print("INFO built %s in %.0f s" % (IMAGE, time.monotonic() - t0),
          flush=True)


def test_container_deploy():
    ensure_base_image()
    tmp = tempfile.mkdtemp(prefix="ephemerd-image.")
    name = "ephemerd-ops-%d" % os.getpid()
    try:
        ensure_image(tmp)
        rc, _, _ = docker("run", "--rm", "--entrypoint", "sh", IMAGE, "-c",
                          "command -v gcc || command -v cc", ok=False)
        check(rc != 0, "the run stage holds a compiler")
        _, out, _ = docker("run", "--rm", IMAGE, "-V")
        check(out.strip() == "ephemerd " + harness.version_from_configure(),
              "ephemerd -V in the image: %r" % out)
        _, size, _ = docker("image", "inspect", "--format", "{{.Size}}",
                            IMAGE)
        print("INFO image size: %.0f MB" % (int(size) / 1e6), flush=True)

        with Daemon(start=False) as d:
            docker("run", "-d", "--name", name, "--network", "host",
                   "--health-interval", "1s", "--health-start-period",
                   "1s", "-e", "API_GATEWAY_PORT=%d" % d.port,
                   "-v", "/var/run/docker.sock:/var/run/docker.sock",
                   "-v", "%s:%s" % (d.tmp, d.tmp), IMAGE, "-f", d.config)
            try:
                def healthy():
                    r = request_try("GET", d.port, "/api/v1/health")
                    return r is not None and r.status == 200 and \
                        r.json()["data"]["healthy"] is True
                wait_for(healthy, 30, "/api/v1/health of the container")
                _, out, _ = docker("exec", name, "ephemerctl", "--url",
                                   "http://127.0.0.1:%d" % d.port,
                                   "health")
                check("healthy" in out and "Docker" in out,
                      "ephemerctl health in the container: %r" % out)
                wait_for(lambda: docker(
                    "inspect", "--format", "{{.State.Health.Status}}",
                    name)[1].strip() == "healthy", 30,
                    "Docker's HEALTHCHECK to pass")
                docker("stop", "-t", "20", name, timeout=60)
                _, code, _ = docker("inspect", "--format",
                                    "{{.State.ExitCode}}", name)
                check(code.strip() == "0", "exit code %s" % code.strip())
                _, out, err = docker("logs", name)
                check("START supervisor:" in out + err and
                      "SHUTDOWN supervisor:" in out + err,
                      "the container's log: %r" % (out + err)[-500:])
            finally:
                docker("rm", "-f", name, ok=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_compose_file_and_env_example():
    env_example = read(os.path.join(SRCDIR, "deploy", ".env.example"))
    assigned = dict(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$",
                               env_example, re.M))
    names = set(re.findall(r'strcmp\(name, "([A-Z_]+)"\)',
                           read(os.path.join(SRCDIR, "lib", "config.c"))))
    check(len(names) >= 10, "found only %r in lib/config.c" % names)
    for var in names | {"REGISTRY", "IMAGE_VERSION"}:
        check(var in assigned, ".env.example does not set %s" % var)
        # Each one is explained by a comment somewhere above it.
    check(any(k.startswith("runnerenv_") for k in assigned),
          ".env.example has no runnerenv_NAME")

    # The example with a token, and the image's configuration, check.
    env = dict(TEST_ENV, **assigned)
    env["GITHUB_RUNNER_TOKEN"] = "ghp_" + "0" * 36
    _, out, _ = run([harness.BINARY, "-n", "-f",
                     os.path.join(SRCDIR, "deploy",
                                  "ephemerd.container.yaml")], env=env)
    check("configuration OK" in out, "-n: %r" % out)

    tmp = tempfile.mkdtemp(prefix="ephemerd-compose.")
    try:
        shutil.copy(os.path.join(SRCDIR, "deploy", "compose.yaml"), tmp)
        with open(os.path.join(tmp, ".env"), "w", encoding="utf-8") as f:
            f.write(env_example.replace("API_GATEWAY_PORT=8080",
                                        "API_GATEWAY_PORT=9191"))
        compose = shutil.which("docker-compose")
        if compose is None:
            import yaml
            with open(os.path.join(tmp, "compose.yaml")) as f:
                svc = yaml.safe_load(f)["services"]["ephemerd"]
            check("/var/run/docker.sock:/var/run/docker.sock" in
                  svc["volumes"], "docker.sock is not mounted")
            print("INFO docker-compose missing; compose.yaml parsed only",
                  flush=True)
            return
        _, out, _ = run([compose, "-f", os.path.join(tmp, "compose.yaml"),
                         "config"], cwd=tmp, timeout=60)
        import yaml
        cfg = yaml.safe_load(out)["services"]["ephemerd"]
        check(cfg["environment"].get("API_GATEWAY_PORT") == "9191",
              "env_file not read: %r" % cfg.get("environment"))
        ports = json.dumps(cfg["ports"])
        check("9191" in ports and "127.0.0.1" in ports,
              "ports %s" % ports)
        check(any(v.get("target") == "/var/run/docker.sock" if
                  isinstance(v, dict) else "docker.sock" in v
                  for v in cfg["volumes"]), "volumes %r" % cfg["volumes"])
        check(cfg["image"] == "local/ephemerd:latest",
              "image %r" % cfg["image"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- ephemerctl against the daemon ----------------------------------------

def ctl(d, *args, env=None, ok=None):
    binary = os.path.join(os.path.dirname(harness.BINARY), "ephemerctl")
    e = dict(TEST_ENV, EPHEMERD_URL="http://127.0.0.1:%d" % d.port,
             EPHEMERD_TOKEN=getattr(d, "api_token", ""))
    e.update(env or {})
    rc, out, err = run([binary] + list(args), env=e, ok=False, timeout=180)
    report = harness.sanitizer_report(out + err)
    check(not report, "ephemerctl: sanitizer report: " + report)
    if ok is not None:
        check(rc == ok, "ephemerctl %s: exit %d, want %d: %s" %
              (" ".join(args), rc, ok, (err or out)[-400:]))
    return rc, out, err


def test_ephemerctl_against_the_daemon():
    import test_runners as tr
    tr.build_runner_image()
    tr.remove_managed()
    with Daemon(pools=tr.pool(max_runners=4), start=False) as d:
        # With API tokens, a write without one is refused.
        token = "ops-" + os.urandom(8).hex()
        text = read(d.config).replace(
            '  listen: "127.0.0.1:%d"\n' % d.port,
            '  listen: "127.0.0.1:%d"\n  api_tokens: ["%s"]\n' %
            (d.port, token))
        d.write(text=text)
        d.start()
        d.api_token = token
        auth = {"EPHEMERD_TOKEN": token}
        try:
            _, out, _ = ctl(d, "health", ok=0)
            check(re.search(r"^PROCESS +STATUS +PID +DETAIL$", out, re.M)
                  and out.rstrip().endswith("healthy"), "health: %r" % out)
            for role in ("supervisor", "httpd", "poller", "docker"):
                check(re.search(r"^%s +ok +%d " % (role, d.roles()[role]
                                                   if role != "supervisor"
                                                   else d.pid), out, re.M),
                      "health has no line for %s: %r" % (role, out))
            _, out, _ = ctl(d, "list", ok=0)
            check(out == "no runners\n", "list: %r" % out)
            _, out, _ = ctl(d, "--json", "list", ok=0)
            check(json.loads(out)["data"] == [], "--json list: %r" % out)

            _, _, err = ctl(d, "show", "nope", ok=1)
            check("no such runner: nope" in err, "show: %r" % err)
            _, _, err = ctl(d, "create", "--scope", "repo", "--scope-name",
                            "not a repo", env=auth, ok=1)
            check("scope_name" in err and "HTTP 400" in err,
                  "create with a bad name: %r" % err)
            ctl(d, "create", "--scope", "team", "--scope-name", "a", ok=2)
            _, _, err = ctl(d, "create", "--scope", "repo", "--scope-name",
                            "octo/hello", env={"EPHEMERD_TOKEN": ""}, ok=1)
            check("HTTP 401" in err, "create without the token: %r" % err)
            check(token not in err, "the token is in an error message")

            _, out, _ = ctl(d, "create", "--scope", "repo", "--scope-name",
                            "octo/hello", "--count", "2", env=auth, ok=0)
            names = re.findall(r"^(\S+) +created +", out, re.M)
            check(len(names) == 2, "create: %r" % out)
            _, out, _ = ctl(d, "list", ok=0)
            for n in names:
                check(re.search(r"^%s +\w+ +default +octo/hello " %
                                re.escape(n), out, re.M),
                      "list lacks %s: %r" % (n, out))
            _, out, _ = ctl(d, "show", names[0], ok=0)
            check(re.search(r"^runner_id: +%s$" % re.escape(names[0]), out,
                            re.M) and "  io.ephemerd.pool:" in out,
                  "show: %r" % out)
            wait_for(lambda: "registered" in ctl(d, "logs", names[0],
                                                 "--tail", "20")[1],
                     30, "the runner's registration in its log")
            _, out, _ = ctl(d, "destroy", names[0], env=auth, ok=0)
            check(names[0] in out, "destroy: %r" % out)
            wait_for(lambda: names[0] not in tr.managed_containers(
                all_states=True), 20, "the container to go")
            _, out, _ = ctl(d, "cleanup", env=auth, ok=0)
            check(out.startswith("removed "), "cleanup: %r" % out)
            ctl(d, "destroy", names[1], env=auth, ok=0)

            rc, _, err = ctl(d, "list", env={
                "EPHEMERD_URL": "http://127.0.0.1:%d" % harness.free_port()})
            check(rc == 3 and "cannot reach" in err, "down: %d %r" %
                  (rc, err))
        finally:
            tr.remove_managed()
