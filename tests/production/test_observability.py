"""Observability of a real server process (README: Operations): one JSON access-log line per
request with the route template and the user, never a token; Prometheus metrics per route
template with the pool's gauges."""

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.production.api import SECRET, ApiFactory
from tests.production.databases import ScratchFactory
from tests.production.workload import print_figure
from tests.support import TokenFactory

ACCESS_FIELDS = {"method", "route", "status", "duration_ms", "request_id", "user_id"}


async def test_json_logs_and_metrics(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    metrics_token = f"metrics-{uuid.uuid4().hex}"
    server = api(await scratch(database_url), log_json="true", metrics_token=metrics_token)
    sub = f"observed-{uuid.uuid4().hex[:8]}"
    token = tokens(sub)
    auth = {"Authorization": f"Bearer {token}"}
    forged = tokens(sub)[:-4] + "AAAA"
    # request id -> method, route template, status, user id the log should name
    sent: dict[str, tuple[str, str, int, str | None]] = {}

    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:

        async def call(
            method: str,
            path: str,
            route: str,
            *,
            json: object = None,
            headers: dict[str, str] = auth,
            user: str | None = sub,
        ) -> httpx.Response:
            request_id = f"obs-{uuid.uuid4().hex[:12]}"
            response = await client.request(
                method, path, json=json, headers={"X-Request-ID": request_id, **headers}
            )
            assert response.headers["x-request-id"] == request_id
            sent[request_id] = (method, route, response.status_code, user)
            return response

        created = await call("POST", "/todos", "/todos", json={"title": "observe me"})
        assert created.status_code == 201
        todo_id = created.json()["id"]
        await call("GET", f"/todos/{todo_id}", "/todos/{todo_id}")
        await call("PATCH", f"/todos/{todo_id}", "/todos/{todo_id}", json={"completed": True})
        await call("GET", "/todos", "/todos")
        await call("GET", f"/todos/{uuid.uuid4()}", "/todos/{todo_id}")  # 404
        await call("DELETE", f"/todos/{todo_id}", "/todos/{todo_id}")
        await call("GET", "/todos", "/todos", headers={}, user=None)  # 401
        forged_auth = {"Authorization": f"Bearer {forged}"}
        await call("GET", "/todos", "/todos", headers=forged_auth, user=None)  # 401
        await call("GET", "/no/such/route", "unmatched", user=None)
        anonymous = await client.get("/metrics")
        metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    assert anonymous.status_code == 401  # production: only with METRICS_TOKEN
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")

    # --- logs: every line is JSON; one access line per request; no secrets anywhere.
    server.stop()
    raw = server.logs()
    lines = [line for line in server.stderr_file.read_text().splitlines() if line.strip()]
    records = server.log_records()
    assert len(records) == len(lines), [line for line in lines if not line.startswith("{")][:3]
    access = {
        record["request_id"]: record
        for record in records
        if record.get("logger") == "backend.access" and record.get("request_id") in sent
    }
    assert set(access) == set(sent)
    for request_id, (method, route, status, user) in sent.items():
        record = access[request_id]
        assert set(record) >= ACCESS_FIELDS, record
        assert (record["method"], record["route"], record["status"]) == (method, route, status)
        assert isinstance(record["duration_ms"], int | float)
        assert record["duration_ms"] >= 0
        assert record["user_id"] == user, record
    for secret in (token, forged, token.split(".")[2], SECRET, metrics_token):
        assert secret not in raw
    assert "bearer" not in raw.lower()
    assert "authorization" not in raw.lower()
    assert todo_id not in {record["route"] for record in access.values()}

    # --- metrics: per route template, never raw ids; pool gauges; JWKS fetch counter.
    families = {family.name: family for family in text_string_to_metric_families(metrics.text)}
    requests = families["http_requests"].samples
    routes = {sample.labels["route"] for sample in requests}
    assert {"/todos", "/todos/{todo_id}", "unmatched"} <= routes
    assert not any(todo_id in label for sample in requests for label in sample.labels.values())
    assert any(
        sample.labels == {"method": "PATCH", "route": "/todos/{todo_id}", "status": "200"}
        and sample.value == 1
        for sample in requests
        if sample.name == "http_requests_total"
    )
    buckets = [
        sample
        for sample in families["http_request_duration_seconds"].samples
        if sample.name.endswith("_bucket") and sample.labels["route"] == "/todos/{todo_id}"
    ]
    assert buckets
    for gauge in ("db_pool_size", "db_pool_open", "db_pool_checked_out", "db_pool_idle"):
        assert families[gauge].type == "gauge"
        assert len(families[gauge].samples) == 1
    assert "jwks_fetches" in families

    samples = [line for line in raw.splitlines() if '"logger": "backend.access"' in line][:3]
    lines = metrics.text.splitlines()
    metric_lines = [line for line in lines if line.startswith("http_requests_total{")][:4]
    metric_lines += [
        line
        for line in lines
        if line.startswith('http_request_duration_seconds_bucket{le="0.01",method="GET"')
    ][:2]
    metric_lines += [line for line in lines if line.startswith(("db_pool_", "# TYPE jwks"))]
    print_figure("access log sample:\n" + "\n".join(samples))
    print_figure("metrics sample:\n" + "\n".join(metric_lines))


async def test_production_without_a_metrics_token_serves_no_metrics(
    database_url: str, scratch: ScratchFactory, api: ApiFactory
) -> None:
    server = api(await scratch(database_url))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        response = await client.get("/metrics", headers={"Authorization": "Bearer guess"})
    assert response.status_code == 404
