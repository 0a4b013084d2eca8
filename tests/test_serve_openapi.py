"""GET /openapi.json: a valid OpenAPI 3 document that matches the routes and the answers.

The property-based part generates requests for every documented operation from the document
itself (parameters, and bodies from their schemas by a small schema-to-strategy translation,
mixed with meaningful values so that sends really happen), sends them to a live server and
checks that nothing answers 5xx and that every answer is documented for its operation and
validates against its schema.
"""

from __future__ import annotations

import copy
import json
import socket
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

from tests.helpers.known_archive import build_archive
from tests.helpers.send import GIF, JPEG, PNG, logged_in
from wxcli.media_input import MediaFetchError, UrlFetcher
from wxcli.server.app import ROUTES, RestApp, start_server
from wxcli.server.auth import AppStore
from wxcli.server.openapi import openapi_document, operations


def test_document_is_valid_openapi():
    validate_spec(openapi_document())
    validate_spec(openapi_document(allow_query_key=True, server_url="http://127.0.0.1:7788"))


def test_document_lists_exactly_the_routes():
    assert operations(openapi_document()) == set(ROUTES)


def test_security_schemes_describe_each_auth_mode():
    doc = openapi_document()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert {schemes[k]["name"] for k in ("appId", "timestamp", "nonce", "signature")} == {
        "X-App-Id",
        "X-Timestamp",
        "X-Nonce",
        "X-Signature",
    }
    assert "queryKey" not in schemes  # only documented when enabled
    assert doc["paths"]["/v1/health"]["get"]["security"] == []
    assert doc["paths"]["/openapi.json"]["get"]["security"] == []


# --- property-based check against a live server ------------------------------------------------


class _ServerCtx:
    pass


@pytest.fixture
def live(sim, wx_home, engines):
    db = f"sqlite:///{wx_home / 'read-archive.db'}"
    build_archive(db, wx_home, engines).close()  # the read routes answer from it
    sim.control.settings(send_burst=100_000, send_rate=100_000.0)
    sim.control.add_contacts(
        groups=[{"name": "重名群", "members": ["张伟"]}, {"name": "重名群", "members": ["周杰"]}],
        announce=False,
    )
    profile = logged_in(
        sim,
        wx_home,
        serve={"max_body_bytes": 50_000, "max_wait_seconds": 1, "poll_seconds": 0.05},
        database={"url": db},
        send={"burst": 10_000, "rate": 100_000.0, "jitter": 0.0, "max_image_bytes": 20_000},
    )
    created = AppStore(profile.paths.apps).add("fuzz", scopes=["read", "send"])
    AppStore(profile.paths.apps).add("narrow", allow_to=["云帆*"])

    def no_dns(host: str, port: int) -> list[str]:
        raise MediaFetchError(f"cannot resolve {host!r} (no DNS in tests)")

    def no_route(ip: str, port: int, timeout: float) -> socket.socket:
        raise ConnectionRefusedError(f"no route to {ip} in tests")

    fetcher = UrlFetcher(max_bytes=20_000, timeout=2.0, resolver=no_dns, connector=no_route)
    app = RestApp(profile.paths, profile.config, fetcher=fetcher)
    handle = start_server(profile.paths, profile.config, "127.0.0.1", 0, app=app)
    ctx = _ServerCtx()
    ctx.url = handle.url
    ctx.auth = {"Authorization": f"Bearer {created.app.app_id}:{created.app_key}"}
    ctx.doc = requests.get(f"{handle.url}/openapi.json", timeout=5).json()
    ctx.group_id = next(
        c["id"]
        for c in requests.get(f"{handle.url}/v1/contacts", headers=ctx.auth, timeout=5).json()[
            "contacts"
        ]
        if c["name"] == "内部员工群"
    )
    ctx.http = requests.Session()
    ctx.sim = sim
    yield ctx
    ctx.http.close()
    handle.stop()


