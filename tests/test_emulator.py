"""The emulator over real loopback HTTP, spoken to with a plain aiohttp client."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from support import REPO, serve_process

from argos_async.testing import ArgosEmulator, Dataset, FaultPlan, RepeatKey
from argos_async.testing._dataset import _build
from argos_async.testing._server import _Turns

pytestmark = pytest.mark.anyio

SMALL = 3000


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def emu() -> AsyncIterator[ArgosEmulator]:
    async with ArgosEmulator(SMALL, seed=7) as emulator:
        yield emulator


async def get(
    http: aiohttp.ClientSession,
    emu: ArgosEmulator,
    path: str = "/v3/submission",
    params: Mapping[str, str] | None = None,
    *,
    key: str | None = None,
) -> tuple[int, Any]:
    headers = {"x-api-key": emu.api_key if key is None else key}
    async with http.get(emu.url + path, params=params or {}, headers=headers) as resp:
        body = await resp.read()
        assert resp.headers["Content-Type"].startswith("application/json")
        assert resp.headers["x-amzn-RequestId"]
        return resp.status, msgspec.json.decode(body)


async def walk(
    http: aiohttp.ClientSession, emu: ArgosEmulator, params: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Every page of a listing, following nextpageKey."""
    pages = []
    query = dict(params)
    for _ in range(10_000):
        status, body = await get(http, emu, params=query)
        assert status == 200, body
        pages.append(body)
        key = body.get("nextpageKey")
        if key is None:
            return pages
        query.update(nextpage_id=key["id"], nextpage_date=key["created_at"])
    raise AssertionError("pagination did not end")


def ids_of(pages: list[dict[str, Any]]) -> list[str]:
    return [item["submission_id"] for page in pages for item in page["Items"]]


async def test_wrong_or_missing_key_is_forbidden(
    http: aiohttp.ClientSession, emu: ArgosEmulator
) -> None:
    assert await get(http, emu, key="nope") == (403, {"message": "Forbidden"})
    async with http.get(emu.url + "/v3/submission") as resp:
        assert resp.status == 403
        assert await resp.json() == {"message": "Forbidden"}
    assert emu.api_key.startswith("emu-")


async def test_ip_allowlist_denies_other_peers(http: aiohttp.ClientSession) -> None:
    async with ArgosEmulator(SMALL, ip_allowlist=["192.0.2.10"]) as emu:
        status, body = await get(http, emu)
    assert status == 403
    assert body == {
        "Message": "User is not authorized to access this resource with an explicit deny"
    }
    async with ArgosEmulator(SMALL, ip_allowlist=["127.0.0.1"]) as emu:
        assert (await get(http, emu))[0] == 200


@pytest.mark.parametrize("count", ["0", "2001", "abc", "-1", "1.5", ""])
async def test_invalid_count_is_400(
    http: aiohttp.ClientSession, emu: ArgosEmulator, count: str
) -> None:
    status, body = await get(http, emu, params={"count": count})
    assert (status, body) == (400, {"message": "Invalid Query String parameters"})


async def test_default_count_is_50(http: aiohttp.ClientSession, emu: ArgosEmulator) -> None:
    status, body = await get(http, emu)
    assert status == 200
    assert len(body["Items"]) == 50
    assert [it["submission_id"] for it in body["Items"]] == emu.dataset.expected_ids()[:50]
    last = body["Items"][-1]
    assert body["nextpageKey"] == {"id": last["submission_id"], "created_at": last["created_at"]}


async def test_date_formats_agree_and_days_are_inclusive(
    http: aiohttp.ClientSession, emu: ArgosEmulator
) -> None:
    compact = await walk(http, emu, {"start_date": "20250301", "end_date": "20250302"})
    dashed = await walk(http, emu, {"start_date": "2025-03-01", "end_date": "2025-03-02"})
    assert ids_of(compact) == ids_of(dashed)
    expected = emu.dataset.expected_ids(start_date=date(2025, 3, 1), end_date=date(2025, 3, 2))
    assert ids_of(compact) == expected
    days = {it["created_at"][:10] for page in compact for it in page["Items"]}
    assert days == {"2025-03-01", "2025-03-02"}

    # The first and last millisecond of a day belong to that day.
    edges = [c for c in emu.dataset.created_ats if c.endswith(("T00:00:00.000Z", "T23:59:59.999Z"))]
    assert edges
    for created_at in edges[:4]:
        day = created_at[:10]
        pages = await walk(http, emu, {"start_date": day, "end_date": day, "count": "2000"})
        assert created_at in {it["created_at"] for page in pages for it in page["Items"]}


