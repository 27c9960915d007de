"""The HTTP API fuzzed with schemathesis, once per caller: every role, no token, a garbage token.

The real daemon (subprocess, real mosquitto) is started with every area configured (a door whose reader
does not answer, a meter on a bus nobody listens on, a DC-09 alarm receiver); its own OpenAPI schema at
``/api/v1/openapi.json`` drives the generation. For every operation and caller:

* no response is a 5xx (bad input is the caller's fault: 4xx);
* status code, content type, headers and body conform to what the schema documents;
* the route's roles are enforced: without a token 401, with a valid token of another role 403, a
  garbage token 401 (or 429 once the brute-force limiter slows the address down) — never 2xx.

Which roles a route allows is read from the schema (the bearer requirement's role list, OpenAPI 3.1,
which FastAPI writes from the route's own ``require_role`` dependency) and must equal the table in
CONTRACT.md section 4 and docs/*.md, so a route that lost its dependency, or gained a role, fails here.

Generation is seeded (``derandomize``) so a run is repeatable; the example counts keep the file well
under a minute and a half on two cores.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import requests

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import ROLES, free_port  # noqa: E402

pytestmark = pytest.mark.timeout(150)

V1 = "/api/v1"
PUBLIC: frozenset[str] = frozenset()

#: CONTRACT.md section 4 (and docs/access.md, metering.md, alarms.md, console.md for the routes it does
#: not list). ``admin`` may do everything and is added below; PUBLIC = no token needed.
CONTRACT_ROLES: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/events"): frozenset({"central", "operator"}),
    ("POST", "/test-events"): frozenset(),
    ("GET", "/audit"): frozenset(),
    ("GET", "/cards"): frozenset({"technician", "operator", "central"}),
    ("POST", "/cards"): frozenset({"technician"}),
    ("GET", "/cards/{card}"): frozenset({"technician", "operator", "central"}),
    ("PATCH", "/cards/{card}"): frozenset({"technician"}),
    ("POST", "/cards/{card}/revoke"): frozenset({"technician", "operator"}),
    ("GET", "/cards/{card}/verification"): frozenset({"technician"}),
    ("POST", "/enrolments"): frozenset({"technician"}),
    ("GET", "/enrolments/{enrol_id}"): frozenset({"technician"}),
    ("DELETE", "/enrolments/{enrol_id}"): frozenset({"technician"}),
    ("POST", "/enrolments/{enrol_id}/cancel"): frozenset({"technician"}),
    ("GET", "/doors"): frozenset({"operator"}),
    ("POST", "/doors/{door_id}/unlock"): frozenset({"operator"}),
    ("POST", "/doors/{door_id}/relock"): frozenset({"operator"}),
    ("GET", "/meters"): frozenset({"technician", "operator", "central"}),
    ("POST", "/meters/{meter_id}/valve"): frozenset({"technician", "central"}),
    ("GET", "/readings"): frozenset({"central"}),
    ("GET", "/billing"): frozenset({"central"}),
    ("GET", "/alarms"): frozenset({"operator", "central"}),
    ("GET", "/alarms/{alarm_id}"): frozenset({"operator", "central"}),
    ("POST", "/alarms/{alarm_id}/ack"): frozenset({"operator"}),
    ("GET", "/handover"): frozenset({"operator"}),
    ("POST", "/handover"): frozenset({"operator"}),
    ("GET", "/stream"): frozenset({"operator", "technician", "central"}),
    ("GET", "/console/meters/{meter}/history"): frozenset({"operator", "technician", "central"}),
    ("GET", "/console/events"): frozenset({"operator", "technician", "central"}),
    # the commissioning walk (docs/commissioning.md): technicians walk, the duty room and central follow
    ("POST", "/commissioning"): frozenset({"technician"}),
    ("GET", "/commissioning"): frozenset({"technician", "operator", "central"}),
    ("GET", "/commissioning/{run_id}"): frozenset({"technician", "operator", "central"}),
    ("POST", "/commissioning/{run_id}/steps"): frozenset({"technician"}),
    ("POST", "/commissioning/{run_id}/finish"): frozenset({"technician"}),
    ("GET", "/commissioning/{run_id}/report"): frozenset({"technician", "operator", "central"}),
}

#: Server-Sent Events never end: not fuzzed, its roles are checked by hand below.
NOT_FUZZED = {("GET", f"{V1}/stream")}

#: Examples per operation: where the caller has the role (the interesting case: valid input, then
#: invalid input) and where it has not.
EXAMPLES_ALLOWED = 25
EXAMPLES_INVALID = 12
EXAMPLES_REFUSED = 6
#: admin may call everything; where another role may too, that role's run covers the route in depth
#: (writes cost an fsync each: this keeps the admin run from doubling the file's time)
EXAMPLES_ADMIN_SHARED = (8, 4)
#: ``POST /test-events`` really records that many events: keep the bursts small.
MAX_TEST_EVENTS = 5

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
#: Invalid input gets the same checks: never a 5xx, only documented statuses. schemathesis'
#: ``negative_data_rejection`` (invalid input must be a 4xx) is left out: it counts unknown query parameters
#: (ignored, as HTTP APIs do) and the Authorization header this test replaces with the real one as "invalid
#: input accepted", so it only reports noise here; status_code_conformance still catches an undocumented 2xx/4xx.
NEGATIVE_CHECKS = CHECKS

GARBAGE = "egw_not-a-real-token-0000"


def site_toml() -> str:
    """Every area configured, nothing real behind it (each answers offline/unreachable, the daemon runs)."""
    return f"""
