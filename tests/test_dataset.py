"""The synthetic data set, pinned byte for byte: a refactoring of the generator (or of the
listing engine that serves it) must not change a single byte for a given seed.

The pins are those of version 2 of the data (`_records.VERSION`: made a day at a time, so
that the emulator serves before it has drawn it all). When a change of the data is
intended, regenerate them with `python tests/test_dataset.py` and say so in the changelog:
tests elsewhere depend on what a seed produces.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import Iterable
from datetime import date, datetime, timezone
from typing import Any

import aiohttp
import msgspec
import pytest

from argos_async.testing import ArgosEmulator, Dataset
from argos_async.testing._dataset import _build
from argos_async.testing._listing import list_form

REQUEST_TYPES = (None, "kyc", "aml", "data", "others")
POSITIONS = (0, 1, 17, 499)

# Position 17 of Dataset.generate(500, 7), as a single lookup returns it.
ITEM_17 = (
    b'{"data":{"name":"Taeyang Cho","first_name":"Taeyang","last_name":"Cho","full_name":"T'
    b'aeyang Cho","gender":"male","nationality":"KOR","date_of_birth":"1995-11-21","age_gro'
    b'up":"adult","ip_address":"203.0.113.*","idType":"government_id","idcard_issuingCountr'
    b'y":"KOR","idcard_issueDate":"2015-02-15","idcard_expireDate":"2025-02-13","identityNu'
    b'mber":"951121-1******","documentNumber":"M8540****","address_city":"Busan","address_c'
    b'ountry":"KOR","address_state":"Busan","address_street":"55 Jungang-daero, Dong-gu","a'
    b'ddress_zipcode":"48731","address_globalCode":"8Q7XJFRF+7C","address_compoundCode":"JF'
    b'RF+7C Busan, South Korea","address_formatted":"55 Jungang-daero, Dong-gu, Busan, Busa'
    b'n 48731, South Korea","address_input":"55 Jungang-daero, Dong-gu","address_detail":"A'
    b'pt 21","cf1":"android","cf2":"campaign-9"},"email":"taeyang.cho18@example.net","submi'
    b'ssion_id":"uhviz429fp6e2auk","duplicated_information":"748f7571828d51874a3961a0b6ed0e'
    b'8c","created_at":"2025-12-20T08:10:28.013Z","kyc_result_at":"2025-12-20T08:17:42.972Z'
    b'","updated_at":"2025-12-20T08:17:42.972Z","reviewer":"system","applicant_id":"gqfyiar'
    b'v3sy4rxnk","kyc":{"result":"approved","attempts":[{"attemptCnt":1,"step1Time1st":"202'
    b'5-12-20T08:10:48.013Z","step2Time1st":"2025-12-20T08:11:34.997Z","ocrResult":"success'
    b'","livenessScore":91,"faceSimilarityScore":96,"verificationParams":{"fullName":"Taeya'
    b'ng Cho","idType":"government_id","issueDate":"2015-02-15","identityNumber":"951121-1*'
    b'*****"},"verificationResult":"success"}]},"aml":{"risk_level_summary":"Not Screened",'
    b'"currentstatus":"Not Screened"},"image":{"idImage":"https://images.example.com/uhviz4'
    b'29fp6e2auk/id.jpg","idBackImage":"https://images.example.com/uhviz429fp6e2auk/id_back'
    b'.jpg","selfieImage":"https://images.example.com/uhviz429fp6e2auk/selfie.jpg","address'
    b'Image":"https://images.example.com/uhviz429fp6e2auk/address.jpg"},"argos_score":57.3,'
    b'"recognition_score":84,"project_options":{"option_aml":true,"option_addressData":true'
    b',"policy_approvePeriod":30,"option_idNumber":true,"policy_blacklistCountries":["PRK",'
    b'"IRN"],"policy_acceptedID":["government_id","passport","drivers_license","vehicle_reg'
    b'istration_certificate","aadhaar"]},"ocr":{"birthDate":"1995-11-21","expireDate":"2025'
    b'-02-13","firstName":"TAEYANG","fullName":"TAEYANG CHO","identityNumber":"951121-1****'
    b'**","lastName":"CHO","nationality":"KOR"},"bank_verification":{"result":"success","ty'
    b'pe":"occupancy","bank_code":"004","account_number":"8540-**-****04","retry_count":1}}'
)

PINNED: dict[str, str] = {
    "10000/7/columns": "c21fd845c78053771c5a77a05abf10090e95685aa83ad9ec54c9c2d598b222c9",
    "10000/7/heavy": "5c091a1cd0823b6e80368399afe969cc55f26469c7939edeba1e1ce64126535f",
    "10000/7/indexes": "41f7ed081146f5bb4d73b7743b25571815abcc094ba10b952fdc7bb7fdddb515",
    "10000/7/items": "4395bb0d5562a7cff241db238940380cd460340e2fd179e47fe467ff75782637",
    "2000/3/leap/columns": "1da7965f7baef8a1827db66eeb4e48e458fdcaadb1cee4879889bff3f4a906ec",
    "2000/3/leap/heavy": "0b116e7e4a8b15ff2bf3132702701fdf7d8527c34f91248685ebadf2a6baf8f9",
    "2000/3/leap/indexes": "3e092de6b56772d9b160275878ef632ffc48aa83f61d0f52dda4db5c1d8c5f93",
    "2000/3/leap/items": "15fadb16cf256ad5e64b2be03ac0b42fbfe61603edd7f03e958ee0401ee8daec",
    "500/7/columns": "a622ccafb2438f80c665e7e514fd93b8e79670c895a9975444ac71ce5bd21450",
    "500/7/heavy": "73d0bcd4036790f6c891a5c045a2ad8c435676efea44b772997c3b3bf7f806fc",
    "500/7/heavy0/columns": "0433aa2e30296690b5e104e998ad884a72e39c90bc3aa311249fb66fa0b3605a",
    "500/7/heavy0/heavy": "f72ca0aba23f216d7250093c172d602727858b8e713e17005a7f1c9e3f2747fb",
    "500/7/heavy0/indexes": "0a48eec8101602bb585f959968244d74a616e0750fff013a4bdf0dc0569ad7d6",
    "500/7/heavy0/items": "97a560f49bb483674e512bc43c34db74fc058c7e0d17bb8c0f29c9a93e06e3c2",
    "500/7/heavy120/columns": "9b7c8fbe382ec16a36c90055c0d2f0181d42b4606df96a4a70c7280f9a8b8fb2",
    "500/7/heavy120/heavy": "5bcb513977db757972314033b91831149ef5da69ba9a6550f1493a1ec1ff13b9",
    "500/7/heavy120/indexes": "7cbef11b38268b7043b0580b14f5c6084d774987061aca572f45d27b851d57b5",
    "500/7/heavy120/items": "5ff53d50dc7803677b5ac2ea44db68207ccaf8b51745f0c42183c35f613d7674",
    "500/7/indexes": "366cda32729dc6b73ff4cff14f64f4543bedcb00910b0811f4b1d6ab4ea6dda5",
    "500/7/item0": "2d5695d9c1dc16f557a0cd4c8a3e8671a1c22f8ced7ebc2b99440b69d79917be",
    "500/7/item1": "b31c94af011d789cdbbd1c1a689678fa63f2bd71aa4eefe8bdd1a037454be386",
    "500/7/item17": "eea9cad591f48e8045fc5299fac3e609fcb986b7e81dd6714954747b3d25cfac",
    "500/7/item499": "dcc4705c8bf4615acbfaa17b220660c1f279caf0d8d08255ff9ed6a4afeab5a4",
    "500/7/items": "a49dad9c679915617ab8bb6355bf4f24c9d89c3dc36531a5f94f8240fe2d882c",
    "applicant": "e5dbe7292de781c2465d64fe63f7bee55acbf3dc7582cbdda0b138f148cb99a2",
    "list/None": "2746a60f6512552344ce19551a67e935e2c774bf36736710424da690b2d463af",
    "list/aml": "83643ae062797971b249e88a17dfcc7b314a08141ba627cf7fc06d425cddb63b",
    "list/bytelimit": "17273ea0396d598da6afeb47f1a00ac2baf1afbb93d8af7f58df0c10257586de",
    "list/data": "eed2abc5daa4ffab6bcc4bfbb2fc1ce9bb3ff8510691c03c0e4af43ca99cb329",
    "list/date": "6342f316185baab2090fc32008154717d6f3b61f200c3d6fc6626a62ce3536e7",
    "list/index/both": "0ce5edf509f74440e9d5ee53d6b7217bc08e75e657fbeb1736c466aa56558466",
    "list/index/heavy": "dffdb89090b5364dd7687ee3b229986cf042149b30b4344d7ab25bb9f0dd86b1",
    "list/kyc": "63e2071c4dfd73f31c864574ab74ae59a5606eefd7cb76acde15211e9bca8b3c",
    "list/others": "be3a052de2d01044718101eef0ed968e48abeec2e4c9375872e41dc7abee9863",
    "list/scan/heavy": "f26c77a07f84d3e4e7c5858113be6ef0a5ed1534f4aa197b05e35639b99d5f1c",
    "single/None": "300b392db52dfe05e589cce5cdc8aa4a86267bd6c3ff2a1f8e00aa8629fc1914",
    "single/aml": "5ce940aa56641210baa58138ecc144e18f1d40086d3119b341b4adf5e0f8052c",
    "single/data": "7635b721381a2debc3832486a7fbd01f5f6d4e035c6d5d4890390140e53538a7",
    "single/kyc": "1be2012e0df263d21ef876dbb91539801338532d27a424a3af4c6ec4fb8e0fb9",
    "single/others": "9a5e5724094748a95acb4365a71cc1bd79d6e7696a7387ee7a099a69eeb1d42e",
    "update/applicant": "e5dbe7292de781c2465d64fe63f7bee55acbf3dc7582cbdda0b138f148cb99a2",
    "update/get": "33adc1faa739f711572d06d21a55f24976d4776da83bd477995255ce8656f0dc",
    "update/list": "c2f6bc1fcde4fb4cfd2a304d0aff64ceab519a80ed0eebf02cb8b5c64d107df0",
    "update/single": "ef16be4aa9c1e389c440819c7c332c7c348de6549be27c87d51b8f478e3ff9ba",
}


def sha(*pieces: bytes) -> str:
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(len(piece).to_bytes(8, "big"))
        digest.update(piece)
    return digest.hexdigest()


def encoded(items: Iterable[Any]) -> list[bytes]:
    return [msgspec.json.encode(item) for item in items]


def dataset_fingerprints(name: str, ds: Dataset) -> dict[str, str]:
    """Items, server order, per-position columns and indexes of `ds`."""
    out = {f"{name}/items": sha(*encoded(ds.items))}
    columns = [ds.ids, ds.created_ats, ds.emails, ds.userids]
    out[f"{name}/columns"] = sha(msgspec.json.encode([list(c) for c in columns]))
    indexes = [ds.email_positions, ds.userid_positions, ds.applicant_positions]
    out[f"{name}/indexes"] = sha(msgspec.json.encode([sorted(i.items()) for i in indexes]))
    out[f"{name}/heavy"] = sha(
        ds.heavy_email.encode(), msgspec.json.encode(ds.email_positions.get(ds.heavy_email, []))
    )
    return out


def static_fingerprints() -> dict[str, str]:
    ds = Dataset.generate(500, 7)
    out = {f"500/7/item{pos}": sha(msgspec.json.encode(ds.items[pos])) for pos in POSITIONS}
    out.update(dataset_fingerprints("500/7", ds))
    out.update(dataset_fingerprints("500/7/heavy120", Dataset.generate(500, 7, heavy=120)))
    out.update(dataset_fingerprints("500/7/heavy0", Dataset.generate(500, 7, heavy=0)))
    # A short window over a leap day: decisions and memos fall past its end.
    leap = Dataset.generate(2000, 3, start=date(2024, 2, 28), days=2)
    out.update(dataset_fingerprints("2000/3/leap", leap))
    out.update(dataset_fingerprints("10000/7", Dataset.generate(10_000, 7)))
    return out


async def fetch(http: aiohttp.ClientSession, emu: ArgosEmulator, **params: str) -> bytes:
    url = emu.url + ("/v3/submission/applicant" if "applicant_id" in params else "/v3/submission")
    async with http.get(url, params=params, headers={"x-api-key": emu.api_key}) as resp:
        assert resp.status == 200
        return await resp.read()


async def walk(http: aiohttp.ClientSession, emu: ArgosEmulator, **params: str) -> list[bytes]:
    bodies = []
    while True:
        body = await fetch(http, emu, **params)
        bodies.append(body)
        key = msgspec.json.decode(body).get("nextpageKey")
        if key is None:
            return bodies
        params.update(nextpage_id=key["id"], nextpage_date=key["created_at"])


def apply_updates(emu: ArgosEmulator) -> list[str]:
    """A few updates of each kind; returns the ids changed.

    Their pins were computed when update() took `kyc_result=`, `comment_code=`, `comment=`,
    `at=` and `fields=`: the same changes in the item's vocabulary give the same bytes.
    """
    ds = emu.dataset
    by_result: dict[str, list[str]] = {}
    for sid, item in zip(ds.ids, ds.items, strict=True):
        by_result.setdefault(item["kyc"]["result"], []).append(sid)
    pending, incomplete, approved = (
        by_result["pending"],
        by_result["incomplete"],
        by_result["approved"],
    )
    when = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=timezone.utc)
    emu.update(pending[0], kyc={"result": "approved"})
    emu.update(
        pending[1],
        kyc={
            "result": "rejected",
            "commentCode": ["id_image_badImage"],
            "comment": ["Fail to read the ID image."],
        },
        updated_at=when,
    )
    emu.update(pending[2], kyc={"result": "rejected"})
    emu.update(incomplete[0], kyc={"result": "rejected"})
    emu.update(incomplete[1], kyc={"result": "pending"})
    red_flag = {"risk_level_summary": "High", "currentstatus": "Red Flag", "matches": []}
    emu.update(approved[0], aml=red_flag)
    emu.update(approved[1], memo=None, cf9="x")
    emu.update(approved[1], kyc={"result": "pending"})
    return [
        pending[0],
        pending[1],
        pending[2],
        incomplete[0],
        incomplete[1],
        approved[0],
        approved[1],
    ]


async def served_fingerprints() -> dict[str, str]:
    out: dict[str, str] = {}
    async with aiohttp.ClientSession() as http:
        async with ArgosEmulator(500, 7) as emu:
            ds = emu.dataset
            for rt in REQUEST_TYPES:
                extra = {} if rt is None else {"request_type": rt}
                out[f"list/{rt}"] = sha(await fetch(http, emu, count="2000", **extra))
                singles = [
                    await fetch(http, emu, submission_id=ds.ids[pos], **extra) for pos in POSITIONS
                ]
                out[f"single/{rt}"] = sha(*singles)
            out["list/date"] = sha(
                *await walk(http, emu, count="9", start_date="20250301", end_date="2025-03-09")
            )
            out["list/index/heavy"] = sha(*await walk(http, emu, count="3", email=ds.heavy_email))
            userid = ds.userids[ds.email_positions[ds.heavy_email][0]] or ""
            out["list/index/both"] = sha(
                *await walk(http, emu, count="2", email=ds.heavy_email, userid=userid)
            )
            applicant = ds.shared_applicant_ids[0]
            out["applicant"] = sha(await fetch(http, emu, applicant_id=applicant))

            changed = apply_updates(emu)
            updated = [await fetch(http, emu, submission_id=sid) for sid in changed]
            out["update/single"] = sha(*updated)
            out["update/get"] = sha(*encoded(emu.get(sid) for sid in changed))
            out["update/list"] = sha(await fetch(http, emu, count="2000"))
            out["update/applicant"] = sha(await fetch(http, emu, applicant_id=applicant))
        async with ArgosEmulator(500, 7, filter_mode="scan", page_byte_limit=20_000) as emu:
            ds = emu.dataset
            out["list/scan/heavy"] = sha(*await walk(http, emu, count="40", email=ds.heavy_email))
            out["list/bytelimit"] = sha(*await walk(http, emu, count="2000"))
    return out


def all_fingerprints() -> dict[str, str]:
    return {**static_fingerprints(), **asyncio.run(served_fingerprints())}


@pytest.fixture(scope="module")
def fingerprints() -> dict[str, str]:
    return all_fingerprints()


def test_one_item_is_byte_identical() -> None:
    assert msgspec.json.encode(Dataset.generate(500, 7).items[17]) == ITEM_17


@pytest.mark.parametrize("name", sorted(PINNED))
def test_pinned(fingerprints: dict[str, str], name: str) -> None:
    assert fingerprints[name] == PINNED[name]


def test_every_fingerprint_is_pinned(fingerprints: dict[str, str]) -> None:
    assert set(fingerprints) == set(PINNED)


START = date(2025, 1, 1)


def test_the_same_seed_gives_the_same_bytes_whatever_the_order() -> None:
    # Two builds past the cache, one drawing its days newest first, the other oldest first.
    a, b = _build(3000, 7, START, 365), _build(3000, 7, START, 365)
    newest_first = encoded(a.items[i] for i in range(len(a)))
    oldest_first = encoded(b.items[i] for i in reversed(range(len(b))))
    assert newest_first == oldest_first[::-1]
    assert [a.list_item(i) for i in range(len(a))] == [b.list_item(i) for i in range(len(b))]


def test_a_day_drawn_again_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("argos_async.testing._dataset._CACHED_RECORDS", 50)
    ds = _build(3000, 7, START, 365)
    first = encoded(ds.items)
    assert len(ds._cache) < 10  # days were dropped and drawn again
    assert encoded(ds.items) == first
    assert first == encoded(Dataset.generate(3000, 7).items)


def test_another_seed_gives_other_bytes() -> None:
    a, b = Dataset.generate(500, 7), Dataset.generate(500, 8)
    assert set(encoded(a.items)).isdisjoint(encoded(b.items))
    assert set(a.ids).isdisjoint(b.ids)
    assert list(a.emails) != list(b.emails)


def test_list_items_are_the_list_form_of_full_items() -> None:
    # A list page builds its items without the fields only a single lookup shows.
    ds = Dataset.generate(3000, 7)
    for pos in range(len(ds)):
        listed = msgspec.json.encode(ds.list_item(pos))
        assert listed == msgspec.json.encode(list_form(ds.item(pos)))


def test_nothing_is_drawn_before_it_is_asked_for() -> None:
    ds = _build(100_000, 5, START, 365)
    assert not ds._cache
    assert ds.list_item(0)["created_at"].startswith("2025-12-31")
    assert list(ds._cache) == [364]  # the newest day only
    # The indexes are built on first use.
    indexes = (ds.position, ds.email_positions, ds.userid_positions, ds.applicant_positions)
    assert all(repr(index) == "<an index not built yet>" for index in indexes)
    assert ds.position[ds.ids[-1]] == len(ds) - 1


if __name__ == "__main__":
    pins = all_fingerprints()
    print("PINNED: dict[str, str] = {")
    for key in sorted(pins):
        print(f'    "{key}": "{pins[key]}",')
    print("}")
    sys.stdout.write("ITEM_17 = ")
    print(repr(msgspec.json.encode(Dataset.generate(500, 7).items[17])))
