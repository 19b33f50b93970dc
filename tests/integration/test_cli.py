"""The command line: -V, and -n on good, broken and missing files."""

import os
import re
import shutil
import tempfile

from harness import SRCDIR, check, run_binary, version_from_configure


def with_file(text, fn):
    tmp = tempfile.mkdtemp(prefix="ephemerd-cli.")
    try:
        path = os.path.join(tmp, "ephemerd.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return fn(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_version():
    want = "ephemerd " + version_from_configure()
    rc, out, err = run_binary(["-V"])
    check(rc == 0, "-V exited %d: %s" % (rc, err.strip()))
    check(out.strip() == want, "-V printed %r, want %r" %
          (out.strip() or err.strip(), want))


def test_configtest_sample():
    sample = os.path.join(SRCDIR, "etc", "ephemerd.yaml")
    check(os.path.exists(sample), "no etc/ephemerd.yaml in the tree")
    rc, out, err = run_binary(["-n", "-f", sample])
    check(rc == 0, "-n on the sample exited %d: %s" % (rc, err.strip()))
    check("configuration OK" in out + err,
          "no 'configuration OK' in %r" % (out + err))


GOOD = """user: _ephemerd
chroot: ""
log:
  level: info
discovery:
  interval: 60
pools:
  - name: default
    image: busybox:latest
"""


def test_configtest_minimal_ok():
    rc, out, err = with_file(GOOD, lambda p: run_binary(["-n", "-f", p]))
    check(rc == 0, "-n on a minimal valid file exited %d: %s" %
          (rc, err.strip()))
    check("configuration OK" in out + err, "no 'configuration OK'")


def expect_error_at(text, line, what):
    def run(path):
        rc, out, err = run_binary(["-n", "-f", path])
        check(rc == 1, "%s: -n exited %d, want 1" % (what, rc))
        check("configuration OK" not in out + err,
              "%s: said configuration OK" % what)
        m = re.search(re.escape(path) + r":(\d+):", err)
        check(m is not None, "%s: no '%s:LINE:' in stderr %r" %
              (what, path, err.strip()))
        check(int(m.group(1)) == line, "%s: error names line %s, want %d" %
              (what, m.group(1), line))
    with_file(text, run)


def test_configtest_unknown_key():
    text = GOOD.replace("  level: info\n", "  level: info\n  colour: red\n")
    expect_error_at(text, 5, "unknown key log.colour")
    text = GOOD + "    flavour: vanilla\n"
    expect_error_at(text, 10, "unknown key in a pool")


def test_configtest_wrong_type():
    text = GOOD.replace("interval: 60", "interval: sixty")
    expect_error_at(text, 6, "interval: sixty")
    text = GOOD.replace("chroot: \"\"", "chroot: [a, b]")
    expect_error_at(text, 2, "chroot as a list")


def test_configtest_missing_file():
    tmp = tempfile.mkdtemp(prefix="ephemerd-cli.")
    try:
        path = os.path.join(tmp, "absent.yaml")
        rc, out, err = run_binary(["-n", "-f", path])
        check(rc == 1, "missing file: exited %d, want 1" % rc)
        check(path in err, "missing file: stderr does not name it: %r" %
              err.strip())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
