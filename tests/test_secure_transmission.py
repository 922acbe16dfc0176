"""Secure transmission end to end: a client with ``secure_transmission=`` against an emulator
speaking the encrypted mode (its own implementation, ``argos_async.testing._secure``), over
loopback HTTP.

Every public path goes through the one seam (``ArgosClient._lookup``), so each is run here:
lookups, listings with cursors, batches, a backfill with its checkpoint, the export; then what
fails (a wrong key, damaged answers, the mode on one side only), what is retried and what is
not, and where the keys must never show up.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support import FAST, REPO, client_for, serve_process

from argos_async import (
    ArgosClient,
    BadRequestError,
    DecryptionError,
    NotFoundError,
    RequestEvent,
    ResponseEvent,
    SecureTransmission,
)
from argos_async import _cli as cli
from argos_async._protocol.secure import SecureChannel
from argos_async.otel import instrument
from argos_async.testing import ArgosEmulator, Dataset, FaultPlan, Status, TruncateBody
from argos_async.testing._faults import Fault, FaultContext
from argos_async.testing._secure import SecureWire

pytestmark = pytest.mark.anyio

API_KEY = "emu-secure-test-key"
SECRET = "project-secret-5e1f9a"
PATH = "/v3/submission"
QUARTER = (date(2025, 1, 1), date(2025, 3, 31))


def secure_client(emu: ArgosEmulator, **options: object) -> ArgosClient:
    return client_for(emu, FAST, **{"secure_transmission": True, **options})


def assert_every_request_sent_only_data(emu: ArgosEmulator) -> None:
    assert emu.requests
    for recorded in emu.requests:
        assert set(recorded.query) == {"data"}, recorded.query
        assert recorded.decrypted_query is not None


@dataclass(frozen=True, repr=False)
class Body(Fault):
    """Answers with this body and status instead of the emulator (sealed or not, as given)."""

    body: bytes = b""
    status: int = 200

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        ctx.mark(self)
        return web.Response(body=self.body, status=self.status, content_type="application/json")


# ---------------------------------------------------------------------------------------------
# Every path works, and answers what the plain API answers.


async def test_lookups_answer_what_a_plain_emulator_answers() -> None:
    async with (
        ArgosEmulator(200, seed=3, secure_transmission=True) as emu,
        ArgosEmulator(200, seed=3) as plain,
        secure_client(emu) as argos,
        client_for(plain, FAST) as reference,
    ):
        sid = emu.dataset.ids[17]
        assert await argos.get_submission(sid) == await reference.get_submission(sid)
        kyc = await argos.get_submission(sid, request_type="kyc")
        assert kyc == await reference.get_submission(sid, request_type="kyc")
        raw = await argos.get_raw_submission(sid)
        assert bytes(raw) == bytes(await reference.get_raw_submission(sid))
        # A view shares the channel with its client.
        view = argos.with_options(max_retries=0, deadline=10.0)
        assert (await view.get_submission(sid)).submission_id == sid
        with pytest.raises(NotFoundError):
            await argos.get_submission("no-such-submission")
        applicant = next(iter(emu.dataset.shared_applicant_ids))
        assert await argos.get_applicant_submissions(
            applicant
        ) == await reference.get_applicant_submissions(applicant)

    assert_every_request_sent_only_data(emu)
    assert [r.decrypted_query for r in emu.requests] == [
        {"submission_id": sid},
        {"submission_id": sid, "request_type": "kyc"},
        {"submission_id": sid},
        {"submission_id": sid},
        {"submission_id": "no-such-submission"},
        {"applicant_id": applicant},
    ]
    assert [r.status for r in emu.responses] == [200] * 6
    assert argos.stats.retries == 0


async def test_a_listing_pages_and_resumes_from_a_cursor() -> None:
    async with (
        ArgosEmulator(150, seed=4, secure_transmission=True) as emu,
        secure_client(emu) as argos,
    ):
        first: list[str] = []
        cursor = None
        async with argos.iter_pages(page_size=9) as pages:
            async for page in pages:
                first.extend(s.submission_id for s in page.items)
                cursor = page.cursor
                if len(first) >= 36:
                    break
        assert cursor is not None
        requests_before = len(emu.requests)
        rest = [s.submission_id async for s in argos.iter_submissions(page_size=9, cursor=cursor)]
    assert first + rest == emu.dataset.expected_ids()
    assert_every_request_sent_only_data(emu)
    resumed = emu.requests[requests_before].decrypted_query
    assert resumed is not None
    assert {"nextpage_id", "nextpage_date"} <= set(resumed)
    assert {r.decrypted_query["count"] for r in emu.requests if r.decrypted_query} == {"9"}


async def test_batches_answer_what_a_plain_emulator_answers() -> None:
    async with (
        ArgosEmulator(400, seed=5, secure_transmission=True) as emu,
        ArgosEmulator(400, seed=5) as plain,
        secure_client(emu) as argos,
        client_for(plain, FAST) as reference,
    ):
        ids = [*emu.dataset.ids[::20], "no-such-submission"]
        got = {r.key: r async for r in argos.batch_get_submissions(ids, concurrency=4)}
        expected = {r.key: r async for r in reference.batch_get_submissions(ids, concurrency=4)}
        assert {k: r.value for k, r in got.items()} == {k: r.value for k, r in expected.items()}
        assert isinstance(got["no-such-submission"].error, NotFoundError)

        email = emu.dataset.heavy_email
        by_email = [r.unwrap() async for r in argos.batch_get_by_email([email], page_size=7)]
        assert by_email == [r.unwrap() async for r in reference.batch_get_by_email([email])]
        assert len(by_email[0]) > 7  # it took several pages

        applicants = list(emu.dataset.shared_applicant_ids[:4])
        mine = {r.key: r.unwrap() async for r in argos.batch_get_applicants(applicants)}
        theirs = {r.key: r.unwrap() async for r in reference.batch_get_applicants(applicants)}
        assert mine == theirs
        assert all(mine.values())
    assert_every_request_sent_only_data(emu)


async def test_a_backfill_resumes_from_its_checkpoint_and_delivers_each_item_once(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "backfill.ckpt"
    async with (
        ArgosEmulator(1_500, seed=6, secure_transmission=True) as emu,
        secure_client(emu) as argos,
    ):
        first: list[str] = []
        backfill = argos.backfill(*QUARTER, shards=4, page_size=10, checkpoint=checkpoint)
        async with aclosing(backfill.pages()) as pages:
            async for page in pages:
                if backfill.stats.pages == 25:
                    break
                first.extend(s.submission_id for s in page.items)
        saved = json.loads(checkpoint.read_bytes())
        emu.reset_stats()
        again = argos.backfill(*QUARTER, shards=4, page_size=10, checkpoint=checkpoint)
        rest: list[str] = []
        async with aclosing(again.raw_pages()) as raw_pages:
            async for raw in raw_pages:
                rest.extend(json.loads(bytes(item))["submission_id"] for item in raw.items)
        expected = emu.dataset.expected_ids(start_date=QUARTER[0], end_date=QUARTER[1])
    assert sorted(first + rest) == sorted(expected)
    assert len(first + rest) == len(expected)
    assert_every_request_sent_only_data(emu)
    asked = {r.decrypted_query["start_date"] for r in emu.requests if r.decrypted_query}
    assert not asked & set(saved["done"])  # finished windows were not asked for again


async def test_the_export_demo_runs_encrypted_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARGOS_")}
    env.update(PYTHONPATH=str(REPO), ARGOS_SECRET_KEY=SECRET)
    with anyio.fail_after(120):
        done = await anyio.run_process(
            [
                sys.executable, "-m", "argos_async", "export", "--demo", "--secure-transmission",
                "--demo-submissions", "400", "--out", str(out), "--no-progress",
            ],
            env=env,
            check=False,
        )  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    ids = [json.loads(line)["submission_id"] for line in out.read_bytes().splitlines()]
    assert sorted(ids) == sorted(Dataset.generate(400, 7).ids)
    assert "Exported 400 submissions" in stderr
    assert SECRET not in stderr + done.stdout.decode()


def test_the_export_without_cryptography_is_a_usage_error_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)  # as if it were not installed
    out = tmp_path / "out.jsonl"
    with pytest.raises(SystemExit) as exited:
        cli.main(["export", "--demo", "--secure-transmission", "--out", str(out)])
    assert exited.value.code == 2
    assert "pip install -e '.[secure]'" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.argos_emulator(submissions=60, secure_transmission=SECRET)
@pytest.mark.argos_client(secure_transmission=SecureTransmission(secret_key=SECRET))
async def test_the_pytest_fixtures_take_a_secret_key(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    ids = [s.submission_id async for s in argos_client.iter_submissions(page_size=25)]
    assert ids == argos_emulator.dataset.expected_ids()
    assert argos_emulator.secure_transmission == SECRET
    assert_every_request_sent_only_data(argos_emulator)


# ---------------------------------------------------------------------------------------------
# The mode on one side only, a wrong key, damaged answers: one clear error, one request.


async def test_a_secret_key_replaces_the_api_key() -> None:
    async with ArgosEmulator(50, seed=1, secure_transmission=SECRET) as emu:
        sid = emu.dataset.ids[0]
        async with secure_client(emu, secure_transmission=SecureTransmission(SECRET)) as argos:
            assert (await argos.get_submission(sid)).submission_id == sid
        emu.reset_stats()
        # Keyed by the API key instead: the API cannot read the request.
        async with secure_client(emu) as wrong:
            with pytest.raises(BadRequestError) as caught:
                await wrong.get_submission(sid)
    assert caught.value.attempts == 1
    assert len(emu.requests) == 1
    assert emu.requests[0].decrypted_query is None


async def test_a_plain_client_is_refused_by_a_project_that_encrypts() -> None:
    async with (
        ArgosEmulator(50, seed=1, secure_transmission=True) as emu,
        client_for(emu, FAST) as argos,
    ):
        with pytest.raises(BadRequestError, match="Invalid Query String parameters") as caught:
            await argos.get_submission(emu.dataset.ids[0])
        with pytest.raises(BadRequestError):
            async for _ in argos.iter_submissions():
                pass
    assert caught.value.status == 400
    assert caught.value.attempts == 1
    assert len(emu.requests) == 2  # not retried
    assert [r.decrypted_query for r in emu.requests] == [None, None]


async def test_an_encrypting_client_says_so_when_the_project_does_not() -> None:
    async with ArgosEmulator(50, seed=1) as emu, secure_client(emu) as argos:
        with pytest.raises(DecryptionError, match="is secure transmission switched on") as caught:
            await argos.get_submission(emu.dataset.ids[0])
    assert caught.value.attempts == 1
    assert len(emu.requests) == 1


def damaged_answers() -> dict[str, bytes]:
    ours = SecureWire(API_KEY)
    partial = json.loads(ours.seal(b'{"Items":[]}'))["data"][:-8] + "AAAAAA=="
    return {
        "sealed with another key": SecureWire("another-key").seal(b'{"Items":[]}'),
        "not base64": b'{"data":"%%% not base64 %%%"}',
        "a block short": json.dumps({"data": partial}).encode(),
        "a plaintext that is no JSON": ours.seal(b"Items: none"),
        "a plaintext that is a JSON string": ours.seal(b'"Items"'),
    }


@pytest.mark.parametrize("body", list(damaged_answers().values()), ids=list(damaged_answers()))
async def test_an_answer_that_does_not_decrypt_fails_once_and_is_never_retried(
    body: bytes,
) -> None:
    plan = FaultPlan([Body(body=body, path=PATH)])
    async with (
        ArgosEmulator(50, seed=1, api_key=API_KEY, secure_transmission=True, faults=plan) as emu,
        secure_client(emu, max_retries=5) as argos,
    ):
        with pytest.raises(DecryptionError) as lookup:
            await argos.get_submission(emu.dataset.ids[0])
        assert len(emu.requests) == 1
        with pytest.raises(DecryptionError) as listing:
            async for _ in argos.iter_submissions():
                pass
        assert len(emu.requests) == 2
        assert argos.stats.retries == 0
    for error in (lookup.value, listing.value):
        assert error.attempts == 1
        assert API_KEY not in str(error)
        assert "Items" not in str(error)


async def test_a_sealed_body_cut_off_in_transit_and_a_503_are_retried() -> None:
    plan = FaultPlan([TruncateBody(at=2), Status(503, at=4)])
    async with (
        ArgosEmulator(90, seed=2, secure_transmission=True, faults=plan) as emu,
        secure_client(emu) as argos,
    ):
        ids = [s.submission_id async for s in argos.iter_submissions(page_size=10)]
    assert ids == emu.dataset.expected_ids()
    assert [r.fault for r in emu.responses].count("TruncateBody") == 1
    assert 503 in [r.status for r in emu.responses]
    assert argos.stats.retries == 2
    assert_every_request_sent_only_data(emu)


async def test_a_page_too_large_once_sealed_is_asked_for_again_with_half_the_count() -> None:
    async with (
        ArgosEmulator(300, seed=2, secure_transmission=True, response_byte_limit=60_000) as emu,
        secure_client(emu) as argos,
    ):
        ids = [s.submission_id async for s in argos.iter_submissions(page_size=200)]
    assert ids == emu.dataset.expected_ids()
    assert 413 in [r.status for r in emu.responses]
    counts = [int(r.decrypted_query["count"]) for r in emu.requests if r.decrypted_query]
    assert counts[0] == 200
    assert min(counts) < 200


async def test_a_sealed_error_body_is_read_decrypted_and_its_email_masked() -> None:
    email = "ana.silva@example.com"
    body = SecureWire(API_KEY).seal(b'{"message":"no such user ana.silva@example.com"}')
    plan = FaultPlan([Body(body=body, status=400)])
    async with (
        ArgosEmulator(20, seed=1, api_key=API_KEY, secure_transmission=True, faults=plan) as emu,
        secure_client(emu) as argos,
    ):
        with pytest.raises(BadRequestError) as caught:
            async for _ in argos.iter_submissions(email=email):
                pass
    error = caught.value
    assert error.message == "no such user a***@example.com"
    assert email not in error.body
    assert "a***@example.com" in error.body
    assert error.attempts == 1


# ---------------------------------------------------------------------------------------------
# Where the keys and the parameters must never show up.


async def test_no_key_and_no_ciphertext_in_urls_logs_hooks_or_reprs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="argos_async")
    events: list[RequestEvent | ResponseEvent] = []
    setting = SecureTransmission(secret_key=SECRET)
    hooks = {"request": [events.append], "response": [events.append]}
    async with ArgosEmulator(300, seed=8, secure_transmission=SECRET) as emu:
        email = emu.dataset.heavy_email
        async with secure_client(emu, secure_transmission=setting, event_hooks=hooks) as argos:
            await argos.get_submission(emu.dataset.ids[3])
            listed = [s async for s in argos.iter_submissions(email=email, page_size=5)]
            shown = [repr(argos), repr(setting), repr(emu), str(argos.options)]
    assert len(listed) > 5
    ciphertexts = [r.query["data"] for r in emu.requests]
    for recorded in emu.requests:
        url_parts = [recorded.path, *recorded.query, *recorded.query.values()]
        for secret in (SECRET, emu.api_key, email):
            assert not any(secret in part for part in url_parts)
        assert recorded.headers["x-api-key"] == emu.api_key
    texts = [caplog.text, *shown, *(repr(e) for e in events)]
    for text in texts:
        for leak in (SECRET, emu.api_key, email, *ciphertexts):
            assert leak not in text
    # What hooks and logs show is what the call asked for, masked as without encryption.
    params = [dict(e.params) for e in events if isinstance(e, RequestEvent)]
    assert params[0] == {"submission_id": emu.dataset.ids[3]}
    assert all("data" not in p for p in params)
    assert {p.get("email") for p in params[1:]} == {email[0] + "***@" + email.split("@")[1]}
    assert "'submission_id': '" + emu.dataset.ids[3] + "'" in caplog.text


async def test_spans_show_the_masked_parameters_not_the_ciphertext() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with (
        ArgosEmulator(200, seed=8, secure_transmission=True) as emu,
        secure_client(emu) as argos,
    ):
        email = emu.dataset.heavy_email
        instrument(argos, tracer_provider=provider)
        assert [s async for s in argos.iter_submissions(email=email, page_size=50)]
    ciphertexts = [r.query["data"] for r in emu.requests]
    attempts = [s for s in exporter.get_finished_spans() if s.name == "GET /v3/submission"]
    assert len(attempts) == len(emu.requests)
    for span in exporter.get_finished_spans():
        recorded = " ".join([span.name, *(str(v) for v in (span.attributes or {}).values())])
        for leak in (emu.api_key, email, *ciphertexts):
            assert leak not in recorded
    for span in attempts:
        url = str((span.attributes or {})["url.full"])
        assert "email=" + email[0] + "***" in url
        assert "data=" not in url


# ---------------------------------------------------------------------------------------------
# The emulator's side: its own implementation, its refusals, its command line.


def test_the_emulators_cipher_and_the_clients_agree() -> None:
    wire, channel = SecureWire(SECRET), SecureChannel(SECRET)
    body = '{"Items":[{"submission_id":"s1","data":{"name":"홍길동"}}]}'.encode()
    assert channel.open_body(wire.seal(body)) == body
    params = {"email": "홍길동@example.com", "count": "50"}
    assert wire.open_query(channel.seal_params(params)) == params
    assert wire.encrypt(body) == channel.encrypt(body)
    # The emulator's helper for webhooks seals with its key, or leaves a body alone.
    assert ArgosEmulator(5, secure_transmission=SECRET).encrypt_body(body) == wire.seal(body)
    assert ArgosEmulator(5).encrypt_body(body) == body


@pytest.mark.parametrize("setting", ["", 5, b"key"])
def test_the_emulator_refuses_a_switch_it_cannot_key(setting: object) -> None:
    with pytest.raises(ValueError, match="secure_transmission must be"):
        ArgosEmulator(5, secure_transmission=setting)  # type: ignore[arg-type]


async def test_the_emulator_refuses_requests_that_are_not_only_a_data_it_can_open() -> None:
    async with (
        ArgosEmulator(20, seed=1, api_key=API_KEY, secure_transmission=True) as emu,
        aiohttp.ClientSession() as http,
    ):
        data = SecureChannel(API_KEY).seal_params({"count": "5"})["data"]
        other = SecureChannel("another-key").seal_params({"count": "5"})["data"]
        cases = [
            ({"x-api-key": API_KEY}, {"data": data}, 200),
            ({"x-api-key": API_KEY}, {"data": data, "count": "5"}, 400),
            ({"x-api-key": API_KEY}, {"count": "5"}, 400),
            ({"x-api-key": API_KEY}, {"data": other}, 400),
            ({"x-api-key": API_KEY}, {"data": "not base64!"}, 400),
            ({"x-api-key": "wrong"}, {"count": "5"}, 403),  # the key is checked first
        ]
        statuses = []
        for headers, query, _ in cases:
            async with http.get(emu.url + PATH, params=query, headers=headers) as response:
                statuses.append(response.status)
                body = await response.read()
                if response.status == 200:
                    assert set(json.loads(body)) == {"data"}
                else:
                    assert b"data" not in body  # error bodies stay plain
    assert statuses == [status for _, _, status in cases]
    assert [r.decrypted_query for r in emu.requests] == [{"count": "5"}, *[None] * 5]


@pytest.mark.parametrize("by_file", [False, True])
def test_serve_speaks_the_encrypted_mode(tmp_path: Path, by_file: bool) -> None:
    key_file = tmp_path / "secret"
    key_file.write_text(SECRET + "\n")
    flags = ("--secret-key-file", str(key_file)) if by_file else ("--secure-transmission",)
    with serve_process("--submissions", "40", "--api-key", "cli-key", *flags) as (_, line):
        source = "the secret key of --secret-key-file" if by_file else "the api key"
        assert line.endswith(f", secure transmission: {source})\n"), line
        assert SECRET not in line
        url = line.split(" listening on ")[1].split(" ")[0]
        setting = SecureTransmission(SECRET) if by_file else True

        async def listing() -> list[str]:
            async with ArgosClient(
                api_key="cli-key", base_url=url, secure_transmission=setting
            ) as argos:
                return [s.submission_id async for s in argos.iter_submissions()]

        assert sorted(anyio.run(listing)) == sorted(Dataset.generate(40, 7).ids)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--secure-transmission",), "--secure-transmission needs the 'cryptography' package"),
        (("--secret-key-file", "KEYFILE"), "--secret-key-file needs the 'cryptography' package"),
    ],
)
def test_serve_without_cryptography_is_a_usage_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: tuple[str, ...],
    message: str,
) -> None:
    from argos_async.testing.__main__ import main as serve_main

    key_file = tmp_path / "secret"
    key_file.write_text(SECRET)
    monkeypatch.setitem(sys.modules, "cryptography", None)  # as if it were not installed
    with pytest.raises(SystemExit) as stopped:
        serve_main(["serve", *(str(key_file) if f == "KEYFILE" else f for f in flags)])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert SECRET not in err


def test_serve_refuses_a_secret_key_file_that_is_not_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from argos_async.testing.__main__ import main as serve_main

    key_file = tmp_path / "secret"
    key_file.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(SystemExit) as stopped:
        serve_main(["serve", "--secret-key-file", str(key_file)])
    assert stopped.value.code == 2
    assert "--secret-key-file: the file is not UTF-8 text" in capsys.readouterr().err
