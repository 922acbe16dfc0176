"""The FastAPI recipe traced end to end (``create_app(otel=True)``): FastAPI's instrumentation
and ``argos_async.otel``, in process, recorded by the SDK's in-memory exporter. The incoming
request's span is the parent of the Argos calls it makes, and no span holds the user id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from support import FAST

from argos_async.testing import ArgosEmulator, FaultPlan, Status
from examples.fastapi_app import create_app

pytestmark = pytest.mark.anyio

HEAVY_USER = "qa_runner_1"


class Recorded:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def server(self) -> ReadableSpan:
        (span,) = [s for s in self.spans() if s.kind == SpanKind.SERVER]
        return span

    def children(self, parent: ReadableSpan, prefix: str = "") -> list[ReadableSpan]:
        assert parent.context is not None
        return [
            s
            for s in self.spans()
            if s.parent is not None
            and s.parent.span_id == parent.context.span_id
            and s.name.startswith(prefix)
        ]

    def items(self) -> float:
        data = self.reader.get_metrics_data()
        assert data is not None
        total = 0.0
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "argos.client.items":
                        for point in metric.data.data_points:
                            assert isinstance(point, NumberDataPoint)
                            total += point.value
        return total

    def text(self) -> str:
        parts = []
        for span in self.spans():
            parts.append(span.name)
            parts += [f"{k}={v}" for k, v in dict(span.attributes or {}).items()]
            for event in span.events:
                parts += [event.name, *map(str, dict(event.attributes or {}).values())]
        return "\n".join(parts)


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    telemetry = Recorded()
    yield telemetry
    telemetry.meter_provider.shutdown()
    telemetry.tracer_provider.shutdown()


def traced_app(emu: ArgosEmulator, recorded: Recorded, **client_options: Any) -> FastAPI:
    return create_app(
        api_key=emu.api_key,
        base_url=emu.url,
        client_options={**FAST, **client_options},
        otel=True,
        tracer_provider=recorded.tracer_provider,
        meter_provider=recorded.meter_provider,
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


async def test_the_incoming_request_is_the_parent_of_every_page_of_the_listing(
    recorded: Recorded,
) -> None:
    async with ArgosEmulator(submissions=3000, seed=9) as emu:
        async with running(traced_app(emu, recorded)) as http:
            response = await http.get(f"/users/{HEAVY_USER}/submissions", params={"page_size": 7})
        expected = emu.dataset.expected_ids(userid=HEAVY_USER)
        sent = len(emu.requests)
        key = emu.api_key
    assert response.status_code == 200
    assert len(response.content.splitlines()) == len(expected) > 14
    server = recorded.server()
    assert server.parent is None
    assert server.name == "GET /users/{userid}/submissions"
    assert dict(server.attributes or {})["http.route"] == "/users/{userid}/submissions"
    pages = recorded.children(server, "argos list_page")
    assert len(pages) == sent == -(-len(expected) // 7)  # read ahead in its own task, too
    for page in pages:
        (attempt,) = recorded.children(page, "GET /v3/submission")
        assert attempt.kind == SpanKind.CLIENT
        assert dict(attempt.attributes or {})["http.response.status_code"] == 200
    assert {s.context.trace_id for s in recorded.spans() if s.context} == {
        server.context.trace_id if server.context else 0
    }
    assert recorded.items() == len(expected)
    text = recorded.text()
    assert HEAVY_USER not in text  # neither in the server span's path nor in the Argos spans
    assert key not in text


async def test_a_retried_lookup_shows_its_attempts_under_the_request(recorded: Recorded) -> None:
    plan = FaultPlan([Status(503, at=1, path="/v3/submission")])
    async with ArgosEmulator(submissions=2000, seed=9, faults=plan) as emu:
        sid = emu.dataset.ids[10]
        async with running(traced_app(emu, recorded)) as http:
            found = await http.get(f"/submissions/{sid}")
            missing = await http.get("/submissions/nosuchsubmission")
    assert (found.status_code, missing.status_code) == (200, 404)
    servers = sorted(
        (s for s in recorded.spans() if s.kind == SpanKind.SERVER), key=lambda s: s.start_time or 0
    )
    assert len(servers) == 2
    (lookup,) = recorded.children(servers[0], "argos get_submission")
    attempts = sorted(recorded.children(lookup), key=lambda s: s.start_time or 0)
    codes = [dict(s.attributes or {})["http.response.status_code"] for s in attempts]
    assert codes == [503, 200]
    assert dict(attempts[1].attributes or {})["http.request.resend_count"] == 1
    assert "argos.retry.wait" in dict(attempts[0].attributes or {})
    (failed,) = recorded.children(servers[1], "argos get_submission")
    assert failed.status.status_code == StatusCode.ERROR
    assert dict(failed.attributes or {})["error.type"] == "NotFoundError"
    answered = dict(servers[1].attributes or {})
    assert answered.get("http.status_code", answered.get("http.response.status_code")) == 404
