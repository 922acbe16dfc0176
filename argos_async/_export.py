"""The export, the main job: a backfill written to a JSON Lines file, one item per line exactly
as the API sent it, resumable after a crash at any moment with every submission exactly once.

The durability protocol: a checkpoint exists before the first byte is written; after each page
the export appends the page's lines, makes them durable, and only then records in the
checkpoint both the windows' positions and the output's new length. A resume cuts the output
back to the recorded length (dropping lines of pages the checkpoint does not know about) and
carries on from the recorded positions. It refuses an output it cannot account for: one that
is not empty but has no checkpoint, or one shorter than its checkpoint records. An export holds
a lock on its output, so a second export of the same file stops at once. A finished export
keeps its checkpoint, marked complete: that is how a later resume knows the file is whole.

No argparse and no printing here: the command line (``_cli``) maps its options onto
:class:`ExportRequest`, shows :class:`ExportProgress`, and words the outcome.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Final

import anyio
import msgspec

from ._backfill import BackfillStats
from ._checkpoint import Checkpoint
from ._client import ArgosClient
from ._plan import BackfillPlan
from .errors import CheckpointError
from .models import RawPage

OUTPUT_BYTES: Final = "output_bytes"
OUTPUT_ITEMS: Final = "output_items"
COMPLETE: Final = "complete"


class ExportRefused(Exception):
    """The export cannot run as asked (its output or checkpoint is not one it can account
    for); nothing was sent, and the output was left as it was. ``option`` is the command-line
    option the problem is about, if any."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class ExportRequest(msgspec.Struct, frozen=True):
    """Where to export to and how to treat what is already there."""

    out: Path
    checkpoint: Path | None = None
    """The checkpoint file; default ``OUT.ckpt`` beside ``out``."""
    resume: bool = False
    """Continue the export that ``out`` and its checkpoint hold (start one if ``out`` is
    missing or empty)."""
    overwrite: bool = False
    """Start over, whatever ``out`` and its checkpoint hold."""

    @property
    def checkpoint_path(self) -> Path:
        """The checkpoint file this export uses."""
        return self.checkpoint or self.out.with_name(self.out.name + ".ckpt")


class ExportProgress(msgspec.Struct, frozen=True):
    """Where a running export stands, given to the caller's ``progress`` after every page."""

    stats: BackfillStats
    """This run's pages and items, and the windows done (by earlier runs too)."""
    windows_done_before: int
    """Windows earlier runs had finished when this one started."""
    retries: int
    """Requests sent again so far by the client."""


class ExportResult(msgspec.Struct, frozen=True):
    """What an export did."""

    out: Path
    checkpoint: Path
    resumed: bool
    """True when it continued an earlier run's output."""
    items: int
    """Submissions written by this run."""
    pages: int
    """Pages written by this run."""
    total: int | None
    """Submissions in ``out`` now (``None``: not known, for a checkpoint of an older
    version that did not count them)."""
    already_complete: bool = False
    """True when ``out`` was already a finished export: nothing was sent."""


