"""Mirror an Argos account into a database with dlt (the extra ``dlt``: ``-e ".[dlt]"``).

::

    import dlt
    from argos_async.dlt import argos_source

    pipeline = dlt.pipeline("argos_mirror", destination="duckdb", dataset_name="argos")
    pipeline.run(argos_source(start_date="2024-01-01"))  # run it again, and again: it stays current

The source's one resource, ``submissions``, is merged on ``submission_id``: a submission is
one row however often it is loaded, with its latest state. Columns:

- ``submission_id`` (the primary key), ``created_at``, ``updated_at`` (UTC timestamps),
  ``kyc_result`` (``kyc.result``), ``aml_status`` (``aml.currentstatus``), ``email``,
  ``userid``, ``applicant_id``: typed, for the queries people write first;
- ``raw``: the item's JSON exactly as the API sent it, as text. Not nested tables: those
  would rename and split the API's fields into child tables that every merge must rewrite,
  change shape whenever the API adds a field, and cost dlt's row-by-row normalisation. Not
  dlt's ``json`` type either: dlt cannot carry it on the Arrow path (it would warn on every
  load), and PostgreSQL's ``jsonb`` reorders keys. Query it with the database's JSON
  functions (DuckDB reads text as JSON; PostgreSQL: ``raw::jsonb``); ``md5(raw)`` is the
  MD5 of the bytes the API sent;
- ``deleted``, ``deleted_at``: set when the API no longer has the submission; the row keeps
  what it said last.

Each run lists the days since the last complete day plus ``lag_days`` before them (day
windows in parallel, the client's backfill), then looks up by id every older submission the
table holds as ``pending`` or ``incomplete``, so a late decision reaches the table however
late it comes. Only rows that differ from the table's are written. Where it stands lives in
dlt's pipeline state, loaded in the same package as the rows: a run killed at any point
leaves the table and the state as the last finished load left them, and the next run goes on
from there (:func:`mirror` loads what a killed run left pending first). Pages reach dlt as
Arrow tables, so dlt's per-row normalisation is skipped.

A webhook receiver keeps the table current between runs with ``refresh_ids``
(``mirror(pipeline, refresh_ids=ids, ...)``): a run that looks up exactly those submissions,
writes those that changed or that the table does not hold yet, marks deleted the held ones the
API no longer has, and leaves the state as it was, so the schedule goes on as before and
catches what webhooks missed. Before the first scheduled run it only inserts rows (that run
still backfills from ``start_date``). A refreshed row holds the lookup's JSON, which has more
fields than a listing's: a scheduled run that lists its day again writes the listing's form
back once. One run at a time per pipeline (dlt pipelines are not thread-safe): the refreshes
and the scheduled runs of a process share one lock (``examples/webhook_receiver.py``).

Webhooks are not signed, so a refresh's ids may be anything, and one must not cost the others:
an id the API refuses (400) is skipped with a warning; those whose lookup fails otherwise
(after the client's retries) come back in ``MirrorResult.refresh_failed`` while the rows of
the others are loaded (the receiver retries just those). They are reported only once the
others' package is loaded (a refresh that fails to load raises instead, every id to try
again), and kept nowhere: a refresh killed before it returns loads what it extracted on the
next ``mirror``, as any run does, and the ids it had failed on are lost with the process, as a
receiver's pending ones are (the scheduled run finds their changes). A refresh does not count
the table: its ``rows`` and ``deleted_rows`` are those of the refreshed submissions.

The source reads its table back (what it holds for the listed days, which submissions are
open), so it needs a destination with SQL: DuckDB and PostgreSQL are the tested ones.
"""

from ._mirror import MirrorResult, mirror, table_counts
from ._rows import ARROW_SCHEMA, COLUMN_HINTS, COLUMNS, TABLE
from ._source import SOURCE, argos_source

__all__ = [
    "ARROW_SCHEMA",
    "COLUMNS",
    "COLUMN_HINTS",
    "SOURCE",
    "TABLE",
    "MirrorResult",
    "argos_source",
    "mirror",
    "table_counts",
]
