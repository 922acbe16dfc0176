"""How `ArgosEmulator.update` changes an item: the changes, in the item's own vocabulary,
applied as a JSON merge patch, plus what the provider does alongside a KYC decision.

Pure: takes an item and returns a new one; `_listing.Listing.replace` serves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import msgspec

from ._wire import TIMESTAMP_RE, format_timestamp, parse_timestamp

__all__ = ["FIXED_FIELDS", "updated_item"]

FIXED_FIELDS = frozenset({"submission_id", "created_at", "email", "userid", "applicant_id"})
"""What an update may not change: the emulator's indexes are built from them."""

_DECIDED = ("approved", "rejected")
# Default reasons of a rejection made by an update: incomplete ones time out, others are
# rejected by a reviewer (the seed's reject-code table).
_TIMEOUT_REJECT = (["timeout"], ["KYC rejected due to timeout"])
_AGENT_REJECT = (["other"], ["Rejected on manual review"])
_UNSCREENED = {"risk_level_summary": "Not Screened", "currentstatus": "Not Screened"}
_REASONS = ("commentCode", "comment")

# The keywords update() took before it spoke the item's vocabulary. None of them is a key of
# an item, so a merge patch would quietly add them as new fields: refuse them instead.
_OLD_KEYWORDS = {
    "kyc_result": "kyc={'result': ...}",
    "comment_code": "kyc={'commentCode': [...]}",
    "comment": "kyc={'comment': [...]}",
    "at": "updated_at=...",
    "fields": "the field names as keywords, e.g. aml={...} or memo=None",
}


def updated_item(item: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`item` with `changes` applied (see `ArgosEmulator.update`); `item` is left alone.

    Raises TypeError for a keyword of the old vocabulary or a bad `updated_at`, ValueError
    for a change that cannot be made.
    """
    _check(changes)
    patch = _plain({k: v for k, v in changes.items() if k != "updated_at"})
    # A deep copy: the Dataset's items are shared by every emulator built alike.
    new: dict[str, Any] = _plain(item)
    stamp = _stamp(new, changes.get("updated_at"))
    new["updated_at"] = stamp
    kyc_patch = patch.get("kyc")
    if isinstance(kyc_patch, dict) and "result" in kyc_patch:
        _decide(new, kyc_patch, stamp)
    _merge(new, patch)
    if isinstance(kyc_patch, dict) and any(kyc_patch.get(k) is not None for k in _REASONS):
        kyc = new.get("kyc")
        if not isinstance(kyc, dict) or kyc.get("result") != "rejected":
            raise ValueError("kyc.commentCode and kyc.comment go with a rejected kyc.result")
    return new


def _check(changes: Mapping[str, Any]) -> None:
    for old, new in _OLD_KEYWORDS.items():
        if old in changes:
            raise TypeError(f"update() no longer takes {old}=; use {new}")
    fixed = FIXED_FIELDS & set(changes)
    if fixed:
        raise ValueError(f"update cannot change {', '.join(sorted(fixed))}")


def _plain(value: Any) -> Any:
    """A deep copy as JSON has it, so the item served and the item `get` returns agree."""
    return msgspec.json.decode(msgspec.json.encode(value))


def _stamp(item: Mapping[str, Any], at: Any) -> str:
    """The new `updated_at`: `at`, or a minute after the last one, so runs stay deterministic."""
    if at is None:
        last = parse_timestamp(item.get("updated_at") or item["created_at"])
        return format_timestamp(last + timedelta(minutes=1))
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("updated_at must be timezone-aware")
        return format_timestamp(at)
    if isinstance(at, str):
        if not TIMESTAMP_RE.fullmatch(at):
            raise ValueError(f"updated_at {at!r} is not a timestamp like 2025-03-01T12:00:00.000Z")
        return at
    raise TypeError(f"updated_at must be a datetime or a timestamp string, not {at!r}")


def _decide(item: dict[str, Any], kyc_patch: Mapping[str, Any], stamp: str) -> None:
    """What comes with a new `kyc.result`, for the keys the patch leaves to the provider."""
    kyc = item.setdefault("kyc", {})
    previous = kyc.get("result")
    result = kyc_patch["result"]
    kyc["result"] = result
    if result in _DECIDED:
        item.setdefault("kyc_result_at", stamp)
    if result == "pending":
        item.setdefault("pending_at", stamp)
        item["reviewer"] = "agent"
    if result == "rejected":
        defaults = _TIMEOUT_REJECT if previous == "incomplete" else _AGENT_REJECT
        for key, default in zip(_REASONS, defaults, strict=True):
            kyc[key] = kyc_patch[key] if key in kyc_patch else list(default)
    else:
        for key in _REASONS:
            kyc.pop(key, None)
    if result == "approved":
        item.setdefault("aml", dict(_UNSCREENED))
    else:
        item.pop("aml", None)


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """RFC 7396: a dict merges into a dict, None deletes, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            if not isinstance(current, dict):
                current = target[key] = {}
            _merge(current, value)
        else:
            target[key] = value
