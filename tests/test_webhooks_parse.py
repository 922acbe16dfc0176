"""``argos_async.webhooks.parse``: every documented trigger in both guides' shapes and as a live
delivery, placeholders, odd timestamps, unknown triggers and fields, and malformed bodies."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

from argos_async import ArgosError
from argos_async.models import AmlStatus, KycResult
from argos_async.webhooks import (
    AdditionalAnswer,
    AmlMonitorWebhook,
    AmlWebhook,
    ApprovedWebhook,
    CreatedWebhook,
    CustomFields,
    DeleteWebhook,
    InjectionWebhook,
    RejectedWebhook,
    RetryWebhook,
    SubmitWebhook,
    UnknownWebhook,
    UpdatedWebhook,
    WebhookDecodeError,
    WebhookEvent,
    _events,
    parse,
)

SAMPLES = Path(__file__).parent / "webhook_samples"
UTC = timezone.utc
DOCUMENTED_TRIGGERS = {
    "created",
    "retry",
    "submit",
    "approved",
    "rejected",
    "updated",
    "delete",
    "injection",
    "aml",
    "aml_monitor",
}


def at(event: object, path: str) -> Any:
    """``event``'s attribute at a dotted path; ``records.0.created_at`` indexes a tuple."""
    value: Any = event
    for step in path.split("."):
        value = value[int(step)] if step.isdigit() else getattr(value, step)
    return value


def ms(
    year: int, month: int, day: int, hour: int, minute: int, second: int, milli: int
) -> datetime:
    """A UTC datetime to the millisecond."""
    return datetime(year, month, day, hour, minute, second, milli * 1000, tzinfo=UTC)


