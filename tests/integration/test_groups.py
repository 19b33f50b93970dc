"""Runner groups: a POST or a pool names an organization's runner group
by name; ephemerd looks its id up once and registers JIT runners in it.
An unknown group is a clear error that starts nothing."""

import harness
from harness import Daemon, check, request
import test_runners as tr

ORG = "octo-org"
GROUP_POOL = tr.POOL + """\
  - name: grouped
    labels: [self-hosted, linux, grouped]
    image: %(image)s
    network: host
    max_runners: 4
    runner_group: big
    env:
      EPHEMERD_JIT_CONFIG: "{jit_config}"
      RUNNER_IDLE_SECONDS: "60"
"""


def post(d, body):
    r = request("POST", d.port, "/api/v1/runners", body=body, timeout=120)
    return r.status, r.json()


def registered(d):
    """{runner name: runner group id} as the double has them."""
    return {r["name"]: r["runner_group_id"]
            for r in d.double.control("GET", "runners")}


def group_lookups(d):
    return [r for r in d.double.requests()
            if "/actions/runner-groups" in r["path"]]


def test_runner_groups_by_name():
    tr.build_runner_image()
    d = Daemon(pools=GROUP_POOL % {"image": tr.RUNNER_IMAGE, "max": 4},
               start=False)
    try:
        big = d.double.control("POST", "runner-groups",
                               {"org": ORG, "name": "big"})
        d.start()
        harness.wait_for(lambda: d.api_health()[0].status == 200, 20,
                         "/api/v1/health to be healthy")

        # By the POST's runner_group, in any case.
        st, env = post(d, {"scope": "org", "scope_name": ORG,
                           "runner_group": "BIG", "count": 2})
        check(st == 201, "POST with runner_group: %d %r" % (st, env))
        names = [x["runner_id"] for x in env["data"]]
        groups = registered(d)
        check(all(groups.get(n) == big["id"] for n in names),
              "runners not in group %d: %r" % (big["id"], groups))

        # By the pool's runner_group; the id is remembered.
        st, env = post(d, {"scope": "org", "scope_name": ORG,
                           "labels": ["grouped"]})
        check(st == 201, "POST to the grouped pool: %d %r" % (st, env))
        name = env["data"][0]["runner_id"]
        check(registered(d).get(name) == big["id"],
              "the pool's runner is not in group big: %r" % registered(d))
        check(len(group_lookups(d)) == 1, "the group was looked up %d "
              "times, want once" % len(group_lookups(d)))

        # An unknown group: a clear error, no registration, no container.
        before = set(registered(d))
        st, env = post(d, {"scope": "org", "scope_name": ORG,
                           "runner_group": "nope", "count": 1})
        check(400 <= st < 500 and 'no runner group named "nope"' in
              env["message"], "unknown group: %d %r" % (st, env))
        check(set(registered(d)) == before,
              "an unknown group registered a runner")
        live = set(tr.managed_containers())
        check(live == set(names) | {name},
              "containers %r, want %r" % (live, set(names) | {name}))

        # Repository runners can only join the Default group.
        st, env = post(d, {"scope": "repo", "scope_name": ORG + "/api",
                           "runner_group": "big", "count": 1})
        check(st == 400 and "Default" in env["message"],
              "repo runner in a group: %d %r" % (st, env))
    finally:
        try:
            d.close()
        finally:
            tr.remove_managed()
