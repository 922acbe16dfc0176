"""argos_async: an asyncio-first client for the Argos KYC REST API v3 submission endpoints.

Start with ``ArgosClient``; see the README for a tour.
"""

import logging as _logging

from ._backfill import Backfill, BackfillStats
from ._client import ArgosClient, ClientStats
from ._fanout import Batch, BatchResult
from ._hooks import RequestEvent, ResponseEvent, RetryEvent
from ._options import RequestOptions
from ._protocol.secure import SecureTransmission
from ._protocol.wire import DEFAULT_BASE_URL, LEGACY_BASE_URL, DateFormat, RequestTypeName
from ._stream import Stream
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ArgosError,
    AuthenticationError,
    BadRequestError,
    CheckpointError,
    ClientPausedError,
    DecryptionError,
    DeliveryError,
    InboxFullError,
    NotFoundError,
    PaginationError,
    PayloadTooLargeError,
    QuotaExceededError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    ServerError,
    WebhookDecodeError,
)
from .models import (
    ApplicantSubmission,
    CommentCode,
    IdType,
    KycResult,
    Page,
    RawPage,
    RequestType,
    Submission,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "LEGACY_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "ApplicantSubmission",
    "ArgosClient",
    "ArgosError",
    "AuthenticationError",
    "Backfill",
    "BackfillStats",
    "BadRequestError",
    "Batch",
    "BatchResult",
    "CheckpointError",
    "ClientPausedError",
    "ClientStats",
    "CommentCode",
    "DateFormat",
    "DecryptionError",
    "DeliveryError",
    "IdType",
    "InboxFullError",
    "KycResult",
    "NotFoundError",
    "Page",
    "PaginationError",
    "PayloadTooLargeError",
    "QuotaExceededError",
    "RateLimitError",
    "RawPage",
    "RequestEvent",
    "RequestOptions",
    "RequestType",
    "RequestTypeName",
    "ResponseDecodeError",
    "ResponseEvent",
    "ResponseTooLargeError",
    "RetryEvent",
    "SecureTransmission",
    "ServerError",
    "Stream",
    "Submission",
    "WebhookDecodeError",
    "__version__",
]

# A library's logger stays silent until the application configures logging: without this,
# Python's last-resort handler would print the library's warnings to stderr.
_logging.getLogger("argos_async").addHandler(_logging.NullHandler())
