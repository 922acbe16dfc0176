"""The backfill checkpoint: a small JSON file, replaced atomically after each consumed page.

It records, per window, the resume cursor after the last page the caller has fully consumed
(or that the window is finished), the arguments it was made for, and whatever the caller adds
in ``extra`` (the export command keeps its output's length there). A crash at any moment
leaves either the previous file or the new one, never a mix: each save writes a temporary
file beside it, flushes it to disk, and renames it over the old one. The temporary file's
name is unique to the save, so two writers of one checkpoint (a mistake, but a possible one)
cannot write into each other's file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from .errors import CheckpointError

VERSION = 1


class _File(msgspec.Struct, kw_only=True):
    version: int
    arguments: dict[str, Any]
    done: list[str] = msgspec.field(default_factory=list)
    cursors: dict[str, str] = msgspec.field(default_factory=dict)
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class Checkpoint:
    """Where a backfill stands, kept in ``path``.

    ``arguments`` identifies the backfill (range, window size and filters, personal values
    as digests); a file made for other arguments is refused rather than silently mixed in.
    """

    def __init__(self, path: str | os.PathLike[str], arguments: dict[str, Any]) -> None:
        self.path = Path(path)
        self.arguments = arguments
        self.done: set[str] = set()
        self.cursors: dict[str, str] = {}
        self.extra: dict[str, Any] = {}
        self.saves = 0
        self.from_file = False
        """True when it was read from ``path`` rather than started afresh."""

    @classmethod
    def load_or_new(cls, path: str | os.PathLike[str], arguments: dict[str, Any]) -> Checkpoint:
        """The checkpoint in ``path`` if there is one (it must match ``arguments``), else a
        fresh one (nothing is written until the first save)."""
        checkpoint = cls(path, arguments)
        try:
            raw = checkpoint.path.read_bytes()
        except FileNotFoundError:
            checkpoint._check_writable()
            return checkpoint
        except OSError as exc:  # a directory, no permission, an I/O error
            raise CheckpointError(
                f"checkpoint {checkpoint.path} cannot be read: {exc.strerror or exc}"
            ) from None
        try:
            stored = msgspec.json.decode(raw, type=_File)
        except (msgspec.DecodeError, RecursionError):
            raise CheckpointError(
                f"checkpoint {checkpoint.path} is damaged or not a checkpoint"
            ) from None
        if stored.version != VERSION:
            raise CheckpointError(
                f"checkpoint {checkpoint.path} has version {stored.version}, "
                f"this client reads version {VERSION}"
            )
        if stored.arguments != arguments:
            differing = sorted(
                name
                for name in arguments.keys() | stored.arguments.keys()
                if arguments.get(name) != stored.arguments.get(name)
            )
            raise CheckpointError(
                f"checkpoint {checkpoint.path} was made for other arguments "
                f"(they differ in {', '.join(differing)}): run with the arguments it was made "
                "for, or use another checkpoint file"
            )
        checkpoint.done = set(stored.done)
        checkpoint.cursors = dict(stored.cursors)
        checkpoint.extra = dict(stored.extra)
        checkpoint.from_file = True
        return checkpoint

    def _check_writable(self) -> None:
        # Checked before the first request: a save that cannot happen would otherwise fail
        # only after the first page was delivered.
        directory = self.path.parent
        if not directory.is_dir():
            raise CheckpointError(
                f"checkpoint {self.path} cannot be created: {directory} is not a directory"
            )
        if not os.access(directory, os.W_OK | os.X_OK):
            raise CheckpointError(
                f"checkpoint {self.path} cannot be created: {directory} is not writable"
            )

    def record(self, window: str, cursor: str | None) -> None:
        """The caller has consumed a page of ``window``; ``cursor`` resumes after it
        (``None``: the window is finished)."""
        if cursor is None:
            self.done.add(window)
            self.cursors.pop(window, None)
        else:
            self.cursors[window] = cursor

    def save(self) -> None:
        """Replaces the file atomically and durably."""
        document = _File(
            version=VERSION,
            arguments=self.arguments,
            done=sorted(self.done),
            cursors=dict(sorted(self.cursors.items())),
            extra=self.extra,
        )
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with open(descriptor, "wb") as file:
                file.write(msgspec.json.encode(document))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            # The previous checkpoint is untouched; do not leave a stray half-file beside it.
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_directory(self.path.parent)
        self.saves += 1


def _fsync_directory(directory: Path) -> None:
    # The rename itself is durable only once the directory entry is on disk.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