@pytest.mark.parametrize(
    "params",
    [
        {"start_date": "2025-03-02", "end_date": "2025-03-01"},
        {"start_date": "2025-13-01"},
        {"end_date": "March 1"},
        {"nextpage_id": "abc"},
        {"nextpage_date": "2025-03-01T00:00:00.000Z"},
        {"request_type": "everything"},
    ],
)
async def test_bad_queries_are_400(
    http: aiohttp.ClientSession, emu: ArgosEmulator, params: dict[str, str]
) -> None:
    assert await get(http, emu, params=params) == (
        400,
        {"message": "Invalid Query String parameters"},
    )


async def test_request_type_projections(http: aiohttp.ClientSession, emu: ArgosEmulator) -> None:
    params = {"count": "200"}
    for request_type, allowed in [
        ("kyc", {"submission_id", "kyc"}),
        ("aml", {"submission_id", "aml"}),
        ("data", {"submission_id", "data"}),
    ]:
        _, body = await get(http, emu, params={**params, "request_type": request_type})
        items = body["Items"]
        assert all(set(it) <= allowed and "submission_id" in it for it in items)
        assert any(request_type in it for it in items)
    _, body = await get(http, emu, params={**params, "request_type": "others"})
    assert all(not {"kyc", "aml", "data"} & set(it) for it in body["Items"])
    assert all({"submission_id", "email", "created_at"} <= set(it) for it in body["Items"])

    sid = emu.dataset.ids[0]
    _, single = await get(http, emu, params={"submission_id": sid, "request_type": "kyc"})
    assert set(single["Items"][0]) == {"submission_id", "kyc"}


async def test_list_items_are_leaner_than_single_lookups(
    http: aiohttp.ClientSession, emu: ArgosEmulator
) -> None:
    _, listed = await get(http, emu, params={"count": "500"})
    assert all("attempts" not in it["kyc"] for it in listed["Items"])
    assert all("project_options" not in it and "ocr" not in it for it in listed["Items"])
    assert all(
        set(it["data"])
        <= {"name", "first_name", "last_name", "full_name", "gender"}
        | {"nationality", "date_of_birth"}
        for it in listed["Items"]
    )
    with_attempts = next(
        it for it in emu.dataset.items if "attempts" in it["kyc"] and "project_options" in it
    )
    _, single = await get(http, emu, params={"submission_id": with_attempts["submission_id"]})
    assert single == {"Items": [with_attempts]}
    assert await get(http, emu, params={"submission_id": "doesnotexist0000"}) == (
        200,
        {"Items": []},
    )


async def test_full_listing_returns_every_id_once_in_order(
    http: aiohttp.ClientSession,
) -> None:
    async with ArgosEmulator(10_000, seed=7) as emu:
        pages = await walk(http, emu, {"count": "2000"})
    ids = ids_of(pages)
    assert ids == emu.dataset.expected_ids()
    assert len(ids) == len(set(ids)) == 10_000
    assert "nextpageKey" not in pages[-1]
    assert all("nextpageKey" in page for page in pages[:-1])


async def test_byte_limit_makes_short_pages(http: aiohttp.ClientSession) -> None:
    async with ArgosEmulator(SMALL, page_byte_limit=50_000) as emu:
        pages = await walk(http, emu, {"count": "2000"})
    sizes = [len(page["Items"]) for page in pages]
    assert len(pages) > 2
    assert all(0 < size < 2000 for size in sizes)
    assert all(len(msgspec.json.encode(page["Items"])) <= 50_000 for page in pages)
    assert ids_of(pages) == emu.dataset.expected_ids()


