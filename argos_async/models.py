"""Typed views of the API's JSON, as msgspec Structs.

Attributes are snake_case; the wire name is kept with ``msgspec.field(name=...)``. Every field
but ``submission_id`` is optional and unknown keys are ignored, so a field the API adds tomorrow
never breaks a stream. Fields with a documented value set (``kyc.result``, ``commentCode``,
``idType``, AML levels) are plain ``str``: compare them with the constants below
(``sub.kyc.result == KycResult.APPROVED``); a value that is not in the set still decodes.

Timestamps decode to timezone-aware ``datetime`` (UTC). A timestamp of another shape does not
fail the page: the documented placeholder shape ``YYYY-MM-DD-HH-MM-SS-mmm`` and offset-less
ISO values are read as UTC, anything else becomes ``None``; the item's raw JSON keeps the
original (``Page.raw_items``).

Arrays are tuples and the Structs are created with ``gc=False``: decoded API data is read,
not edited, and never forms reference cycles, so nothing of a page needs the garbage
collector's tracking; an absent array is the shared empty tuple. Together this makes a page of
2,000 submissions about a fifth cheaper to decode than with lists and default Structs.
"""

from __future__ import annotations

import enum
import sys
from datetime import datetime
from typing import Annotated, Any

import msgspec

__all__ = [
    "AgeGroup",
    "Aml",
    "AmlMatch",
    "AmlMatchRiskLevel",
    "AmlRiskLevel",
    "AmlStatus",
    "ApplicantData",
    "ApplicantSubmission",
    "BankVerification",
    "CommentCode",
    "IdType",
    "Image",
    "Kyc",
    "KycAttempt",
    "KycResult",
    "Memo",
    "Ocr",
    "Page",
    "PageKey",
    "ProjectOptions",
    "Projection",
    "RequestType",
    "Reviewer",
    "Submission",
    "Timestamp",
]

if sys.version_info >= (3, 11):
    from enum import StrEnum as _StrEnum
else:  # pragma: no cover - exercised on Python 3.10 only

    class _StrEnum(str, enum.Enum):
        def __str__(self) -> str:
            return str(self.value)


Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
"""A timezone-aware datetime; the API sends ISO-8601 UTC with milliseconds."""


# ---------------------------------------------------------------------------------------------
# Known value sets. Fields stay ``str``: these are for comparing, never for validating.


class KycResult(_StrEnum):
    """Values of ``kyc.result``."""

    INCOMPLETE = "incomplete"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class CommentCode(_StrEnum):
    """Reject codes of ``kyc.commentCode`` (the seed's table and the provider's newer ones)."""

    ID_IMAGE_INVALID_IMAGE = "id_image_invalidImage"
    ID_IMAGE_INVALID_ID = "id_image_invalidId"
    ID_IMAGE_ERROR = "id_image_error"
    ID_IMAGE_BAD_IMAGE = "id_image_badImage"
    ID_INFO_DATA_MISMATCH = "id_info_dataMismatch"
    ID_INFO_BLACKLIST = "id_info_blacklist"
    ID_INFO_NOT_OF_AGE = "id_info_notOfAge"
    DUPLICATE_USER = "duplicate_user"
    DUPLICATED_USER_PII_EXACT = "duplicated_user_PII_exact"
    DUPLICATED_FACE = "duplicated_face"
    TOO_MANY_RETRY = "too_many_retry"
    BLACKLIST_COUNTRY = "blacklistCountry"
    UNDER_AGE_LIMIT = "under_ageLimit"
    INVALID_ACCEPTED_ID = "invalid_acceptedID"
    NO_DATE_OF_BIRTH = "no-date-of-birth"
    EXPIRED_ID = "expired_id"
    AUTOMATIC_VERIFICATION_FAIL = "automatic_verification_fail"
    ADDRESS_IMAGE_INVALID_IMAGE = "address_image_invalidImage"
    ADDRESS_IMAGE_ERROR = "address_image_error"
    ADDRESS_IMAGE_BAD_IMAGE = "address_image_badImage"
    ADDRESS_INFO_EXPIRED_DOCUMENT = "address_info_expiredDocument"
    ADDRESS_INFO_DATA_MISMATCH = "address_info_dataMismatch"
    TIMEOUT = "timeout"
    OTHER = "other"