async def run_export(
    client: ArgosClient,
    plan: BackfillPlan,
    request: ExportRequest,
    *,
    progress: Callable[[ExportProgress], None] | None = None,
) -> ExportResult:
    """Exports ``plan`` through ``client`` as ``request`` says.

    Raises :class:`ExportRefused` before any request when ``out`` or its checkpoint cannot be
    used as asked; an ``ArgosError`` (the API failed) or an ``OSError`` (``out`` could not be
    written) during the export, after which ``out`` holds every submission up to the last
    checkpoint and a resume continues from there.
    """
    out, checkpoint_path = request.out, request.checkpoint_path
    if not request.resume and not request.overwrite:
        existing = out if out.exists() else checkpoint_path if checkpoint_path.exists() else None
        if existing is not None:
            raise ExportRefused(
                f"{existing} exists: pass --resume to continue that export, or --overwrite "
                "to start over"
            )
    # Everything from here on, the checkpoint's removal and loading included, happens under
    # OUT's lock, so that a second export of the same OUT cannot undo this one's.
    with _open_locked(out, checkpoint_path) as file:
        if request.overwrite:
            try:
                checkpoint_path.unlink(missing_ok=True)
            except OSError as exc:
                raise ExportRefused(f"cannot remove {checkpoint_path}: {exc.strerror}") from None
        try:
            backfill = client._backfill_of(plan, checkpoint_path)
        except CheckpointError as exc:
            raise ExportRefused(str(exc), option="--resume") from None
        checkpoint = backfill.checkpoint
        assert checkpoint is not None
        resumed = checkpoint.from_file
        kept = _resume_point(request, out, os.fstat(file.fileno()).st_size, checkpoint)
        counted_before = OUTPUT_ITEMS in checkpoint.extra or not resumed
        written = checkpoint.extra.get(OUTPUT_ITEMS, 0)
        if resumed and checkpoint.extra.get(COMPLETE) is True:
            return ExportResult(
                out, checkpoint_path, True, 0, 0, written if counted_before else None, True
            )
        if not resumed:
            # Before the first byte goes out: from now on OUT always has a checkpoint that
            # says how much of it counts, so a resume never has to guess.
            checkpoint.extra.update({OUTPUT_BYTES: 0, OUTPUT_ITEMS: 0})
            _save(checkpoint)

        stats = backfill.stats
        done_before = stats.windows_done

        def report() -> None:
            if progress is not None:
                progress(ExportProgress(stats, done_before, client.stats.retries))

        # Lines past the recorded length belong to pages the checkpoint does not know: they
        # will be fetched and written again.
        file.truncate(kept)
        file.seek(kept)
        report()
        async with backfill.raw_pages() as pages:
            async for page in pages:
                await _append(file, page)
                written += len(page.items)
                checkpoint.extra[OUTPUT_BYTES] = file.tell()
                checkpoint.extra[OUTPUT_ITEMS] = written
                report()
        report()  # the last page's window counted as done once the stream had ended
        # Every window is done and recorded: say so in the file, for the next resume.
        checkpoint.extra[COMPLETE] = True
        await anyio.to_thread.run_sync(checkpoint.save)
    return ExportResult(
        out,
        checkpoint_path,
        resumed,
        stats.items,
        stats.pages,
        written if counted_before else None,
    )


def _save(checkpoint: Checkpoint) -> None:
    try:
        checkpoint.save()
    except OSError as exc:
        raise ExportRefused(f"cannot write {checkpoint.path}: {exc.strerror}") from None


def _resume_point(request: ExportRequest, out: Path, size: int, checkpoint: Checkpoint) -> int:
    """How many bytes of OUT to keep, or a refusal when OUT and checkpoint disagree."""
    if not checkpoint.from_file:
        if size and request.resume:
            raise ExportRefused(
                f"{out} is not empty but has no checkpoint ({checkpoint.path}), so what it "
                "holds cannot be trusted; pass --overwrite to start it over",
                option="--resume",
            )
        return 0
    if OUTPUT_BYTES not in checkpoint.extra:
        raise ExportRefused(
            f"{checkpoint.path} was not written by an export (it does not record the "
            "output's length)",
            option="--resume",
        )
    kept = _recorded_count(checkpoint, OUTPUT_BYTES)
    if OUTPUT_ITEMS in checkpoint.extra:
        _recorded_count(checkpoint, OUTPUT_ITEMS)
    if size < kept:
        raise ExportRefused(
            f"{out} is shorter than the checkpoint records ({size:,} of {kept:,} bytes); it "
            "was changed since, so the export cannot be resumed",
            option="--resume",
        )
    return kept


