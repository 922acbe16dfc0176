"""Reading back the table the mirror writes, through the running pipeline's SQL client: what
it holds for the days a run lists, which submissions it still holds as open, and whole rows
to mark deleted.

The table is the truth about what has been mirrored: dlt loads a run's rows and its state in
one package, and a run begins only once every earlier package has been loaded (``mirror``
and ``pipeline.run`` both see to that), so what a run reads here is what the runs before it
left. A table that does not exist yet (the first run) holds nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timezone
from typing import Any

from dlt.common.configuration.container import Container
from dlt.common.destination.exceptions import DestinationUndefinedEntity, SqlClientNotAvailable
from dlt.common.pipeline import PipelineContext
from dlt.destinations.sql_client import SqlClientBase
from dlt.pipeline.pipeline import Pipeline

from ._rows import COLUMNS, OPEN_RESULTS, TABLE, Known
from ._schedule import DayRange

_IN_BATCH = 1000
_KNOWN_COLUMNS = "submission_id, md5(raw), deleted, updated_at, kyc_result, aml_status"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


class MirrorTable:
    """The mirror's table in the destination of the pipeline that is running now."""

    def __init__(self, client: SqlClientBase[Any] | None) -> None:
        self._client = client
        self._name = None if client is None else client.make_qualified_table_name(TABLE)

    def known_in(self, ranges: Sequence[DayRange]) -> dict[str, Known]:
        """What the table holds for submissions created within ``ranges``."""
        known: dict[str, Known] = {}
        for days in ranges:
            after = days.end.toordinal() + 1
            rows = self._select(
                f"SELECT {_KNOWN_COLUMNS} FROM {self._name} "
                "WHERE created_at >= %s AND created_at < %s",
                _midnight(days.start),
                _midnight(date.fromordinal(after)),
            )
            known.update(_known(rows))
        return known

    def known_ids(self, submission_ids: Sequence[str]) -> dict[str, Known]:
        """What the table holds for these submissions (those it holds)."""
        known: dict[str, Known] = {}
        for i in range(0, len(submission_ids), _IN_BATCH):
            chunk = submission_ids[i : i + _IN_BATCH]
            marks = ", ".join(["%s"] * len(chunk))
            query = f"SELECT {_KNOWN_COLUMNS} FROM {self._name} WHERE submission_id IN ({marks})"
            known.update(_known(self._select(query, *chunk)))
        return known

    def open_before(self, before: date, since: date | None) -> dict[str, Known]:
        """The submissions the table holds as pending or incomplete (not deleted), created
        before ``before`` (and on ``since`` or after)."""
        where = "kyc_result IN (%s, %s) AND NOT deleted AND created_at < %s"
        args: list[Any] = [*OPEN_RESULTS, _midnight(before)]
        if since is not None:
            where += " AND created_at >= %s"
            args.append(_midnight(since))
        query = f"SELECT {_KNOWN_COLUMNS} FROM {self._name} WHERE {where}"
        return dict(_known(self._select(query, *args)))

    def rows(self, submission_ids: Sequence[str]) -> list[Sequence[Any]]:
        """Whole rows (``COLUMNS`` in order) of these submissions."""
        out: list[Sequence[Any]] = []
        for i in range(0, len(submission_ids), _IN_BATCH):
            chunk = submission_ids[i : i + _IN_BATCH]
            marks = ", ".join(["%s"] * len(chunk))
            out += self._select(
                f"SELECT {', '.join(COLUMNS)} FROM {self._name} WHERE submission_id IN ({marks})",
                *chunk,
            )
        return out

    def _select(self, query: str, *args: Any) -> list[Sequence[Any]]:
        if self._client is None:
            return []
        try:
            return list(self._client.execute_sql(query, *args) or [])
        except DestinationUndefinedEntity:
            return []  # no table yet: the first run


def _known(rows: Sequence[Sequence[Any]]) -> Iterator[tuple[str, Known]]:
    for sid, md5, deleted, updated_at, kyc_result, aml_status in rows:
        yield sid, Known(md5, bool(deleted), _utc(updated_at), kyc_result, aml_status)


def _utc(value: datetime | None) -> datetime | None:
    # DuckDB answers in the session's zone, psycopg2 with a fixed offset: compare in UTC.
    return None if value is None else value.astimezone(timezone.utc)


@contextmanager
def running_table() -> Iterator[MirrorTable]:
    """The table in the running pipeline's destination; one that holds nothing when there is
    no pipeline with a SQL destination (the source iterated on its own, for instance)."""
    context = Container()[PipelineContext]
    client = None
    if context.is_active():
        pipeline = context.pipeline()
        if isinstance(pipeline, Pipeline) and pipeline.destination is not None:
            try:
                client = pipeline.sql_client()
            except SqlClientNotAvailable:
                client = None  # a destination of files: nothing to read back
    if client is None:
        yield MirrorTable(None)
        return
    with client:
        yield MirrorTable(client)
