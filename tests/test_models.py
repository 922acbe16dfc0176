"""Decoding the API's JSON into Structs: the seed's samples, tolerance, raw pass-through."""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

from argos_async import ArgosClient, ResponseDecodeError
from argos_async._protocol import decoding
from argos_async._protocol.decoding import decode_page, decode_single, parse_timestamp
from argos_async.models import (
    AmlMatchRiskLevel,
    AmlRiskLevel,
    AmlStatus,
    CommentCode,
    IdType,
    KycResult,
    Page,
    PageKey,
    Submission,
)
from argos_async.testing import ArgosEmulator

DATA = Path(__file__).parent / "data"


def test_seed_specific_submission_sample_decodes_field_by_field() -> None:
    body = (DATA / "seed_specific_submission.json").read_bytes()
    sub = decode_single(body, "gt7rcxx9l1o*****")

    assert sub.submission_id == "gt7rcxx9l1o*****"
    assert sub.email == "[email\u00a0protected]"  # verbatim, as the seed prints it
    assert sub.userid == "test1"
    assert sub.created_at == datetime(2022, 4, 7, 0, 30, 35, 919000, tzinfo=timezone.utc)
    assert sub.created_at.tzinfo is not None

    data = sub.data
    assert data is not None
    assert data.name == "Jhon Smith"
    assert data.gender == "male"
    assert data.nationality == "USA"
    assert data.date_of_birth == "1998-11-12"
    assert data.cf1 == "test"
    assert data.ip_address == "*.*.*.*"
    assert data.idcard_issuing_country == "USA"
    assert data.idcard_issue_date == "2016-08-16"
    assert data.id_type == IdType.GOVERNMENT_ID
    assert data.identity_number == "981112-1******"

    kyc = sub.kyc
    assert kyc is not None
    assert kyc.result == KycResult.REJECTED
    assert kyc.comment == ("Multiple invalid KYC attempts",)
    assert kyc.comment_code == (CommentCode.TOO_MANY_RETRY,)
    assert [a.attempt_cnt for a in kyc.attempts] == [1, 2, 3]

    first, second, third = kyc.attempts
    assert first.liveness_score == 91
    assert first.face_similarity_score == 99
    assert first.verification_params == {
        "fullName": "Jhon Smith",
        "idType": "government_id",
        "issueDate": "2016-08-15",
        "identityNumber": "981112-1******",
    }
    assert first.verification_result == "fail"
    assert first.retry_msg == ("Face compare failed: no matching face",)
    assert first.retry_code == ("face_compare_fail",)
    assert second.liveness_score == 98
    assert second.face_similarity_score is None
    assert second.verification_result == "success"
    assert third.liveness_score is None
    assert third.face_similarity_score == 99
    assert third.verification_params is not None
    assert third.verification_params["issueDate"] == "2016-08-16"

    # Absent fields are absent, not invented.
    assert sub.aml is None
    assert sub.applicant_id is None
    assert sub.updated_at is None


def test_placeholder_timestamps_in_the_docs_sample_do_not_fail_the_page() -> None:
    body = (DATA / "seed_submission_id_sample.json").read_bytes()
    sub = decode_single(body, "{submission_id}")
    # "YYYY-MM-DD-HH-MM-SS-ZZZ" is no timestamp: it becomes None, the rest decodes.
    assert sub.created_at is None
    assert sub.reviewer == "system"
    assert sub.data is not None
    assert sub.data.first_name == "{first_name}"
    assert sub.data.id_type == IdType.DRIVERS_LICENSE
    assert sub.kyc is not None
    assert sub.kyc.comment == ("Multiple invalid KYC attempts ",)  # trailing space kept
    assert [a.ocr_result for a in sub.kyc.attempts] == ["success"] * 3
    assert sub.kyc.attempts[0].id_barcode_result == "fail"
    assert sub.kyc.attempts[0].step1_time_1st is None


