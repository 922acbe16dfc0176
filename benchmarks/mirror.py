"""The mirror benchmark: 100,000 submissions from the page server, side by side in one run,
interleaved, each job in a fresh process of its own:

- export: ``python -m argos_async export`` to JSON Lines (its ``main``, timed in-process);
- mirror (Arrow): ``argos_async.dlt.mirror`` into a new DuckDB file, pages as Arrow tables;
- dlt dicts: the same rows (the same columns, hints and merge on ``submission_id``) handed to
  dlt as plain dicts, one per item, as a dlt user would write the resource.

The page server answers each day window with ``--window-items`` distinct submissions
(``--unique-windows``), so 200 windows of 500 are 100,000 rows. Each job's time is its own
work, from the call to the last row committed: the interpreter's start and the imports are
not in it. Medians of ``--runs`` runs; a markdown table with the targets at the end.

Run: ``python benchmarks/mirror.py [--runs 3] [--items 100000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

from _harness import median, table
from run import page_server

HERE = Path(__file__).resolve().parent
WINDOW_ITEMS = 500
START = date(2025, 1, 1)
KINDS = ("export", "mirror", "dicts")
LABELS = {
    "export": "export to JSON Lines",
    "mirror": "mirror into DuckDB (Arrow)",
    "dicts": "dlt plain dicts into DuckDB",
}
TARGET_RATE = 10_000
TARGET_RATIO = 4.0


def _job_export(url: str, first: date, last: date, where: Path) -> tuple[float, int]:
    from argos_async._cli import main as cli

    out = where / "out.jsonl"
    os.environ["ARGOS_API_KEY"] = "bench-key"
    started = time.perf_counter()
    code = cli(
        ["export", "--base-url", url, "--start-date", first.isoformat(), "--end-date",
         last.isoformat(), "--out", str(out), "--overwrite", "--no-progress", "--quiet"]
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"the export exited {code}")
    with out.open("rb") as lines:
        return seconds, sum(1 for _ in lines)


def _pipeline(where: Path, name: str) -> Any:
    import dlt

    return dlt.pipeline(
        name,
        destination=dlt.destinations.duckdb(str(where / f"{name}.duckdb")),
        dataset_name="kyc",
        pipelines_dir=str(where / "pipelines"),
    )


def _job_mirror(url: str, first: date, last: date, where: Path) -> tuple[float, int]:
    from argos_async.dlt import mirror

    pipeline = _pipeline(where, "arrow")
    started = time.perf_counter()
    result = mirror(pipeline, api_key="bench-key", base_url=url, start_date=first, today=last)
    return time.perf_counter() - started, result.rows


def _dict_resource(url: str, first: date, last: date) -> Any:
    """The same rows as the mirror's first run, as a dlt user writes a resource of dicts."""
    import dlt
    import msgspec
    from anyio.streams.memory import MemoryObjectSendStream
    from dlt.common.schema.typing import TTableSchemaColumns

    from argos_async import ArgosClient
    from argos_async.dlt import COLUMN_HINTS
    from argos_async.dlt._source import bridged

    async def produce(send: MemoryObjectSendStream[list[dict[str, Any]]]) -> None:
        async with send, ArgosClient(api_key="bench-key", base_url=url) as argos:
            pages = argos.backfill(first, last, shards=8).raw_pages()
            async with pages:
                async for page in pages:
                    rows = []
                    for raw in page.items:
                        item = msgspec.json.decode(raw)
                        kyc, aml = item.get("kyc") or {}, item.get("aml") or {}
                        rows.append(
                            {
                                "submission_id": item["submission_id"],
                                "created_at": item.get("created_at"),
                                "updated_at": item.get("updated_at"),
                                "kyc_result": kyc.get("result"),
                                "aml_status": aml.get("currentstatus"),
                                "email": item.get("email"),
                                "userid": item.get("userid"),
                                "applicant_id": item.get("applicant_id"),
                                "deleted": False,
                                "deleted_at": None,
                                "raw": bytes(raw).decode(),
                            }
                        )
                    await send.send(rows)

    @dlt.resource(
        name="submissions",
        primary_key="submission_id",
        write_disposition="merge",
        columns=cast(TTableSchemaColumns, COLUMN_HINTS),
    )
    def submissions() -> Iterator[list[dict[str, Any]]]:
        yield from bridged(produce)

    return submissions