# file -> (class, attributes expected at their dotted paths)
TABLE: dict[str, tuple[type[WebhookEvent], dict[str, object]]] = {
    "created.current.json": (
        CreatedWebhook,
        {
            "submission_id": "{submission_id}",
            "kyc_result.status": KycResult.INCOMPLETE,
            "cf": CustomFields(cf1="{custom_field1}", cf2="{custom_field2}", cf3="{custom_field3}"),
            "userid": "{user_id}",
            "token_id": "{token_id}",
            "retry_code": "{retry_code}",
            "attempts": 1,
            "ip_address": "{ip_address}",
        },
    ),
    "created.live.json": (
        CreatedWebhook,
        {"submission_id": "s9v1k2m3n4b5", "cf.cf3": "", "retry_code": None, "attempts": None},
    ),
    "retry.current.json": (RetryWebhook, {"attempts": 2, "kyc_result.status": "incomplete"}),
    "retry.live.json": (
        RetryWebhook,
        {"retry_code": "face_compare_underscore", "attempts": 2, "ip_address": "203.0.113.24"},
    ),
    "submit.live.json": (
        SubmitWebhook,
        {
            "kyc_result.status": KycResult.PENDING,
            "kyc_result.pending_at": ms(2024, 9, 3, 8, 19, 47, 530),
            "email": "ana.silva@example.com",
            "nationality": "PRT",
        },
    ),
    "approved.current.json": (
        ApprovedWebhook,
        {
            "kyc_result.status": "string",
            "kyc_result.reviewer": "string",
            # Placeholders where timestamps belong: None, the text stays in raw.
            "kyc_result.updated_at": None,
            "kyc_result.created_at": None,
            "kyc_result.kyc_result_at": None,
            "kyc_result.pending_at": None,
            "applicant_id": "string",
            "full_name": "string",
            "legacy_full_name": None,
            "phone_number": "string",
            "ssn_number": "string",
            "id_type": "string",
            "issuing_country": "string",
            "issue_date": "string",
            "expire_date": "string",
            "identity_number": "string",
            "document_number": "string",
            "duplicated_information": "string",
            "additional_list": (
                AdditionalAnswer(answer="string", input_value="string", block_type="string"),
            )
            * 2,
        },
    ),
    "approved.old.json": (
        ApprovedWebhook,
        {
            "full_name": "string",  # from fullName
            "legacy_full_name": "string",
            "additional_list": AdditionalAnswer(
                answer="string", input_value="string", block_type="string"
            ),
            "kyc_result.updated_at": None,
            "cf.cf2": "string",
        },
    ),
    "approved.live.json": (
        ApprovedWebhook,
        {
            "submission_id": "s9v1k2m3n4b5",
            "applicant_id": "ap_7c1e0d",
            "kyc_result.status": KycResult.APPROVED,
            "kyc_result.reviewer": "agent",
            "kyc_result.updated_at": ms(2024, 9, 3, 9, 2, 11, 908),
            "kyc_result.created_at": ms(2024, 9, 3, 8, 15, 2, 114),
            "kyc_result.kyc_result_at": ms(2024, 9, 3, 9, 2, 11, 908),
            "kyc_result.pending_at": ms(2024, 9, 3, 8, 19, 47, 530),
            "email": "ana.silva@example.com",
            "userid": "user-48213",
            "token_id": "tok_5f2c9a",
            "age_group": "adult",
            "date_of_birth": "1990-04-12",
            "full_name": "ANA SILVA",
            "phone_number": "+351910000000",
            "id_type": "passport",
            "document_number": "CB123456",
            "identity_number": "",
            "ssn_number": None,
            "additional_list.1.input_value": "Lisbon",
            "additional_list.0.block_type": "dropdown",
        },
    ),
    "rejected.current.json": (
        RejectedWebhook,
        {"kyc_result.updated_at": None, "full_name": "string", "applicant_id": None},
    ),
    "rejected.old.json": (
        RejectedWebhook,
        {
            "kyc_result.status": KycResult.REJECTED,
            "kyc_result.comment": "{comment}",
            "kyc_result.update_at": None,  # "{update_at}": a placeholder
            "kyc_result.updated_at": None,
            "full_name": "{fullName}",
            "email": "{email}",
        },
    ),
    "rejected.live.json": (
        RejectedWebhook,
        {
            "kyc_result.comment": "Multiple invalid KYC attempts ",
            "kyc_result.update_at": ms(2024, 9, 4, 10, 0, 0, 0),
            "kyc_result.updated_at": ms(2024, 9, 4, 10, 0, 0, 0),  # from update_at
            "kyc_result.reviewer": "system",
            "full_name": "JOAO COSTA",
        },
    ),
    "updated.live.json": (
        UpdatedWebhook,
        {
            "data.update": ("kycStatus", "fullName"),
            "data.kyc_result": "approved",
            "data.pending_at": ms(2024, 9, 3, 8, 19, 47, 530),
            "data.reviewer": "agent",
            "admin": "reviewer.one@example.net",
            "update_time": ms(2024, 9, 5, 14, 30, 0, 0),
            "full_name_en": "ANA SILVA",
            "first_name": "ANA",
            "last_name": "SILVA",
        },
    ),
    "delete.live.json": (
        DeleteWebhook,
        {"submission_id": "s9v1k2m3n4b5", "is_deletion": True, "cf.cf1": "campaign-7"},
    ),
    "injection.current.json": (
        InjectionWebhook,
        {
            "action.type": "address",
            "action.created_at": None,  # "YYYY-MM-DD-HH-MM-SS-ZZZ"
            "kyc_status": "approved",
            "applicant_id": "{applicant_id}",
            "email": "email@email.com",
            "cf1": "{custom_field1}",
            # Top-level cf1..cf3 fill cf, as the other events send them.
            "cf": CustomFields(cf1="{custom_field1}", cf2="{custom_field2}", cf3="{custom_field3}"),
        },
    ),
    "injection.live.json": (
        InjectionWebhook,
        {"action.created_at": ms(2024, 9, 6, 11, 22, 33, 444), "cf": None},
    ),
    "injection_fail.current.json": (
        UnknownWebhook,
        {"trigger": "injectionFail", "submission_id": "{submission_id}"},
    ),
    "aml.current.json": (
        AmlWebhook,
        {
            "aml_result.current_status": AmlStatus.NOT_SCREENED,
            "aml_result.risk_level_summary": "Not Screened",
            "duplicated_information": "string",
            "userid": "test",
        },
    ),
    "aml.old.json": (
        AmlWebhook,
        {"aml_result.current_status": "Red Flag", "aml_result.risk_level_summary": "HIGH"},
    ),
    "aml.live.json": (AmlWebhook, {"aml_result.risk_level_summary": "Medium"}),
    "aml_monitor.current.json": (
        AmlMonitorWebhook,
        {
            "records.0.record_id": "String",
            "records.1.worklist_id": "String",
            "records.1.created_at": None,
            "cf.cf3": "String",
        },
    ),
    "aml_monitor.live.json": (
        AmlMonitorWebhook,
        {
            "records.0.record_id": "s9v1k2m3n4b5",
            "records.0.worklist_id": "wl_daily",
            "records.0.created_at": ms(2024, 9, 7, 0, 0, 5, 0),
        },
    ),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_every_sample_parses_into_its_event(name: str) -> None:
    cls, expected = TABLE[name]
    body = (SAMPLES / name).read_bytes()
    event = parse(body)

    assert type(event) is cls
    assert event.trigger == json.loads(body)["webhook_trigger"]
    assert event.raw is body
    assert event.is_deletion is (event.trigger == "delete")
    assert {path: at(event, path) for path in expected} == expected


def test_the_table_covers_every_sample_and_every_documented_trigger() -> None:
    files = {p.name for p in SAMPLES.glob("*.json")}
    assert files == set(TABLE)
    parsed = {cls.__struct_config__.tag for cls, _ in TABLE.values()}
    assert parsed >= DOCUMENTED_TRIGGERS
    # Both guides' shapes where they differ.
    assert {"approved.old.json", "rejected.old.json", "aml.old.json"} <= files


# The live injection sample carries the dashed timestamp shape: the lenient path reads it.
DASHED = "injection.live.json"


@pytest.mark.parametrize("name", sorted(n for n in TABLE if n.endswith(".live.json")))
def test_a_live_delivery_takes_the_one_call_path(name: str) -> None:
    """ISO timestamps and documented types: the tagged union decodes the body in one msgspec
    call, to the same event ``parse`` returns (so every documented class is in the union)."""
    body = (SAMPLES / name).read_bytes()
    if name == DASHED:
        with pytest.raises(msgspec.ValidationError, match=r"\$\.action\.created_at"):
            _events._decoder.decode(body)
        assert at(parse(body), "action.created_at") == ms(2024, 9, 6, 11, 22, 33, 444)
    else:
        assert _events._decoder.decode(body) == parse(body)


def test_each_documented_trigger_alone_is_enough() -> None:
    for trigger in sorted(DOCUMENTED_TRIGGERS):
        event = parse(json.dumps({"webhook_trigger": trigger}))
        assert event.trigger == trigger
        assert event.submission_id is None
        assert type(event).__struct_config__.tag == trigger
        # Every field took its default: nothing else is required.
        assert msgspec.structs.asdict(event) == msgspec.structs.asdict(type(event)())


def test_the_documented_updated_sample_is_refused_and_the_corrected_one_parses() -> None:
    documented = (SAMPLES / "updated.documented.txt").read_text()
    # msgspec meets the placeholder "pending_at" before the broken part, yet the error says
    # what is wrong with the body: it is not JSON.
    with pytest.raises(WebhookDecodeError) as caught:
        parse(documented)
    first_gap = documented.encode().index(b'"first_name" "string"') + len(b'"first_name" ')
    assert str(caught.value) == (
        f"webhook body is not valid JSON ({len(documented.encode())} bytes): "
        f"JSON is malformed: expected ':' (byte {first_gap})"
    )

    corrected = documented
    for name in ("first_name", "last_name"):
        assert corrected.count(f'"{name}" "string"') == 1
        corrected = corrected.replace(f'"{name}" "string"', f'"{name}": "string"')
    event = parse(corrected)
    assert isinstance(event, UpdatedWebhook)
    assert event.first_name == event.last_name == event.admin == "string"
    assert event.update_time is None  # "string" where a timestamp belongs
    assert event.data is not None
    assert len(event.data.update) == 18
    assert event.data.update[:2] == ("kycStatus", "idType")
    assert event.data.pending_at is None
    assert event.raw == corrected.encode()


@pytest.mark.parametrize(
    "stamp",
    [
        "string",
        "String",
        "YYYY-MM-DD-HH-MM-SS-ZZZ",
        "{update_time}",
        "",
        "2024-13-45T00:00:00Z",
        "2024-02-30-10-00-00-000",
        1725540600,
        True,
        None,
        ["2024-09-05T14:30:00Z"],
    ],
)
def test_a_timestamp_that_is_no_timestamp_is_none_and_stays_in_raw(stamp: object) -> None:
    body = json.dumps(
        {
            "webhook_trigger": "updated",
            "update_time": stamp,
            "data": {"pending_at": stamp},
        }
    ).encode()
    event = parse(body)
    assert isinstance(event, UpdatedWebhook)
    assert event.update_time is None
    assert event.data is not None
    assert event.data.pending_at is None
    assert json.loads(event.raw)["update_time"] == stamp


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-09-05T14:30:00.123Z", ms(2024, 9, 5, 14, 30, 0, 123)),
        ("2024-09-05T14:30:00Z", ms(2024, 9, 5, 14, 30, 0, 0)),
        # No offset: UTC, as the API documents its timestamps.
        ("2024-09-05T14:30:00", ms(2024, 9, 5, 14, 30, 0, 0)),
        ("2024-09-05 14:30:00.5", ms(2024, 9, 5, 14, 30, 0, 500)),
        # The documentation's dashed shape, with digits.
        ("2024-09-05-14-30-00-250", ms(2024, 9, 5, 14, 30, 0, 250)),
        # Another offset: the same instant.
        ("2024-09-05T23:30:00+09:00", ms(2024, 9, 5, 14, 30, 0, 0)),
    ],
)
def test_odd_timestamps_are_read_on_every_timestamp_field(stamp: str, expected: datetime) -> None:
    bodies = [
        (
            "kyc_result.updated_at",
            {"webhook_trigger": "approved", "kyc_result": {"updated_at": stamp}},
        ),
        (
            "kyc_result.updated_at",
            {"webhook_trigger": "rejected", "kyc_result": {"update_at": stamp}},
        ),
        ("update_time", {"webhook_trigger": "updated", "update_time": stamp}),
        ("data.pending_at", {"webhook_trigger": "updated", "data": {"pending_at": stamp}}),
        ("action.created_at", {"webhook_trigger": "injection", "action": {"created_at": stamp}}),
        (
            "records.0.created_at",
            {"webhook_trigger": "aml_monitor", "records": [{"created_at": stamp}]},
        ),
    ]
    for path, document in bodies:
        value = at(parse(json.dumps(document)), path)
        assert value == expected, path  # the same instant
        assert value.utcoffset() == (timedelta(hours=9) if "+09:00" in stamp else timedelta(0))


