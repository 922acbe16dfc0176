"""Webhook events as msgspec Structs, and ``parse``: a body into its event.

Every documented trigger is a Struct tagged by ``webhook_trigger``, so the common path is one
``msgspec.json.Decoder`` call over the union. Only when that fails does ``_parse_leniently``
look closer: the body as plain JSON (is it JSON at all?), its header (an object, with a string
``webhook_trigger``, of a trigger we know?), then, for a known trigger, the listings' lenient
path (``repair_timestamps``, numbers sent as strings accepted). A trigger we do not know yet
becomes an ``UnknownWebhook``. A known trigger whose other fields still do not fit is a
``_Misfit``: ``parse`` raises its error, ``WebhookInbox`` takes its header as a hint.

Two spellings of one field (the old guide's ``update_at``, ``fullName``, top-level
``cf1..cf3``) are both decoded and ``__post_init__`` copies the old one into the current
name; a field whose shape differs between the guides (``additional_list``) keeps either
shape, as sent.
"""

from __future__ import annotations

import functools
from typing import Final, NamedTuple

import msgspec

from .._protocol.decoding import repair_timestamps
from .._protocol.masking import mask_text
from .._protocol.secure import SecureChannel, sealed_data
from ..errors import ResponseDecodeError, WebhookDecodeError
from ..models import Timestamp


class _Part(msgspec.Struct, kw_only=True, gc=False, repr_omit_defaults=True):
    """Common Struct options of an event's parts."""


class CustomFields(_Part):
    """``cf``: the custom fields the submission was started with."""

    cf1: str | None = None
    cf2: str | None = None
    cf3: str | None = None


class WebhookKycResult(_Part):
    """``kyc_result``: the KYC state the event reports. ``status`` is a ``KycResult`` value
    (``incomplete`` on ``created`` and ``retry``); the timestamps come with decisions."""

    status: str | None = None
    reviewer: str | None = None
    """``system`` (the AI) or ``agent`` (a human): a ``models.Reviewer`` value."""
    comment: str | tuple[str, ...] | None = None
    """The reason of a rejection (the old guide)."""
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    """When the status changed; also read from the old guide's ``update_at``."""
    kyc_result_at: Timestamp | None = None
    pending_at: Timestamp | None = None
    update_at: Timestamp | None = None
    """The old guide's spelling of ``updated_at``, as sent."""

    def __post_init__(self) -> None:
        if self.updated_at is None:
            self.updated_at = self.update_at


class AdditionalAnswer(_Part):
    """One entry of ``additional_list``: an answer to an extra question of the form."""

    answer: str | None = None
    input_value: str | None = msgspec.field(default=None, name="inputValue")
    block_type: str | None = msgspec.field(default=None, name="blockType")


class UpdatedData(_Part):
    """``data`` of an ``updated`` event: what changed, and the state after the change."""

    update: tuple[str, ...] = ()
    """The names of the changed fields, as the dashboard calls them (``kycStatus``, ...)."""
    kyc_result: str | None = None
    pending_at: Timestamp | None = None
    reviewer: str | None = None


class InjectionAction(_Part):
    """``action`` of an ``injection`` event: the additional process that ran."""

    type: str | None = None
    """The kind of process, e.g. ``address``."""
    created_at: Timestamp | None = None
    fail_code: str | None = msgspec.field(default=None, name="failCode")


class AmlResult(_Part):
    """``aml_result``: values of ``models.AmlStatus`` and ``models.AmlRiskLevel`` (the old
    product sends the risk levels in upper case)."""

    current_status: str | None = msgspec.field(default=None, name="currentstatus")
    risk_level_summary: str | None = None


class MonitorRecord(_Part):
    """One entry of ``records`` in an ``aml_monitor`` event: the submission registered in an
    ongoing-monitoring worklist."""

    record_id: str | None = msgspec.field(default=None, name="recordId")
    worklist_id: str | None = msgspec.field(default=None, name="worklistId")
    created_at: Timestamp | None = None


