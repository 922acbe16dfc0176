"""OpenTelemetry traces and metrics for an ``ArgosClient`` (the ``otel`` extra).

::

    from argos_async.otel import instrument

    async with ArgosClient() as argos:
        instrument(argos)          # the global tracer and meter providers, or pass your own
        ...

Traces: a span per logical call (``argos get_submission``, ``argos get_applicant_submissions``,
and ``argos list_page`` for each page of a listing; a batch key gets its lookup's span, or
the page spans of its listing), the
current span its parent (a FastAPI request's, say); under it a ``CLIENT`` span per attempt
(``GET /v3/submission``), named and attributed after OpenTelemetry's HTTP semantic
conventions: ``http.request.method``, ``url.full`` (the query's emails and user ids masked),
``url.template``, ``server.address``, ``server.port``, ``http.request.resend_count`` (on a
retry), ``http.response.status_code``, ``error.type``; and of this library:
``argos.request_id`` (the server's), and, on an attempt that is retried, ``argos.retry.wait``
(seconds) and ``argos.retry.reason``. A wait at the client's pause gate (a ``Retry-After``
that paused the client) is an ``argos.pause`` event on the call's span. The attempt's span is
the current one while it is sent, so the spans of ``opentelemetry-instrumentation-aiohttp-client``
nest under it.

Metrics: ``http.client.request.duration`` (s, per attempt), ``argos.client.requests`` (per
attempt, by ``http.response.status_code`` or ``error.type``), ``argos.client.retries`` (by
``argos.retry.reason``), ``argos.client.pause.duration`` (s, waits at the pause gate) and
``argos.client.items`` (items delivered by listings), each with ``argos.operation``.

Nothing recorded holds the key, an email or a user id. This module is the only one that
imports OpenTelemetry (only its API); the client works without it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import Token
from typing import Any
from urllib.parse import quote

from opentelemetry import context, metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from yarl import URL

from ._client import ArgosClient
from ._hooks import CallInfo, CallObserver, RequestEvent, ResponseEvent, RetryEvent
from ._transport import masked_url
from ._version import __version__

__all__ = ["Instrumentation", "instrument", "url_filter"]

_SCOPE = "argos_async"


def instrument(
    client: ArgosClient,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Instrumentation:
    """Records traces and metrics of every call of ``client`` and of its ``with_options``
    views (instrumenting a view instruments its client), with the given providers or the
    global ones. Returns the :class:`Instrumentation`, whose ``uninstrument()`` stops it.
    A client can be instrumented once at a time."""
    if not isinstance(client, ArgosClient):
        raise TypeError(f"client must be an ArgosClient, got {type(client).__name__}")
    if any(isinstance(o, _Observer) for o in client._shared.observers):
        raise RuntimeError("this client is instrumented already; uninstrument() it first")
    observer = _Observer(client.base_url, tracer_provider, meter_provider)
    client._observe(observer)
    return Instrumentation(client, observer)


class Instrumentation:
    """What :func:`instrument` switched on for one client."""

    def __init__(self, client: ArgosClient, observer: _Observer) -> None:
        self._client = client
        self._observer = observer

    def uninstrument(self) -> None:
        """Stops recording the client's calls (a call under way finishes its spans)."""
        self._client._unobserve(self._observer)


def url_filter(url: URL) -> str:
    """A ``url_filter`` for ``opentelemetry-instrumentation-aiohttp-client``: the URL with
    its ``email``, ``userid`` and ``data`` (secure transmission's) values masked. The
    client's own session is masked anyway; pass this to
    ``AioHttpClientInstrumentor().instrument(url_filter=...)`` for your other sessions that
    call the Argos API."""
    return str(masked_url(url))


class _Observer:
    """The client's observer (``_hooks.Observer``): makes spans and records metrics."""

    def __init__(
        self,
        base_url: str,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
    ) -> None:
        self.base_url = base_url
        parsed = URL(base_url)
        self.server: dict[str, Any] = {"server.address": parsed.host or ""}
        if parsed.port is not None:
            self.server["server.port"] = parsed.port
        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests (each attempt).",
        )
        self.requests = meter.create_counter(
            "argos.client.requests",
            unit="{request}",
            description="Requests sent (each attempt), by status or error.",
        )
        self.retries = meter.create_counter(
            "argos.client.retries", unit="{retry}", description="Attempts sent again, by reason."
        )
        self.pauses = meter.create_histogram(
            "argos.client.pause.duration",
            unit="s",
            description="Waits at the client's pause gate, closed by a server's Retry-After.",
        )
        self.items_counter = meter.create_counter(
            "argos.client.items", unit="{item}", description="Items delivered by listings."
        )

    def start(self, call: CallInfo) -> CallObserver:
        """A call starts: its span, a child of the current one."""
        return _Call(self, call)

    def items(self, count: int) -> None:
        """A listing delivered a page of ``count`` items."""
        self.items_counter.add(count, {"argos.operation": "list_page"})