def _recorded_count(checkpoint: Checkpoint, name: str) -> int:
    """A count the checkpoint keeps for OUT, refused unless it is a whole number >= 0: a
    hand-edited 1.5 must not cut OUT to one byte."""
    value: Any = checkpoint.extra[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ExportRefused(
            f"{checkpoint.path} is damaged ({name} is {value!r}, not a count); the output "
            "was left as it is",
            option="--resume",
        )
    return value


def recorded_end_date(checkpoint: Path) -> str | None:
    """The last day the export in ``checkpoint`` was made for, if the file names one: a
    resume without ``--end-date`` must mean that export's range, not one that ends today."""
    try:
        document = msgspec.json.decode(checkpoint.read_bytes())
    except (OSError, msgspec.DecodeError, RecursionError):
        return None  # the checkpoint's own load says what is wrong with it
    arguments = document.get("arguments") if isinstance(document, dict) else None
    end = arguments.get("end_date") if isinstance(arguments, dict) else None
    return end if isinstance(end, str) else None


@contextmanager
def _open_locked(out: Path, checkpoint: Path) -> Iterator[BinaryIO]:
    """OUT opened for update (created if missing), locked against other exports. An OUT this
    run created is removed again if the run stops before it has a checkpoint."""
    if out.exists() and not out.is_file():
        # A device or a pipe cannot be truncated, rolled back to a checkpoint or fsynced.
        raise ExportRefused(
            f"{out} is not a regular file; the export writes a file it can resume", "--out"
        )
    created = not out.exists()
    try:
        descriptor = os.open(out, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ExportRefused(f"cannot open {out}: {exc.strerror}", "--out") from None
    # Unbuffered: pages go out in gathered writes straight from the response bodies, and the
    # file's position is then always the system's.
    with os.fdopen(descriptor, "r+b", buffering=0) as file:
        if not _lock(file):
            raise ExportRefused(
                f"{out} is being written by another export: wait for it to end, or choose "
                "another --out"
            )
        try:
            yield file
        except BaseException:
            if created and not checkpoint.exists() and os.fstat(file.fileno()).st_size == 0:
                out.unlink(missing_ok=True)
            raise


def _lock(file: BinaryIO) -> bool:
    """An exclusive lock for as long as the file stays open; the system drops it when the
    process ends, even by SIGKILL, so a killed export never leaves a stale lock. False when
    another process holds it."""
    if sys.platform == "win32":  # pragma: no cover - no flock: a second export goes undetected
        return True
    import fcntl

    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # pragma: no cover - a file system without locks (some network mounts)
        return True
    return True


async def _append(file: BinaryIO, page: RawPage) -> None:
    """Appends the page's items, one per line, and makes them durable before the checkpoint
    may claim them."""
    items = page.items
    if items:
        lines: list[msgspec.Raw] | list[bytes] = items
        if b"\n" in page.body or b"\r" in page.body:
            # JSON strings cannot hold a raw newline, so any newline is whitespace between
            # tokens: folding it keeps one item per line without changing what the item says.
            lines = [bytes(raw).replace(b"\r", b" ").replace(b"\n", b" ") for raw in items]
        _write_lines(file.fileno(), lines)
    await anyio.to_thread.run_sync(os.fsync, file.fileno())


_IOV_MAX: Final = 1024  # POSIX's floor for writev's buffer count, Linux's value


def _write_lines(descriptor: int, lines: list[msgspec.Raw] | list[bytes]) -> None:
    """Writes each line and a newline after it, straight from the lines' own buffers: one
    gathered write per ``_IOV_MAX`` buffers instead of a join that copies the page first."""
    if not hasattr(os, "writev"):  # pragma: no cover - Windows
        _write_all(descriptor, memoryview(b"\n".join(lines) + b"\n"))
        return
    buffers: list[msgspec.Raw | bytes] = []
    for line in lines:
        buffers += (line, b"\n")
    for start in range(0, len(buffers), _IOV_MAX):
        chunk = buffers[start : start + _IOV_MAX]
        written = os.writev(descriptor, chunk)
        if written < sum(map(len, chunk)):
            # A short write (a full disk, a signal): the rest of the chunk, byte by byte.
            _write_all(descriptor, memoryview(b"".join(chunk))[written:])


def _write_all(descriptor: int, data: memoryview) -> None:
    while data:
        data = data[os.write(descriptor, data) :]