def _page(items: str, next_key: str = "") -> bytes:
    tail = f', "nextpageKey": {next_key}' if next_key else ""
    return f'{{"Items": [{items}]{tail}}}'.encode()


def test_unknown_fields_and_values_outside_the_known_sets_decode() -> None:
    body = _page(
        '{"submission_id": "s1", "brand_new_field": {"x": [1, 2]},'
        ' "kyc": {"result": "escalated", "commentCode": ["new_code"], "extra": 1},'
        ' "aml": {"currentstatus": "Under Review", "risk_level_summary": "Critical",'
        '         "matches": [{"risk_level": "SEVERE", "score": 12.5}]},'
        ' "data": {"idType": "space_passport"}}'
    )
    (sub,) = decode_page(body, "f").items
    assert sub.kyc is not None
    assert sub.kyc.result == "escalated"
    assert sub.kyc.result not in set(KycResult)
    assert sub.kyc.comment_code == ("new_code",)
    assert sub.aml is not None
    assert sub.aml.current_status == "Under Review"
    assert sub.aml.current_status != AmlStatus.RED_FLAG
    assert sub.aml.matches[0].risk_level == "SEVERE"
    assert sub.aml.matches[0].score == 12.5
    assert sub.data is not None
    assert sub.data.id_type == "space_passport"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-04-07T00:30:35.919Z", datetime(2022, 4, 7, 0, 30, 35, 919000, tzinfo=timezone.utc)),
        ("2022-04-07T00:30:35.919+00:00", datetime(2022, 4, 7, 0, 30, 35, 919000, timezone.utc)),
        ("2022-04-07T00:30:35", datetime(2022, 4, 7, 0, 30, 35, tzinfo=timezone.utc)),
        ("2022-04-07-00-30-35-919", datetime(2022, 4, 7, 0, 30, 35, 919000, tzinfo=timezone.utc)),
        ("YYYY-MM-DD-HH-MM-SS-ZZZ", None),
        ("yesterday", None),
        ("2022-13-45-00-00-00-000", None),
    ],
)
def test_parse_timestamp(text: str, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


def test_timestamps_of_other_shapes_never_fail_a_page() -> None:
    body = _page(
        '{"submission_id": "a", "created_at": "2024-01-02T03:04:05.006Z"},'
        '{"submission_id": "b", "created_at": "2024-01-02T03:04:05"},'
        '{"submission_id": "c", "created_at": "2024-01-02-03-04-05-006",'
        ' "memo": {"text": "m", "updated_at": "soon"},'
        ' "kyc": {"attempts": [{"attemptCnt": "2", "step2Time1st": 17}]}},'
        '{"submission_id": "d", "created_at": 1700000000}'
    )
    a, b, c, d = decode_page(body, "f").items
    utc = timezone.utc
    assert a.created_at == datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=utc)
    assert b.created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc)
    assert c.created_at == datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=utc)
    assert c.memo is not None
    assert c.memo.text == "m"
    assert c.memo.updated_at is None
    assert c.kyc is not None
    assert c.kyc.attempts[0].attempt_cnt == 2  # a number sent as a string
    assert c.kyc.attempts[0].step2_time_1st is None
    assert d.created_at is None


def test_a_body_of_another_shape_is_a_decode_error_naming_the_path() -> None:
    with pytest.raises(ResponseDecodeError, match=r"\$\.Items\[0\]\.kyc"):
        decode_page(_page('{"submission_id": "a", "kyc": "approved"}'), "f")
    with pytest.raises(ResponseDecodeError, match="Items"):
        decode_page(b'{"items": []}', "f")
    with pytest.raises(ResponseDecodeError, match="not valid JSON"):
        decode_page(b'{"Items": [{"submission_id": "a"', "f")