async def test_scan_mode_has_empty_pages_but_loses_nothing(http: aiohttp.ClientSession) -> None:
    async with ArgosEmulator(SMALL, filter_mode="scan") as emu:
        ds = emu.dataset
        email = next(e for e, p in ds.email_positions.items() if len(p) >= 2)
        pages = await walk(http, emu, {"email": email, "count": "100"})
        heavy = await walk(http, emu, {"email": ds.heavy_email, "count": "50"})
    assert any(not page["Items"] and "nextpageKey" in page for page in pages)
    assert ids_of(pages) == ds.expected_ids(email=email)
    assert ids_of(heavy) == ds.expected_ids(email=ds.heavy_email)


async def test_index_mode_filters_combine(http: aiohttp.ClientSession, emu: ArgosEmulator) -> None:
    ds = emu.dataset
    heavy = ds.heavy_email
    assert len(ds.email_positions[heavy]) >= SMALL // 50
    userid = ds.userids[ds.email_positions[heavy][0]]
    assert userid is not None
    pages = await walk(http, emu, {"email": heavy, "userid": userid, "count": "7"})
    expected = ds.expected_ids(email=heavy, userid=userid)
    assert ids_of(pages) == expected
    assert 0 < len(expected) < len(ds.email_positions[heavy])
    assert all(page["Items"] for page in pages)


async def test_oversized_response_is_413(http: aiohttp.ClientSession) -> None:
    async with ArgosEmulator(SMALL, page_byte_limit=None, response_byte_limit=20_000) as emu:
        assert await get(http, emu, params={"count": "2000"}) == (
            413,
            {"message": "Request Entity Too Large"},
        )
        assert (await get(http, emu, params={"count": "5"}))[0] == 200


async def test_applicant_endpoint(http: aiohttp.ClientSession, emu: ArgosEmulator) -> None:
    ds = emu.dataset
    shared = ds.shared_applicant_ids
    assert shared
    applicant_id = shared[0]
    status, body = await get(
        http, emu, "/v3/submission/applicant", params={"applicant_id": applicant_id}
    )
    assert status == 200
    assert isinstance(body, list)
    assert len(body) >= 2
    expected = ds.for_applicant(applicant_id)
    assert [e["submission_id"] for e in body] == [it["submission_id"] for it in expected]
    assert all(it["kyc"]["result"] == "approved" for it in expected)
    assert len({it["data"]["name"] for it in expected}) == 1
    assert {e["email"] for e in body} == {it["email"] for it in expected}
    assert all("duplicated_information" in e for e in body)

    unknown = await get(http, emu, "/v3/submission/applicant", params={"applicant_id": "zzz"})
    assert unknown == (200, [])
    for params in ({}, {"applicant_id": ""}):
        status, body = await get(http, emu, "/v3/submission/applicant", params=params)
        assert (status, body) == (400, {"message": "Invalid Query String parameters"})


async def test_unknown_path_is_404(http: aiohttp.ClientSession, emu: ArgosEmulator) -> None:
    assert await get(http, emu, "/v3/other") == (404, {"message": "Not Found"})


async def test_repeat_key_back_two_gives_a_b_a(http: aiohttp.ClientSession) -> None:
    plan = FaultPlan([RepeatKey(at=3, back=2)])
    async with ArgosEmulator(SMALL, faults=plan) as emu:
        keys = []
        query = {"count": "10"}
        for _ in range(3):
            _, body = await get(http, emu, params=query)
            key = body["nextpageKey"]
            keys.append((key["id"], key["created_at"]))
            query.update(nextpage_id=key["id"], nextpage_date=key["created_at"])
        # A single lookup is not a list request and does not move the fault's counter.
        await get(http, emu, params={"submission_id": emu.dataset.ids[0]})
        _, fourth = await get(http, emu, params=query)
    a, b, again = keys
    assert a != b
    assert again == a
    assert fourth["nextpageKey"]["id"] == fourth["Items"][-1]["submission_id"]


