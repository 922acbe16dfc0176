"""The webhooks the emulator sends: which triggers a change makes, and each one's payload,
built from the emulator's own items, so that a webhook's values are what the API then answers.

Pure: items in, JSON-like dicts out; `_webhook_delivery` sends them. The provider's documented
payloads (see WEBHOOKS.md in the project's notes) set the field names, spelled as its samples
spell them (`submission_id` but `tokenId`, `full_name` but `phoneNumber`). Where the emulator
holds no value for a documented field (`tokenId`, `phoneNumber`, `ssnNumber`, ...) the field is
sent as null, so the shape stays the documented one; an item's key `tokenId`, if `create` was
given one, is sent.

Triggers sent: `created` (`create`), `approved` and `rejected` (an update that makes the
status that), `aml` (an update that changes `aml` and nothing else: a screening result),
`updated` (any other update), `delete` (`delete`). Not sent: `retry`, `submit` (the old guide
says there is none), `injection`, `aml_monitor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "ADMIN_EMAIL",
    "changed_fields",
    "created_payload",
    "deleted_payload",
    "update_payloads",
]

ADMIN_EMAIL: Final = "admin@emulator.example"
"""The `admin` of an `updated` webhook: the dashboard user the emulator's changes come from."""

_DECIDED: Final = ("approved", "rejected")
_CUSTOM: Final = ("cf1", "cf2", "cf3")
# Top-level personal fields of approved / rejected: (payload name, key of the item's `data`).
_DECISION_PERSONAL: Final = (
    ("age_group", "age_group"),
    ("gender", "gender"),
    ("date_of_birth", "date_of_birth"),
    ("nationality", "nationality"),
    ("full_name", None),  # data.full_name, or the older data.name
    ("phoneNumber", "phone_number"),
    ("ssnNumber", "ssn_number"),
    ("idType", "idType"),
    ("issuingCountry", "idcard_issuingCountry"),
    ("issueDate", "idcard_issueDate"),
    ("expireDate", "idcard_expireDate"),
    ("identityNumber", "identityNumber"),
    ("documentNumber", "documentNumber"),
    ("ipAddress", "ip_address"),
)
_UPDATED_PERSONAL: Final = (
    "full_name",
    "full_name_en",
    "first_name",
    "last_name",
    "gender",
    "date_of_birth",
    "nationality",
    "age_group",
)
# What moves on every update: its own field (`update_time`), not a change worth naming.
_BOOKKEEPING: Final = frozenset({"updated_at"})


def created_payload(item: Mapping[str, Any]) -> dict[str, Any]:
    """The `created` webhook of a new submission."""
    payload = _common("created", item)
    payload["kyc_result"] = {"status": _result(item)}
    payload["ipAddress"] = _data(item).get("ip_address")
    return payload


def deleted_payload(item: Mapping[str, Any]) -> dict[str, Any]:
    """The `delete` webhook, from the item as it was last served."""
    return _common("delete", item)


def update_payloads(
    before: Mapping[str, Any], after: Mapping[str, Any], *, admin: str = ADMIN_EMAIL
) -> list[dict[str, Any]]:
    """The webhooks of one update, from the item before and after it: one of `approved`,
    `rejected` (the status became that), `aml` (only `aml` changed), `updated` (else)."""
    result = _result(after)
    if result in _DECIDED and _result(before) != result:
        return [_decision(result, after)]
    changed = changed_fields(before, after)
    if changed and all(name == "aml" or name.startswith("aml.") for name in changed):
        return [_aml(after)]
    return [_updated(after, changed, admin)]


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The names of what differs, sorted: dotted paths into the item's objects
    (`kyc.result`, `data.full_name`), a whole key where one side has none (`memo`);
    `updated_at` left out (it moves on every update)."""
    names: list[str] = []
    _diff(before, after, "", names)
    return sorted(n for n in names if n not in _BOOKKEEPING)


def _diff(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str, out: list[str]) -> None:
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        name = prefix + key
        if isinstance(old, dict) and isinstance(new, dict):
            _diff(old, new, name + ".", out)
        elif old != new or (key in before) != (key in after):
            out.append(name)


def _common(trigger: str, item: Mapping[str, Any]) -> dict[str, Any]:
    data = _data(item)
    return {
        "webhook_trigger": trigger,
        "submission_id": item["submission_id"],
        "email": item.get("email"),
        "userid": item.get("userid"),
        "tokenId": item.get("tokenId"),
        "cf": {name: data.get(name) for name in _CUSTOM},
    }


def _decision(result: str, item: Mapping[str, Any]) -> dict[str, Any]:
    payload = _common(result, item)
    if result == "approved":
        payload["applicant_id"] = item.get("applicant_id")
    payload["duplicated_information"] = item.get("duplicated_information")
    kyc_result: dict[str, Any] = {
        "status": result,
        "updated_at": item.get("updated_at"),
        "created_at": item.get("created_at"),
        "kyc_result_at": item.get("kyc_result_at"),
        "pending_at": item.get("pending_at"),
        "reviewer": item.get("reviewer"),
    }
    if result == "rejected":
        kyc_result["comment"] = _kyc(item).get("comment")
    payload["kyc_result"] = kyc_result
    data = _data(item)
    for name, key in _DECISION_PERSONAL:
        payload[name] = _full_name(data) if key is None else data.get(key)
    # The provider's list of answers to the project's extra questions: the emulator has none.
    payload["additional_list"] = []
    return payload


def _updated(item: Mapping[str, Any], changed: list[str], admin: str) -> dict[str, Any]:
    payload = _common("updated", item)
    payload["duplicated_information"] = item.get("duplicated_information")
    payload["data"] = {
        "update": changed,
        "kyc_result": _result(item),
        "pending_at": item.get("pending_at"),
        "reviewer": item.get("reviewer"),
    }
    payload["admin"] = admin
    payload["update_time"] = item.get("updated_at")
    data = _data(item)
    for name in _UPDATED_PERSONAL:
        payload[name] = _full_name(data) if name == "full_name" else data.get(name)
    return payload


def _aml(item: Mapping[str, Any]) -> dict[str, Any]:
    payload = _common("aml", item)
    aml = item.get("aml") or {}
    payload["aml_result"] = {
        "currentstatus": aml.get("currentstatus"),
        "risk_level_summary": aml.get("risk_level_summary"),
    }
    return payload


def _data(item: Mapping[str, Any]) -> Mapping[str, Any]:
    data = item.get("data")
    return data if isinstance(data, dict) else {}


def _kyc(item: Mapping[str, Any]) -> Mapping[str, Any]:
    kyc = item.get("kyc")
    return kyc if isinstance(kyc, dict) else {}


def _result(item: Mapping[str, Any]) -> Any:
    return _kyc(item).get("result")


def _full_name(data: Mapping[str, Any]) -> Any:
    return data.get("full_name", data.get("name"))
