"""An in-process emulator of the Argos KYC REST API v3, for tests, demos and benchmarks."""

from ._admin import EmulatorAdmin
from ._dataset import Dataset
from ._faults import (
    Delay,
    DropConnection,
    Fault,
    FaultContext,
    FaultPlan,
    Mixed,
    QuotaExceeded,
    Redirect,
    RepeatKey,
    Status,
    TruncateBody,
)
from ._listing import ListPage
from ._server import ArgosEmulator, RecordedRequest, RecordedResponse
from ._webhook_delivery import RecordedWebhook
from ._webhook_faults import WebhookFaults

__all__ = [
    "ArgosEmulator",
    "Dataset",
    "Delay",
    "DropConnection",
    "EmulatorAdmin",
    "Fault",
    "FaultContext",
    "FaultPlan",
    "ListPage",
    "Mixed",
    "QuotaExceeded",
    "RecordedRequest",
    "RecordedResponse",
    "RecordedWebhook",
    "Redirect",
    "RepeatKey",
    "Status",
    "TruncateBody",
    "WebhookFaults",
]