[[readers]]
id = "r1"
driver = "osdp"
port = "socket://127.0.0.1:9"

[[doors]]
id = "d1"
name = "Gate 1"
building = "3"
reader = "r1"

[[buses]]
id = "bus1"
transport = "tcp"
port = "127.0.0.1:9"
timeout_s = 0.2
retries = 0

[[meters]]
id = "hw-3-1-0101"
bus = "bus1"
device_id = 1
profile = "generic-hot-water"
unit = "3-1-0101"

[[alarm_receivers]]
id = "duty-panel"
protocol = "sia-dc09"
listen = "127.0.0.1:{free_port()}"
accounts = ["1234"]

[[alarm_zones]]
receiver = "duty-panel"
zone = 12
building = "3"
name = "B3 stairwell smoke"
unlock_doors = ["d1"]
"""


@pytest.fixture
def gw(gateway_factory: Any) -> Any:
    return gateway_factory(site_toml())


def load_schema(gw: Any) -> Any:
    return schemathesis.openapi.from_url(f"{gw.url}{V1}/openapi.json")


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]  # .ok() raises on a broken operation


def key(op: Any) -> tuple[str, str]:
    return op.method.upper(), op.path


def allowed_roles(raw: dict[str, Any]) -> frozenset[str] | None:
    """None = public; else the roles the schema says may call it (admin included)."""
    if not raw.get("security"):
        return None
    (requirement,) = raw["security"]
    return frozenset(requirement["bearer"])


def prepare(case: Any) -> Any:
    """The test picks the credentials: drop any Authorization schemathesis made up from the bearer scheme
    (a made-up token counts as a guess and would get the address throttled); small test-event bursts."""
    if case.headers:
        case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
    if case.operation.path == f"{V1}/test-events" and isinstance(case.body, dict):
        count = case.body.get("count")
        if isinstance(count, int) and not isinstance(count, bool) and count > MAX_TEST_EVENTS:
            case.body = {**case.body, "count": 1 + count % MAX_TEST_EVENTS}
    return case


def auth_headers(caller: str) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller == "garbage":
        return {"Authorization": f"Bearer {GARBAGE}"}
    return {"Authorization": f"Bearer test-token-{caller}"}


def budget(caller: str, roles: frozenset[str] | None) -> tuple[int, int]:
    """(valid, invalid) examples for ``caller`` on an operation that ``roles`` may call (None = public)."""
    if caller == "garbage":
        return 1, 0
    if roles is not None and caller not in roles:
        return EXAMPLES_REFUSED, 0
    if caller == "admin" and roles is not None and len(roles) > 1:
        return EXAMPLES_ADMIN_SHARED
    return EXAMPLES_ALLOWED, EXAMPLES_INVALID


def fuzz(gw: Any, caller: str) -> tuple[int, list[str]]:
    """Run every operation for ``caller``; returns (requests sent, failures)."""
    schema = load_schema(gw)
    session = requests.Session()
    headers = auth_headers(caller)
    failures: list[str] = []
    sent = 0
    for op in operations(schema):
        if key(op) in NOT_FUZZED:
            continue
        roles = allowed_roles(op.definition.raw)
        may = roles is None or caller in roles
        expect_refusal = None if may else (401 if caller in ("anonymous", "garbage") else 403)
        valid, invalid = budget(caller, roles)
        modes = [(GenerationMode.POSITIVE, valid, CHECKS)]
        if invalid:
            modes.append((GenerationMode.NEGATIVE, invalid, NEGATIVE_CHECKS))
        for mode, count, checks in modes:
            sent += run_operation(gw, op, mode, count, checks, session, headers, caller, expect_refusal, failures)
    return sent, failures


def run_operation(gw: Any, op: Any, mode: Any, count: int, checks: list[Any], session: requests.Session,
                  headers: dict[str, str], caller: str, expect_refusal: int | None, failures: list[str]) -> int:
    """``count`` generated requests to one operation; a failure (shrunk by hypothesis) is appended to ``failures``."""
    sent = 0
    strategy = op.as_strategy(generation_mode=mode).map(prepare)

    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink],
              report_multiple_bugs=False)
    @given(case=strategy)
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        response = case.call(base_url=gw.url, session=session, headers=headers, timeout=10)
        status = response.status_code
        if expect_refusal is None:
            case.validate_response(response, checks=checks, headers=headers)
            return
        # a caller without the role: refused, whatever it sent
        what = f"{op.label} as {caller}: {status} {response.text[:200]}\n    {case.as_curl_command(headers=headers)}"
        assert not 200 <= status < 300, f"reachable without its role: {what}"
        accepted = {expect_refusal, 429} if caller == "garbage" else {expect_refusal}
        assert status in accepted, f"wanted {sorted(accepted)}: {what}"
        assert response.json()["error"]["code"] in ("unauthenticated", "forbidden", "too_many_attempts"), what
        if status == 429:
            retry_after = response.headers["retry-after"]  # schemathesis keeps a list per header
            assert int(retry_after[0] if isinstance(retry_after, list) else retry_after) >= 1, what
        case.validate_response(response, checks=checks, headers=headers)

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
        pass
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - schemathesis' FailureGroup is a BaseExceptionGroup
        failures.append(f"--- {op.label} as {caller} ({mode.value} data):\n{_describe(exc)}")
    return sent


def _describe(exc: BaseException) -> str:
    text = str(exc)
    for sub in getattr(exc, "exceptions", ()):
        text += f"\n  {type(sub).__name__}: {sub}"
    for note in getattr(exc, "__notes__", ()):
        text += f"\n{note}"
    return text[:3000]


# ---------------------------------------------------------------------- the role table
def test_schema_roles_match_the_contract(gw: Any) -> None:
    """Every operation is documented with its roles (from its require_role dependency) and they are the contract's."""
    schema = httpx.get(f"{gw.url}{V1}/openapi.json", timeout=10).json()
    seen: dict[tuple[str, str], frozenset[str] | None] = {}
    for path, item in schema["paths"].items():
        for method, op in item.items():
            assert path.startswith(V1 + "/"), path
            seen[(method.upper(), path[len(V1):])] = allowed_roles(op)
    expected = {k: (None if v is PUBLIC else v | {"admin"}) for k, v in CONTRACT_ROLES.items()}
    assert seen == expected
    # the schema says how to authenticate and what a refusal looks like
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if op.get("security"):
                assert {"401", "403", "429"} <= set(op["responses"]), f"{method} {path}"


