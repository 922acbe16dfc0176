"""``python -m argos_async mirror``: the demo into DuckDB and into PostgreSQL, the summary,
usage errors, a refused key; and the README's SQL examples, run on what it mirrored."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mirror_support import Target
from pg import PostgresServer

from argos_async._cli import main
from argos_async._mirror_cli import DEMO_DECISIONS_PER_RUN, DEMO_DELETIONS_PER_RUN
from argos_async.testing import ArgosEmulator

README = Path(__file__).resolve().parent.parent / "README.md"
DEMO = ["mirror", "--demo", "--demo-submissions", "1500"]
LOOPBACK = "http://127.0.0.1:1"


def _readme_sql(dialect: str) -> str:
    """The README's ```sql block that begins with ``-- <dialect>``."""
    blocks: list[str] = re.findall(r"```sql\n(.*?)```", README.read_text(), re.S)
    (block,) = [b for b in blocks if b.startswith(f"-- {dialect}")]
    return block


def test_the_demo_mirrors_into_a_duckdb_file_and_a_rerun_shows_what_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "argos.duckdb"
    assert main([*DEMO, "--database", str(database)]) == 0
    first = capsys.readouterr().err
    assert "Mirrored into" in first
    assert "1,500 rows. This run: 1,500 new, 0 changed, 0 deleted" in first
    assert (tmp_path / "argos.duckdb.dlt").is_dir()  # dlt's working directory beside it

    assert main([*DEMO, "--database", str(database)]) == 0
    second = capsys.readouterr().err
    changed = DEMO_DECISIONS_PER_RUN
    assert f"0 new, {changed} changed, {DEMO_DELETIONS_PER_RUN} deleted" in second
    assert f"{DEMO_DELETIONS_PER_RUN} of them marked deleted" in second

    target = Target("duckdb", str(database), tmp_path / "argos.duckdb.dlt")
    ((rows, deleted),) = target.query(
        "SELECT count(*), sum(CASE WHEN deleted THEN 1 ELSE 0 END) FROM kyc.submissions"
    )
    assert (rows, deleted) == (1500, DEMO_DELETIONS_PER_RUN)
    rejections = target.query(_readme_sql("duckdb"))
    assert rejections
    expected = _rejections_by_day_and_code(1500)
    assert {(str(day), code): n for day, code, n in rejections} == expected


def _rejections_by_day_and_code(n: int) -> dict[tuple[str, str], int]:
    """The README query's answer, from the demo's data as generated and aged once."""
    from argos_async._mirror_cli import DEMO_START, _age

    emu = ArgosEmulator(n, seed=7, start=DEMO_START)
    _age(emu, 1)
    counts: dict[tuple[str, str], int] = {}
    for sid in emu.dataset.ids:
        item = emu.get(sid)
        if item is None or (item.get("kyc") or {}).get("result") != "rejected":
            continue
        for code in item["kyc"].get("commentCode", []):
            key = (item["created_at"][:10], code)
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_the_demo_mirrors_into_postgres_with_credentials_the_dlt_way(
    postgres: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dsn = postgres.create_database("cli_demo")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", dsn)
    arguments = [*DEMO, "--destination", "postgres", "--pipelines-dir", str(tmp_path)]
    assert main(arguments) == 0
    assert "Mirrored into postgres (kyc.submissions): 1,500 rows" in capsys.readouterr().err
    assert main(arguments) == 0
    assert f"{DEMO_DELETIONS_PER_RUN} of them marked deleted" in capsys.readouterr().err
    target = Target("postgres", dsn, tmp_path)
    ((rows,),) = target.query("SELECT count(DISTINCT submission_id) FROM kyc.submissions")
    assert rows == 1500
    rejections = target.query(_readme_sql("postgres"))
    assert {(str(d), c): n for d, c, n in rejections} == _rejections_by_day_and_code(1500)
    assert postgres.password not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["mirror"], "--start-date is required"),
        (["mirror", "--demo", "--destination", "postgres", "--database", "x"], "--database"),
        (["mirror", "--demo", "--lag-days", "-1"], "--lag-days"),
        (["mirror", "--demo", "--page-size", "0"], "--page-size"),
        (
            ["mirror", "--start-date", "2025-02-30", "--base-url", "http://127.0.0.1:1"],
            "2025-02-30",
        ),
        (
            ["mirror", "--start-date", "2025-01-01", "--base-url", "http://example.com"],
            "--base-url",
        ),
    ],
)
def test_usage_errors_exit_2_naming_the_option(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argos-async mirror: error:" in err
    assert message in err


@pytest.mark.anyio
async def test_a_refused_key_exits_1_and_is_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import anyio.to_thread

    key_file = tmp_path / "key"
    key_file.write_text("not-the-key-4c1d")
    async with ArgosEmulator(20) as emu:
        arguments = [
            "mirror", "--base-url", emu.url, "--api-key-file", str(key_file),
            "--start-date", "2025-12-30", "--database", str(tmp_path / "m.duckdb"),
        ]  # fmt: skip
        code = await anyio.to_thread.run_sync(main, arguments)
    err = capsys.readouterr().err
    assert code == 1
    assert "the API key was refused" in err
    assert "not-the-key-4c1d" not in err
