"""``fetch_truth``: the usual deliver of a ``WebhookInbox``. It looks the submissions up
through the API and hands on what the API says, never what a webhook said.

Per id, not per batch: a lookup that fails (after the client's own retries) does not undo
the others. Each submission found or found gone goes to ``on_truth`` as soon as its answer
comes; the ones that failed are named in one ``DeliveryError`` at the end, so the inbox
tries only those again. A 400 for an id (the API refuses it as a query) can never succeed:
it is logged and dropped instead of retried forever.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec

from .._protocol import checks
from .._protocol.masking import mask_id, mask_text
from ..errors import BadRequestError, DeliveryError, NotFoundError
from ._inbox import Deliver

if TYPE_CHECKING:
    from .._client import ArgosClient

logger = logging.getLogger("argos_async")


class SubmissionTruth(msgspec.Struct, frozen=True, gc=False):
    """What the API says about a submission a webhook pointed at.

    ``deleted`` is True when the API no longer has it (a lookup answered no item): only then
    is a submission gone, whatever a ``delete`` webhook said. Since webhooks are not signed,
    a forged ``delete`` about a submission that exists comes here as the submission itself,
    so it cannot erase anything."""

    submission_id: str
    raw: msgspec.Raw | None
    """The submission's JSON exactly as the API sent it (a single lookup's form, with every
    field); None when ``deleted``."""
    deleted: bool


OnTruth = Callable[[SubmissionTruth], Awaitable[None]]
"""``async def on_truth(truth: SubmissionTruth)``: stores what the API said (an upsert, a
delete), idempotently: an id may come again after a failed delivery."""


def fetch_truth(client: ArgosClient, on_truth: OnTruth, *, concurrency: int = 8) -> Deliver:
    """A deliver function for ``WebhookInbox``: looks the ids up with
    ``client.batch_get_raw_submissions`` (at most ``concurrency`` at once, under the
    client's retries, rate limit and shared 429 pause) and awaits ``on_truth`` for each one
    found (``deleted=False``) or found gone (``NotFoundError``: ``deleted=True``).

    Ids whose lookup failed otherwise, or whose ``on_truth`` raised (and those not reached
    after it), are raised as one ``DeliveryError`` naming them, so the inbox retries just
    those. An id the API refuses with a 400 is dropped with a warning.
    """
    limit = checks.check_int("concurrency", concurrency, minimum=1)
    if not callable(on_truth):
        raise TypeError(f"on_truth must be an async callable, got {type(on_truth).__name__}")

    async def deliver(submission_ids: list[str]) -> None:
        done: set[str] = set()
        failed: list[str] = []
        first: Exception | None = None
        try:
            batch = client.batch_get_raw_submissions(submission_ids, concurrency=limit)
            async with batch as results:
                async for result in results:
                    error = result.error
                    if error is None:
                        truth = SubmissionTruth(result.key, result.value, deleted=False)
                    elif isinstance(error, NotFoundError):
                        truth = SubmissionTruth(result.key, None, deleted=True)
                    elif isinstance(error, BadRequestError):
                        logger.warning(
                            "webhook submission %s dropped: the API refuses it (%s)",
                            mask_id(result.key),
                            error,
                        )
                        done.add(result.key)
                        continue
                    else:
                        failed.append(result.key)
                        first = first or error
                        continue
                    await on_truth(truth)
                    done.add(result.key)
        except Exception as exc:
            # on_truth failed (or the batch did): what it had not finished goes back.
            left = [s for s in submission_ids if s not in done]
            raise DeliveryError(left, _message(left, submission_ids, exc)) from exc
        if failed:
            assert first is not None
            raise DeliveryError(failed, _message(failed, submission_ids, first)) from first

    return deliver


def _message(failed: list[str], batch: list[str], cause: Exception) -> str:
    # The client masks emails and user ids; the ids of the batch are masked here.
    reason = mask_text(str(cause), batch)
    return f"{len(failed)} of {len(batch)} submissions not delivered: {type(cause).__name__}: " + (
        reason
    )