# dict=True gives each event a __dict__ to hold the body outside the decoded fields, where no
# key of the JSON can reach it. It rules out gc=False, a saving that one event per request
# does not need.
class WebhookEvent(msgspec.Struct, kw_only=True, dict=True, repr_omit_defaults=True):
    """The base of every event ``parse`` returns: ``trigger``, ``submission_id``, ``raw`` and
    ``is_deletion`` on any of them; match on the subclass for the rest."""

    submission_id: str | None = None

    @property
    def trigger(self) -> str:
        """The ``webhook_trigger`` the body was sent with."""
        tag = self.__struct_config__.tag
        return tag if isinstance(tag, str) else ""

    @property
    def raw(self) -> bytes:
        """The body exactly as received (UTF-8 encoded if ``parse`` was given text); empty
        for an event built by hand."""
        raw: bytes = self.__dict__.get("_raw", b"")
        return raw

    @property
    def is_deletion(self) -> bool:
        """True for a ``delete`` event: the submission is gone, there is nothing to fetch."""
        return self.trigger == "delete"


class _Documented(WebhookEvent, tag_field="webhook_trigger"):
    email: str | None = None
    userid: str | None = None
    token_id: str | None = msgspec.field(default=None, name="tokenId")
    cf: CustomFields | None = None
    duplicated_information: str | None = None


class _Attempt(_Documented):
    kyc_result: WebhookKycResult | None = None
    ip_address: str | None = msgspec.field(default=None, name="ipAddress")
    retry_code: str | tuple[str, ...] | None = msgspec.field(default=None, name="retryCode")
    attempts: int | None = None


class _Person(_Documented):
    age_group: str | None = None
    gender: str | None = None
    date_of_birth: str | None = None
    nationality: str | None = None
    full_name: str | None = None


class _StatusChange(_Person):
    kyc_result: WebhookKycResult | None = None
    applicant_id: str | None = None
    ip_address: str | None = msgspec.field(default=None, name="ipAddress")
    phone_number: str | None = msgspec.field(default=None, name="phoneNumber")
    ssn_number: str | None = msgspec.field(default=None, name="ssnNumber")
    id_type: str | None = msgspec.field(default=None, name="idType")
    issuing_country: str | None = msgspec.field(default=None, name="issuingCountry")
    issue_date: str | None = msgspec.field(default=None, name="issueDate")
    expire_date: str | None = msgspec.field(default=None, name="expireDate")
    identity_number: str | None = msgspec.field(default=None, name="identityNumber")
    document_number: str | None = msgspec.field(default=None, name="documentNumber")
    additional_list: tuple[AdditionalAnswer, ...] | AdditionalAnswer | None = None
    """A list in the current guide, one object in the old one: kept as sent."""
    legacy_full_name: str | None = msgspec.field(default=None, name="fullName")
    """The old guide's ``fullName``, as sent; ``full_name`` holds it too."""

    def __post_init__(self) -> None:
        if self.full_name is None:
            self.full_name = self.legacy_full_name


class CreatedWebhook(_Attempt, tag="created"):
    """``created``: a submission was created (``kyc_result.status`` is ``incomplete``)."""


class RetryWebhook(_Attempt, tag="retry"):
    """``retry``: the submitter retried a step (``retry_code``, ``attempts``)."""


class SubmitWebhook(_StatusChange, tag="submit"):
    """``submit``: the submission became pending, waiting for a review."""


class ApprovedWebhook(_StatusChange, tag="approved"):
    """``approved``: the submission was approved; ``applicant_id`` comes with it."""


class RejectedWebhook(_StatusChange, tag="rejected"):
    """``rejected``: the submission was rejected (the old guide adds
    ``kyc_result.comment``)."""


class UpdatedWebhook(_Person, tag="updated"):
    """``updated``: an admin changed fields or the status in the dashboard."""

    data: UpdatedData | None = None
    admin: str | None = None
    """The email of the admin who made the change."""
    update_time: Timestamp | None = None
    full_name_en: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class DeleteWebhook(_Documented, tag="delete"):
    """``delete``: the submission was deleted (``is_deletion``)."""


class InjectionWebhook(_Documented, tag="injection"):
    """``injection``: an additional process (e.g. an address step) ran on the submission.

    The custom fields come at the top level here; ``cf`` holds them too."""

    action: InjectionAction | None = None
    kyc_status: str | None = None
    applicant_id: str | None = None
    cf1: str | None = None
    cf2: str | None = None
    cf3: str | None = None

    def __post_init__(self) -> None:
        if self.cf is None and not (self.cf1 is self.cf2 is self.cf3 is None):
            self.cf = CustomFields(cf1=self.cf1, cf2=self.cf2, cf3=self.cf3)


class AmlWebhook(_Documented, tag="aml"):
    """``aml``: the AML screening result (screening runs only after an approval)."""

    aml_result: AmlResult | None = None