def test_old_spellings_fill_the_current_names_and_the_current_one_wins() -> None:
    old = parse(
        b'{"webhook_trigger":"rejected","fullName":"Old Name",'
        b'"kyc_result":{"update_at":"2024-09-04T10:00:00Z"}}'
    )
    assert isinstance(old, RejectedWebhook)
    assert old.full_name == old.legacy_full_name == "Old Name"
    assert old.kyc_result is not None
    assert old.kyc_result.updated_at == old.kyc_result.update_at == ms(2024, 9, 4, 10, 0, 0, 0)

    both = parse(
        b'{"webhook_trigger":"approved","fullName":"Old Name","full_name":"New Name",'
        b'"kyc_result":{"update_at":"2024-09-04T10:00:00Z","updated_at":"2024-09-04T11:00:00Z"}}'
    )
    assert isinstance(both, ApprovedWebhook)
    assert both.full_name == "New Name"
    assert both.legacy_full_name == "Old Name"
    assert both.kyc_result is not None
    assert both.kyc_result.updated_at == ms(2024, 9, 4, 11, 0, 0, 0)

    injected = parse(b'{"webhook_trigger":"injection","cf":{"cf1":"a"},"cf2":"b"}')
    assert isinstance(injected, InjectionWebhook)
    assert injected.cf == CustomFields(cf1="a")  # the object, when sent, is kept as sent
    assert injected.cf2 == "b"

    # A rejection's comment: the old guide's text, or a list like the API's kyc.comment.
    listed = parse(b'{"webhook_trigger":"rejected","kyc_result":{"comment":["a","b"]}}')
    assert isinstance(listed, RejectedWebhook)
    assert listed.kyc_result is not None
    assert listed.kyc_result.comment == ("a", "b")