def test_raw_items_are_byte_exact_and_aligned_with_items() -> None:
    first = b'{ "submission_id" : "a",  "kyc": {"result": "approved"}, "z\\u00e9": [1, 2.50] }'
    second = b'{"submission_id":"b","email":"ana+kyc@example.com"}'
    body = (
        b'{"Items": ['
        + first
        + b",\n  "
        + second
        + b'], "nextpageKey": {"id": "b", "created_at": "t"}}'
    )
    page = decode_page(body, "f")
    assert [s.submission_id for s in page.items] == ["a", "b"]
    assert [bytes(r) for r in page.raw_items] == [first, second]
    assert page.body == body
    assert page.next_key == PageKey(id="b", created_at="t")
    assert page.cursor is not None
    assert "items=<2 submissions>" in repr(page)


def test_every_model_decodes_a_rich_item_built_from_the_documented_fields() -> None:
    item = {
        "submission_id": "x1",
        "applicant_id": "ap1",
        "duplicated_information": "dup",
        "reviewer": "agent",
        "pending_at": "2024-05-01T10:00:00.000Z",
        "kyc_result_at": "2024-05-02T10:00:00.000Z",
        "updated_at": "2024-05-03T10:00:00.000Z",
        "argos_score": 91,
        "recognition_score": "{recognition_score}",
        "data": {
            "address_globalCode": "87C4VXX7+39",
            "address_compoundCode": "VXX7+39 DC",
            "documentNumber": "D1",
            "idcard_expireDate": "2030-01-01",
            "age_group": "adult",
        },
        "aml": {
            "risk_level_summary": "High",
            "currentstatus": "Red Flag",
            "matches": [{"risk_level": "HIGH", "resource_id": "r1", "score": 87}],
        },
        "bank_verification": {
            "result": "success",
            "type": "occupancy",
            "bank_code": "004",
            "account_number": "123",
            "retry_count": 1,
        },
        "image": {"idImage": "i1", "idBackImage": "i2", "selfieImage": "i3", "addressImage": "i4"},
        "memo": {"text": "checked", "updated_at": "2024-05-04T10:00:00.000Z"},
        "project_options": {
            "option_aml": True,
            "policy_acceptedID": ["passport"],
            "policy_approvePeriod": 0,
        },
        "projection": {"projectionId": "p1", "projectionName": "name_projection"},
        "ocr": {"birthDate": "1990-01-01", "fullName": "A B"},
        "OCR_raw": {"rotate": {"value": "0"}},
        "verification": {"faceAge": []},
    }
    sub = msgspec.json.decode(msgspec.json.encode(item), type=Submission)
    assert sub.data is not None
    assert sub.data.address_global_code == "87C4VXX7+39"
    assert sub.data.document_number == "D1"
    assert sub.aml is not None
    assert sub.aml.matches[0].resource_id == "r1"
    assert sub.bank_verification is not None
    assert sub.bank_verification.retry_count == 1
    assert sub.image is not None
    assert sub.image.address_image == "i4"
    assert sub.memo is not None
    assert sub.memo.updated_at == datetime(2024, 5, 4, 10, tzinfo=timezone.utc)
    assert sub.project_options is not None
    assert sub.project_options.policy_accepted_id == ("passport",)
    assert sub.projection is not None
    assert sub.projection.projection_name == "name_projection"
    assert sub.ocr is not None
    assert sub.ocr.full_name == "A B"
    assert sub.ocr_raw == {"rotate": {"value": "0"}}
    assert sub.argos_score == 91
    assert sub.recognition_score == "{recognition_score}"
    # Encoding goes back to the wire names.
    assert msgspec.json.decode(msgspec.json.encode(sub))["OCR_raw"] == {"rotate": {"value": "0"}}


# ---------------------------------------------------------------------------------------------
# Every documented field reaches its attribute: (wire path, attribute path, kind of value).

