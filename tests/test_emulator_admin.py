"""The emulator's admin endpoint and ``delete``: changing what a running emulator serves, from
the test's process or from another one (``EmulatorAdmin`` over HTTP)."""

from __future__ import annotations

import asyncio
import functools
import re
from datetime import date, datetime, timezone
from typing import Any

import anyio.to_thread
import pytest
from support import client_for, serve_process

from argos_async import ArgosClient, NotFoundError
from argos_async.testing import ArgosEmulator, EmulatorAdmin

pytestmark = pytest.mark.anyio


async def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """A blocking call (urllib) off the loop the emulator answers on."""
    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))


def _open_id(emu: ArgosEmulator, result: str = "pending") -> str:
    sid: str = next(
        i["submission_id"]
        for i in emu.dataset.items
        if (i.get("kyc") or {}).get("result") == result and i.get("applicant_id") is None
    )
    return sid


async def test_an_update_over_http_is_what_the_api_serves_next() -> None:
    async with ArgosEmulator(100, seed=3) as emu, client_for(emu) as argos:
        admin = EmulatorAdmin(emu.url, emu.api_key)
        sid = _open_id(emu)
        at = datetime(2025, 12, 31, 8, 30, tzinfo=timezone.utc)
        item = await _call(admin.update, sid, kyc={"result": "rejected"}, updated_at=at)
        assert item == emu.get(sid)
        assert item["kyc"]["result"] == "rejected"
        assert item["kyc"]["commentCode"] == ["other"]
        assert item["updated_at"] == "2025-12-31T08:30:00.000Z"
        assert (await argos.get_submission(sid)).kyc.result == "rejected"  # type: ignore[union-attr]
        assert await _call(admin.get, sid) == emu.get(sid)
        # Admin requests are not the API's: not recorded, so counts and fault plans hold.
        assert [r.query.get("submission_id") for r in emu.requests] == [sid]


async def test_a_deleted_submission_is_gone_from_every_answer() -> None:
    async with ArgosEmulator(200, seed=3) as emu, client_for(emu) as argos:
        shared = emu.dataset.shared_applicant_ids[0]
        victim = emu.dataset.for_applicant(shared)[0]["submission_id"]
        before = [s.submission_id async for s in argos.iter_submissions()]
        await _call(EmulatorAdmin(emu.url, emu.api_key).delete, victim)
        with pytest.raises(NotFoundError):
            await argos.get_submission(victim)
        after = [s.submission_id async for s in argos.iter_submissions(page_size=7)]
        applicants = await argos.get_applicant_submissions(shared)
        assert emu.get(victim) is None
        with pytest.raises(KeyError):
            emu.update(victim, memo=None)
        with pytest.raises(KeyError):
            emu.delete(victim)
    assert after == [sid for sid in before if sid != victim]
    assert victim not in {a.submission_id for a in applicants}
    assert applicants  # the others of that applicant are still there


async def test_the_admin_endpoint_refuses_what_update_refuses() -> None:
    async with ArgosEmulator(50, seed=3) as emu:
        admin = EmulatorAdmin(emu.url, emu.api_key)
        sid = emu.dataset.ids[0]
        with pytest.raises(ValueError, match="email"):
            await _call(admin.update, sid, email="x@example.com")
        with pytest.raises(KeyError):
            await _call(admin.update, "no-such-id", memo=None)
        with pytest.raises(KeyError):
            await _call(admin.delete, "no-such-id")
        assert await _call(admin.get, "no-such-id") is None
        with pytest.raises(RuntimeError, match="403"):
            await _call(EmulatorAdmin(emu.url, "wrong-key").delete, sid)
        assert emu.get(sid) is not None
        assert "wrong-key" not in repr(EmulatorAdmin(emu.url, "wrong-key"))


def test_serve_takes_changes_from_another_process() -> None:
    with serve_process("--submissions", "300", "--api-key", "admin-key") as (_, line):
        match = re.search(r"listening on (\S+)", line)
        assert match is not None
        url = match.group(1)
        admin = EmulatorAdmin(url, "admin-key")
        sid = next(
            i["submission_id"]
            for i in ArgosEmulator(300).dataset.items
            if (i.get("kyc") or {}).get("result") == "incomplete"
        )
        admin.update(sid, kyc={"result": "rejected"})

        async def look() -> str | None:
            async with ArgosClient(api_key="admin-key", base_url=url) as argos:
                kyc = (await argos.get_submission(sid)).kyc
                return None if kyc is None else kyc.result

        assert asyncio.run(look()) == "rejected"
        assert (admin.get(sid) or {})["kyc"]["commentCode"] == ["timeout"]


async def test_created_submissions_are_served_first_and_page_across_the_data_set() -> None:
    async with ArgosEmulator(120, seed=4) as emu, client_for(emu) as argos:
        made = [emu.create(email="same@example.com") for _ in range(3)]
        ids = [m["submission_id"] for m in made]
        assert [m["created_at"] for m in made] == [
            "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z", "2026-01-01T00:00:02.000Z",
        ]  # fmt: skip
        listed = [s.submission_id async for s in argos.iter_submissions(page_size=2)]
        assert listed == ids[::-1] + emu.dataset.expected_ids()
        by_email = [s.submission_id async for s in argos.iter_submissions(email=made[0]["email"])]
        assert by_email == ids[::-1]
        later = [s.submission_id async for s in argos.iter_submissions(start_date="2026-01-01")]
        assert later == ids[::-1]
        to_the_end = argos.iter_submissions(start_date="2026-01-01", end_date=date.max)
        assert [s.submission_id async for s in to_the_end] == ids[::-1]
        earlier = [s.submission_id async for s in argos.iter_submissions(end_date="2025-12-31")]
        assert earlier == emu.dataset.expected_ids()
        assert (await argos.get_submission(ids[0])).kyc.result == "incomplete"  # type: ignore[union-attr]
        emu.update(ids[1], kyc={"result": "pending"})
        assert (await argos.get_submission(ids[1])).kyc.result == "pending"  # type: ignore[union-attr]

        with pytest.raises(ValueError, match="window"):
            emu.create(created_at="2025-06-01T00:00:00.000Z")
        with pytest.raises(ValueError, match="incomplete"):
            emu.create(kyc={"result": "approved"})
        with pytest.raises(ValueError, match="in use"):
            emu.create(submission_id=ids[0])
    # Deterministic: the same emulator arguments make the same ids.
    async with ArgosEmulator(120, seed=4) as again:
        assert [again.create()["submission_id"] for _ in range(3)] == ids


async def test_create_over_http() -> None:
    async with ArgosEmulator(50, seed=3) as emu, client_for(emu) as argos:
        admin = EmulatorAdmin(emu.url, emu.api_key)
        at = datetime(2026, 2, 1, 9, 0, tzinfo=timezone.utc)
        item = await _call(
            admin.create, email="web@example.com", data={"cf1": "web"}, created_at=at
        )
        assert item == emu.get(item["submission_id"])
        assert item["created_at"] == "2026-02-01T09:00:00.000Z"
        assert item["kyc"] == {"result": "incomplete"}
        assert (await argos.get_submission(item["submission_id"])).email == "web@example.com"
        with pytest.raises(ValueError, match="applicant_id"):
            await _call(admin.create, applicant_id="a-1")
        with pytest.raises(RuntimeError, match="403"):
            await _call(EmulatorAdmin(emu.url, "wrong-key").create)
        assert [r.query.get("submission_id") for r in emu.requests] == [item["submission_id"]]