def _job_dicts(url: str, first: date, last: date, where: Path) -> tuple[float, int]:
    pipeline = _pipeline(where, "dicts")
    started = time.perf_counter()
    pipeline.run(_dict_resource(url, first, last))
    seconds = time.perf_counter() - started
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT count(*) FROM submissions")
    assert rows is not None
    return seconds, int(rows[0][0])


JOBS = {"export": _job_export, "mirror": _job_mirror, "dicts": _job_dicts}


def _run_job(kind: str, url: str, first: date, last: date) -> tuple[float, int]:
    """One job in a fresh process; its seconds and the rows (or lines) it ended with."""
    with tempfile.TemporaryDirectory(prefix=f"mirror-bench-{kind}-") as where:
        done = subprocess.run(
            [sys.executable, __file__, "job", kind, url, first.isoformat(), last.isoformat(),
             where],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{done.stderr[-3000:]}")
    measured = json.loads(done.stdout.splitlines()[-1])
    return float(measured["seconds"]), int(measured["rows"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    days = max(1, args.items // WINDOW_ITEMS)
    first, last = START, START + timedelta(days=days - 1)
    expected = days * WINDOW_ITEMS
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    server = ("--items", "0", "--window-items", str(WINDOW_ITEMS), "--unique-windows")
    with page_server(*server) as url:
        for run in range(args.runs):
            # Interleaved, in a rotating order: the machine's noise hits every job alike.
            order = KINDS[run % 3 :] + KINDS[: run % 3]
            for kind in order:
                seconds, rows = _run_job(kind, url, first, last)
                if rows != expected:
                    raise RuntimeError(f"{kind} ended with {rows} rows, not {expected}")
                rates[kind].append(rows / seconds)
                print(f"run {run + 1}: {kind:7} {rows / seconds:10,.0f} rows/s", file=sys.stderr)
    rate = {kind: median(values) for kind, values in rates.items()}
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"> argos_async mirror benchmark, {stamp}; CPython {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.machine()}; {expected:,} submissions, "
        f"{days} day windows, median of {args.runs} runs\n"
    )
    rows_table = [
        [LABELS[kind], f"{rate[kind]:,.0f}", f"{expected / rate[kind]:.2f}",
         f"{rate[kind] / rate['dicts']:.2f}x"]
        for kind in KINDS
    ]  # fmt: skip
    print(table(["job", "submissions/s", "seconds", "vs dlt dicts"], rows_table))
    ratio = rate["mirror"] / rate["dicts"]
    print()
    print(
        table(
            ["target", "wanted", "measured", "met"],
            [
                [
                    "mirror into DuckDB, submissions/s",
                    f">= {TARGET_RATE:,}",
                    f"{rate['mirror']:,.0f}",
                    "yes" if rate["mirror"] >= TARGET_RATE else "no",
                ],
                [
                    "mirror (Arrow) vs dlt plain dicts",
                    f">= {TARGET_RATIO:.1f}x",
                    f"{ratio:.2f}x",
                    "yes" if ratio >= TARGET_RATIO else "no",
                ],
            ],
        )
    )


def _job_main(kind: str, url: str, first: str, last: str, where: str) -> None:
    seconds, rows = JOBS[kind](
        url, date.fromisoformat(first), date.fromisoformat(last), Path(where)
    )
    print(json.dumps({"seconds": seconds, "rows": rows}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "job":
        _job_main(*sys.argv[2:7])
    else:
        main()
