"""/docs and /redoc rendered by headless Chromium, with nothing fetched
from another site (the machine has no route to one anyway)."""

import shutil
import subprocess
import tempfile

from harness import check
from test_api import api_daemon


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def dump_dom(url):
    profile = tempfile.mkdtemp(prefix="chromium.")
    try:
        p = subprocess.run([chromium(), "--headless", "--no-sandbox",
                            "--disable-gpu", "--disable-dev-shm-usage",
                            "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            "--no-first-run", "--user-data-dir=" + profile,
                            "--virtual-time-budget=10000", "--dump-dom",
                            url], capture_output=True, timeout=90)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return p.stdout.decode("utf-8", "replace")


def test_docs_in_chromium():
    check(chromium() is not None, "chromium is not installed")
    with api_daemon() as d:
        dom = dump_dom("http://127.0.0.1:%d/docs" % d.port)
        check("swagger-ui" in dom, "Swagger UI did not start")
        for path in ('/api/v1/runners', '/api/v1/runners/{id}/logs',
                     '/metrics'):
            check('data-path="%s"' % path in dom,
                  "/docs shows no operation %s" % path)
        check("opblock-delete" in dom, "no DELETE operation block")
        dom = dump_dom("http://127.0.0.1:%d/redoc" % d.port)
        check("ephemerd REST API" in dom and "/api/v1/runners" in dom,
              "ReDoc did not render the API")