class AmlMonitorWebhook(_Documented, tag="aml_monitor"):
    """``aml_monitor``: the submission was registered for ongoing AML monitoring."""

    records: tuple[MonitorRecord, ...] = ()


class UnknownWebhook(WebhookEvent):
    """An event whose ``webhook_trigger`` this version does not know (the provider adds
    triggers, e.g. ``injectionFail``): only ``trigger`` and ``submission_id`` are read (the
    latter when it is a string), the rest is in ``raw``."""

    trigger: str = ""


_KNOWN: Final = (
    CreatedWebhook,
    RetryWebhook,
    SubmitWebhook,
    ApprovedWebhook,
    RejectedWebhook,
    UpdatedWebhook,
    DeleteWebhook,
    InjectionWebhook,
    AmlWebhook,
    AmlMonitorWebhook,
)
_BY_TRIGGER: Final[dict[str, type[_Documented]]] = {
    str(cls.__struct_config__.tag): cls for cls in _KNOWN
}
# The one Decoder of the common path: msgspec picks the Struct by its tag.
_decoder: Final = msgspec.json.Decoder(
    CreatedWebhook
    | RetryWebhook
    | SubmitWebhook
    | ApprovedWebhook
    | RejectedWebhook
    | UpdatedWebhook
    | DeleteWebhook
    | InjectionWebhook
    | AmlWebhook
    | AmlMonitorWebhook
)


class _Header(msgspec.Struct, gc=False):
    webhook_trigger: str
    submission_id: object = None


class _Misfit(NamedTuple):
    """A body whose header reads (an object with a known string ``webhook_trigger``) but
    whose other fields do not fit their documented types: what ``parse`` refuses with
    ``error``, and what an inbox can still act on."""

    trigger: str
    submission_id: object
    raw: bytes
    error: WebhookDecodeError


def parse(body: bytes | bytearray | memoryview | str, *, key: str | None = None) -> WebhookEvent:
    """A webhook body as its event: a ``WebhookEvent`` subclass per documented trigger,
    ``UnknownWebhook`` for others; the body itself is kept as ``event.raw``.

    ``key``: for a project with secure transmission on, the text its webhooks are encrypted
    with (the API key, or the project's secret key): the body, ``{"data": "<base64>"}``, is
    decrypted first (AES-256-ECB, as ``argos_async.SecureTransmission`` describes) and
    ``event.raw`` is the decrypted JSON. A body that does not decrypt with ``key`` (a wrong
    key, a damaged body, a body sent in plain JSON) raises ``WebhookDecodeError``, never an
    event of garbage. Without ``cryptography`` (the extra ``secure``), a ``key`` raises
    ``ImportError``.

    Every field but ``webhook_trigger`` may be missing; unknown fields are ignored. A
    timestamp that is a placeholder (``"string"``, ``"YYYY-MM-DD-HH-MM-SS-ZZZ"``) or of no
    known shape is ``None`` (the text stays in ``raw``); ISO-8601 without an offset and the
    dashed ``YYYY-MM-DD-HH-MM-SS-mmm`` shape are read as UTC.

    Raises ``WebhookDecodeError`` for a body that is not JSON, not an object, without a
    string ``webhook_trigger``, or with a field of another type; ``TypeError`` for a
    ``body`` that is neither bytes (or bytes-like) nor str.
    """
    data = _as_bytes(body)
    result = _parse_sealed(data, None if key is None else _channel(key))
    if isinstance(result, _Misfit):
        raise result.error from None
    return result


def _channel(key: object) -> SecureChannel:
    """The cipher of ``key``, checked as ``parse`` names it; ``ImportError`` (what to
    install) without ``cryptography``."""
    if not isinstance(key, str):
        raise TypeError(f"parse() argument 'key' must be a str, not {type(key).__name__}")
    if not key:
        raise ValueError("parse() argument 'key' must not be empty")
    return SecureChannel(key)


def _parse_sealed(data: bytes, channel: SecureChannel | None) -> WebhookEvent | _Misfit:
    """``parse``'s work on bytes, shared with ``WebhookInbox``: the event, or the
    ``_Misfit`` of a body whose fields do not fit (the caller decides whether to raise)."""
    sealed = channel is not None
    if channel is not None:
        data = _decrypted(data, channel)
    try:
        # The common path: one msgspec call builds the event of any documented trigger.
        result: WebhookEvent | _Misfit = _decoder.decode(data)
    except msgspec.ValidationError:
        result = _parse_leniently(data, sealed=sealed)
    except RecursionError:
        raise _too_deep(data) from None
    except msgspec.DecodeError as exc:
        raise _unreadable(data, exc, sealed=sealed) from None
    if isinstance(result, WebhookEvent):
        result.__dict__["_raw"] = data
    return result