OPENAPI_ONLY = {"nullable", "deprecated", "example", "discriminator", "xml", "externalDocs"}


def json_schema(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI 3.0 schema object → plain JSON Schema for hypothesis-jsonschema."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                name = node["$ref"].rsplit("/", 1)[1]
                return walk(doc["components"]["schemas"][name])
            return {k: walk(v) for k, v in node.items() if k not in OPENAPI_ONLY}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out = walk(copy.deepcopy(schema))
    if out.get("format") == "binary":
        out.pop("format")
    return out


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a (plain JSON) schema: the subset of JSON Schema our document uses, plus
    arbitrary extra properties, since clients send those too."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return st.text(
            min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 64), 64)
        )
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=3)
    if kind == "object":
        props = {k: from_schema(v) for k, v in schema.get("properties", {}).items()}
        required = set(schema.get("required", []))
        known = st.fixed_dictionaries(
            {k: v for k, v in props.items() if k in required},
            optional={k: v for k, v in props.items() if k not in required},
        )
        extra = st.dictionaries(st.text(max_size=8), st.none() | st.integers() | st.text())
        return st.builds(lambda a, b: {**b, **a}, known, extra)
    return st.none() | st.booleans() | st.integers() | st.text(max_size=10)


NAMES = ["内部员工群", "云帆Pro客服1群", "重名群", "filehelper", "不存在的群", "", "王总-云帆"]
URLS = [
    "http://10.0.0.1/x.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://images.example.com/photo.jpg",
    "http://8.8.8.8/a.png",
    "ftp://example.com/a.png",
    "not a url",
]


def field_values(ctx: Any) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([*NAMES, ctx.group_id, "@" + "0" * 64, *URLS, "hello", "word"]),
        st.text(max_size=40),
    )


def request_strategy(ctx: Any, method: str, path: str) -> st.SearchStrategy[dict[str, Any]]:
    op = ctx.doc["paths"][path][method.lower()]
    values = field_values(ctx)
    good_to = st.sampled_from(["内部员工群", "云帆Pro客服1群", "filehelper"])
    message = st.text(min_size=1, max_size=30).filter(str.strip)

    def happy(names: set[str]) -> st.SearchStrategy[dict[str, str]]:
        """A complete, valid set of fields, so that sends really happen."""
        fields: dict[str, st.SearchStrategy[str]] = {"to": good_to}
        for key in ("text", "word"):
            if key in names:
                fields[key] = message
                break
        return st.fixed_dictionaries(fields)

    params = {p["name"]: values for p in op.get("parameters", []) if p["in"] == "query"}
    query = st.fixed_dictionaries({}, optional=params) if params else st.just({})
    if method == "GET" and {"to", "word"} <= set(params):
        query = st.one_of(query, happy(set(params)))
    auth = st.sampled_from(
        [ctx.auth] * 6
        + [{}, {"Authorization": "Bearer nope:nope"}, {"X-Signature": "00", "X-App-Id": "x"}]
    )
    bodies: list[st.SearchStrategy[Any]] = [st.just(None)]
    for ctype, media in op.get("requestBody", {}).get("content", {}).items():
        schema = json_schema(ctx.doc, media["schema"])
        props = schema.get("properties", {})
        # Weighted towards complete requests: most random ones stop at 400.
        meaningful = st.one_of(
            st.fixed_dictionaries({}, optional={k: values for k in props if k != "file"}),
            happy(set(props)),
            happy(set(props)),
        )
        if ctype == "multipart/form-data":
            images = st.sampled_from([PNG, GIF, JPEG])
            files = st.one_of(images, images, st.binary(max_size=64))
            bodies.append(st.tuples(st.just(ctype), meaningful, files))
        else:
            generated = st.one_of(meaningful, from_schema(schema))
            bodies.append(st.tuples(st.just(ctype), generated))
    bodies.append(st.tuples(st.just("text/plain"), st.text(max_size=20)))
    return st.fixed_dictionaries({"query": query, "auth": auth, "body": st.one_of(*bodies)})