# The seed's "Output Data" table, in its order. Its typos are the table's, not the API's:
# "drivers_licensem" is the value drivers_license, "retry_countj" the field retry_count, and
# "Step3 API 3rd call time" describes step2Time3rd. kyc.comment and kyc.commentCode are the
# two rows whose names the table lost.
SEED_OUTPUT_FIELDS: list[tuple[str, str, str]] = [
    ("data.name", "data.name", "str"),
    ("data.gender", "data.gender", "str"),
    ("data.nationality", "data.nationality", "str"),
    ("data.date_of_birth", "data.date_of_birth", "str"),
    ("data.ip_address", "data.ip_address", "str"),
    ("data.idType", "data.id_type", "str"),
    ("data.idcard_issuingCountry", "data.idcard_issuing_country", "str"),
    ("data.idcard_issueDate", "data.idcard_issue_date", "str"),
    ("data.idcard_expireDate", "data.idcard_expire_date", "str"),
    ("data.identityNumber", "data.identity_number", "str"),
    ("data.documentNumber", "data.document_number", "str"),
    ("data.address_city", "data.address_city", "str"),
    ("data.address_country", "data.address_country", "str"),
    ("data.address_state", "data.address_state", "str"),
    ("data.address_street", "data.address_street", "str"),
    ("data.address_zipcode", "data.address_zipcode", "str"),
    ("data.address_globalCode", "data.address_global_code", "str"),
    ("data.address_compoundCode", "data.address_compound_code", "str"),
    ("data.address_formatted", "data.address_formatted", "str"),
    ("data.address_input", "data.address_input", "str"),
    ("data.address_detail", "data.address_detail", "str"),
    ("data.cf1", "data.cf1", "str"),
    ("data.cf2", "data.cf2", "str"),
    ("data.cf3", "data.cf3", "str"),
    ("email", "email", "str"),
    ("reviewer", "reviewer", "str"),
    ("submission_id", "submission_id", "str"),
    ("applicant_id", "applicant_id", "str"),
    ("created_at", "created_at", "time"),
    ("kyc_result_at", "kyc_result_at", "time"),
    ("updated_at", "updated_at", "time"),
    ("pending_at", "pending_at", "time"),
    ("userid", "userid", "str"),
    ("kyc.result", "kyc.result", "str"),
    ("kyc.comment", "kyc.comment", "strs"),
    ("kyc.commentCode", "kyc.comment_code", "strs"),
    ("kyc.attempts[0].attemptCnt", "kyc.attempts[0].attempt_cnt", "int"),
    ("kyc.attempts[0].idBarcodeResult", "kyc.attempts[0].id_barcode_result", "str"),
    ("kyc.attempts[0].verificationResult", "kyc.attempts[0].verification_result", "str"),
    ("kyc.attempts[0].verification", "kyc.attempts[0].verification", "dict"),
    ("kyc.attempts[0].verificationParams", "kyc.attempts[0].verification_params", "dict"),
    ("kyc.attempts[0].errorCode", "kyc.attempts[0].error_code", "str"),
    ("kyc.attempts[0].errorMsg", "kyc.attempts[0].error_msg", "str"),
    ("kyc.attempts[0].step1Time1st", "kyc.attempts[0].step1_time_1st", "time"),
    ("kyc.attempts[0].step1Time2nd", "kyc.attempts[0].step1_time_2nd", "time"),
    ("kyc.attempts[0].step1Time3rd", "kyc.attempts[0].step1_time_3rd", "time"),
    ("kyc.attempts[0].step2Time1st", "kyc.attempts[0].step2_time_1st", "time"),
    ("kyc.attempts[0].step2Time2nd", "kyc.attempts[0].step2_time_2nd", "time"),
    ("kyc.attempts[0].step2Time3rd", "kyc.attempts[0].step2_time_3rd", "time"),
    ("kyc.attempts[0].retryMsg", "kyc.attempts[0].retry_msg", "strs"),
    ("kyc.attempts[0].retryCode", "kyc.attempts[0].retry_code", "strs"),
    ("kyc.attempts[0].faceSimilarityScore", "kyc.attempts[0].face_similarity_score", "float"),
    ("kyc.attempts[0].selfieImage", "kyc.attempts[0].selfie_image", "str"),
    ("kyc.attempts[0].livenessScore", "kyc.attempts[0].liveness_score", "float"),
    ("aml.risk_level_summary", "aml.risk_level_summary", "str"),
    ("aml.currentstatus", "aml.current_status", "str"),
    ("aml.matches[0].risk_level", "aml.matches[0].risk_level", "str"),
    ("aml.matches[0].resource_id", "aml.matches[0].resource_id", "str"),
    ("aml.matches[0].score", "aml.matches[0].score", "float"),
    ("nextpageKey.id", "next_key.id", "str"),
    ("nextpageKey.created_at", "next_key.created_at", "str"),
    ("bank_verification.result", "bank_verification.result", "str"),
    ("bank_verification.type", "bank_verification.type", "str"),
    ("bank_verification.bank_code", "bank_verification.bank_code", "str"),
    ("bank_verification.account_number", "bank_verification.account_number", "str"),
    ("bank_verification.retry_count", "bank_verification.retry_count", "int"),
]

