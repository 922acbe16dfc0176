"""What the mirror's tests share: the destinations they load into (a DuckDB file, a database
on the session's PostgreSQL server), read back with the databases' own drivers rather than
through dlt, and the check that a table mirrors an emulator exactly."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import anyio.to_thread
import dlt
from pg import PostgresServer
from support import FAST

from argos_async.dlt import MirrorResult, mirror
from argos_async.testing import ArgosEmulator
from argos_async.testing._listing import list_form

DATASET = "kyc"
PIPELINE = "argos_mirror"
START = date(2025, 3, 1)
DAYS = 30
TODAY = date(2025, 3, 30)
"""The emulator's data set spans START..TODAY: the mirror takes TODAY as today."""


def emulator(submissions: int = 300, seed: int = 11) -> ArgosEmulator:
    """An emulator whose submissions were created from START to TODAY."""
    return ArgosEmulator(submissions=submissions, seed=seed, start=START, days=DAYS)


@dataclass(frozen=True)
class Target:
    """A destination for the mirror, and a way to read what it holds."""

    kind: str
    """``duckdb`` or ``postgres``."""
    location: str
    """The DuckDB file, or the PostgreSQL database's URL."""
    pipelines_dir: Path

    def destination(self) -> Any:
        if self.kind == "duckdb":
            return dlt.destinations.duckdb(self.location)
        return dlt.destinations.postgres(self.location)

    def pipeline(self, name: str = PIPELINE) -> dlt.Pipeline:
        return dlt.pipeline(
            name,
            destination=self.destination(),
            dataset_name=DATASET,
            pipelines_dir=str(self.pipelines_dir),
        )

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` (``%s`` parameters), through the database's own driver."""
        if self.kind == "duckdb":
            import duckdb

            connection = duckdb.connect(self.location, read_only=True)
            try:
                return connection.execute(sql.replace("%s", "?"), list(args)).fetchall()
            finally:
                connection.close()
        import psycopg2

        pg = psycopg2.connect(self.location)
        try:
            with pg.cursor() as cursor:
                cursor.execute(sql, args or None)
                return list(cursor.fetchall())
        finally:
            pg.close()

    def rows(self) -> dict[str, dict[str, Any]]:
        """The table by submission id (every row; asserts that no id appears twice)."""
        names = (
            "submission_id", "created_at", "updated_at", "kyc_result", "aml_status", "email",
            "userid", "applicant_id", "deleted", "deleted_at", "raw",
        )  # fmt: skip
        found = self.query(f"SELECT {', '.join(names)} FROM {DATASET}.submissions")
        table = {row[0]: dict(zip(names, row, strict=True)) for row in found}
        assert len(table) == len(found), "a submission appears twice in the table"
        return table


def make_target(kind: str, tmp_path: Path, postgres: PostgresServer | None) -> Target:
    if kind == "duckdb":
        return Target(kind, str(tmp_path / "argos.duckdb"), tmp_path / "pipelines")
    assert postgres is not None
    database = "t_" + hashlib.md5(str(tmp_path).encode()).hexdigest()[:16]
    return Target(kind, postgres.create_database(database), tmp_path / "pipelines")


def source_arguments(emu: ArgosEmulator, **overrides: Any) -> dict[str, Any]:
    return {
        "api_key": emu.api_key,
        "base_url": emu.url,
        "start_date": START,
        "today": TODAY,
        "lag_days": 3,
        "shards": 4,
        "client_options": dict(FAST),
        **overrides,
    }


async def run_mirror(target: Target, emu: ArgosEmulator, **overrides: Any) -> MirrorResult:
    """``mirror`` in a worker thread (the emulator answers on this test's loop)."""
    job = functools.partial(mirror, target.pipeline(), **source_arguments(emu, **overrides))
    return await anyio.to_thread.run_sync(job)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(timezone.utc)


def _stamp(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_mirrors(
    target: Target, emu: ArgosEmulator, *, deleted: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """The table holds every submission of ``emu`` once, as ``emu`` serves it now (the typed
    columns equal to the item's fields, ``raw`` the item as a listing or a lookup sends it),
    and the ``deleted`` ones (id to the item as last served) marked deleted, as they were."""
    deleted = deleted or {}
    served = {sid: emu.get(sid) for sid in emu.dataset.ids if sid not in deleted}
    return assert_table_holds(target, served, deleted)  # type: ignore[arg-type]


def assert_table_holds(
    target: Target,
    served: Mapping[str, dict[str, Any]],
    deleted: Mapping[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """The table holds each of ``served`` (id to the item as served now) once, as served,
    and each of ``deleted`` (id to the item as last served) marked deleted."""
    table = target.rows()
    assert set(table) == set(served) | set(deleted)
    for sid, row in table.items():
        item = deleted.get(sid) or served[sid]
        sent = json.loads(row["raw"])
        assert sent in (list_form(item), item), sid
        kyc, aml = item.get("kyc") or {}, item.get("aml") or {}
        assert (row["kyc_result"], row["aml_status"]) == (
            kyc.get("result"),
            aml.get("currentstatus"),
        )
        assert _utc(row["updated_at"]) == _stamp(item.get("updated_at")), sid
        assert _utc(row["created_at"]) == _stamp(item["created_at"])
        assert (row["email"], row["userid"], row["applicant_id"]) == (
            item.get("email"),
            item.get("userid"),
            item.get("applicant_id"),
        )
        assert row["deleted"] is (sid in deleted)
        assert (row["deleted_at"] is not None) is (sid in deleted)
    return table