def test_unknown_triggers_become_unknown_webhooks() -> None:
    for body, trigger, submission_id in [
        (b'{"webhook_trigger":"argos_id_auth","consent_id":"c1"}', "argos_id_auth", None),
        (
            b'{"webhook_trigger":"kyb_approved","submission_id":"s1","x":[1,{}]}',
            "kyb_approved",
            "s1",
        ),
        (b'{"webhook_trigger":"later","submission_id":42}', "later", None),
        (b'{"webhook_trigger":"Approved"}', "Approved", None),  # tags are case-sensitive
        (b'{"webhook_trigger":""}', "", None),
    ]:
        event = parse(body)
        assert isinstance(event, UnknownWebhook)
        assert (event.trigger, event.submission_id, event.raw) == (trigger, submission_id, body)
        assert not event.is_deletion


def test_unknown_fields_are_ignored_at_every_level() -> None:
    plain = (SAMPLES / "approved.live.json").read_bytes()
    document = json.loads(plain)
    document["webhook_version"] = 2
    document["kyc_result"]["score"] = {"liveness": 0.98}
    document["cf"]["cf4"] = "new"
    document["additional_list"][0]["required"] = True
    document["raw"] = "not the body"
    document["_raw"] = "not the body either"
    extended = json.dumps(document).encode()

    event = parse(extended)
    assert event == parse(plain)
    assert event.raw is extended