# ---------------------------------------------------------------------- the fuzz runs
@pytest.mark.parametrize("caller", [*ROLES, "anonymous"])
def test_fuzz_every_operation(gw: Any, caller: str) -> None:
    started = time.monotonic()
    sent, failures = fuzz(gw, caller)
    assert not failures, f"{len(failures)} operation(s) failed:\n" + "\n".join(failures)
    assert sent >= 20, sent
    # the daemon is still healthy and wrote no traceback
    assert gw.health()["status"] == "ok"
    assert "Traceback" not in gw.log.read_text(), gw.log.read_text()[-3000:]
    print(f"{caller}: {sent} requests in {time.monotonic() - started:.1f} s")


def test_garbage_token_is_refused_everywhere(gw: Any) -> None:
    """One request per operation with a token nobody has: 401, then 429 (Retry-After) once the limiter bites."""
    sent, failures = fuzz(gw, "garbage")
    assert not failures, "\n".join(failures)
    # public routes still answer; the address is being slowed down now, even for a right token
    assert httpx.get(f"{gw.url}{V1}/health", timeout=5).status_code == 200
    r = gw.get(f"{V1}/doors", role="operator")
    assert r.status_code in (200, 429)
    # malformed Authorization headers are no token at all (401, and not counted as guesses)
    for value in ("Bearer", "Basic dGVzdDp0ZXN0", "test-token-admin"):
        r = httpx.get(f"{gw.url}{V1}/audit", headers={"Authorization": value}, timeout=5)
        assert r.status_code in (401, 429), (value, r.status_code)