class IdType(_StrEnum):
    """Values of ``data.idType`` (the seed's ``drivers_licensem`` typo is ``drivers_license``)."""

    PASSPORT = "passport"
    GOVERNMENT_ID = "government_id"
    DRIVERS_LICENSE = "drivers_license"
    RESIDENCE_PERMIT = "residence_permit"
    VEHICLE_REGISTRATION_CERTIFICATE = "vehicle_registration_certificate"
    VISA = "visa"
    AADHAAR = "aadhaar"
    PANCARD = "pancard"
    FOREIGN_REGISTRATOR = "foreign_registrator"


class AmlRiskLevel(_StrEnum):
    """Values of ``aml.risk_level_summary``."""

    NOT_SCREENED = "Not Screened"
    HIGH = "High"
    MEDIUM = "Medium"
    LOW = "Low"


class AmlStatus(_StrEnum):
    """Values of ``aml.currentstatus``."""

    NOT_SCREENED = "Not Screened"
    RED_FLAG = "Red Flag"


class AmlMatchRiskLevel(_StrEnum):
    """Values of ``aml.matches[i].risk_level``."""

    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class Reviewer(_StrEnum):
    """Values of ``reviewer``: the AI system or a human agent."""

    SYSTEM = "system"
    AGENT = "agent"


class AgeGroup(_StrEnum):
    """Values of ``data.age_group``."""

    MINOR = "minor"
    EARLY_TEEN = "early-teen"
    TEEN = "teen"
    ADULT = "adult"
    NOT_AVAILABLE = "N/A"


class RequestType(_StrEnum):
    """Values of the ``request_type`` query parameter: which part of each submission to return."""

    KYC = "kyc"
    AML = "aml"
    DATA = "data"
    OTHERS = "others"


# ---------------------------------------------------------------------------------------------
# Submission and its parts.


class _Model(msgspec.Struct, kw_only=True, gc=False, repr_omit_defaults=True):
    """Common Struct options for every model."""


class ApplicantData(_Model):
    """``data``: the applicant's personal data as read from the ID and the form."""

    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    age_group: str | None = None
    gender: str | None = None
    nationality: str | None = None
    date_of_birth: str | None = None
    ip_address: str | None = None
    id_type: str | None = msgspec.field(default=None, name="idType")
    idcard_issuing_country: str | None = msgspec.field(default=None, name="idcard_issuingCountry")
    idcard_issue_date: str | None = msgspec.field(default=None, name="idcard_issueDate")
    idcard_expire_date: str | None = msgspec.field(default=None, name="idcard_expireDate")
    identity_number: str | None = msgspec.field(default=None, name="identityNumber")
    document_number: str | None = msgspec.field(default=None, name="documentNumber")
    address_city: str | None = None
    address_country: str | None = None
    address_state: str | None = None
    address_street: str | None = None
    address_street2: str | None = None
    address_zipcode: str | None = None
    address_global_code: str | None = msgspec.field(default=None, name="address_globalCode")
    address_compound_code: str | None = msgspec.field(default=None, name="address_compoundCode")
    address_formatted: str | None = None
    address_input: str | None = None
    address_detail: str | None = None
    cf1: str | None = None
    cf2: str | None = None
    cf3: str | None = None
    type_of_permit: str | None = msgspec.field(default=None, name="typeOfPermit")
    type_of_permit_gov_kor: str | None = msgspec.field(default=None, name="typeOfPermitGovKor")
    expiry_date_of_stay_kor: str | None = msgspec.field(default=None, name="expiryDateOfStayKor")
    nationality_gov_kor: str | None = msgspec.field(default=None, name="nationalityGovKor")


