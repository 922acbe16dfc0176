"""The clients compared, each written as its users would write it, doing the same work: list
every submission page by page (following ``nextpageKey``), or look submissions up by id.

- ``raw``: a raw socket that sends the requests and reads the bytes, no HTTP library and no
  decoding: the ceiling, to show that the server is not the bottleneck;
- ``floor``: aiohttp + msgspec Structs of the same fields as argos_async's models, written as
  a msgspec user would (lists, default Struct options), and no library logic at all: no
  retries, no read-ahead, no validation;
- ``aiohttp-json``: aiohttp + the standard ``json`` module, items as dicts;
- ``httpx-pydantic``: httpx + pydantic v2 models of the same fields;
- ``argos_async``: ``ArgosClient`` with its defaults.

Also runnable alone, to measure one peer's peak memory in a fresh process:
``python benchmarks/peers.py rss PEER URL ITEMS`` prints ``{"items": N, "max_rss_kb": K}``;
or one peer's lookups, timed and with the CPU time of that process alone (the page server's
excluded): ``python benchmarks/peers.py lookups PEER URL CONCURRENCY < ids`` (one id a line)
prints ``{"lookups": N, "found": F, "wall_s": W, "user_s": U, "sys_s": S, "gc_collections":
[G0, G1, G2]}``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
import msgspec
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from argos_async import ArgosClient

API_KEY = "benchmark-key"
PATH = "/v3/submission"

Stream = Callable[[str, int, int], Coroutine[Any, Any, int]]
"""(base url, items to list, page size) -> items seen."""


def _params(count: int, key: dict[str, str] | None) -> dict[str, str]:
    params = {"count": str(count)}
    if key is not None:
        params["nextpage_id"], params["nextpage_date"] = key["id"], key["created_at"]
    return params


# --- raw socket ---------------------------------------------------------------------------


async def raw(url: str, items: int, page_size: int) -> int:
    """Reads each page's bytes off one keep-alive socket into a reused buffer, blocking: no
    event loop, no HTTP library, no decoding. The page server's keys are p1, p2, ... so no
    JSON needs parsing to follow them."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    assert host is not None
    assert port is not None
    buffer = bytearray(4 * 1024 * 1024)
    view = memoryview(buffer)
    seen = 0
    with socket.create_connection((host, port)) as connection:
        for page in range(-(-items // page_size)):
            after = f"&nextpage_id=p{page}&nextpage_date=x" if page else ""
            connection.sendall(
                f"GET {PATH}?count={page_size}{after} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"x-api-key: {API_KEY}\r\n\r\n".encode()
            )
            received = 0
            while (end := buffer.find(b"\r\n\r\n", 0, received)) < 0:
                received += connection.recv_into(view[received:])
            head = bytes(buffer[:end]).lower()
            length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
            total = end + 4 + length
            if total > len(buffer):
                buffer.extend(bytes(total - len(buffer)))
                view = memoryview(buffer)
            while received < total:
                received += connection.recv_into(view[received:total])
            seen += min(page_size, items - page * page_size)
    return seen


# --- floor: aiohttp + msgspec -------------------------------------------------------------


# The floor's own schema: the same fields as argos_async's models, written as a user of
# msgspec would write them (wire names, lists, default Struct options).


class FData(msgspec.Struct):
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    age_group: str | None = None
    gender: str | None = None
    nationality: str | None = None
    date_of_birth: str | None = None
    ip_address: str | None = None
    idType: str | None = None
    idcard_issuingCountry: str | None = None
    idcard_issueDate: str | None = None
    idcard_expireDate: str | None = None
    identityNumber: str | None = None
    documentNumber: str | None = None
    address_city: str | None = None
    address_country: str | None = None
    address_state: str | None = None
    address_street: str | None = None
    address_street2: str | None = None
    address_zipcode: str | None = None
    address_globalCode: str | None = None
    address_compoundCode: str | None = None
    address_formatted: str | None = None
    address_input: str | None = None
    address_detail: str | None = None
    cf1: str | None = None
    cf2: str | None = None
    cf3: str | None = None


class FAttempt(msgspec.Struct):
    attemptCnt: int | None = None
    idBarcodeResult: str | None = None
    ocrResult: str | None = None
    verificationResult: str | None = None
    verification: dict[str, Any] | None = None
    verificationParams: dict[str, Any] | None = None
    errorCode: str | None = None
    errorMsg: str | None = None
    step1Time1st: datetime | None = None
    step1Time2nd: datetime | None = None
    step1Time3rd: datetime | None = None
    step2Time1st: datetime | None = None
    step2Time2nd: datetime | None = None
    step2Time3rd: datetime | None = None
    retryMsg: list[str] = []
    retryCode: list[str] = []
    faceSimilarityScore: float | None = None
    livenessScore: float | None = None
    selfieImage: str | None = None


class FKyc(msgspec.Struct):
    result: str | None = None
    comment: list[str] = []
    commentCode: list[str] = []
    attempts: list[FAttempt] = []


class FAmlMatch(msgspec.Struct):
    risk_level: str | None = None
    resource_id: str | None = None
    score: float | None = None


class FAml(msgspec.Struct):
    risk_level_summary: str | None = None
    currentstatus: str | None = None
    matches: list[FAmlMatch] = []


class FBank(msgspec.Struct):
    result: str | None = None
    type: str | None = None
    bank_code: str | None = None
    account_number: str | None = None
    retry_count: int | None = None


class FImage(msgspec.Struct):
    idImage: str | None = None
    idBackImage: str | None = None
    selfieImage: str | None = None
    addressImage: str | None = None


class FMemo(msgspec.Struct):
    text: str | None = None
    updated_at: datetime | None = None


class FSubmission(msgspec.Struct):
    submission_id: str
    email: str | None = None
    userid: str | None = None
    applicant_id: str | None = None
    duplicated_information: str | None = None
    reviewer: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    kyc_result_at: datetime | None = None
    pending_at: datetime | None = None
    data: FData | None = None
    kyc: FKyc | None = None
    aml: FAml | None = None
    bank_verification: FBank | None = None
    recognition_score: float | str | None = None
    argos_score: float | str | None = None
    image: FImage | None = None
    memo: FMemo | None = None
    project_options: dict[str, Any] | None = None
    ocr: dict[str, Any] | None = None
    OCR_raw: dict[str, Any] | None = None
    verification: dict[str, Any] | None = None


class FKey(msgspec.Struct):
    id: str
    created_at: str


class FPage(msgspec.Struct):
    Items: list[FSubmission]
    nextpageKey: FKey | None = None


async def floor(url: str, items: int, page_size: int) -> int:
    decoder = msgspec.json.Decoder(FPage)
    seen = 0
    async with aiohttp.ClientSession(url, headers={"x-api-key": API_KEY}) as session:
        key: dict[str, str] | None = None
        while True:
            async with session.get(PATH, params=_params(page_size, key)) as response:
                page = decoder.decode(await response.read())
            for _item in page.Items:  # every peer hands each item to its caller
                seen += 1
            if page.nextpageKey is None:
                return seen
            key = {"id": page.nextpageKey.id, "created_at": page.nextpageKey.created_at}


# --- aiohttp + json -----------------------------------------------------------------------


async def aiohttp_json(url: str, items: int, page_size: int) -> int:
    seen = 0
    async with aiohttp.ClientSession(url, headers={"x-api-key": API_KEY}) as session:
        key: dict[str, str] | None = None
        while True:
            async with session.get(PATH, params=_params(page_size, key)) as response:
                page = json.loads(await response.read())
            for _item in page["Items"]:
                seen += 1
            key = page.get("nextpageKey")
            if key is None:
                return seen


# --- httpx + pydantic ---------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Data(_Model):
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    gender: str | None = None
    nationality: str | None = None
    date_of_birth: str | None = None
    id_type: str | None = Field(default=None, alias="idType")


class _Kyc(_Model):
    result: str | None = None
    comment: list[str] = []
    comment_code: list[str] = Field(default=[], alias="commentCode")


class _AmlMatch(_Model):
    risk_level: str | None = None
    resource_id: str | None = None
    score: float | None = None


class _Aml(_Model):
    risk_level_summary: str | None = None
    current_status: str | None = Field(default=None, alias="currentstatus")
    matches: list[_AmlMatch] = []


class _Image(_Model):
    id_image: str | None = Field(default=None, alias="idImage")
    id_back_image: str | None = Field(default=None, alias="idBackImage")
    selfie_image: str | None = Field(default=None, alias="selfieImage")
    address_image: str | None = Field(default=None, alias="addressImage")


class _Memo(_Model):
    text: str | None = None
    updated_at: datetime | None = None


class _Submission(_Model):
    submission_id: str
    email: str | None = None
    userid: str | None = None
    applicant_id: str | None = None
    duplicated_information: str | None = None
    reviewer: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    kyc_result_at: datetime | None = None
    pending_at: datetime | None = None
    data: _Data | None = None
    kyc: _Kyc | None = None
    aml: _Aml | None = None
    argos_score: float | str | None = None
    recognition_score: float | str | None = None
    image: _Image | None = None
    memo: _Memo | None = None


class _Key(_Model):
    id: str
    created_at: str


class _Page(_Model):
    items: list[_Submission] = Field(alias="Items")
    next_key: _Key | None = Field(default=None, alias="nextpageKey")


_pages = TypeAdapter(_Page)


async def httpx_pydantic(url: str, items: int, page_size: int) -> int:
    seen = 0
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": API_KEY}) as client:
        key: dict[str, str] | None = None
        while True:
            response = await client.get(PATH, params=_params(page_size, key))
            page = _pages.validate_json(response.content)
            for _item in page.items:
                seen += 1
            if page.next_key is None:
                return seen
            key = {"id": page.next_key.id, "created_at": page.next_key.created_at}


# --- argos_async --------------------------------------------------------------------------


async def argos(url: str, items: int, page_size: int) -> int:
    seen = 0
    async with ArgosClient(api_key=API_KEY, base_url=url) as client:
        async for _sub in client.iter_submissions(page_size=page_size):
            seen += 1
    return seen


STREAMS: dict[str, Stream] = {
    "raw": raw,
    "floor": floor,
    "aiohttp-json": aiohttp_json,
    "httpx-pydantic": httpx_pydantic,
    "argos_async": argos,
}


# --- lookups (fan-out) --------------------------------------------------------------------


class _Lookup(msgspec.Struct):
    Items: list[FSubmission]


async def floor_lookups(url: str, ids: list[str], concurrency: int) -> int:
    """A semaphore around every lookup and ``as_completed``, as commonly written."""
    decoder = msgspec.json.Decoder(_Lookup)
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def one(submission_id: str) -> int:
            async with (
                gate,
                session.get(
                    PATH, params={"submission_id": submission_id}, headers={"x-api-key": API_KEY}
                ) as response,
            ):
                return len(decoder.decode(await response.read()).Items)

        found = 0
        for done in asyncio.as_completed([one(i) for i in ids]):
            found += await done
        return found


async def argos_lookups(url: str, ids: list[str], concurrency: int) -> int:
    async with ArgosClient(api_key=API_KEY, base_url=url) as client:
        found = 0
        async for result in client.batch_get_submissions(ids, concurrency=concurrency):
            found += result.ok
        return found


Lookups = Callable[[str, list[str], int], Coroutine[Any, Any, int]]
"""(base url, ids, concurrency) -> lookups that found their submission."""

LOOKUPS: dict[str, Lookups] = {"floor": floor_lookups, "argos_async": argos_lookups}


def measure_lookups(peer: str, url: str, ids: list[str], concurrency: int) -> dict[str, Any]:
    """Runs one peer's lookups in this process: wall seconds, and the user and system CPU
    seconds this process spent (all its threads) from the event loop's start to its end."""
    run = LOOKUPS[peer]
    gc.collect()  # the setup's garbage is not the run's
    collections = [generation["collections"] for generation in gc.get_stats()]
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    found = asyncio.run(run(url, ids, concurrency))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "lookups": len(ids),
        "found": found,
        "wall_s": wall,
        "user_s": after.ru_utime - before.ru_utime,
        "sys_s": after.ru_stime - before.ru_stime,
        # The cyclic collector's runs per generation: part of the CPU, and what shapes it.
        "gc_collections": [
            generation["collections"] - earlier
            for generation, earlier in zip(gc.get_stats(), collections, strict=True)
        ],
    }


def peak_rss_kb() -> int:
    """This process's peak resident set, in KiB.

    Linux keeps ``ru_maxrss`` across fork and exec, so a child started by a big parent reports
    the parent's peak; ``VmHWM`` belongs to the process's own address space, made anew at exec.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> None:
    if argv[:1] == ["lookups"]:
        if len(argv) != 4 or argv[1] not in LOOKUPS:
            raise SystemExit(f"usage: peers.py lookups {'|'.join(LOOKUPS)} URL CONCURRENCY < ids")
        ids = [line.strip() for line in sys.stdin if line.strip()]
        print(json.dumps(measure_lookups(argv[1], argv[2], ids, int(argv[3]))))
        return
    if len(argv) != 4 or argv[0] != "rss" or (argv[1] not in STREAMS and argv[1] != "idle"):
        raise SystemExit(
            "usage: peers.py rss PEER|idle URL ITEMS, or peers.py lookups PEER URL CONCURRENCY"
        )
    peer, url, items = argv[1], argv[2], int(argv[3])
    # "idle" imports every peer's libraries and streams nothing: the baseline under the rest.
    seen = items if peer == "idle" else asyncio.run(STREAMS[peer](url, items, 2000))
    result: dict[str, Any] = {"items": seen, "max_rss_kb": peak_rss_kb()}
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