async def test_repeat_key_back_one_repeats_previous(http: aiohttp.ClientSession) -> None:
    async with ArgosEmulator(SMALL, faults=FaultPlan([RepeatKey(at=2)])) as emu:
        _, first = await get(http, emu, params={"count": "5"})
        key = first["nextpageKey"]
        params = {"count": "5", "nextpage_id": key["id"], "nextpage_date": key["created_at"]}
        _, second = await get(http, emu, params=params)
    assert second["nextpageKey"] == key


async def test_requests_recorded_in_arrival_order(
    http: aiohttp.ClientSession, emu: ArgosEmulator
) -> None:
    before = time.monotonic()
    await get(http, emu, params={"email": "ana.silva+kyc@example.com", "count": "3"})
    await get(http, emu, "/v3/submission/applicant", params={"applicant_id": "x"}, key="bad")
    assert [r.index for r in emu.requests] == [0, 1]
    first, second = emu.requests
    assert first.method == "GET"
    assert first.path == "/v3/submission"
    assert first.query == {"email": "ana.silva+kyc@example.com", "count": "3"}
    assert first.headers["x-api-key"] == emu.api_key
    assert second.headers["x-api-key"] == "bad"
    assert second.path == "/v3/submission/applicant"
    assert before <= first.received_at <= second.received_at
    assert emu.in_flight == 0
    assert emu.max_in_flight == 1
    emu.reset_stats()
    assert emu.requests == []


async def test_concurrency_is_counted(http: aiohttp.ClientSession) -> None:
    async with ArgosEmulator(SMALL, latency=0.2) as emu:
        results = await asyncio.gather(*(get(http, emu) for _ in range(5)))
        assert [status for status, _ in results] == [200] * 5
        assert emu.max_in_flight == 5
        assert emu.in_flight == 0


async def test_a_burst_of_list_requests_takes_turns(http: aiohttp.ClientSession) -> None:
    async with ArgosEmulator(SMALL, seed=7) as emu:
        days = [date(2025, 3, d) for d in range(1, 9)]
        bodies = await asyncio.gather(
            *(walk(http, emu, {"start_date": str(d), "end_date": str(d)}) for d in days)
        )
    for day, pages in zip(days, bodies, strict=True):
        assert ids_of(pages) == emu.dataset.expected_ids(start_date=day, end_date=day)


async def test_a_waiter_cancelled_in_its_turn_keeps_no_one_waiting() -> None:
    turns = _Turns()
    served: list[int] = []

    async def page(i: int) -> None:
        await turns.take()
        served.append(i)

    tasks = [asyncio.create_task(page(i)) for i in range(4)]
    await asyncio.sleep(0)  # the first took its turn; the others wait for theirs
    assert served == [0]
    tasks[1].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert served == [0, 2, 3]
    assert tasks[1].cancelled()


def test_dataset_is_deterministic() -> None:
    a = Dataset.generate(500, 11)
    b = Dataset.generate(500, 11, start=date(2025, 1, 1), days=365)
    assert a is b  # cached
    fresh = _build(500, 11, date(2025, 1, 1), 365)  # bypasses the cache
    assert fresh is not a
    assert list(fresh.items) == list(a.items)
    other = Dataset.generate(500, 12)
    assert other.ids != a.ids


def test_dataset_shape() -> None:
    ds = Dataset.generate(SMALL, 7)
    stamp = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
    results: dict[str, int] = {}
    for it in ds.items:
        assert re.fullmatch(r"[a-z0-9]{16}", it["submission_id"])
        assert stamp.fullmatch(it["created_at"])
        assert stamp.fullmatch(it["updated_at"])
        assert it["updated_at"] >= it["created_at"]
        result = it["kyc"]["result"]
        results[result] = results.get(result, 0) + 1
        assert ("kyc_result_at" in it) == (result in ("approved", "rejected"))
        assert ("applicant_id" in it) == (result == "approved") == ("aml" in it)
        assert ("comment" in it["kyc"]) == (result == "rejected")
        assert it["email"].rsplit("@", 1)[1] in ("example.com", "example.org", "example.net")
    assert len(set(ds.ids)) == SMALL
    assert 0.5 < results["approved"] / SMALL < 0.75
    assert results.keys() == {"approved", "rejected", "pending", "incomplete"}
    assert len(set(ds.created_ats)) < SMALL  # ties exist
    assert list(ds.ids) == sorted(
        ds.ids, key=lambda s: (ds.created_ats[ds.position[s]], s), reverse=True
    )
    codes = {c for it in ds.items for c in it["kyc"].get("commentCode", ())}
    assert "too_many_retry" in codes
    assert "Multiple invalid KYC attempts " in {
        c for it in ds.items for c in it["kyc"].get("comment", ())
    }


