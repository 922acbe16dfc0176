"""Together with ``opentelemetry-instrumentation-aiohttp-client`` switched on globally: what it
records for a listing filtered by email, on a plain aiohttp session and on the client's own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support import FAST, client_for
from yarl import URL

from argos_async._protocol.masking import encoded_forms
from argos_async.otel import instrument
from argos_async.testing import ArgosEmulator, FaultPlan, Status

pytestmark = pytest.mark.anyio

AIOHTTP_SCOPE = "opentelemetry.instrumentation.aiohttp_client"


class Switched:
    """The instrumentation on for every new session, recording into memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def aiohttp_spans(self) -> list[ReadableSpan]:
        return [
            s
            for s in self.exporter.get_finished_spans()
            if s.instrumentation_scope is not None and s.instrumentation_scope.name == AIOHTTP_SCOPE
        ]

    def ours(self) -> list[ReadableSpan]:
        return [
            s
            for s in self.exporter.get_finished_spans()
            if s.instrumentation_scope is not None and s.instrumentation_scope.name == "argos_async"
        ]


def recorded_url(span: ReadableSpan) -> str:
    attributes = dict(span.attributes or {})
    # The old conventions' name, or the new one's (OTEL_SEMCONV_STABILITY_OPT_IN=http).
    return str(attributes.get("http.url") or attributes["url.full"])


def switch_on(**options: Any) -> Iterator[Switched]:
    switched = Switched()
    AioHttpClientInstrumentor().instrument(tracer_provider=switched.provider, **options)
    try:
        yield switched
    finally:
        AioHttpClientInstrumentor().uninstrument()
        switched.provider.shutdown()


@pytest.fixture
def instrumentation() -> Iterator[Switched]:
    yield from switch_on()


def own_filter(url: URL) -> str:
    """An application's own url_filter: drops the port."""
    return str(url.with_port(None))


@pytest.fixture
def instrumentation_with_a_filter() -> Iterator[Switched]:
    yield from switch_on(url_filter=own_filter)


async def test_a_plain_session_records_the_email_and_the_clients_session_does_not(
    instrumentation: Switched,
) -> None:
    async with ArgosEmulator(submissions=400, seed=3) as emu:
        email = emu.dataset.heavy_email
        userid = next(u for u in emu.dataset.userids if u and len(u) > 3)
        # What the instrumentation records by default: the whole URL, query and all.
        async with (
            aiohttp.ClientSession(headers={"x-api-key": emu.api_key}) as http,
            http.get(f"{emu.url}/v3/submission", params={"email": email}) as response,
        ):
            assert response.status == 200
        (plain,) = instrumentation.aiohttp_spans()
        assert email in URL(recorded_url(plain)).query.values()
        instrumentation.exporter.clear()

        async with client_for(emu, FAST) as argos:
            items = [s async for s in argos.iter_submissions(email=email, page_size=3)]
            [s async for s in argos.iter_submissions(userid=userid)]
        assert len(items) >= 4
        key = emu.api_key
    spans = instrumentation.aiohttp_spans()
    assert len(spans) == len(emu.requests) - 1 >= 3  # one per request of the client
    local = email.partition("@")[0]
    for span in spans:
        url = recorded_url(span)
        query = URL(url).query
        assert query.get("email", query.get("userid")) in (
            email[0] + "***@" + email.partition("@")[2],
            userid[0] + "***",
        )
        text = repr(dict(span.attributes or {})) + span.name
        for secret in [*encoded_forms(local), *encoded_forms(userid), key]:
            assert secret not in text


async def test_the_applications_own_url_filter_still_applies_after_the_masking(
    instrumentation_with_a_filter: Switched,
) -> None:
    async with ArgosEmulator(submissions=200, seed=3) as emu:
        email = emu.dataset.heavy_email
        async with client_for(emu, FAST) as argos:
            [s async for s in argos.iter_submissions(email=email)]
    (span,) = instrumentation_with_a_filter.aiohttp_spans()
    url = URL(recorded_url(span))
    assert url.explicit_port is None  # the application's filter ran, on the masked URL
    assert url.query["email"] == email[0] + "***@" + email.partition("@")[2]


async def test_the_aiohttp_spans_nest_under_the_clients_attempt_spans(
    instrumentation: Switched,
) -> None:
    plan = FaultPlan([Status(502, at=1, path="/v3/submission")])
    async with (
        ArgosEmulator(submissions=50, seed=3, faults=plan) as emu,
        client_for(emu, FAST) as argos,
    ):
        instrument(argos, tracer_provider=instrumentation.provider)
        await argos.get_submission(emu.dataset.ids[0])
    attempts = [s for s in instrumentation.ours() if s.name.startswith("GET ")]
    http = instrumentation.aiohttp_spans()
    assert len(attempts) == len(http) == 2
    assert sorted(s.parent.span_id for s in http if s.parent) == sorted(
        s.context.span_id for s in attempts if s.context
    )
    assert [dict(s.attributes or {}).get("http.status_code") for s in http] == [502, 200]
