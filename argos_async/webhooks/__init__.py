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
authoritative::

    from argos_async import ArgosClient, NotFoundError
    from argos_async.webhooks import WebhookDecodeError, parse

    async def on_webhook(body: bytes, argos: ArgosClient) -> int:
        try:
            event = parse(body)
        except WebhookDecodeError:
            return 400  # the message names the problem, never the body's data
        if event.submission_id is None:
            return 202
        try:
            submission = await argos.get_submission(event.submission_id)
        except NotFoundError:
            ...  # deleted (event.is_deletion) or never there
        else:
            ...  # store submission.kyc, submission.aml, ...
        return 200
"""

from ..errors import WebhookDecodeError
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

__all__ = [
    "AdditionalAnswer",
    "AmlMonitorWebhook",
    "AmlResult",
    "AmlWebhook",
    "ApprovedWebhook",
    "CreatedWebhook",
    "CustomFields",
    "DeleteWebhook",
    "InjectionAction",
    "InjectionWebhook",
    "MonitorRecord",
    "RejectedWebhook",
    "RetryWebhook",
    "SubmitWebhook",
    "UnknownWebhook",
    "UpdatedData",
    "UpdatedWebhook",
    "WebhookDecodeError",
    "WebhookEvent",
    "WebhookKycResult",
    "parse",
]