# Realism: the data set looks like a KYC provider's, so that code tested on it meets the
# shapes it will meet in production.

ALPHA3 = {
    "USA", "GBR", "CAN", "KOR", "JPN", "BRA", "PRT", "ESP", "MEX", "DEU", "FRA", "IND", "VNM",
    "PHL", "NGA",
}  # fmt: skip
# The seed's idType list, with its typos fixed (drivers_licensem, "residence permit", ...).
SEED_ID_TYPES = {
    "passport", "government_id", "drivers_license", "residence_permit",
    "vehicle_registration_certificate", "visa", "aadhaar", "pancard",
}  # fmt: skip
RETRY_CODES = {
    "liveness_error", "face_compare_underscore", "face_compare_fail", "barcode_protocol_fail",
    "mrz_protocol_fail",
}  # fmt: skip


def test_people_have_names_nationalities_and_documented_id_types() -> None:
    items = list(Dataset.generate(SMALL, 7).items)
    for it in items:
        data = it["data"]
        assert data["name"].strip()
        if "full_name" in data:
            assert data["first_name"].strip()
            assert data["last_name"].strip()
            assert data["full_name"] == f"{data['first_name']} {data['last_name']}"
        assert data["nationality"] in ALPHA3
        assert data["idcard_issuingCountry"] in ALPHA3
        assert data["idType"] in SEED_ID_TYPES
        assert data["gender"] in ("male", "female")
    assert len({it["data"]["nationality"] for it in items}) >= 10
    assert len({it["data"]["idType"] for it in items}) >= 6
    assert len({it["data"]["name"] for it in items}) > SMALL // 10


def test_kyc_attempts_carry_retry_codes() -> None:
    attempts = [a for it in Dataset.generate(SMALL, 7).items for a in it["kyc"].get("attempts", ())]
    failed = [a for a in attempts if a["verificationResult"] == "fail"]
    assert failed
    assert all(len(a["retryCode"]) == len(a["retryMsg"]) == 1 for a in failed)
    codes = {c for a in failed for c in a["retryCode"]}
    assert codes <= RETRY_CODES
    assert len(codes) >= 4
    assert all("retryCode" not in a for a in attempts if a["verificationResult"] == "success")


async def test_aml_results_only_for_approved_submissions_as_served(
    http: aiohttp.ClientSession, emu: ArgosEmulator
) -> None:
    items = [it for page in await walk(http, emu, {"count": "2000"}) for it in page["Items"]]
    assert len(items) == SMALL
    for it in items:
        assert ("aml" in it) == (it["kyc"]["result"] == "approved")
    statuses = {it["aml"]["currentstatus"] for it in items if "aml" in it}
    assert statuses == {"Not Screened", "Red Flag"}
    flagged = [it["aml"] for it in items if it.get("aml", {}).get("currentstatus") == "Red Flag"]
    assert all(aml["matches"] and aml["risk_level_summary"] != "Not Screened" for aml in flagged)


def test_several_submissions_share_an_applicant_id() -> None:
    ds = Dataset.generate(SMALL, 7)
    shared = ds.shared_applicant_ids
    assert len(shared) >= 10
    for applicant_id in shared:
        items = ds.for_applicant(applicant_id)
        assert len(items) >= 2
        assert len({it["submission_id"] for it in items}) == len(items)
        # The same person: name, birth date, gender and nationality agree.
        data = [it["data"] for it in items]
        people = {(d["name"], d["date_of_birth"], d["gender"], d["nationality"]) for d in data}
        assert len(people) == 1


# Changing a submission after it was served (ArgosEmulator.update).