# What API-NOTES adds from the newer documentation, with the sub-fields the fuller reference
# (research/argos-api.md) gives the objects, and the rest the models carry from it.
NEWER_FIELDS: list[tuple[str, str, str]] = [
    ("duplicated_information", "duplicated_information", "str"),
    ("recognition_score", "recognition_score", "float"),
    ("argos_score", "argos_score", "float"),
    ("image.idImage", "image.id_image", "str"),
    ("image.idBackImage", "image.id_back_image", "str"),
    ("image.selfieImage", "image.selfie_image", "str"),
    ("image.addressImage", "image.address_image", "str"),
    ("memo.text", "memo.text", "str"),
    ("memo.updated_at", "memo.updated_at", "time"),
    ("project_options.option_aml", "project_options.option_aml", "bool"),
    ("project_options.option_addressData", "project_options.option_address_data", "bool"),
    ("project_options.option_idNumber", "project_options.option_id_number", "bool"),
    ("project_options.policy_approvePeriod", "project_options.policy_approve_period", "int"),
    (
        "project_options.policy_blacklistCountries",
        "project_options.policy_blacklist_countries",
        "strs",
    ),
    ("project_options.policy_acceptedID", "project_options.policy_accepted_id", "strs"),
    ("OCR_raw", "ocr_raw", "dict"),
    ("ocr.birthDate", "ocr.birth_date", "str"),
    ("ocr.expireDate", "ocr.expire_date", "str"),
    ("ocr.firstName", "ocr.first_name", "str"),
    ("ocr.fullName", "ocr.full_name", "str"),
    ("ocr.identityNumber", "ocr.identity_number", "str"),
    ("ocr.lastName", "ocr.last_name", "str"),
    ("ocr.nationality", "ocr.nationality", "str"),
    ("verification", "verification", "dict"),
    ("data.first_name", "data.first_name", "str"),
    ("data.last_name", "data.last_name", "str"),
    ("data.full_name", "data.full_name", "str"),
    ("data.age_group", "data.age_group", "str"),
    ("data.address_street2", "data.address_street2", "str"),
    ("data.typeOfPermit", "data.type_of_permit", "str"),
    ("data.typeOfPermitGovKor", "data.type_of_permit_gov_kor", "str"),
    ("data.expiryDateOfStayKor", "data.expiry_date_of_stay_kor", "str"),
    ("data.nationalityGovKor", "data.nationality_gov_kor", "str"),
    ("kyc.attempts[0].ocrResult", "kyc.attempts[0].ocr_result", "str"),
    ("projection.projectionId", "projection.projection_id", "str"),
    ("projection.projectionName", "projection.projection_name", "str"),
]

ALL_FIELDS = SEED_OUTPUT_FIELDS + NEWER_FIELDS


