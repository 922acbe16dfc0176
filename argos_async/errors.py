"""Exceptions raised by argos_async.

The hierarchy::

    ArgosError
     └─ APIError
         ├─ APIStatusError          an error answer: .status .message .request_id .body
         │   ├─ BadRequestError       400 Invalid Query String parameters
         │   ├─ AuthenticationError   401/403: a bad or missing key, or an IP not allow-listed
         │   ├─ NotFoundError         a single lookup matched nothing (200 with empty Items)
         │   ├─ PayloadTooLargeError  413 Request Entity Too Large
         │   ├─ RateLimitError        429 Too Many Requests
         │   │   └─ QuotaExceededError  429 "Limit Exceeded": the daily quota (.resets_at)
         │   └─ ServerError           5xx
         ├─ APIConnectionError      no answer: refused, reset, cut off mid-body
         │   └─ APITimeoutError       an attempt or a call's deadline ran out
         ├─ ClientPausedError       not sent: the client is paused (a server's Retry-After)
         │                          beyond this call's deadline
         ├─ ResponseDecodeError     the body is not the documented shape (or was cut off)
         │   └─ DecryptionError       secure transmission: the body does not decrypt (a wrong
         │                            key, a damaged or an unencrypted body); never retried
         ├─ ResponseTooLargeError   the body exceeds the client's size cap
         └─ PaginationError         the server handed out a page key it had handed out before
     CheckpointError              a backfill checkpoint that cannot be used (also a ValueError)
     WebhookDecodeError           a webhook body that is not JSON, not an object, or not the
                                  documented shape (also a ValueError)
     InboxFullError               a WebhookInbox already holds max_pending submissions
     DeliveryError                a deliver function made some of a batch's submissions
                                  true, not all (.submission_ids: those to try again)

Every status error carries ``retry_after``: the seconds its response's ``Retry-After`` asked
for, or ``None``.

Messages never contain the API key; emails and user ids in them are masked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "ArgosError",
    "AuthenticationError",
    "BadRequestError",
    "CheckpointError",
    "ClientPausedError",
    "DecryptionError",
    "DeliveryError",
    "InboxFullError",
    "NotFoundError",
    "PaginationError",
    "PayloadTooLargeError",
    "QuotaExceededError",
    "RateLimitError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "ServerError",
    "WebhookDecodeError",
]


class ArgosError(Exception):
    """Base class of every error argos_async raises on purpose."""


class APIError(ArgosError):
    """A request to the Argos API failed."""

    attempts: int = 1
    """How many times the request was sent before this error was given up on (0 when the
    call's deadline or a client-wide pause ended it before anything was sent)."""

    cursor: str | None = None
    """Set when the error interrupted a listing: pass it as ``cursor=`` to resume right after
    the last page that was delivered (``None`` means "from the start")."""


class APIStatusError(APIError):
    """The API answered with a status that means failure."""

    status: int
    """The HTTP status (200 for a lookup that matched nothing)."""

    message: str
    """The body's ``message``, ``Message`` or ``errorCode``, else its text; masked."""

    request_id: str | None
    """The ``x-amzn-RequestId`` of the response, to quote to Argos support."""

    body: str
    """The start of the response body (at most 500 characters), emails and user ids masked."""

    retry_after: float | None
    """Seconds the response's ``Retry-After`` asked to wait (delay or HTTP-date form), or
    ``None`` when it sent none. The client honours it on a 429 and a 503."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        request_id: str | None = None,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after
        super().__init__(message)

    def __str__(self) -> str:
        # A lookup that matched nothing is a 200: no status code to show in front of it.
        text = self.message if self.status == 200 else f"{self.status} {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class BadRequestError(APIStatusError):
    """400: the API rejected the query parameters."""


class AuthenticationError(APIStatusError):
    """401/403: the key is wrong or missing, or the caller's IP is not allow-listed."""


class NotFoundError(APIStatusError):
    """A lookup matched nothing: the API answers 200 with an empty ``Items`` list."""


class PayloadTooLargeError(APIStatusError):
    """413: the response would exceed the server's size limit."""


class RateLimitError(APIStatusError):
    """429: too many requests."""


class QuotaExceededError(RateLimitError):
    """429 "Limit Exceeded": the daily call quota is spent; it resets at 00:00 UTC. Not retried:
    nothing changes before ``resets_at``."""

    resets_at: datetime
    """When the quota resets (an aware UTC datetime)."""

    def __init__(
        self,
        message: str,
        *,
        resets_at: datetime,
        status: int = 429,
        request_id: str | None = None,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, status=status, request_id=request_id, body=body, retry_after=retry_after
        )
        self.resets_at = resets_at


class ServerError(APIStatusError):
    """5xx: the server or its gateway failed."""


class APIConnectionError(APIError):
    """No usable answer: the connection was refused, reset or cut off mid-body."""


class APITimeoutError(APIConnectionError):
    """An attempt's timeout or a call's deadline ran out."""


class ClientPausedError(APIError):
    """The call was not sent: a server's ``Retry-After`` paused the whole client until after
    this call's deadline. Nothing reached the server (``attempts`` is 0); unlike a
    ``RateLimitError``, no 429 answered this call."""

    retry_after: float
    """Seconds until the client's pause ends."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.attempts = 0


class ResponseDecodeError(APIError):
    """The response body is not the shape the API documents."""

    incomplete: bool
    """True when the body is not even valid JSON (most often cut off in transit); such a
    response is retried."""

    def __init__(self, message: str, *, incomplete: bool = False) -> None:
        super().__init__(message)
        self.incomplete = incomplete


class DecryptionError(ResponseDecodeError):
    """Secure transmission is on and a 200 answer does not decrypt into JSON: the key is not
    the project's (the API key, or the secret key the project set instead), or the body is
    damaged, or it is not encrypted at all (the project has secure transmission off). Never
    retried: the same body would fail the same way. The message names what failed (the
    base64, the length, the padding, the plaintext), never the key or any plaintext."""

    def __init__(self, message: str) -> None:
        super().__init__(message, incomplete=False)


class ResponseTooLargeError(APIError):
    """The response body is larger than the client's ``max_response_bytes``."""


class PaginationError(APIError):
    """The server returned a page key it had already returned in this listing (a loop)."""


class CheckpointError(ArgosError, ValueError):
    """A backfill checkpoint file cannot be used: damaged, unreadable, of another version, or
    made for other arguments. Raised before any request."""


class WebhookDecodeError(ArgosError, ValueError):
    """A webhook body that ``argos_async.webhooks.parse`` cannot read: not JSON, not a JSON
    object, without a string ``webhook_trigger``, or with a field of another type than the
    documented one. The message names the problem and the field's path, never a value: a
    webhook body is personal data."""


class InboxFullError(ArgosError):
    """``WebhookInbox.accept``: the inbox already holds ``max_pending`` submissions waiting
    to be fetched. Nothing was kept: answer 503 and let the sender (or the scheduled
    reconciliation) bring the event again."""

    max_pending: int
    """The inbox's bound."""

    def __init__(self, max_pending: int) -> None:
        super().__init__(f"the webhook inbox is full: {max_pending} submissions wait to be fetched")
        self.max_pending = max_pending


class DeliveryError(ArgosError):
    """A deliver function of a ``WebhookInbox`` made some of its batch true and not the
    others: ``submission_ids`` are the ones to try again (the inbox puts back only those).
    The cause is the first error met (``__cause__``); the message names no submission."""

    submission_ids: tuple[str, ...]
    """The submissions of the batch that were not delivered."""

    def __init__(self, submission_ids: Iterable[str], message: str) -> None:
        super().__init__(message)
        self.submission_ids = tuple(submission_ids)