class _Call:
    """One call's spans: the call's, and the current attempt's."""

    def __init__(self, observer: _Observer, call: CallInfo) -> None:
        self.observer = observer
        self.operation = call.operation
        self.template = call.path
        self.url = _full_url(observer.base_url, call.path, call.params)
        self.labels: dict[str, Any] = {
            "argos.operation": call.operation,
            "http.request.method": call.method,
            **observer.server,
        }
        self.span = observer.tracer.start_span(
            f"argos {call.operation}",
            kind=SpanKind.INTERNAL,
            attributes={**self.labels, "url.template": call.path},
        )
        self.attempt: Span | None = None
        self.attempt_end = 0
        self.token: Token[Context] | None = None

    def request(self, event: RequestEvent) -> None:
        """An attempt's span, current while it is sent."""
        self._close_attempt()
        attributes: dict[str, Any] = {
            "http.request.method": event.method,
            "url.full": self.url,
            "url.template": self.template,
            **self.observer.server,
        }
        if event.attempt > 1:
            attributes["http.request.resend_count"] = event.attempt - 1
        self.attempt = self.observer.tracer.start_span(
            f"{event.method} {self.template}",
            context=trace.set_span_in_context(self.span),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        self.token = context.attach(trace.set_span_in_context(self.attempt))

    def response(self, event: ResponseEvent) -> None:
        """The attempt's outcome, on its span and in the metrics."""
        self._detach()
        self.attempt_end = time.time_ns()
        labels = dict(self.labels)
        if event.status is not None:
            labels["http.response.status_code"] = event.status
        error_type = _error_type(event.status, event.error)
        if error_type is not None:
            labels["error.type"] = error_type
        span = self.attempt
        if span is not None:
            if event.status is not None:
                span.set_attribute("http.response.status_code", event.status)
            if event.request_id is not None:
                span.set_attribute("argos.request_id", event.request_id)
            if error_type is not None:
                span.set_attribute("error.type", error_type)
                span.set_status(Status(StatusCode.ERROR, error_type))
            if event.error is None:
                self._close_attempt()  # nothing follows a success
        self.observer.duration.record(event.elapsed, labels)
        self.observer.requests.add(1, labels)

    def retry(self, event: RetryEvent) -> None:
        """The wait before the next attempt, and why, on the failed attempt's span."""
        if self.attempt is not None:
            self.attempt.set_attribute("argos.retry.wait", event.wait)
            self.attempt.set_attribute("argos.retry.reason", event.reason)
        self._close_attempt()
        labels: dict[str, Any] = {
            "argos.operation": self.operation,
            "argos.retry.reason": event.reason,
        }
        if event.status is not None:
            labels["http.response.status_code"] = event.status
        self.observer.retries.add(1, labels)

    def paused(self, seconds: float) -> None:
        """A wait at the pause gate."""
        self.span.add_event("argos.pause", {"argos.pause.duration": seconds})
        self.observer.pauses.record(seconds, {"argos.operation": self.operation})

    def end(self, error: BaseException | None, attempts: int) -> None:
        """The call's span ends (and an attempt's still open: a cancelled one)."""
        if self.token is not None:  # cancelled while sending: no response came
            self._detach()
            if self.attempt is not None:
                self.attempt.set_attribute("error.type", type(error).__name__)
                self.attempt.set_status(Status(StatusCode.ERROR, type(error).__name__))
        self._close_attempt()
        self.span.set_attribute("argos.attempts", attempts)
        if error is not None:
            name = type(error).__name__
            self.span.set_attribute("error.type", name)
            self.span.set_status(Status(StatusCode.ERROR, name))
        self.span.end()

    def _detach(self) -> None:
        if self.token is not None:
            token, self.token = self.token, None
            context.detach(token)

    def _close_attempt(self) -> None:
        if self.attempt is not None:
            span, self.attempt = self.attempt, None
            span.end(end_time=self.attempt_end or None)
            self.attempt_end = 0


def _error_type(status: int | None, error: Exception | None) -> str | None:
    # The conventions: the status code for an HTTP error, else the exception's kind.
    if status is not None and status >= 400:
        return str(status)
    if error is not None:
        return type(error).__name__
    return None


def _full_url(base_url: str, path: str, params: Mapping[str, str]) -> str:
    # `params` are masked already; encoded as the transport sends them.
    query = "&".join(f"{name}={quote(value, safe='*@')}" for name, value in params.items())
    return f"{base_url}{path}?{query}" if query else f"{base_url}{path}"
