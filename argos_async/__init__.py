"""argos_async: an asyncio-first client for the Argos KYC REST API v3 submission endpoints.

Start with ``ArgosClient``; see the README for a tour.
"""

__version__ = "0.1.0"

from ._backfill import Backfill, BackfillStats
from ._checkpoint import CheckpointError
from ._client import ArgosClient, ClientStats
from ._fanout import Batch, BatchResult
from ._protocol import DEFAULT_BASE_URL, LEGACY_BASE_URL
from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ArgosError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PaginationError,
    PayloadTooLargeError,
    QuotaExceededError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    ServerError,
)
from .models import (
    ApplicantSubmission,
    CommentCode,
    IdType,
    KycResult,
    Page,
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
    "ClientStats",
    "CommentCode",
    "IdType",
    "KycResult",
    "NotFoundError",
    "Page",
    "PaginationError",
    "PayloadTooLargeError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestType",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "ServerError",
    "Submission",
    "__version__",
]