class KycAttempt(_Model):
    """``kyc.attempts[i]``: one try at liveness, face detection, face compare and ID checks."""

    attempt_cnt: int | None = msgspec.field(default=None, name="attemptCnt")
    id_barcode_result: str | None = msgspec.field(default=None, name="idBarcodeResult")
    ocr_result: str | None = msgspec.field(default=None, name="ocrResult")
    verification_result: str | None = msgspec.field(default=None, name="verificationResult")
    verification: dict[str, Any] | None = None
    verification_params: dict[str, Any] | None = msgspec.field(
        default=None, name="verificationParams"
    )
    error_code: str | None = msgspec.field(default=None, name="errorCode")
    error_msg: str | None = msgspec.field(default=None, name="errorMsg")
    step1_time_1st: Timestamp | None = msgspec.field(default=None, name="step1Time1st")
    step1_time_2nd: Timestamp | None = msgspec.field(default=None, name="step1Time2nd")
    step1_time_3rd: Timestamp | None = msgspec.field(default=None, name="step1Time3rd")
    step2_time_1st: Timestamp | None = msgspec.field(default=None, name="step2Time1st")
    step2_time_2nd: Timestamp | None = msgspec.field(default=None, name="step2Time2nd")
    step2_time_3rd: Timestamp | None = msgspec.field(default=None, name="step2Time3rd")
    retry_msg: tuple[str, ...] = msgspec.field(default=(), name="retryMsg")
    retry_code: tuple[str, ...] = msgspec.field(default=(), name="retryCode")
    face_similarity_score: float | None = msgspec.field(default=None, name="faceSimilarityScore")
    liveness_score: float | None = msgspec.field(default=None, name="livenessScore")
    selfie_image: str | None = msgspec.field(default=None, name="selfieImage")


class Kyc(_Model):
    """``kyc``: the KYC decision. ``attempts`` is only filled by single-submission lookups."""

    result: str | None = None
    comment: tuple[str, ...] = ()
    comment_code: tuple[str, ...] = msgspec.field(default=(), name="commentCode")
    attempts: tuple[KycAttempt, ...] = ()


class AmlMatch(_Model):
    """``aml.matches[i]``: one red-flag match; ``resource_id`` fetches its report."""

    risk_level: str | None = None
    resource_id: str | None = None
    score: float | None = None


class Aml(_Model):
    """``aml``: the AML screening result (screening runs only after KYC approval)."""

    risk_level_summary: str | None = None
    current_status: str | None = msgspec.field(default=None, name="currentstatus")
    matches: tuple[AmlMatch, ...] = ()


class BankVerification(_Model):
    """``bank_verification``: the result of the 'Account Occupancy - South Korea' option."""

    result: str | None = None
    type: str | None = None
    bank_code: str | None = None
    account_number: str | None = None
    # The seed's table spells it "retry_countj"; the field is retry_count.
    retry_count: int | None = None


class Image(_Model):
    """``image``: references to the submitted images."""

    id_image: str | None = msgspec.field(default=None, name="idImage")
    id_back_image: str | None = msgspec.field(default=None, name="idBackImage")
    selfie_image: str | None = msgspec.field(default=None, name="selfieImage")
    address_image: str | None = msgspec.field(default=None, name="addressImage")


class Memo(_Model):
    """``memo``: the dashboard memo."""

    text: str | None = None
    updated_at: Timestamp | None = None


class ProjectOptions(_Model):
    """``project_options`` (single lookups only): the project's settings at submission time."""

    option_aml: bool | None = None
    option_address_data: bool | None = msgspec.field(default=None, name="option_addressData")
    option_id_number: bool | None = msgspec.field(default=None, name="option_idNumber")
    policy_approve_period: int | None = msgspec.field(default=None, name="policy_approvePeriod")
    policy_blacklist_countries: tuple[str, ...] = msgspec.field(
        default=(), name="policy_blacklistCountries"
    )
    policy_accepted_id: tuple[str, ...] = msgspec.field(default=(), name="policy_acceptedID")


class Projection(_Model):
    """``projection``: the field projection applied to this submission, if any."""

    projection_id: str | None = msgspec.field(default=None, name="projectionId")
    projection_name: str | None = msgspec.field(default=None, name="projectionName")


class Ocr(_Model):
    """``ocr`` (single lookups only): the OCR summary, camelCase on the wire."""

    birth_date: str | None = msgspec.field(default=None, name="birthDate")
    expire_date: str | None = msgspec.field(default=None, name="expireDate")
    first_name: str | None = msgspec.field(default=None, name="firstName")
    full_name: str | None = msgspec.field(default=None, name="fullName")
    identity_number: str | None = msgspec.field(default=None, name="identityNumber")
    last_name: str | None = msgspec.field(default=None, name="lastName")
    nationality: str | None = None