def test_raw_is_the_body_byte_for_byte() -> None:
    body = '{ "webhook_trigger" : "approved" ,\n "full_name": "홍길동", "email": "b\\u00fc@x.de" }'
    from_text = parse(body)
    assert from_text.raw == body.encode()
    assert isinstance(from_text, ApprovedWebhook)
    assert from_text.full_name == "홍길동"

    as_bytes = body.encode()
    assert parse(as_bytes).raw is as_bytes
    assert parse(bytearray(as_bytes)).raw == as_bytes
    assert parse(memoryview(as_bytes)).raw == as_bytes
    assert "raw" not in repr(from_text)
    # Built by hand, an event has no body.
    assert DeleteWebhook(submission_id="s").raw == b""


def test_every_event_answers_the_common_questions() -> None:
    for name in sorted(TABLE):
        event = parse((SAMPLES / name).read_bytes())
        assert isinstance(event, WebhookEvent)
        assert isinstance(event.trigger, str)
        assert event.trigger
        assert event.submission_id is None or isinstance(event.submission_id, str)
        assert isinstance(event.raw, bytes)
        assert event.is_deletion == isinstance(event, DeleteWebhook)


DEEP = b'{"webhook_trigger":"approved","cf":' + b"[" * 10_000 + b"]" * 10_000 + b"}"

