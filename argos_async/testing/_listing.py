"""The listing engine: what `/v3/submission` and `/v3/submission/applicant` answer, as bytes.

It parses a query, picks the items (date window, cursor, email / userid filters), orders and
cuts them into a page, and projects each item to the form asked for. It knows nothing of
HTTP or aiohttp; `_server` adapts it, and faults may rewrite a `ListPage` in between.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import msgspec

from ._created import CreatedItems
from ._dataset import Dataset
from ._wire import (
    REQUEST_TYPES,
    Param,
    lookup_body,
    parse_count,
    parse_query_date,
)

__all__ = [
    "BadQuery",
    "ListPage",
    "ListQuery",
    "Listing",
    "LookupQuery",
    "list_form",
    "parse_applicant_query",
    "parse_submission_query",
    "project",
]

FilterMode = Literal["index", "scan"]

# Fields a list response leaves out (the provider: "fields missing from list results must be
# fetched with submission_id").
_SINGLE_ONLY = frozenset({"project_options", "OCR_raw", "ocr", "verification"})
_LIST_DATA = (
    "name",
    "first_name",
    "last_name",
    "full_name",
    "gender",
    "nationality",
    "date_of_birth",
)


class BadQuery(ValueError):
    """A query the gateway refuses: 400 "Invalid Query String parameters"."""


@dataclass
class ListPage:
    """A list page as built, before it is encoded: faults may rewrite it."""

    items: list[bytes]
    """Each item already encoded as JSON."""
    next_key: dict[str, str] | None
    """The `nextpageKey` object, or None on the last page."""


@dataclass(frozen=True)
class LookupQuery:
    """`/v3/submission?submission_id=...`: one item, in full."""

    submission_id: str
    request_type: str | None


@dataclass(frozen=True)
class ListQuery:
    """`/v3/submission` without `submission_id`: a page of the listing."""

    count: int
    start_date: date | None
    end_date: date | None
    after: tuple[str, str] | None
    """The cursor (`nextpage_date`, `nextpage_id`): the page starts after that item."""
    email: str | None
    userid: str | None
    request_type: str | None


def parse_submission_query(params: Mapping[str, str]) -> LookupQuery | ListQuery:
    """The query of a `/v3/submission` request; raises BadQuery on a malformed one."""
    request_type = params.get(Param.REQUEST_TYPE)
    if request_type is not None and request_type not in REQUEST_TYPES:
        raise BadQuery(f"unknown request_type {request_type!r}")
    submission_id = params.get(Param.SUBMISSION_ID)
    if submission_id is not None:
        return LookupQuery(submission_id, request_type)
    try:
        count = parse_count(params.get(Param.COUNT))
        start = _optional_date(params, Param.START_DATE)
        end = _optional_date(params, Param.END_DATE)
    except ValueError as exc:
        raise BadQuery(str(exc)) from None
    if start is not None and end is not None and start > end:
        raise BadQuery("start_date is after end_date")
    next_id, next_date = params.get(Param.NEXTPAGE_ID), params.get(Param.NEXTPAGE_DATE)
    if (next_id is None) != (next_date is None):
        raise BadQuery("nextpage_id and nextpage_date go together")
    after = None if next_id is None or next_date is None else (next_date, next_id)
    return ListQuery(
        count=count,
        start_date=start,
        end_date=end,
        after=after,
        email=params.get(Param.EMAIL),
        userid=params.get(Param.USERID),
        request_type=request_type,
    )


def parse_applicant_query(params: Mapping[str, str]) -> str:
    """The applicant id of a `/v3/submission/applicant` request; raises BadQuery without one."""
    applicant_id = params.get(Param.APPLICANT_ID)
    if not applicant_id:
        raise BadQuery("applicant_id is required")
    return applicant_id


def _optional_date(params: Mapping[str, str], name: str) -> date | None:
    value = params.get(name)
    return None if value is None else parse_query_date(value)


class Listing:
    """The submissions one emulator serves: a shared `Dataset` as generated, with this
    emulator's own replacements on top, the submissions it created after it (`created`,
    at the positions before 0), and the queries over them.

    Nothing is kept between requests but the replacements: a page builds and encodes its
    items afresh (the list form straight from the generator, which is cheaper than cutting
    down the full item), so that serving a big data set costs no more memory than a page.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        # Items replaced on this emulator, per server position; the shared Dataset stays as built.
        self._replaced: dict[int, dict[str, Any]] = {}
        self.created = CreatedItems(dataset.start + timedelta(days=dataset.days), dataset.seed)

    def get(self, submission_id: str) -> dict[str, Any] | None:
        """The item as now served, or None (read-only)."""
        pos = self.dataset.position.get(submission_id)
        return self.created.get(submission_id) if pos is None else self._item(pos)

    def replace(self, submission_id: str, item: dict[str, Any]) -> None:
        """Serves `item` from now on in place of the submission's (KeyError if unknown).

        The caller keeps what the indexes are built from (id, created_at, email, userid,
        applicant id) as it was: lists would otherwise disagree with their own filters.
        """
        if not self.created.replace(submission_id, item):
            self._replaced[self.dataset.position[submission_id]] = item

    def create(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Makes a new submission from `fields` and serves it (see `CreatedItems.make`)."""
        item = self.created.make(fields, self.dataset.position)
        self.created.add(item)
        return item

    def lookup(self, query: LookupQuery) -> bytes:
        """The body of a single lookup: the item in full, or no item."""
        item = self.get(query.submission_id)
        if item is None:
            return lookup_body(None)
        return lookup_body(msgspec.json.encode(project(item, query.request_type)))

    def page(
        self, query: ListQuery, *, filter_mode: FilterMode, byte_limit: int | None
    ) -> ListPage:
        """One page, in server order (newest first, ties by id descending).

        `filter_mode` "index" walks an index of `email` / `userid` and fills the page with
        matches; "scan" reads the window and drops what does not match after counting it, so
        pages may come back short or empty while a key is still sent. A page also stops
        before its items pass `byte_limit` bytes (it always has one item, though).
        """
        window = self._window(query)
        if query.email is None and query.userid is None:
            return self._fill(window, query, byte_limit, scan=False)
        if filter_mode == "scan":
            return self._fill(window, query, byte_limit, scan=True)
        return self._fill(self._indexed(window, query), query, byte_limit, scan=False)

    def applicants(self, applicant_id: str) -> bytes:
        """The body of an applicant lookup: id, email and duplicate key of each of its items."""
        out = []
        for pos in self.dataset.applicant_positions.get(applicant_id, ()):
            item = self._listed(pos)
            entry = {"submission_id": item["submission_id"], "email": item["email"]}
            if "duplicated_information" in item:
                entry["duplicated_information"] = item["duplicated_information"]
            out.append(entry)
        return msgspec.json.encode(out)

    def _item(self, pos: int) -> dict[str, Any]:
        if pos < 0:
            return self.created.at(pos)
        item = self._replaced.get(pos)
        return self.dataset.item(pos) if item is None else item

    def _listed(self, pos: int) -> dict[str, Any]:
        if pos < 0:
            return list_form(self.created.at(pos))
        item = self._replaced.get(pos)
        return self.dataset.list_item(pos) if item is None else list_form(item)

    def _key(self, pos: int) -> dict[str, str]:
        """The `nextpageKey` of a page whose last item read is at `pos`."""
        if pos < 0:
            created_at, sid = self.created.key_at(pos)
            return {"id": sid, "created_at": created_at}
        last = self.dataset.record(pos)
        return {"id": last.sid, "created_at": last.created_at}

    def _window(self, query: ListQuery) -> range:
        """Server positions within the date range, from the cursor on."""
        ds = self.dataset
        begin, end = ds.date_range(query.start_date, query.end_date)
        created = self.created.span(query.start_date, query.end_date)
        if created:
            # Created ones are newer than every generated one: the two spans of a date
            # range meet at 0 whenever both hold any.
            begin, end = created.start, (end if begin < end else created.stop)
        if query.after is not None:
            after = self.created.position_after(*query.after)
            begin = max(begin, ds.position_after(*query.after) if after is None else after)
        return range(begin, max(begin, end))

    def _indexed(self, window: range, query: ListQuery) -> Sequence[int]:
        """The window's positions matching the filters, from the smaller index."""
        ds = self.dataset
        lists = []
        if query.email is not None:
            lists.append(ds.email_positions.get(query.email, []))
        if query.userid is not None:
            lists.append(ds.userid_positions.get(query.userid, []))
        positions = min(lists, key=len)
        lo = bisect.bisect_left(positions, window.start)
        hi = bisect.bisect_left(positions, window.stop)
        created = [p for p in range(window.start, min(window.stop, 0)) if self._matches(p, query)]
        if len(lists) == 1:
            return created + positions[lo:hi]
        return created + [p for p in positions[lo:hi] if self._matches(p, query)]

    def _matches(self, pos: int, query: ListQuery) -> bool:
        if pos < 0:
            item = self.created.at(pos)
            email, userid = item.get("email"), item.get("userid")
        else:
            rec = self.dataset.record(pos)
            email, userid = rec.email, rec.userid
        return (query.email is None or email == query.email) and (
            query.userid is None or userid == query.userid
        )

    def _fill(
        self, candidates: Sequence[int], query: ListQuery, byte_limit: int | None, *, scan: bool
    ) -> ListPage:
        """Fills a page from `candidates`; with `scan`, items that do not match the filters
        count against `count` and the byte limit before they are dropped, like a DynamoDB
        FilterExpression."""
        pieces: list[bytes] = []
        used = 0
        taken = 0
        encode = msgspec.json.encode
        for pos in candidates:
            if taken == query.count:
                break
            piece = encode(project(self._listed(pos), query.request_type))
            if byte_limit is not None and taken and used + len(piece) + 1 > byte_limit:
                break
            taken += 1
            used += len(piece) + 1
            if scan and not self._matches(pos, query):
                continue
            pieces.append(piece)
        next_key = None
        # The key is the last item read, whether or not it matched: the next page goes on
        # from there.
        if 0 < taken < len(candidates):
            next_key = self._key(candidates[taken - 1])
        return ListPage(items=pieces, next_key=next_key)


def list_form(item: dict[str, Any]) -> dict[str, Any]:
    """An item as a list page carries it: without attempts, OCR, options, most of `data`."""
    out = {k: v for k, v in item.items() if k not in _SINGLE_ONLY}
    data = item.get("data")
    if data is not None:
        out["data"] = {k: data[k] for k in _LIST_DATA if k in data}
    kyc = item.get("kyc")
    if kyc is not None and "attempts" in kyc:
        out["kyc"] = {k: v for k, v in kyc.items() if k != "attempts"}
    return out


def project(item: dict[str, Any], request_type: str | None) -> dict[str, Any]:
    """An item cut to `request_type`: one section and the id, or "others" for all but those."""
    if request_type is None:
        return item
    if request_type == "others":
        return {k: v for k, v in item.items() if k not in ("kyc", "aml", "data")}
    out = {"submission_id": item["submission_id"]}
    if request_type in item:
        out[request_type] = item[request_type]
    return out
