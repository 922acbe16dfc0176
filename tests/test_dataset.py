"""The synthetic data set, pinned byte for byte: a refactoring of the generator (or of the
listing engine that serves it) must not change a single byte for a given seed.

The pins were computed from the generator as it was before it was cut into steps. When a
change of the data is intended, regenerate them with `python tests/test_dataset.py` and say
so in the changelog: tests elsewhere depend on what a seed produces.
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

REQUEST_TYPES = (None, "kyc", "aml", "data", "others")
POSITIONS = (0, 1, 17, 499)

# Position 17 of Dataset.generate(500, 7), as a single lookup returns it.
ITEM_17 = (
    b'{"data":{"name":"Huy Nguyen","first_name":"Huy","last_name":"Nguyen","full_name":"Hu'
    b'y Nguyen","gender":"male","nationality":"VNM","date_of_birth":"1980-03-14","age_grou'
    b'p":"adult","ip_address":"192.0.2.*","idType":"vehicle_registration_certificate","idc'
    b'ard_issuingCountry":"VNM","idcard_issueDate":"2021-11-23","idcard_expireDate":"2031-'
    b'11-22","identityNumber":"2267******","documentNumber":"R2267****","cf1":"android","c'
    b'f2":"campaign-12"},"email":"huynguyen+test102@example.org","submission_id":"pajjcpiy'
    b'l4idby20","duplicated_information":"d9beafaf2e7131614d9d477f62caedd1","created_at":"'
    b'2025-12-18T07:09:12.760Z","kyc_result_at":"2025-12-18T07:16:10.954Z","updated_at":"2'
    b'025-12-18T07:16:10.954Z","userid":"user_10102","reviewer":"system","applicant_id":"c'
    b'7wdjlhabsw5e7r3","kyc":{"result":"approved","attempts":[{"attemptCnt":1,"step1Time1s'
    b't":"2025-12-18T07:09:32.760Z","step2Time1st":"2025-12-18T07:10:21.822Z","ocrResult":'
    b'"fail","verificationParams":{"fullName":"Huy Nguyen","idType":"vehicle_registration_'
    b'certificate","issueDate":"2021-11-23","identityNumber":"2267******"},"verificationRe'
    b'sult":"fail","retryMsg":["Failed to detect full MRZ."],"retryCode":["mrz_protocol_fa'
    b'il"]},{"attemptCnt":2,"step1Time2nd":"2025-12-18T07:11:32.691Z","step2Time2nd":"2025'
    b'-12-18T07:11:53.334Z","ocrResult":"success","livenessScore":86,"faceSimilarityScore"'
    b':92,"verificationParams":{"fullName":"Huy Nguyen","idType":"vehicle_registration_cer'
    b'tificate","issueDate":"2021-11-23","identityNumber":"2267******"},"verificationResul'
    b't":"success"}]},"aml":{"risk_level_summary":"Not Screened","currentstatus":"Not Scre'
    b'ened"},"image":{"idImage":"https://images.example.com/pajjcpiyl4idby20/id.jpg","idBa'
    b'ckImage":"https://images.example.com/pajjcpiyl4idby20/id_back.jpg","selfieImage":"ht'
    b'tps://images.example.com/pajjcpiyl4idby20/selfie.jpg","addressImage":""},"argos_scor'
    b'e":73.7,"recognition_score":55,"project_options":{"option_aml":true,"option_addressD'
    b'ata":false,"policy_approvePeriod":30,"option_idNumber":true,"policy_blacklistCountri'
    b'es":["PRK","IRN"],"policy_acceptedID":["government_id","passport","drivers_license",'
    b'"vehicle_registration_certificate","aadhaar"]},"ocr":{"birthDate":"1980-03-14","expi'
    b'reDate":"2031-11-22","firstName":"HUY","fullName":"HUY NGUYEN","identityNumber":"226'
    b'7******","lastName":"NGUYEN","nationality":"VNM"}}'
)

PINNED: dict[str, str] = {
    "10000/7/columns": "058362041640bafee9b3c454f5fdd6fb237a919518297ac972c77db875e3f00b",
    "10000/7/heavy": "519a852baed182bf4aa1abd35aff51619bf02a7a00d5ea5cb9c05f96e967bae6",
    "10000/7/indexes": "8e043c54cc0d12d1d0eda2e0f1f8c4fa301b491a1756a8963304cca1c5db679d",
    "10000/7/items": "4fa935f59573648c1900c4955e4181f0a943157836da5683802e2873f0de330b",
    "2000/3/leap/columns": "def68c16b93f1ee475a9615f91e17fc4712d8cc0bcc680dc3c3bdc98f16d41bc",
    "2000/3/leap/heavy": "5444a5111b8f5f62a1d3c155ec0f305187192d94876ecb60f136fe5378db97f6",
    "2000/3/leap/indexes": "3bc8c06814ab7b7771e4114c5b61ca8b8c6d52fba18abb9b0109f9340f794df3",
    "2000/3/leap/items": "2c693f7ba7aeeb7d86d8a2537cf5b124f9d4016b0ff2a49b66dc963b4dbd8550",
    "500/7/columns": "745f7d8223bfdb362a47804034779295f26bb08348bcc266d6e6c2d467483410",
    "500/7/heavy": "fce247deab7e72511c2bc8a51345fd88739d405e0b9dc3deb3fc87455e74a018",
    "500/7/heavy0/columns": "460559b11a88f56d6b551b010ffb1ba2ab98979979f492f2f888c8196723399c",
    "500/7/heavy0/heavy": "b583525a10bbe07461b5322f67de57a71586dbd17ea9bd5c4add00932c2f9d30",
    "500/7/heavy0/indexes": "303187a226fde2415fa5e81c110e0bcac1455228009db280c1585ffd90aedf98",
    "500/7/heavy0/items": "81dd7941548367c43068874e9f48214c6342e74d56d109cfa192f84990231be7",
    "500/7/heavy120/columns": "c1916786a8fd1d95ecdcc77e0f27832f796282516a6e547cb51897d7e63b6ccc",
    "500/7/heavy120/heavy": "90ede6d0146f7501500226e8747c1ecbaedf19c89ee78ce64d6f1b841b98d550",
    "500/7/heavy120/indexes": "8b097db02b918b2069074488cefc6d98251b00ce9bb7f99e491d61927e9d5450",
    "500/7/heavy120/items": "a9b765d9f2ad9b1690e23a0b5f7b0c6fe93224f3ec7f9930fa12676160a80e25",
    "500/7/indexes": "0f7bceb91d76aee344e51c7c65186f0964a4467e61d6ed91ca89594ab51fc230",
    "500/7/item0": "9b04dc36935bea099f296b71809660c126239362986b068ea9cce08dc6f1ebc1",
    "500/7/item1": "4bc7b129c9f5698be357e000897503c5a25a235ff3b0ab7c2e63043febc117c4",
    "500/7/item17": "fc4467bbb7be4ac02b7201c66d5b5074e827b0e5bcc8f0db69a70fc5f020b85e",
    "500/7/item499": "fd08eb08b605b10f0a3646148695be246aa901f1500fd24a4db3f71ed37461e2",
    "500/7/items": "02a5cb106a85db31bd7c23eda33ee63453cd3d7cb0ea689512d281e9f349feb3",
    "applicant": "d5cf3e09fbc3d165fe77af39d5d6ab7f2341948fda0cf156a1a5feb3a32bbe72",
    "list/None": "af73b6e47d0ef1d62f0c51f9b7afaeb4a8026489b10376b318266f8de4ce50c9",
    "list/aml": "c6805286983175397c83d4ca45dc056cbfbeae3a629831411253cdac90f5711d",
    "list/bytelimit": "386371c0d77dd1991263fdcbc9c1fa5f396df9848b6b51d7ffaea8093b4e0954",
    "list/data": "dd50aa37ac238d6ca66fb5a6f430c3eb174744cbbeda8f1a4e7529e014ffccaa",
    "list/date": "37fd423f8badf836f051484954108153fe4d740ca2667bd8496b7ef787852f1e",
    "list/index/both": "9614aeb7fb21aa1449b68ff2cb277b40b1b7d2724e01856f7e9cdc84712a727e",
    "list/index/heavy": "29e27a2de39865c94eb2e8001ac2732c39e98199da0e3ca642e524b59f8d69bc",
    "list/kyc": "a790afc193f4117402c8045aac5b79e6610967b5ab29e9df25a61e013187431a",
    "list/others": "ca737a51422862fc19a09d462738800a829d01cfc262dba8854cffacc50415d8",
    "list/scan/heavy": "9699ba76d4b763238e02b70e4907461b302a5b988064345aee6374af097876fd",
    "single/None": "361cd7a2d60975c3d1fccc598b80b8c8bc431cd881e253d0640fc163c7ff06fd",
    "single/aml": "59a4b06b0e524700f08293d08b78b8ee5bd9b5045ffaa6028fe051f39043707d",
    "single/data": "0ed2538aa1735175998e77c97b19a0fcb1610f2d76c3fd46f65f958d987c946f",
    "single/kyc": "c23a81267b83ee85bc30d7f4930d7417dfcbb6c4feb469a0c71037727cdb3160",
    "single/others": "892e30eb47e3b647cc3f775756f37945b37bdb6b39ebb86b812923000ec64904",
    "update/applicant": "d5cf3e09fbc3d165fe77af39d5d6ab7f2341948fda0cf156a1a5feb3a32bbe72",
    "update/get": "5250bc3fbe9f736f2eed91f5ba00772c813bb248aed53411e86506fcbe81ee1a",
    "update/list": "c88863eed62404288a15e668533d41f92f4c2b9751d718c92177437c3fb773ac",
    "update/single": "8e979728c00ff3ffc18b2c89aa37c067d89643626ae22c26cb77ef52ca104fb3",
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
    out[f"{name}/columns"] = sha(
        msgspec.json.encode([ds.ids, ds.created_ats, ds.emails, ds.userids])
    )
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


if __name__ == "__main__":
    pins = all_fingerprints()
    print("PINNED: dict[str, str] = {")
    for key in sorted(pins):
        print(f'    "{key}": "{pins[key]}",')
    print("}")
    sys.stdout.write("ITEM_17 = ")
    print(repr(msgspec.json.encode(Dataset.generate(500, 7).items[17])))