class Submission(_Model):
    """One KYC submission. List queries fill fewer fields than a single-submission lookup."""

    submission_id: str
    email: str | None = None
    userid: str | None = None
    applicant_id: str | None = None
    duplicated_information: str | None = None
    reviewer: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    kyc_result_at: Timestamp | None = None
    pending_at: Timestamp | None = None
    data: ApplicantData | None = None
    kyc: Kyc | None = None
    aml: Aml | None = None
    bank_verification: BankVerification | None = None
    # The docs show these two only as placeholders; numbers are expected, text is kept.
    recognition_score: float | str | None = None
    argos_score: float | str | None = None
    image: Image | None = None
    memo: Memo | None = None
    project_options: ProjectOptions | None = None
    projection: Projection | None = None
    ocr: Ocr | None = None
    ocr_raw: dict[str, Any] | None = msgspec.field(default=None, name="OCR_raw")
    verification: dict[str, Any] | None = None


class ApplicantSubmission(_Model):
    """One entry of ``GET /v3/submission/applicant``: a submission judged to be the same person."""

    submission_id: str
    email: str | None = None
    duplicated_information: str | None = None


class PageKey(msgspec.Struct, frozen=True, gc=False):
    """``nextpageKey``: where the next page starts. Both values are sent back verbatim."""

    id: str
    """The last submission id of the page (sent back as ``nextpage_id``)."""
    created_at: str
    """That submission's ``created_at``, as sent (sent back as ``nextpage_date``)."""


class Page(msgspec.Struct, kw_only=True, gc=False):
    """One page of a listing.

    ``cursor`` resumes the listing right after this page (pass it as ``cursor=``); it is
    ``None`` on the last page. ``body`` is the response body exactly as received.
    """

    items: list[Submission]
    """The page's submissions in server order; may be empty on a page that is not the last."""
    next_key: PageKey | None
    """The server's ``nextpageKey``; None on the last page."""
    cursor: str | None
    """An opaque resume token for ``cursor=``; None on the last page."""
    body: bytes = msgspec.field(default=b"")
    """The response body exactly as received (``raw_items`` is read from it)."""
    first: int = 0
    """Where ``items`` start among the body's items: past those a resumed listing had already
    delivered (and ``items`` end early where ``max_items`` cut the page short)."""

    def __repr__(self) -> str:
        return f"Page(items=<{len(self.items)} submissions>, cursor={self.cursor!r})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        # As repr: a page of personal data is not printed item by item.
        return [("items", f"<{len(self.items)} submissions>"), ("cursor", self.cursor)]

    @property
    def raw_items(self) -> list[msgspec.Raw]:
        """Each item's JSON exactly as the server sent it, in the order of ``items``.

        Decoded from ``body`` on each access, without copying the item bytes.
        """
        raw = _raw_envelope_decoder.decode(self.body).items
        if self.first or len(raw) != len(self.items):
            raw = raw[self.first : self.first + len(self.items)]
        return raw


class RawPage(msgspec.Struct, kw_only=True, gc=False):
    """One page of a listing with each item's JSON exactly as the server sent it, for
    archiving: no ``Submission`` is built. The envelope, the next key and the item count are
    checked like a ``Page``'s, and ``cursor`` resumes the same way."""

    items: list[msgspec.Raw]
    """Each item's bytes as sent (views into ``body``), in server order."""
    next_key: PageKey | None
    """The server's ``nextpageKey``; None on the last page."""
    cursor: str | None
    """An opaque resume token for ``cursor=``; None on the last page."""
    body: bytes = msgspec.field(default=b"")
    """The response body exactly as received."""
    first: int = 0
    """Where ``items`` start among the body's items (see ``Page.first``)."""

    def __repr__(self) -> str:
        return f"RawPage(items=<{len(self.items)} raw items>, cursor={self.cursor!r})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("items", f"<{len(self.items)} raw items>"), ("cursor", self.cursor)]


class _RawEnvelope(msgspec.Struct, gc=False):
    items: list[msgspec.Raw] = msgspec.field(name="Items")


_raw_envelope_decoder = msgspec.json.Decoder(_RawEnvelope)