def send(ctx: Any, method: str, path: str, req: dict[str, Any]) -> requests.Response:
    kwargs: dict[str, Any] = {"params": req["query"], "headers": dict(req["auth"])}
    body = req["body"]
    if body is not None:
        ctype = body[0]
        if ctype == "application/json":
            kwargs["data"] = json.dumps(body[1]).encode()
            kwargs["headers"]["Content-Type"] = ctype
        elif ctype == "application/x-www-form-urlencoded":
            data = body[1] if isinstance(body[1], dict) else {}
            kwargs["data"] = {
                k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()
            }
        elif ctype == "multipart/form-data":
            kwargs["data"] = body[1]
            kwargs["files"] = {"file": ("upload.bin", body[2], "application/octet-stream")}
        else:
            kwargs["data"] = body[1].encode()
            kwargs["headers"]["Content-Type"] = ctype
    return ctx.http.request(method, ctx.url + path, timeout=30, **kwargs)


def check_answer(ctx: Any, method: str, path: str, resp: requests.Response) -> None:
    op = ctx.doc["paths"][path][method.lower()]
    documented = op["responses"]
    generic = {"401"} if op.get("security") != [] else set()
    status = str(resp.status_code)
    assert status in documented or status in generic, (method, path, status, resp.text)
    spec = documented.get(status) or documented.get("401") or {"content": {}}
    media = spec.get("content", {}).get("application/json")
    if media is None:
        return
    schema = {**media["schema"], "components": ctx.doc["components"]}
    OAS30Validator(schema).validate(resp.json())


def known_good(ctx: Any, method: str, path: str) -> list[dict[str, Any]]:
    """Explicit examples next to the generated ones: one that must succeed, one without auth."""
    good: dict[str, Any] = {"query": {}, "auth": ctx.auth, "body": None}
    if (method, path) == ("GET", "/v1/msg/text"):
        good["query"] = {"to": "内部员工群", "word": "example"}
    elif (method, path) == ("POST", "/v1/msg/text"):
        good["body"] = ("application/json", {"to": "内部员工群", "text": "example"})
    elif (method, path) == ("POST", "/v1/msg/image"):
        good["body"] = ("multipart/form-data", {"to": "内部员工群"}, PNG)
    return [good, {**good, "auth": {}}]


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
def test_no_5xx_and_every_answer_is_documented(live, method, path):
    statuses: list[int] = []

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(req=request_strategy(live, method, path))
    def run(req: dict[str, Any]) -> None:
        resp = send(live, method, path, req)
        statuses.append(resp.status_code)
        assert resp.status_code < 500, resp.text
        check_answer(live, method, path, resp)

    for req in known_good(live, method, path):
        run = example(req=req)(run)
    run()
    assert statuses
    if path.startswith(("/v1/msg", "/v1/messages", "/v1/chats", "/v1/stats")):
        # The generator really reached the interesting outcomes, not just 400s.
        assert {200, 401} <= set(statuses), sorted(set(statuses))
    assert not any(s["ret"] == 1205 for s in live.sim.control.sent())


# --- schemathesis: an independent generator over the published document ----------------------

schemathesis = pytest.importorskip("schemathesis")
SCHEMA = schemathesis.openapi.from_dict(openapi_document(max_body_bytes=50_000))


@SCHEMA.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@pytest.mark.parametrize("with_auth", [True, False], ids=["auth", "no-auth"])
def test_schemathesis_finds_no_server_error(live, case, with_auth):
    """Every route, with and without credentials, from schemathesis's own generator (fixed
    seed): no 5xx, ever — a future route that can fail with a 500 fails here."""
    headers = dict(live.auth) if with_auth else {}
    resp = case.call(base_url=live.url, headers=headers, timeout=30)
    assert resp.status_code < 500, (case.method, case.path, resp.text[:300])
