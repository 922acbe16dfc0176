"""The raw page path: each item's bytes as the server sent them, no ``Submission`` built, with
every check a listing relies on (envelope, next key, item count, loop guard, cursors)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from support import FAST, client_for
from test_hostile import PATH, Body, SameIdNewDate

from argos_async import NotFoundError, PaginationError, RawPage, ResponseDecodeError
from argos_async.testing import ArgosEmulator, FaultPlan

pytestmark = pytest.mark.anyio


def items_sent(body: bytes) -> list[bytes]:
    """The items of a response body, each as its bytes in the body."""
    envelope = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    return [bytes(raw) for raw in msgspec.json.decode(envelope["Items"], type=list[msgspec.Raw])]


async def test_raw_pages_hand_each_item_as_sent_and_list_what_decoded_pages_list() -> None:
    async with (
        ArgosEmulator(submissions=1_000, seed=4) as emu,
        client_for(emu, FAST) as argos,
    ):
        raw = [page async for page in argos.iter_raw_pages(page_size=64)]
        decoded = [page async for page in argos.iter_pages(page_size=64)]
    assert all(isinstance(page, RawPage) for page in raw)
    assert len(raw) == len(decoded) == 16
    for raw_page, page in zip(raw, decoded, strict=True):
        assert [bytes(item) for item in raw_page.items] == items_sent(raw_page.body)
        assert raw_page.body == page.body
        assert raw_page.cursor == page.cursor
        assert raw_page.next_key == page.next_key
    ids = [msgspec.json.decode(item)["submission_id"] for page in raw for item in page.items]
    assert sorted(ids) == sorted(emu.dataset.ids)


async def test_an_item_no_submission_could_be_built_from_still_comes_raw() -> None:
    # A field of the wrong type fails the decoded path's whole page; the raw path never
    # builds a Submission, so it hands the item over as sent.
    odd = b'{"submission_id":"odd-1","kyc":"not an object","created_at":7}'
    plan = FaultPlan([Body(body=b'{"Items":[' + odd + b"]}", path=PATH)])
    async with (
        ArgosEmulator(submissions=5, faults=plan) as emu,
        client_for(emu, FAST) as argos,
    ):
        with pytest.raises(ResponseDecodeError):
            async for _ in argos.iter_pages():
                pass
    async with (
        ArgosEmulator(submissions=5, faults=plan) as emu,
        client_for(emu, FAST) as argos,
    ):
        pages = [page async for page in argos.iter_raw_pages()]
    assert [bytes(item) for page in pages for item in page.items] == [odd]
    assert pages[-1].cursor is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"Items": 5}',
        b'{"items": []}',
        b'{"Items": [], "nextpageKey": {"id": 3}}',
        b'{"Items": [1, 2',
        b"[]",
    ],
)
async def test_the_raw_path_checks_the_envelope_and_the_next_key(body: bytes) -> None:
    plan = FaultPlan([Body(body=body, path=PATH)])
    async with (
        ArgosEmulator(submissions=5, faults=plan) as emu,
        client_for(emu, FAST, max_retries=1) as argos,
    ):
        with pytest.raises(ResponseDecodeError):
            async for _ in argos.iter_raw_pages():
                pass


async def test_the_raw_path_stops_a_server_that_loops() -> None:
    async with (
        ArgosEmulator(submissions=3_000, seed=2, faults=FaultPlan([SameIdNewDate()])) as emu,
        client_for(emu, FAST) as argos,
    ):
        with pytest.raises(PaginationError, match="repeated page key") as info:
            async for _ in argos.iter_raw_pages(page_size=10):
                pass
        assert len(emu.requests) <= 3
    assert info.value.cursor is not None


async def test_raw_and_decoded_cursors_resume_each_other_and_max_items_holds() -> None:
    async with (
        ArgosEmulator(submissions=500, seed=5) as emu,
        client_for(emu, FAST) as argos,
    ):
        everything = [s.submission_id async for s in argos.iter_submissions(page_size=50)]
        first = [page async for page in argos.iter_raw_pages(page_size=50, max_items=75)]
        assert sum(len(page.items) for page in first) == 75
        cursor = first[-1].cursor
        assert cursor is not None
        rest = [s.submission_id async for s in argos.iter_submissions(page_size=50, cursor=cursor)]
        decoded = [page async for page in argos.iter_pages(page_size=50, max_items=120)]
        again = argos.iter_raw_pages(page_size=50, cursor=decoded[-1].cursor)
        tail = [msgspec.json.decode(i)["submission_id"] async for p in again for i in p.items]
    head = [msgspec.json.decode(i)["submission_id"] for page in first for i in page.items]
    assert head + rest == everything
    assert everything[:120] + tail == everything


async def test_a_raw_backfill_resumes_from_its_checkpoint_with_every_item_once(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "raw.ckpt"
    async with (
        ArgosEmulator(submissions=2_000, seed=6) as emu,
        client_for(emu, FAST) as argos,
    ):
        seen: list[bytes] = []
        backfill = argos.backfill("2025-01-01", "2025-12-31", page_size=20, checkpoint=checkpoint)
        async with backfill.raw_pages() as pages:
            async for page in pages:
                seen.extend(bytes(item) for item in page.items)
                if backfill.stats.pages == 30:
                    break
        # The 30th page was not finished (the caller left before coming back): it comes again.
        kept = seen[: -len(page.items)] if page.items else seen
        resumed = argos.backfill("2025-01-01", "2025-12-31", page_size=20, checkpoint=checkpoint)
        async with resumed.raw_pages() as pages:
            kept.extend([bytes(item) async for page in pages for item in page.items])
    ids = [msgspec.json.decode(item)["submission_id"] for item in kept]
    assert sorted(ids) == sorted(emu.dataset.ids)


async def test_get_raw_submission_is_the_item_as_sent_byte_for_byte() -> None:
    # Odd spacing, key order and a field no model knows: all kept, as the API sent them.
    wanted = b'{ "x_new": [1, 2],  "submission_id" : "b-2","kyc":"oops" }'
    body = b'{"Items":[{"submission_id":"a-1"},' + wanted + b"]}"
    plan = FaultPlan([Body(body=body, path=PATH)])
    async with (
        ArgosEmulator(submissions=5, faults=plan) as emu,
        client_for(emu, FAST) as argos,
    ):
        raw = await argos.get_raw_submission("b-2")
        with pytest.raises(ResponseDecodeError, match="other submission"):
            await argos.get_raw_submission("c-3")
    assert bytes(raw) == wanted


async def test_get_raw_submission_of_an_unknown_id_is_not_found() -> None:
    async with (
        ArgosEmulator(submissions=50, seed=7) as emu,
        client_for(emu, FAST) as argos,
    ):
        sid = emu.dataset.ids[17]
        raw = await argos.get_raw_submission(sid)
        with pytest.raises(NotFoundError):
            await argos.get_raw_submission("no-such-id")
    assert msgspec.json.decode(raw)["submission_id"] == sid