def pending_id(emu: ArgosEmulator) -> str:
    return next(
        sid
        for sid, it in zip(emu.dataset.ids, emu.dataset.items, strict=True)
        if it["kyc"]["result"] == "pending"
    )


async def test_update_is_served_by_list_pages_and_single_lookups(
    http: aiohttp.ClientSession, emu: ArgosEmulator
) -> None:
    sid = pending_id(emu)
    before = emu.dataset.get(sid)
    assert before is not None
    # A page served before the update (well within the page byte limit, so that the update
    # cannot move where it ends).
    _, listed_before = await get(http, emu, params={"count": "500"})
    updated = emu.update(
        sid,
        kyc={
            "result": "rejected",
            "commentCode": ["id_image_badImage"],
            "comment": ["Fail to read the ID image."],
        },
    )
    assert emu.get(sid) == updated
    _, single = await get(http, emu, params={"submission_id": sid})
    assert single == {"Items": [updated]}
    day = before["created_at"][:10]
    pages = await walk(http, emu, {"start_date": day, "end_date": day, "count": "3"})
    (listed,) = [it for page in pages for it in page["Items"] if it["submission_id"] == sid]
    assert listed["kyc"] == {
        "result": "rejected",
        "comment": ["Fail to read the ID image."],
        "commentCode": ["id_image_badImage"],
    }
    assert listed["updated_at"] == updated["updated_at"] == updated["kyc_result_at"]
    assert listed["updated_at"] > before["updated_at"]
    # Only that item changed, and the listing's order and keys did not move.
    assert ids_of(pages) == emu.dataset.expected_ids(start_date=day, end_date=day)
    _, listed_after = await get(http, emu, params={"count": "500"})
    changed = [
        a["submission_id"]
        for a, b in zip(listed_before["Items"], listed_after["Items"], strict=True)
        if a != b
    ]
    assert sid in ids_of([listed_before])
    assert changed == [sid]


async def test_update_leaves_the_shared_dataset_and_other_emulators_alone(
    http: aiohttp.ClientSession, emu: ArgosEmulator
) -> None:
    sid = pending_id(emu)
    original = msgspec.json.encode(emu.dataset.get(sid))
    emu.update(sid, kyc={"result": "approved"})
    assert msgspec.json.encode(emu.dataset.get(sid)) == original
    async with ArgosEmulator(SMALL, seed=7) as twin:
        assert twin.dataset is emu.dataset  # the cached data set is shared...
        _, single = await get(http, twin, params={"submission_id": sid})
        assert msgspec.json.encode(single["Items"][0]) == original  # ...but not the update
        # The same update on an emulator of the same seed gives the same item.
        assert twin.update(sid, kyc={"result": "approved"}) == emu.get(sid)


async def test_update_timestamps_and_result_fields(emu: ArgosEmulator) -> None:
    ds = emu.dataset
    incomplete = next(it for it in ds.items if it["kyc"]["result"] == "incomplete")
    rejected = emu.update(incomplete["submission_id"], kyc={"result": "rejected"})
    assert rejected["kyc"]["commentCode"] == ["timeout"]
    assert rejected["kyc"]["comment"] == ["KYC rejected due to timeout"]
    assert "aml" not in rejected

    sid = pending_id(emu)
    when = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=timezone.utc)
    approved = emu.update(sid, kyc={"result": "approved"}, updated_at=when)
    assert approved["updated_at"] == approved["kyc_result_at"] == "2026-02-03T04:05:06.789Z"
    assert approved["aml"] == {
        "risk_level_summary": "Not Screened",
        "currentstatus": "Not Screened",
    }
    assert "commentCode" not in approved["kyc"]
    # A later change moves updated_at on; the first decision's time stays.
    later = emu.update(sid, memo={"text": "checked", "updated_at": "x"})
    assert later["updated_at"] == "2026-02-03T04:06:06.789Z"
    assert later["kyc_result_at"] == "2026-02-03T04:05:06.789Z"
    assert emu.update(sid, memo=None).get("memo") is None
    stamped = emu.update(sid, updated_at="2026-03-01T00:00:00.000Z")
    assert stamped["updated_at"] == "2026-03-01T00:00:00.000Z"