def test_stream_roles(gw: Any) -> None:
    """``GET /stream`` (SSE, never ends, not fuzzed): the three roles and admin get it, nobody else."""
    for caller in (*ROLES, "anonymous"):
        with httpx.stream("GET", f"{gw.url}{V1}/stream", headers=auth_headers(caller), timeout=5) as r:
            if caller == "anonymous":
                assert r.status_code == 401
            else:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), caller


def test_numbers_beyond_sqlite_are_422_not_500(gw: Any) -> None:
    """Regression (found by the fuzz run): ids and cursors past int64 made SQLite raise OverflowError (500)."""
    huge = 2 ** 64
    for path, role in ((f"{V1}/events?after={huge}", "central"), (f"{V1}/audit?after={huge}", "admin"),
                       (f"{V1}/alarms/{huge}", "operator"), (f"{V1}/readings?after={huge}", "central")):
        r = gw.get(path, role=role)
        assert r.status_code == 422 and r.json()["error"]["code"].startswith("invalid"), (path, r.text)
    r = gw.post(f"{V1}/alarms/{huge}/ack", role="operator", json={"note": "x"})
    assert r.status_code == 422, r.text
    assert gw.get(f"{V1}/events?after={2 ** 63 - 1}", role="central").json()["items"] == []
    assert gw.get(f"{V1}/alarms/{2 ** 63 - 1}", role="operator").status_code == 404


def test_refused_before_anything_happens(gw: Any) -> None:
    """Wrong roles change nothing: a technician cannot unlock, an operator cannot issue."""
    card = {"card": "26:0a1b2c40", "unit": "3-1", "holder": "Fuzz", "holder_kind": "resident", "doors": ["d1"]}
    assert gw.post(f"{V1}/cards", role="operator", json=card).status_code == 403
    assert gw.post(f"{V1}/cards", role="central", json=card).status_code == 403
    assert gw.post(f"{V1}/doors/d1/unlock", role="technician", json={}).status_code == 403
    assert gw.post(f"{V1}/test-events", role="operator", json={"count": 1}).status_code == 403
    assert httpx.post(f"{gw.url}{V1}/cards", json=card, timeout=5).status_code == 401
    assert gw.get(f"{V1}/cards", role="technician").json()["items"] == []
    assert not any(a["action"].startswith("door.unlock") for a in gw.get(f"{V1}/audit").json()["items"])
