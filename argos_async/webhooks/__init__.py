"""Argos webhooks: a body as a typed event.

Argos POSTs a JSON body to the project's webhook URL for each event (``webhook_trigger``:
``created``, ``retry``, ``submit``, ``approved``, ``rejected``, ``updated``, ``delete``,
``injection``, ``aml``, ``aml_monitor``). ``parse`` turns the body into a Struct per trigger,
``UnknownWebhook`` for a trigger added later, and keeps the body as sent in ``event.raw``.
Only ``webhook_trigger`` is required; every other field defaults to ``None`` (or ``()``). A
timestamp that is a placeholder (``"string"``, ``"YYYY-MM-DD-HH-MM-SS-ZZZ"``) or of no known
shape is ``None`` too, its text still in ``event.raw``.

A webhook is a hint, not the truth: Argos signs nothing, so anyone who knows the URL can
POST a body that parses; deliveries may be late, lost, repeated or out of order. Read the
event's ``submission_id`` and fetch the submission through the API; only that answer is
authoritative. ``WebhookInbox`` does that for a service: ``accept`` answers at once (no I/O),
repeated deliveries are dropped, submissions are coalesced and fetched in batches by one task,
and ``fetch_truth`` hands on what the API says (``SubmissionTruth``)::

    from argos_async import ArgosClient, InboxFullError, WebhookDecodeError
    from argos_async.webhooks import SubmissionTruth, WebhookInbox, fetch_truth

    async def upsert(truth: SubmissionTruth) -> None:
        ...  # truth.raw (the API's JSON), or truth.deleted

    async with ArgosClient() as argos, WebhookInbox(fetch_truth(argos, upsert)) as inbox:
        # in the endpoint, for each POST:
        try:
            inbox.accept(body)  # 202 at once
        except WebhookDecodeError:
            ...  # 400: the message names the problem, never the body's data
        except InboxFullError:
            ...  # 503: the sender brings it again later

A ``delete`` webhook is passed on as a deletion only when the API confirms it (the lookup
finds nothing): a forged one costs a lookup and erases nothing. Keep a scheduled
reconciliation (the mirror, the worker recipe) running too: it finds what webhooks missed.
"""

from ..errors import DeliveryError, InboxFullError, WebhookDecodeError
from ._events import (
    AdditionalAnswer,
    AmlMonitorWebhook,
    AmlResult,
    AmlWebhook,
    ApprovedWebhook,
    CreatedWebhook,
    CustomFields,
    DeleteWebhook,
    InjectionAction,
    InjectionWebhook,
    MonitorRecord,
    RejectedWebhook,
    RetryWebhook,
    SubmitWebhook,
    UnknownWebhook,
    UpdatedData,
    UpdatedWebhook,
    WebhookEvent,
    WebhookKycResult,
    parse,
)
from ._inbox import Deliver, WebhookInbox
from ._truth import OnTruth, SubmissionTruth, fetch_truth

__all__ = [
    "AdditionalAnswer",
    "AmlMonitorWebhook",
    "AmlResult",
    "AmlWebhook",
    "ApprovedWebhook",
    "CreatedWebhook",
    "CustomFields",
    "DeleteWebhook",
    "Deliver",
    "DeliveryError",
    "InboxFullError",
    "InjectionAction",
    "InjectionWebhook",
    "MonitorRecord",
    "OnTruth",
    "RejectedWebhook",
    "RetryWebhook",
    "SubmissionTruth",
    "SubmitWebhook",
    "UnknownWebhook",
    "UpdatedData",
    "UpdatedWebhook",
    "WebhookDecodeError",
    "WebhookEvent",
    "WebhookInbox",
    "WebhookKycResult",
    "fetch_truth",
    "parse",
]
