"""``argos_async.otel``: spans and metrics recorded by the SDK's in-memory exporter and reader,
against the emulator with faults; and nothing recorded holds an email, a user id or the key."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from support import FAST, REPO, client_for

from argos_async import ArgosClient, NotFoundError
from argos_async._protocol.masking import encoded_forms
from argos_async.otel import instrument, url_filter
from argos_async.testing import ArgosEmulator, Delay, DropConnection, FaultPlan, Status

pytestmark = pytest.mark.anyio

LIST = "/v3/submission"


@dataclass
class Telemetry:
    """An SDK tracer provider and meter provider recording in memory."""

    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name.startswith(prefix)]

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        found: list[Any] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def total(self, name: str, where: dict[str, object] | None = None) -> float:
        """The sum (a counter) or the count (a histogram) over the points matching ``where``."""
        total = 0.0
        for point in self.points(name):
            attributes = attrs(point)
            if all(attributes.get(k) == v for k, v in (where or {}).items()):
                total += point.count if isinstance(point, HistogramDataPoint) else point.value
        return total

    def recorded_text(self) -> str:
        """Every string the spans and metrics hold: names, attributes, events, statuses."""
        texts: list[str] = []
        for span in self.finished():
            texts += [span.name, str(span.status.description)]
            texts += _values(span.attributes)
            for event in span.events:
                texts += [event.name, *_values(event.attributes)]
        data = self.metrics.get_metrics_data()
        if data is not None:
            for resource in data.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        for point in metric.data.data_points:
                            texts += _values(point.attributes)
        return "\n".join(texts)


def attrs(item: Any) -> dict[str, Any]:
    """A span's or an event's attributes, as a plain dict."""
    return dict(item.attributes or {})


def _values(attributes: Any) -> Iterator[str]:
    for key, value in dict(attributes or {}).items():
        yield f"{key}={value}"


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(spans, reader, tracer_provider, meter_provider)
    meter_provider.shutdown()
    tracer_provider.shutdown()


@asynccontextmanager
async def instrumented(
    emu: ArgosEmulator, telemetry: Telemetry, **options: Any
) -> AsyncIterator[ArgosClient]:
    async with client_for(emu, FAST, **options) as argos:
        instrument(
            argos,
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
        yield argos


def children(telemetry: Telemetry, parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return sorted(
        (
            s
            for s in telemetry.finished()
            if s.parent is not None and s.parent.span_id == parent.context.span_id
        ),
        key=lambda s: s.start_time or 0,
    )


def personal(
    emu: ArgosEmulator, emails: Iterable[str] = (), userids: Iterable[str] = ()
) -> list[str]:
    """What must never be recorded: the key, and each address's local part and user id, in
    every form they could be written in (as sent, percent-encoded, JSON-escaped, ...)."""
    secrets = [emu.api_key]
    for value in [*(e.partition("@")[0] for e in emails), *userids]:
        secrets += encoded_forms(value)
    return secrets


async def test_a_listing_with_faults_has_a_span_per_page_and_a_child_per_attempt(
    telemetry: Telemetry,
) -> None:
    # List requests 1 (a 503), 3 (a 429 asking 0.05 s) and 4 (dropped) fail once each.
    plan = FaultPlan(
        [
            Status(503, at=1, path=LIST),
            Status(429, retry_after=0.05, at=3, path=LIST),
            DropConnection(at=4, path=LIST),
        ]
    )
    async with ArgosEmulator(submissions=400, seed=3, faults=plan) as emu:
        email = emu.dataset.heavy_email
        expected = len(emu.dataset.email_positions[email])
        async with instrumented(emu, telemetry) as argos:
            items = [s async for s in argos.iter_submissions(email=email, page_size=2)]
            retries = argos.stats.retries
        sent = len(emu.requests)
        statuses = [r.status for r in emu.responses]
    assert len(items) == expected >= 4
    pages = telemetry.named("argos list_page")
    assert len(pages) == sent - retries  # one per page
    attempts = telemetry.named("GET ")
    assert len(attempts) == sent
    for page in pages:
        assert page.kind == SpanKind.INTERNAL
        assert page.attributes is not None
        assert page.attributes["argos.operation"] == "list_page"
        tries = children(telemetry, page)
        assert len(tries) == page.attributes["argos.attempts"]
        for number, attempt in enumerate(tries, start=1):
            attributes = attrs(attempt)
            assert attempt.kind == SpanKind.CLIENT
            assert attempt.name == "GET /v3/submission"
            assert attributes["http.request.method"] == "GET"
            assert attributes["url.template"] == LIST
            assert attributes["server.address"] == "127.0.0.1"
            assert attributes.get("http.request.resend_count") == (
                None if number == 1 else number - 1
            )
            if number < len(tries):  # followed by a retry: the wait, and why
                assert attributes["argos.retry.wait"] >= 0
                assert "argos.retry.reason" in attributes
            else:
                assert "argos.retry.wait" not in attributes
    retried = [s for s in attempts if "argos.retry.wait" in attrs(s)]
    by_reason = {s.attributes["argos.retry.reason"]: s for s in retried if s.attributes}
    assert set(by_reason) == {"ServerError", "RateLimitError", "APIConnectionError"}
    limited = attrs(by_reason["RateLimitError"])
    assert limited["http.response.status_code"] == 429
    assert limited["argos.retry.wait"] == 0.05  # the server's Retry-After, exactly
    assert limited["error.type"] == "429"
    assert by_reason["RateLimitError"].status.status_code == StatusCode.ERROR
    assert attrs(by_reason["ServerError"])["http.response.status_code"] == 503
    dropped = attrs(by_reason["APIConnectionError"])
    assert dropped["error.type"] == "APIConnectionError"
    # Every attempt that got an answer names the server's request id.
    answered = [s for s in attempts if "http.response.status_code" in attrs(s)]
    assert len(answered) == sent - 1
    assert all(str(attrs(s)["argos.request_id"]) for s in answered)
    assert sorted(int(attrs(s)["http.response.status_code"]) for s in answered) == (
        sorted(s for i, s in enumerate(statuses) if i != 3)
    )
    # Metrics: per attempt, by status; retries by reason; items delivered.
    assert telemetry.total("http.client.request.duration") == sent
    assert telemetry.total("argos.client.requests") == sent
    assert telemetry.total("argos.client.requests", {"http.response.status_code": 200}) == sent - 3
    assert telemetry.total("argos.client.requests", {"http.response.status_code": 503}) == 1
    assert telemetry.total("argos.client.requests", {"error.type": "APIConnectionError"}) == 1
    assert telemetry.total("argos.client.retries") == retries == 3
    assert telemetry.total("argos.client.retries", {"argos.retry.reason": "RateLimitError"}) == 1
    assert telemetry.total("argos.client.items") == expected
    # No email, no user id, no key, anywhere: spans, events, metric labels.
    recorded = telemetry.recorded_text()
    assert "email=" in recorded  # the masked filter is there...
    for secret in personal(emu, [email]):
        assert secret not in recorded  # ...its value is not


async def test_a_batch_has_a_span_per_key_parented_by_the_current_span(
    telemetry: Telemetry,
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    async with ArgosEmulator(submissions=200, seed=5) as emu:
        ids = list(emu.dataset.ids[:6])
        emails = sorted(set(emu.dataset.emails[:4]))
        async with instrumented(emu, telemetry) as argos:
            with tracer.start_as_current_span("job") as job:
                found = [r async for r in argos.batch_get_submissions([*ids, "missing"])]
                by_email = [r async for r in argos.batch_get_by_email(emails, page_size=1)]
    assert sum(r.ok for r in found) == 6
    assert isinstance(next(r.error for r in found if not r.ok), NotFoundError)
    assert all(r.ok for r in by_email)
    lookups = telemetry.named("argos get_submission")
    assert len(lookups) == 7
    missing = [s for s in lookups if s.status.status_code == StatusCode.ERROR]
    assert len(missing) == 1
    assert attrs(missing[0])["error.type"] == "NotFoundError"
    pages = telemetry.named("argos list_page")
    # A page per item (page_size=1), and a key with none has its one empty page.
    assert len(pages) == sum(max(1, len(r.unwrap())) for r in by_email)
    for span in [*lookups, *pages]:
        assert span.parent is not None
        assert span.parent.span_id == job.get_span_context().span_id
    for secret in personal(emu, emails):
        assert secret not in telemetry.recorded_text()


async def test_waits_at_the_pause_gate_are_recorded(telemetry: Telemetry) -> None:
    # The first lookup gets a 429 asking 0.3 s: the client pauses, and the other worker's
    # next lookup waits at the gate.
    plan = FaultPlan([Status(429, retry_after=0.3, at=1, path=LIST)])
    async with (
        ArgosEmulator(submissions=50, seed=1, faults=plan) as emu,
        instrumented(emu, telemetry) as argos,
    ):
        ids = list(emu.dataset.ids[:4])
        results = [r async for r in argos.batch_get_submissions(ids, concurrency=2)]
    assert all(r.ok for r in results)
    waits = telemetry.points("argos.client.pause.duration")
    assert sum(p.count for p in waits) >= 1
    # At most the 0.3 s asked (plus the event loop's lateness); exact times: test_hooks.py.
    assert 0 < max(p.max for p in waits) < 0.4
    events = [e for s in telemetry.named("argos get_submission") for e in s.events]
    assert {e.name for e in events} == {"argos.pause"}
    assert all(0 < float(attrs(e)["argos.pause.duration"]) < 0.4 for e in events)


async def test_a_cancelled_call_ends_its_spans_and_restores_the_context(
    telemetry: Telemetry,
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    plan = FaultPlan([Delay(5.0, path=LIST)])
    async with (
        ArgosEmulator(submissions=20, seed=1, faults=plan) as emu,
        instrumented(emu, telemetry) as argos,
    ):
        with tracer.start_as_current_span("outer") as outer:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(argos.get_submission(emu.dataset.ids[0]), 0.2)
            assert trace.get_current_span() is outer
    (call,) = telemetry.named("argos get_submission")
    (attempt,) = children(telemetry, call)
    assert call.end_time is not None
    assert attempt.end_time is not None
    assert attrs(attempt)["error.type"] == "CancelledError"
    assert attrs(call)["error.type"] == "CancelledError"


async def test_uninstrument_stops_recording_and_instrumenting_twice_is_refused(
    telemetry: Telemetry,
) -> None:
    async with ArgosEmulator(submissions=20, seed=1) as emu, client_for(emu, FAST) as argos:
        handle = instrument(
            argos.with_options(deadline=5.0), tracer_provider=telemetry.tracer_provider
        )
        with pytest.raises(RuntimeError, match="instrumented already"):
            instrument(argos)
        await argos.get_submission(emu.dataset.ids[0])
        assert len(telemetry.named("argos get_submission")) == 1
        handle.uninstrument()
        await argos.get_submission(emu.dataset.ids[1])
        assert len(telemetry.named("argos get_submission")) == 1
        instrument(argos, tracer_provider=telemetry.tracer_provider).uninstrument()
    with pytest.raises(TypeError, match="must be an ArgosClient"):
        instrument(object())  # type: ignore[arg-type]


def test_url_filter_masks_emails_and_user_ids() -> None:
    from yarl import URL

    url = URL("http://127.0.0.1:8080/v3/submission?count=5&email=ana.silva%2Bkyc@example.com")
    assert url_filter(url) == "http://127.0.0.1:8080/v3/submission?count=5&email=a***@example.com"
    assert (
        url_filter(URL("http://h/v3/submission?userid=user_42"))
        == "http://h/v3/submission?userid=u***"
    )
    assert (
        url_filter(URL("http://h/v3/submission?submission_id=s1"))
        == "http://h/v3/submission?submission_id=s1"
    )


def test_the_client_works_without_opentelemetry_installed() -> None:
    # Every opentelemetry import fails in this child process, as where it is not installed.
    script = """
import asyncio, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"no module named {name!r}")
sys.meta_path.insert(0, Refuse())
from argos_async import ArgosClient
from argos_async.testing import ArgosEmulator
async def main():
    async with ArgosEmulator(submissions=10, seed=1) as emu:
        async with ArgosClient(api_key=emu.api_key, base_url=emu.url,
                               event_hooks={"response": [print]}) as argos:
            await argos.get_submission(emu.dataset.ids[0])
asyncio.run(main())
assert not any(m.startswith("opentelemetry") for m in sys.modules), "imported opentelemetry"
try:
    import argos_async.otel
except ImportError:
    print("otel needs the extra")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "ResponseEvent(operation='get_submission'" in done.stdout
    assert done.stdout.strip().endswith("otel needs the extra")