def _segments(path: str) -> list[str | int]:
    out: list[str | int] = []
    for part in path.split("."):
        name, _, index = part.partition("[")
        out.append(name)
        if index:
            out.append(int(index.rstrip("]")))
    return out


def _wire_value(number: int, wire: str, kind: str) -> tuple[Any, Any]:
    """A distinct, non-default value for the field: (as sent, as the attribute holds it)."""
    if kind == "str":
        return f"v{number}:{wire}", f"v{number}:{wire}"
    if kind == "strs":
        return [f"v{number}:{wire}", "second"], (f"v{number}:{wire}", "second")
    if kind == "int":
        return 100 + number, 100 + number
    if kind == "float":
        return number + 0.25, number + 0.25
    if kind == "bool":
        return True, True
    if kind == "dict":
        return {"key": wire, "n": [number]}, {"key": wire, "n": [number]}
    assert kind == "time"
    moment = datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone.utc) + timedelta(
        days=number, milliseconds=number
    )
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z", moment


def _envelope_with(wire: str, value: Any) -> dict[str, Any]:
    """A page whose one item (or next key) holds ``value`` at ``wire``, nothing else."""
    item: dict[str, Any] = {"submission_id": "s-1"}
    envelope: dict[str, Any] = {"Items": [item]}
    path = _segments(wire)
    if path[0] == "nextpageKey":
        envelope["nextpageKey"] = {"id": "k", "created_at": "t", path[1]: value}
        return envelope
    node: Any = item
    for here, below in itertools.pairwise([*path, None]):
        if isinstance(here, int):
            continue  # the list item was entered with its name
        if below is None:
            node[here] = value
        elif isinstance(below, int):
            node = node.setdefault(here, [{}])[below]
        else:
            node = node.setdefault(here, {})
    return envelope


def _attribute(page: Page, path: str) -> Any:
    segments = _segments(path)
    value: Any = page if segments[0] == "next_key" else page.items[0]
    for part in segments:
        value = value[part] if isinstance(part, int) else getattr(value, part)
    return value


