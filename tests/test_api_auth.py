"""Authentication (BPM_AUTH=jwt / apikey) and the authorisation rules of bpm/api/policy.py, on every backend."""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from app import create_app
from backends.base import Backend
from backends.memory import MemoryBackend
from tests.api_support import BASE, Api, fails, make_app, ok
from tests.auth_support import (
    AUDIENCE,
    AUTH_CONFIG,
    CRM_KEY,
    ISSUER,
    OPS_KEY,
    SECRET,
    as_admin,
    as_user,
    bearer,
    claims,
    ec_key_pair,
    hand_made,
    mint,
    rsa_key_pair,
)
from tests.conftest import PROCESSES, ROOT

REVIEW = (PROCESSES / "parallel_review.bpmn").read_bytes()


@pytest.fixture
def app(backend: Backend) -> Flask:
    return make_app(backend, **AUTH_CONFIG)


class AuthApi(Api):
    """The API client with a caller's headers on every call."""

    def __init__(self, app: Flask, headers: dict[str, str]) -> None:
        super().__init__(app.test_client())
        self.headers = headers

    def call(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(BASE + path, method=method, headers=headers, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("DELETE", path, **kwargs)

    def identity(self, user: str, groups: Any = (), roles: Any = ()) -> None:
        ok(self.put(f"/identity/{user}", json={"groups": list(groups), "roles": list(roles)}))


@pytest.fixture
def admin(app: Flask) -> AuthApi:
    """An administrator (API key in BPM_API_KEY_ADMINS) to set things up."""
    return AuthApi(app, {"X-API-Key": OPS_KEY})


def caller(app: Flask, kind: str, *, admin_role: bool = False, user: str = "alice", **token: Any) -> AuthApi:
    """A JWT user or an API-key backend, with or without the admin role."""
    if kind == "apikey":
        return AuthApi(app, {"Authorization": f"Bearer {OPS_KEY if admin_role else CRM_KEY}"})
    if admin_role:
        token["roles"] = [*token.get("roles", []), "admin"]
    return AuthApi(app, as_user(user, **token))


def challenge_of(response: TestResponse) -> str:
    value = response.headers.get("WWW-Authenticate", "")
    assert value.startswith('Bearer realm="bpm-runtime"'), value
    return value


# -- authentication ---------------------------------------------------------------------------


def _protected_routes(app: Flask) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(BASE):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", "x", rule.rule)
        routes += [(method, path) for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return routes


def test_every_api_route_needs_credentials(app: Flask) -> None:
    client = app.test_client()
    routes = _protected_routes(app)
    assert (
        len(routes) == 37
    )  # all but /health (31, the two form routes, the two diagram.svg routes, /condition, /instances)
    for method, path in routes:
        response = client.open(path, method=method, json={})
        body = fails(response, 401, "UNAUTHORIZED")
        assert body["data"] is None
        assert challenge_of(response) == 'Bearer realm="bpm-runtime"', (method, path)


def test_health_openapi_docs_and_preflights_stay_public(app: Flask) -> None:
    client = app.test_client()
    ok(client.get("/health"))
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.get_json()["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    assert spec.get_json()["paths"]["/health"]["get"]["security"] == []
    assert client.get("/docs").status_code == 200
    assert client.options(f"{BASE}/tasks").status_code == 200


def test_a_valid_token_or_key_is_accepted(app: Flask) -> None:
    client = app.test_client()
    ok(client.get(f"{BASE}/processes", headers=as_user("alice")))
    ok(client.get(f"{BASE}/processes", headers=bearer(CRM_KEY)))
    ok(client.get(f"{BASE}/processes", headers={"X-API-Key": CRM_KEY}))
    ok(client.get(f"{BASE}/processes", headers={"authorization": f"bearer   {mint('bob')}"}))


def _bad_tokens() -> dict[str, str]:
    now = int(time.time())
    return {
        "expired": mint(exp=now - 3600),
        "not yet valid": mint(nbf=now + 3600),
        "wrongly signed": mint(key=SECRET.upper()),
        "wrong issuer": mint(iss="https://evil.example"),
        "wrong audience": mint(aud="another-service"),
        "no audience": mint(aud=None),
        "no issuer": mint(iss=None),
        "no expiry": jwt.encode({k: v for k, v in claims().items() if k != "exp"}, SECRET, algorithm="HS256"),
        "alg none": hand_made({"alg": "none", "typ": "JWT"}, claims(roles=["admin"])),
        "alg None with signature": hand_made({"alg": "None", "typ": "JWT"}, claims(), SECRET.encode()),
        "algorithm not configured": mint(algorithm="HS512"),
        "payload tampered": _tampered(mint("alice"), claims("root", roles=["admin"])),
        "no user": mint(None),
        "empty user": mint(""),
        "user not a string": jwt.encode({**claims(None), "sub": 42}, SECRET, algorithm="HS256"),
        "groups not a list": mint(groups={"a": 1}),
        "garbage": "a.b.c",
        "not base64": "@@@.###.$$$",
        "two parts": "eyJhbGciOiJIUzI1NiJ9.e30",
        "unknown api key": "not-a-known-api-key",
    }


def _tampered(token: str, payload: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    forged = hand_made({"alg": "HS256", "typ": "JWT"}, payload).split(".")[1]
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize("case", list(_bad_tokens()))
def test_bad_tokens_are_401(app: Flask, case: str) -> None:
    token = _bad_tokens()[case]
    response = app.test_client().get(f"{BASE}/tasks", headers=bearer(token))
    body = fails(response, 401, "UNAUTHORIZED")
    assert 'error="invalid_' in challenge_of(response)
    assert SECRET not in response.get_data(as_text=True)
    assert body["message"].endswith(".")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic YWxpY2U6cHc="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer two words"},
        {"Authorization": "Bearer " + "a" * 9000},
        {"Authorization": "Token abc"},
        {"X-API-Key": "wrong"},
        {"X-API-Key": ""},
        {"X-API-Key": "x" * 600},
    ],
)
def test_malformed_credentials_are_401(app: Flask, headers: dict[str, str]) -> None:
    response = app.test_client().get(f"{BASE}/processes", headers=headers)
    fails(response, 401, "UNAUTHORIZED")
    assert "error=" in challenge_of(response)


def test_clock_skew_leeway(backend: Backend) -> None:
    client = make_app(backend, **AUTH_CONFIG, BPM_JWT_LEEWAY=30).test_client()
    now = int(time.time())
    ok(client.get(f"{BASE}/processes", headers=bearer(mint(exp=now - 10))))
    ok(client.get(f"{BASE}/processes", headers=bearer(mint(nbf=now + 10))))
    fails(client.get(f"{BASE}/processes", headers=bearer(mint(exp=now - 90))), 401, "UNAUTHORIZED")


def test_rs256_and_es256_public_keys(tmp_path: Path) -> None:
    rsa_private, rsa_file = rsa_key_pair(tmp_path)
    ec_private, ec_file = ec_key_pair(tmp_path)
    base = {k: v for k, v in AUTH_CONFIG.items() if k != "BPM_JWT_SECRET"} | {"BPM_AUTH": "jwt"}
    rsa_app = make_app(MemoryBackend(), **base, BPM_JWT_PUBLIC_KEY_FILE=str(rsa_file)).test_client()
    ec_app = make_app(MemoryBackend(), **base, BPM_JWT_PUBLIC_KEY_FILE=str(ec_file)).test_client()
    ok(rsa_app.get(f"{BASE}/processes", headers=bearer(mint(key=rsa_private, algorithm="RS256"))))
    ok(ec_app.get(f"{BASE}/processes", headers=bearer(mint(key=ec_private, algorithm="ES256"))))
    public_pem = rsa_file.read_bytes()
    refused = {
        "HS256 with the public key as secret": hand_made({"alg": "HS256", "typ": "JWT"}, claims(), public_pem),
        "HS256 with the shared secret": mint(),
        "signed by another key": mint(key=rsa_key_pair(tmp_path / "..")[0], algorithm="RS256"),
        "ES256 against an RSA key": mint(key=ec_private, algorithm="ES256"),
        "alg none": hand_made({"alg": "none"}, claims()),
    }
    for case, token in refused.items():
        assert rsa_app.get(f"{BASE}/processes", headers=bearer(token)).status_code == 401, case
    rsa_token = mint(key=rsa_private, algorithm="RS256")
    fails(ec_app.get(f"{BASE}/processes", headers=bearer(rsa_token)), 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"BPM_AUTH": "kerberos"}, "unknown mode"),
        ({"BPM_AUTH": "jwt"}, "exactly one of"),
        ({"BPM_AUTH": "jwt", "BPM_JWT_SECRET": "short"}, "at least 32 bytes"),
        ({"BPM_AUTH": "jwt", "BPM_JWT_SECRET": SECRET, "BPM_JWT_PUBLIC_KEY_FILE": "/x.pem"}, "exactly one of"),
        ({"BPM_AUTH": "jwt", "BPM_JWT_SECRET": SECRET, "BPM_JWT_ALGORITHMS": "none"}, "cannot be used"),
        ({"BPM_AUTH": "jwt", "BPM_JWT_SECRET": SECRET, "BPM_JWT_ALGORITHMS": "HS256,RS256"}, "cannot be used"),
        ({"BPM_AUTH": "jwt", "BPM_JWT_PUBLIC_KEY_FILE": "/no/such/key.pem"}, "not a readable PEM"),
        ({"BPM_AUTH": "apikey"}, "needs BPM_API_KEYS"),
        ({"BPM_AUTH": "apikey", "BPM_API_KEYS": "crm:plaintext-key"}, "sha256"),
        ({"BPM_AUTH": "apikey", "BPM_API_KEYS": f"a:{'0' * 64},a:{'1' * 64}"}, "twice"),
        ({"BPM_AUTH": "apikey", "BPM_API_KEYS": f"a:{'0' * 64}", "BPM_API_KEY_ADMINS": "b"}, "unknown keys"),
    ],
)
def test_bad_auth_configuration_stops_start_up(config: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_app(MemoryBackend(), **config)


def test_auth_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPM_AUTH", "jwt")
    monkeypatch.setenv("BPM_JWT_SECRET", SECRET)
    monkeypatch.setenv("BPM_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("BPM_JWT_AUDIENCE", f"other,{AUDIENCE}")
    monkeypatch.setenv("BPM_JWT_LEEWAY", "5")
    monkeypatch.setenv("BPM_JWT_ROLES_CLAIM", "realm_access.roles")
    monkeypatch.setenv("BPM_ADMIN_ROLE", "bpm-admin")
    client = create_app({"TESTING": True, "BPM_BACKEND_INSTANCE": MemoryBackend()}).test_client()
    fails(client.get(f"{BASE}/processes"), 401, "UNAUTHORIZED")
    nested = mint("root", realm_access={"roles": ["bpm-admin"]})
    ok(client.post(f"{BASE}/refreshCache", headers=bearer(nested)))
    fails(client.post(f"{BASE}/refreshCache", headers=as_user("root", roles=["admin"])), 403, "FORBIDDEN")


def test_auth_off_is_the_default_and_documents_no_security(backend: Backend) -> None:
    client = make_app(backend).test_client()
    assert "security" not in client.get("/openapi.json").get_json()
    ok(client.get(f"{BASE}/processes"))
    ok(client.get(f"{BASE}/processes", headers=bearer("anything")))  # credentials are ignored when off


# -- authorisation: a JWT user acts only as themself ------------------------------------------


@pytest.fixture
def booking(admin: AuthApi) -> tuple[str, str]:
    """A booking instance (started by carol through the CRM key) and its review task (group facilities)."""
    instance_id = ok(admin.post("/process/start", json={"processName": "booking room"}, query_string={"user": "carol"}))
    [task] = ok(admin.get(f"/instance/{instance_id}/tasks"))
    return instance_id, task["id"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/tasks/{task}/claim?user=fred", None),
        ("POST", "/tasks/{task}/unclaim?user=fred", None),
        ("POST", "/tasks/{task}/complete?user=fred", {"RoomObject": {"capacity": 1}}),
        ("POST", "/process/start?user=fred", {"processName": "booking room"}),
        ("POST", "/process/booking%20room/start?user=fred", {}),
        ("GET", "/tasks?user=fred", None),
        ("GET", "/tasks?user=alice&user=fred", None),
        ("GET", "/identity/fred", None),
    ],
)
def test_jwt_user_may_not_act_as_someone_else(
    app: Flask, booking: tuple[str, str], method: str, path: str, body: Any
) -> None:
    instance_id, task_id = booking
    alice = caller(app, "jwt", groups=["facilities"])
    before = ok(alice.get(f"/instance/{instance_id}"))
    response = alice.call(method, path.format(task=task_id), json=body)
    fails(response, 403, "FORBIDDEN")
    assert ok(alice.get(f"/instance/{instance_id}")) == before


def test_jwt_user_defaults_to_themself(app: Flask, booking: tuple[str, str]) -> None:
    instance_id, task_id = booking
    alice = caller(app, "jwt", groups=["facilities"])
    ok(alice.post(f"/tasks/{task_id}/claim"))
    [task] = ok(alice.get(f"/instance/{instance_id}/tasks"))
    assert task["assignee"] == "alice"
    assert [t["id"] for t in ok(alice.get("/tasks"))] == [task_id]
    assert [t["id"] for t in ok(alice.get("/tasks", query_string={"user": "alice"}))] == [task_id]
    ok(alice.post(f"/tasks/{task_id}/unclaim"))
    ok(alice.post(f"/tasks/{task_id}/complete", json={"RoomObject": {"capacity": 2}}))
    started = ok(alice.post("/process/start", json={"processName": "booking room"}))
    assert ok(alice.get(f"/instance/{started}"))["createBy"] == "alice"
    assert ok(alice.get("/identity/alice"))["user"] == "alice"


def test_jwt_claims_decide_the_candidate_check(app: Flask, admin: AuthApi, booking: tuple[str, str]) -> None:
    _, task_id = booking
    admin.identity("alice", groups=["facilities"])  # the store says yes ...
    fails(caller(app, "jwt", groups=[]).post(f"/tasks/{task_id}/claim"), 403, "NOT_CANDIDATE")  # ... the token no
    fails(caller(app, "jwt", groups=["hr"], roles=[]).post(f"/tasks/{task_id}/complete"), 403, "NOT_CANDIDATE")
    assert ok(caller(app, "jwt", groups=[]).get("/tasks")) == []
    ok(caller(app, "jwt", groups="facilities, hr").post(f"/tasks/{task_id}/claim"))  # a string claim works too


def test_jwt_without_group_claims_uses_the_identity_store(app: Flask, admin: AuthApi, booking: tuple[str, str]) -> None:
    _, task_id = booking
    plain = caller(app, "jwt", user="fred")  # no groups, no roles claim
    fails(plain.post(f"/tasks/{task_id}/claim"), 403, "NOT_CANDIDATE")
    admin.identity("fred", groups=["facilities"])
    assert [t["id"] for t in ok(plain.get("/tasks"))] == [task_id]
    ok(plain.get("/tasks", query_string={"group": "facilities"}))
    ok(plain.post(f"/tasks/{task_id}/claim"))


def test_jwt_user_reads_only_their_own_queues(app: Flask, booking: tuple[str, str]) -> None:
    _, task_id = booking
    alice = caller(app, "jwt", groups=["facilities"], roles=["clerk"])
    assert [t["id"] for t in ok(alice.get("/tasks", query_string={"group": "facilities"}))] == [task_id]
    ok(alice.get("/tasks", query_string={"role": "clerk"}))
    fails(alice.get("/tasks", query_string={"group": "managers"}), 403, "FORBIDDEN")
    fails(alice.get("/tasks", query_string={"role": "approver"}), 403, "FORBIDDEN")
    boss = caller(app, "jwt", admin_role=True, user="boss")
    assert [t["id"] for t in ok(boss.get("/tasks", query_string={"group": "facilities", "user": "x"}))] == [task_id]
    ok(boss.get("/identity/alice"))


def test_claim_and_complete_need_assignee_or_candidate(app: Flask, booking: tuple[str, str]) -> None:
    _, task_id = booking
    fred = caller(app, "jwt", user="fred", groups=["facilities"])
    gina = caller(app, "jwt", user="gina", groups=["facilities"])
    ok(fred.post(f"/tasks/{task_id}/claim"))
    fails(gina.post(f"/tasks/{task_id}/claim"), 409, "TASK_ALREADY_CLAIMED")
    fails(gina.post(f"/tasks/{task_id}/complete", json={}), 409, "TASK_ALREADY_CLAIMED")
    fails(gina.post(f"/tasks/{task_id}/unclaim"), 409, "TASK_ALREADY_CLAIMED")
    ok(fred.post(f"/tasks/{task_id}/complete", json={"RoomObject": {"capacity": 1}}))


# -- authorisation: API keys act on behalf of ?user= -----------------------------------------


def test_api_key_acts_on_behalf_of_the_user(app: Flask, admin: AuthApi, booking: tuple[str, str]) -> None:
    instance_id, task_id = booking
    crm = caller(app, "apikey")
    admin.identity("fred", groups=["facilities"])
    fails(crm.post(f"/tasks/{task_id}/claim"), 400, "VALIDATION_ERROR")  # who? a key is nobody
    fails(crm.post(f"/tasks/{task_id}/claim", query_string={"user": "mallory"}), 403, "NOT_CANDIDATE")
    ok(crm.post(f"/tasks/{task_id}/claim", query_string={"user": "fred"}))
    assert [t["id"] for t in ok(crm.get("/tasks", query_string={"user": "fred"}))] == [task_id]
    ok(crm.get("/tasks", query_string={"group": "managers"}))
    ok(crm.get("/identity/fred"))
    fails(crm.post(f"/tasks/{task_id}/complete", query_string={"user": "gina"}, json={}), 409, "TASK_ALREADY_CLAIMED")
    ok(crm.post(f"/tasks/{task_id}/complete", query_string={"user": "fred"}, json={"RoomObject": {"capacity": 1}}))
    started = ok(crm.post("/process/start", json={"processName": "booking room"}, query_string={"user": "dora"}))
    assert ok(crm.get(f"/instance/{started}"))["createBy"] == "dora"
    history = ok(crm.get(f"/instance/{instance_id}/history"))
    assert [e["actor"] for e in history if e["type"] == "task.completed"][-1] == "apikey:crm"


# -- authorisation: administration needs the admin role --------------------------------------

AdminCall = Callable[[AuthApi, str, str], TestResponse]
ADMIN_ACTIONS: dict[str, AdminCall] = {
    "assign": lambda api, _, task: api.post(f"/tasks/{task}/assign", query_string={"user": "zoe"}),
    "assign several": lambda api, _, task: api.post(f"/tasks/{task}/assign?user=zoe&user=yan"),
    "instance assign": lambda api, inst, _: api.post(f"/instance/{inst}/tasks/assign", query_string={"user": "zoe"}),
    "instance cancel": lambda api, inst, _: api.delete(f"/instance/{inst}"),
    "refreshCache": lambda api, *_: api.post("/refreshCache"),
    "classAction": lambda api, *_: api.post("/classAction", json={"processName": "booking room", "event": "file"}),
    "deployments": lambda api, *_: api.post("/deployments", data=REVIEW, content_type="application/xml"),
    "identity write": lambda api, *_: api.put("/identity/alice", json={"roles": ["admin"]}),
}


@pytest.mark.parametrize("kind", ["jwt", "apikey"])
@pytest.mark.parametrize("action", list(ADMIN_ACTIONS))
def test_administration_needs_the_admin_role(
    app: Flask, admin: AuthApi, booking: tuple[str, str], kind: str, action: str
) -> None:
    instance_id, task_id = booking
    before = (ok(admin.get(f"/instance/{instance_id}")), ok(admin.get("/processes")), ok(admin.get("/identity/alice")))
    user = caller(app, kind, roles=["approver"])
    fails(ADMIN_ACTIONS[action](user, instance_id, task_id), 403, "FORBIDDEN")
    after = (ok(admin.get(f"/instance/{instance_id}")), ok(admin.get("/processes")), ok(admin.get("/identity/alice")))
    assert after == before
    assert ok(admin.get(f"/instance/{instance_id}/tasks"))[0]["assignee"] is None
    ok(ADMIN_ACTIONS[action](caller(app, kind, admin_role=True), instance_id, task_id))


def test_admin_role_name_is_configurable(backend: Backend) -> None:
    app = make_app(backend, **AUTH_CONFIG, BPM_ADMIN_ROLE="bpm-operator")
    client = app.test_client()
    fails(client.post(f"{BASE}/refreshCache", headers=as_admin()), 403, "FORBIDDEN")
    ok(client.post(f"{BASE}/refreshCache", headers=as_user("op", roles=["bpm-operator"])))


def test_anyone_authenticated_may_read_instances_and_processes(app: Flask, booking: tuple[str, str]) -> None:
    instance_id, task_id = booking
    for reader in (caller(app, "jwt", user="zed"), caller(app, "apikey")):
        ok(reader.get(f"/instance/{instance_id}"))
        ok(reader.get(f"/instance/{instance_id}/tasks"))
        ok(reader.get(f"/instance/{instance_id}/history"))
        ok(reader.get(f"/instance/{instance_id}/incidents"))
        ok(reader.post(f"/tasks/{task_id}/variables"))
        ok(reader.get("/processes"))
        assert [i["id"] for i in ok(reader.get("/instances"))] == [instance_id]


def test_a_task_list_by_instance_id_follows_the_task_list_rules(app: Flask, booking: tuple[str, str]) -> None:
    instance_id, task_id = booking
    query = {"instanceId": instance_id}
    assert [t["id"] for t in ok(caller(app, "apikey").get("/tasks", query_string=query))] == [task_id]
    assert ok(caller(app, "jwt", user="zed", groups=[]).get("/tasks", query_string=query)) == []  # zed's own list
    alice = caller(app, "jwt", groups=["facilities"])
    assert [t["id"] for t in ok(alice.get("/tasks", query_string=query))] == [task_id]
    fails(alice.get("/tasks", query_string={**query, "group": "managers"}), 403, "FORBIDDEN")


# -- the audit trail records who did it ------------------------------------------------------


def test_history_names_the_authenticated_actor(app: Flask, admin: AuthApi, booking: tuple[str, str]) -> None:
    instance_id, task_id = booking
    fred = caller(app, "jwt", user="fred", groups=["facilities"])
    boss = caller(app, "jwt", user="boss", admin_role=True)
    ok(fred.post(f"/tasks/{task_id}/claim"))
    ok(boss.post(f"/tasks/{task_id}/assign", query_string={"user": "gina"}))
    entries = ok(fred.get(f"/instance/{instance_id}/history"))
    history = [e for e in entries if e["type"].startswith(("task.", "instance."))]
    assert [(e["type"], e["user"], e["actor"]) for e in history] == [
        ("instance.started", "carol", "apikey:ops"),
        ("task.claimed", "fred", "fred"),
        ("task.assigned", "gina", "boss"),
    ]
    assert history[2]["previousAssignee"] == "fred" and history[2]["owner"] == "fred"


# -- tools/mint_token.py ----------------------------------------------------------------------


def test_the_mint_token_tool_makes_accepted_tokens_and_keys(
    backend: Backend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("mint_token", ROOT / "tools" / "mint_token.py")
    assert spec is not None and spec.loader is not None
    mint_token = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mint_token)
    monkeypatch.setenv("BPM_JWT_SECRET", SECRET)
    monkeypatch.setenv("BPM_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("BPM_JWT_AUDIENCE", AUDIENCE)
    assert mint_token.main(["token", "root", "--roles", "admin", "--groups"]) == 0
    token = capsys.readouterr().out.strip()
    assert mint_token.main(["api-key", "erp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    key, entry = lines[0].split(": ")[1].strip(), lines[1].split(": ")[1].strip()
    config = {**AUTH_CONFIG, "BPM_API_KEYS": f"{AUTH_CONFIG['BPM_API_KEYS']},{entry}"}
    client = make_app(backend, **config).test_client()
    ok(client.post(f"{BASE}/refreshCache", headers=bearer(token)))
    ok(client.get(f"{BASE}/processes", headers={"X-API-Key": key}))
