"""Decoding the API's JSON into Structs: the seed's samples, tolerance, raw pass-through."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import msgspec
import pytest

from argos_async import ResponseDecodeError
from argos_async._protocol import decode_page, decode_single, parse_timestamp
from argos_async.models import (
    AmlStatus,
    CommentCode,
    IdType,
    KycResult,
    PageKey,
    Submission,
)

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