def test_update_speaks_the_vocabulary_get_returns(emu: ArgosEmulator) -> None:
    ds = emu.dataset
    sid = next(
        s
        for s, it in zip(ds.ids, ds.items, strict=True)
        if it["kyc"]["result"] == "pending" and "attempts" in it["kyc"]
    )
    before = emu.get(sid)
    assert before is not None
    # A dict merges into the item's: the attempts stay.
    after = emu.update(sid, kyc={"result": "approved"})
    assert after["kyc"]["attempts"] == before["kyc"]["attempts"]
    assert after["kyc"]["result"] == "approved"
    # What get returns can be handed back as it is: a red-flag screening from another item.
    flagged = next(it for it in ds.items if it.get("aml", {}).get("currentstatus") == "Red Flag")
    assert emu.update(sid, aml=flagged["aml"])["aml"] == flagged["aml"]
    # None deletes, at any depth; other keys of the dict stay.
    cleared = emu.update(sid, aml={"matches": None}, data={"ip_address": None})
    assert "matches" not in cleared["aml"]
    assert cleared["aml"]["currentstatus"] == "Red Flag"
    assert "ip_address" not in cleared["data"]
    assert cleared["data"]["name"] == before["data"]["name"]
    # The reasons of an item already rejected can change without a new result.
    emu.update(sid, kyc={"result": "rejected"})
    reasons = emu.update(sid, kyc={"commentCode": ["expired_id"], "comment": ["Expired."]})
    assert reasons["kyc"]["commentCode"] == ["expired_id"]
    assert reasons["kyc"]["result"] == "rejected"
    # The values are stored as they are served: JSON, not the caller's own objects.
    assert emu.update(sid, cf9=("a", "b"))["cf9"] == ["a", "b"]


