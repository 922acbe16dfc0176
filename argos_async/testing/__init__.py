"""An in-process emulator of the Argos KYC REST API v3, for tests, demos and benchmarks."""

from ._dataset import Dataset
from ._faults import Fault, FaultPlan, RepeatKey
from ._server import ArgosEmulator, RecordedRequest

__all__ = ["ArgosEmulator", "Dataset", "Fault", "FaultPlan", "RecordedRequest", "RepeatKey"]