MALFORMED: list[tuple[bytes | str, str]] = [
    (b"", "webhook body is empty"),
    (b" \r\n", "webhook body is empty"),
    (
        b'{"webhook_trigger": "approved"',
        "webhook body is not valid JSON ({n} bytes): Input data was truncated",
    ),
    (
        b'{"webhook_trigger": "approved",}',
        "webhook body is not valid JSON ({n} bytes): JSON is malformed: trailing comma in object"
        " (byte 31)",
    ),
    (
        b'{"webhook_trigger":"delete"}{"webhook_trigger":"delete"}',
        "webhook body is not valid JSON ({n} bytes): JSON is malformed: trailing characters"
        " (byte 29)",
    ),
    (
        b'{"webhook_trigger":"approved","full_name":"\xff"}',
        "webhook body is not valid JSON ({n} bytes): Invalid UTF-8 encoded string",
    ),
    (
        '{"webhook_trigger":"approved","full_name":"\ud800"}',
        "webhook body is not valid text (it holds an unpaired surrogate)",
    ),
    (b"[]", "webhook body does not match the documented shape: Expected `object`, got `array`"),
    (
        b'"approved"',
        "webhook body does not match the documented shape: Expected `object`, got `str`",
    ),
    (b"null", "webhook body does not match the documented shape: Expected `object`, got `null`"),
    (
        b"{}",
        "webhook body does not match the documented shape: Object missing required field"
        " `webhook_trigger`",
    ),
    (
        b'{"trigger":"approved","submission_id":"s1"}',
        "webhook body does not match the documented shape: Object missing required field"
        " `webhook_trigger`",
    ),
    (
        b'{"webhook_trigger":null}',
        "webhook body does not match the documented shape: Expected `str`, got `null`"
        " - at `$.webhook_trigger`",
    ),
    (
        b'{"webhook_trigger":["approved"]}',
        "webhook body does not match the documented shape: Expected `str`, got `array`"
        " - at `$.webhook_trigger`",
    ),
    (
        b'{"webhook_trigger":"approved","submission_id":7}',
        "webhook body does not match the documented shape: Expected `str | null`, got `int`"
        " - at `$.submission_id`",
    ),
    (
        b'{"webhook_trigger":"approved","email":["ana@example.com"]}',
        "webhook body does not match the documented shape: Expected `str | null`, got `array`"
        " - at `$.email`",
    ),
    (
        b'{"webhook_trigger":"approved","kyc_result":"approved"}',
        "webhook body does not match the documented shape: Expected `object | null`, got `str`"
        " - at `$.kyc_result`",
    ),
    (
        b'{"webhook_trigger":"retry","attempts":"two"}',
        "webhook body does not match the documented shape: Expected `int | null`, got `str`"
        " - at `$.attempts`",
    ),
    (
        b'{"webhook_trigger":"aml_monitor","records":[{"recordId":{"id":"r1"}}]}',
        "webhook body does not match the documented shape: Expected `str | null`, got `object`"
        " - at `$.records[0].recordId`",
    ),
    (
        b'{"webhook_trigger":"updated","data":{"update":["kycStatus",3]}}',
        "webhook body does not match the documented shape: Expected `str`, got `int`"
        " - at `$.data.update[1]`",
    ),
    (
        b'{"webhook_trigger":"injection","cf1":1}',
        "webhook body does not match the documented shape: Expected `str | null`, got `int`"
        " - at `$.cf1`",
    ),
    (DEEP, "webhook body nests too deeply ({n} bytes)"),
]


@pytest.mark.parametrize(("body", "message"), MALFORMED)
def test_a_malformed_body_raises_an_error_naming_the_problem(
    body: bytes | str, message: str
) -> None:
    with pytest.raises(WebhookDecodeError) as caught:
        parse(body)
    size = len(body.encode(errors="surrogatepass") if isinstance(body, str) else body)
    assert str(caught.value) == message.format(n=size)
    assert isinstance(caught.value, ArgosError)
    assert isinstance(caught.value, ValueError)
    # Nothing of msgspec's (or the body's) rides along in the traceback.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


PERSONAL = ("ana.silva@example.com", "user-48213", "ANA SILVA", "CB123456", "+351910000000")


@pytest.mark.parametrize(
    "body",
    [
        # Broken JSON right after, or inside, personal values.
        b'{"webhook_trigger":"approved","email":"ana.silva@example.com" "userid":"user-48213"}',
        b'{"webhook_trigger":"approved","full_name":"ANA SILVA\\q","userid":"user-48213"}',
        b'{"ana.silva@example.com"}',
        b'{"webhook_trigger":"approved","documentNumber":"CB123456',
        # Personal values in fields of the wrong type, or as the trigger itself.
        b'{"webhook_trigger":"approved","email":"ana.silva@example.com","userid":["user-48213"]}',
        b'{"webhook_trigger":"approved","full_name":{"ANA SILVA":"CB123456"}}',
        b'{"webhook_trigger":{"ana.silva@example.com":"user-48213"}}',
        b'{"webhook_trigger":"approved","additional_list":[{"answer":["+351910000000"]}]}',
        b'["ana.silva@example.com","user-48213"]',
    ],
)
def test_error_messages_hold_no_personal_data(body: bytes) -> None:
    with pytest.raises(WebhookDecodeError) as caught:
        parse(body)
    text = f"{caught.value!s} {caught.value!r}"
    assert [value for value in PERSONAL if value in text] == []
    assert "@example.com" not in text


@pytest.mark.parametrize("body", [None, 5, {"webhook_trigger": "approved"}, ["{}"], object()])
def test_a_body_that_is_neither_bytes_nor_text_is_a_type_error(body: object) -> None:
    with pytest.raises(TypeError) as caught:
        parse(body)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"parse() argument 'body' must be bytes or str, not {type(body).__name__}"
    )
    assert not isinstance(caught.value, WebhookDecodeError)