def test_update_refuses_what_it_cannot_do(emu: ArgosEmulator) -> None:
    sid = emu.dataset.ids[0]
    with pytest.raises(KeyError):
        emu.update("nosuchsubmission", kyc={"result": "approved"})
    for field in ("submission_id", "created_at", "email", "userid", "applicant_id"):
        with pytest.raises(ValueError, match=field):
            emu.update(sid, **{field: "x"})
    with pytest.raises(ValueError, match="aware"):
        emu.update(sid, updated_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timestamp"):
        emu.update(sid, updated_at="2026-01-01")
    with pytest.raises(TypeError, match="updated_at"):
        emu.update(sid, updated_at=1_700_000_000)
    with pytest.raises(ValueError, match="rejected"):
        emu.update(sid, kyc={"result": "approved", "commentCode": ["other"]})
    # The keywords update() took before it spoke the item's vocabulary would otherwise be
    # added to the item as fields of their own.
    old_calls: list[tuple[dict[str, Any], str]] = [
        ({"kyc_result": "approved"}, "kyc="),
        ({"comment_code": ["other"]}, "commentCode"),
        ({"comment": ["x"]}, "kyc="),
        ({"at": datetime(2026, 1, 1, tzinfo=timezone.utc)}, "updated_at="),
        ({"fields": {"memo": None}}, "memo=None"),
    ]
    for old, new in old_calls:
        with pytest.raises(TypeError, match=new):
            emu.update(sid, **old)
    assert emu.get(sid) == emu.dataset.items[0]  # nothing changed


async def test_a_dataset_swapped_in_before_serving_is_served(
    http: aiohttp.ClientSession,
) -> None:
    emu = ArgosEmulator(200, seed=8)
    emu.dataset = Dataset.generate(300, 8, heavy=100)
    async with emu:
        pages = await walk(http, emu, {"email": emu.dataset.heavy_email, "count": "40"})
        assert emu.get(emu.dataset.ids[250]) == emu.dataset.items[250]
    assert ids_of(pages) == emu.dataset.expected_ids(email=emu.dataset.heavy_email)
    assert len(ids_of(pages)) == 100


SERVE_LINE = (
    r"Argos emulator listening on (http://127\.0\.0\.1:\d+) \(200 submissions, api key: cli-key\)"
)


def test_serve_cli() -> None:
    with serve_process("--submissions", "200", "--api-key", "cli-key") as (_, line):
        match = re.fullmatch(SERVE_LINE + r"\n", line)
        assert match, line
        url = match.group(1)

        async def one_request() -> int:
            async with (
                aiohttp.ClientSession() as session,
                session.get(url + "/v3/submission", headers={"x-api-key": "cli-key"}) as resp,
            ):
                await resp.read()
                return resp.status

        assert asyncio.run(one_request()) == 200


def test_serve_help_shows_every_default_and_explains_the_line_with_the_key() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "argos_async.testing", "serve", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    options_part, _, epilog = done.stdout.partition("\nwhat it prints:\n")
    # Each option's help, its wrapped lines joined: "--port PORT" -> "port, 0 for any ...".
    blocks = re.findall(
        r"^  (--[a-z-]+)[^\n]*?(?:  +|\n +)(.*?)(?=^  -|\Z)", options_part, re.M | re.S
    )
    helps = {option: " ".join(text.split()) for option, text in blocks}
    emulator = inspect.signature(ArgosEmulator.__init__).parameters
    expected = {
        "--host": emulator["host"].default,
        "--port": 8080,
        "--submissions": emulator["submissions"].default,
        "--seed": emulator["seed"].default,
        "--api-key": "a random emu-... key",
        "--filter-mode": emulator["filter_mode"].default,
        "--latency": emulator["latency"].default,
        "--faults": "none",
        "--fault-seed": 0,
        "--secure-transmission": "off",
        "--secret-key-file": "none",
        "--webhook-url": "none",
        "--webhook-faults": "none",
        "--webhook-fault-seed": 0,
        "--webhook-timeout": emulator["webhook_timeout"].default,
        "--webhook-attempts": emulator["webhook_attempts"].default,
    }
    assert set(helps) == set(expected)
    for option, default in expected.items():
        assert re.search(rf"\(default:? {re.escape(str(default))}\b", helps[option]), option

    text = " ".join(epilog.split())
    example = re.search(r"Argos emulator listening on \S+ \(\d+ submissions, api key: \S+\)", text)
    assert example, epilog
    # The example is the line serve prints (test_serve_cli matches that one).
    assert re.fullmatch(
        SERVE_LINE.replace(r"200", r"\d+").replace("cli-key", r"emu-\S+"), example[0]
    )
    assert "throwaway demo key" in text
    assert "export ARGOS_BASE_URL=http://127.0.0.1:8080" in text
    assert re.search(r"export ARGOS_API_KEY=emu-\S+", text)


def test_serve_cli_usage_errors() -> None:
    for args in (["serve", "--host", "0.0.0.0"], ["serve", "--port", "x"], []):
        done = subprocess.run(
            [sys.executable, "-m", "argos_async.testing", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2, done.stderr
        assert "usage:" in done.stderr


def test_non_loopback_host_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        ArgosEmulator(10, host="0.0.0.0")


TESTING = REPO / "argos_async" / "testing"


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a file of the argos_async.testing package imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module or "")
        elif isinstance(node, ast.ImportFrom):
            # Relative to argos_async.testing: one dot is the package, two its parent.
            base = ".".join(["argos_async", "testing"][: 3 - node.level])
            names.add(f"{base}.{node.module}" if node.module else base)
    return names


def test_the_emulator_shares_no_code_with_the_client() -> None:
    # An independent reading of the API: a client bug cannot hide behind shared code.
    for path in TESTING.glob("*.py"):
        shared = {
            m
            for m in imported_modules(path)
            if m.startswith("argos_async") and not m.startswith("argos_async.testing")
        }
        assert not shared, f"{path.name} imports {shared}"


def test_the_data_and_listing_modules_know_nothing_of_http() -> None:
    pure = ["_wire", "_tables", "_clock", "_records", "_items", "_dataset", "_listing", "_updates"]
    for name in pure:
        imports = imported_modules(TESTING / f"{name}.py")
        assert not {m for m in imports if m.split(".")[0] == "aiohttp"}, name
        assert "argos_async.testing._server" not in imports, name
        assert "argos_async.testing._faults" not in imports, name
