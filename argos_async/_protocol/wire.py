"""The API's constants as they appear on the wire."""

from __future__ import annotations

from typing import Final, Literal

DEFAULT_BASE_URL: Final = "https://rest-api.argosidentity.com"
"""The API's current host, the client's default ``base_url`` (``ARGOS_BASE_URL`` overrides)."""
LEGACY_BASE_URL: Final = "https://rest-api.argoskyc.com"
"""The host of the original v3 documentation; serves the same API. Pass it as ``base_url``."""
SUBMISSION_PATH: Final = "/v3/submission"
APPLICANT_PATH: Final = "/v3/submission/applicant"
MAX_PAGE_SIZE: Final = 2000
"""The largest ``count`` the API documents (the original text; the current one names none)."""
API_KEY_HEADER: Final = "x-api-key"
REQUEST_ID_HEADER: Final = "x-amzn-RequestId"
RETRY_AFTER_HEADER: Final = "Retry-After"
QUOTA_MESSAGE: Final = "Limit Exceeded"
"""The gateway's 429 message for the daily quota, as opposed to "Too Many Requests"."""

RequestTypeName = Literal["kyc", "aml", "data", "others"]
"""Values of the ``request_type`` query parameter (which part of each submission to return),
as a type: a checker catches ``"kycc"`` before the API would."""

DateFormat = Literal["YYYY-MM-DD", "YYYYMMDD"]
"""How dates are sent: the current documentation's form, or the original's."""
DATE_FORMATS: Final[dict[str, str]] = {"YYYY-MM-DD": "%Y-%m-%d", "YYYYMMDD": "%Y%m%d"}