@pytest.fixture
def fast_path_only(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Makes the lenient fallback decoder raise, and counts calls of the page decoder: a test
    using it proves that its pages decode in one strict msgspec call each."""
    calls: list[int] = []
    real = decoding._envelope_decoder

    class Counting:
        def decode(self, body: bytes) -> Any:
            calls.append(len(body))
            return real.decode(body)

    def refuse(body: bytes) -> Any:
        raise AssertionError("the page left the fast path")

    monkeypatch.setattr(decoding, "_envelope_decoder", Counting())
    monkeypatch.setattr(decoding, "_decode_envelope_leniently", refuse)
    return calls


@pytest.mark.parametrize(
    ("number", "wire", "attribute", "kind"),
    [(n, *field) for n, field in enumerate(ALL_FIELDS)],
    ids=[wire for wire, _, _ in ALL_FIELDS],
)
def test_every_documented_field_reaches_its_attribute(
    number: int, wire: str, attribute: str, kind: str, fast_path_only: list[int]
) -> None:
    sent, expected = _wire_value(number, wire, kind)
    body = msgspec.json.encode(_envelope_with(wire, sent))
    page = decode_page(body, "f")
    got = _attribute(page, attribute)
    assert got == expected
    assert type(got) is type(expected)
    if kind == "time":
        assert got.tzinfo is not None
    assert len(fast_path_only) == 1


def _leaf_paths(info: msgspec.inspect.Type, prefix: str = "") -> set[str]:
    """Every leaf attribute of a model, as ``a.b.c`` (array items as if they were fields)."""
    if isinstance(info, msgspec.inspect.UnionType):
        structs = [t for t in info.types if isinstance(t, msgspec.inspect.StructType)]
        return _leaf_paths(structs[0], prefix) if structs else {prefix.rstrip(".")}
    if isinstance(info, msgspec.inspect.VarTupleType) and isinstance(
        info.item_type, msgspec.inspect.StructType
    ):
        return _leaf_paths(info.item_type, prefix)
    if isinstance(info, msgspec.inspect.StructType):
        paths: set[str] = set()
        for field in info.fields:
            paths |= _leaf_paths(field.type, f"{prefix}{field.name}.")
        return paths
    return {prefix.rstrip(".")}


def test_the_field_table_covers_every_attribute_of_the_models() -> None:
    listed = {re.sub(r"\[\d+\]", "", attribute) for _, attribute, _ in ALL_FIELDS}
    modelled = _leaf_paths(msgspec.inspect.type_info(Submission))
    modelled |= {f"next_key.{f.name}" for f in msgspec.structs.fields(PageKey)}
    assert listed == modelled
    assert len({wire for wire, _, _ in ALL_FIELDS}) == len(ALL_FIELDS)


# The seed's "Reject Code & Comment" table (kyc.commentCode), in its order.
SEED_REJECT_CODES = (
    "id_image_invalidImage", "id_image_invalidId", "id_image_error", "id_image_badImage",
    "id_info_dataMismatch", "id_info_blacklist", "id_info_notOfAge", "too_many_retry",
    "blacklistCountry", "under_ageLimit", "invalid_acceptedID", "address_image_invalidImage",
    "address_image_error", "address_image_badImage", "address_info_expiredDocument",
    "address_info_dataMismatch", "timeout", "other",
)  # fmt: skip
# API-NOTES: codes of the newer documentation.
NEWER_REJECT_CODES = (
    "duplicate_user", "duplicated_user_PII_exact", "duplicated_face", "no-date-of-birth",
    "expired_id", "automatic_verification_fail",
)  # fmt: skip


def test_the_documented_value_sets_are_offered_as_constants() -> None:
    codes = {c.value for c in CommentCode}
    assert set(SEED_REJECT_CODES) <= codes
    assert set(NEWER_REJECT_CODES) <= codes
    assert len(SEED_REJECT_CODES) == 18
    # The seed's idType list, typos fixed ("drivers_licensem", "residence permit", ...).
    assert {
        "passport", "government_id", "drivers_license", "residence_permit",
        "vehicle_registration_certificate", "visa", "aadhaar", "pancard",
    } <= {t.value for t in IdType}  # fmt: skip
    assert {r.value for r in KycResult} == {"incomplete", "pending", "approved", "rejected"}
    assert {v.value for v in AmlRiskLevel} == {"Not Screened", "High", "Medium", "Low"}
    assert {v.value for v in AmlStatus} == {"Not Screened", "Red Flag"}
    assert {v.value for v in AmlMatchRiskLevel} == {"HIGH", "MEDIUM", "LOW"}
    # Members compare equal to the plain strings the models hold.
    decoded = decode_page(_page('{"submission_id": "a", "kyc": {"commentCode": ["timeout"]}}'), "f")
    assert decoded.items[0].kyc is not None
    assert decoded.items[0].kyc.comment_code == (CommentCode.TIMEOUT,)


@pytest.mark.anyio
@pytest.mark.argos_emulator(submissions=2_500, seed=3, page_byte_limit=None)
async def test_normal_pages_decode_in_one_strict_call(
    fast_path_only: list[int], argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    body = (DATA / "seed_specific_submission.json").read_bytes()
    assert decode_single(body, "gt7rcxx9l1o*****").kyc is not None
    assert len(fast_path_only) == 1
    pages = [p async for p in argos_client.iter_pages(page_size=2000, max_items=2000)]
    single = await argos_client.get_submission(argos_emulator.dataset.ids[0])
    (page,) = pages
    assert len(page.items) == 2000
    assert [s.submission_id for s in page.items] == argos_emulator.dataset.expected_ids()[:2000]
    assert all(s.created_at is not None and s.created_at.tzinfo for s in page.items)
    assert single.submission_id == argos_emulator.dataset.ids[0]
    assert len(fast_path_only) == 3  # the sample, the page, the lookup: one call each