def _decrypted(data: bytes, channel: SecureChannel) -> bytes:
    """The plaintext of an encrypted webhook body, ``{"data": "<base64>"}``. The body is
    decoded once here; the plaintext's own decode is the event's (see ``_unreadable``)."""
    try:
        text = sealed_data(data)
    except msgspec.ValidationError:
        raise WebhookDecodeError(
            'webhook body is not encrypted (it has no "data" string): is secure transmission '
            "switched on for this project?"
        ) from None
    except RecursionError:
        raise _too_deep(data) from None
    except msgspec.DecodeError as exc:
        raise _not_json(data, exc) from None
    try:
        return channel.decrypt(text)
    except ResponseDecodeError:  # DecryptionError; the channel speaks of responses
        raise _undecryptable() from None


def _undecryptable() -> WebhookDecodeError:
    return WebhookDecodeError(
        "webhook body does not decrypt with this key (a wrong key, or a damaged body): the "
        "key is the project's API key, or the secret key set in its dashboard"
    )


def _as_bytes(body: object) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        try:
            return body.encode()
        except UnicodeEncodeError:
            raise WebhookDecodeError(
                "webhook body is not valid text (it holds an unpaired surrogate)"
            ) from None
    raise TypeError(f"parse() argument 'body' must be bytes or str, not {type(body).__name__}")


def _parse_leniently(data: bytes, *, sealed: bool) -> WebhookEvent | _Misfit:
    """The slow path for a body the tagged decode refused: an unknown trigger, a timestamp
    of another shape, a number sent as a string, or a body that is not the documented shape
    (or not JSON at all: msgspec may refuse a field before it reaches the broken part)."""
    try:
        # The whole body first, so that a body that is not JSON is reported as such.
        document = msgspec.json.decode(data)
        if isinstance(document, dict) and document.keys() == {"data"}:
            raise WebhookDecodeError(
                'webhook body is encrypted ({"data": ...}: the project has secure transmission '
                "on): pass parse(body, key=...) the project's API key or secret key"
            )
        header = msgspec.convert(document, _Header)
        cls = _BY_TRIGGER.get(header.webhook_trigger)
        if cls is None:
            sid = header.submission_id
            return UnknownWebhook(
                trigger=header.webhook_trigger, submission_id=sid if isinstance(sid, str) else None
            )
    except msgspec.ValidationError as exc:
        raise _misshapen(exc) from None
    except RecursionError:
        raise _too_deep(data) from None
    except msgspec.DecodeError as exc:
        raise _unreadable(data, exc, sealed=sealed) from None
    try:
        event: WebhookEvent = msgspec.convert(
            repair_timestamps(document, _type_info(cls)), cls, strict=False
        )
    except msgspec.ValidationError as exc:
        return _Misfit(header.webhook_trigger, header.submission_id, data, _misshapen(exc))
    except RecursionError:
        raise _too_deep(data) from None
    return event


def _misshapen(exc: msgspec.ValidationError) -> WebhookDecodeError:
    # msgspec names the path and the expected type, never the value; masked all the same.
    return WebhookDecodeError(
        f"webhook body does not match the documented shape: {mask_text(str(exc))}"
    )


def _unreadable(data: bytes, exc: msgspec.DecodeError, *, sealed: bool) -> WebhookDecodeError:
    # A plaintext that is not JSON: a wrong key that happened to leave valid padding (one
    # time in about 256), not a sender's broken JSON.
    return _undecryptable() if sealed else _not_json(data, exc)


@functools.cache
def _type_info(cls: type[_Documented]) -> msgspec.inspect.Type:
    return msgspec.inspect.type_info(cls)


def _not_json(data: bytes, exc: msgspec.DecodeError) -> WebhookDecodeError:
    if not data.strip():
        return WebhookDecodeError("webhook body is empty")
    # msgspec's message names a byte offset, never the text around it.
    return WebhookDecodeError(
        f"webhook body is not valid JSON ({len(data)} bytes): {mask_text(str(exc))}"
    )


def _too_deep(data: bytes) -> WebhookDecodeError:
    return WebhookDecodeError(f"webhook body nests too deeply ({len(data)} bytes)")
