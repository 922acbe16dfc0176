"""The public surface: exactly the intended names, each documented."""

from __future__ import annotations

import inspect

import argos_async
from argos_async import errors, models, testing

EXPORTED = {
    "DEFAULT_BASE_URL",
    "LEGACY_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "ApplicantSubmission",
    "ArgosClient",
    "ArgosError",
    "AuthenticationError",
    "Backfill",
    "BackfillStats",
    "BadRequestError",
    "Batch",
    "BatchResult",
    "CheckpointError",
    "ClientStats",
    "CommentCode",
    "IdType",
    "KycResult",
    "NotFoundError",
    "Page",
    "PaginationError",
    "PayloadTooLargeError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestType",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "ServerError",
    "Submission",
    "__version__",
}


def test_exported_names_are_exactly_the_intended_ones() -> None:
    assert set(argos_async.__all__) == EXPORTED
    assert len(argos_async.__all__) == len(EXPORTED)
    for name in argos_async.__all__:
        assert hasattr(argos_async, name), name


def test_version() -> None:
    assert argos_async.__version__ == "0.1.0"


def _public_members(module: object) -> list[tuple[str, object]]:
    names = getattr(module, "__all__", [])
    return [(name, getattr(module, name)) for name in names]


def test_every_public_class_and_function_has_a_docstring() -> None:
    undocumented = []
    for module in (argos_async, errors, models, testing):
        for name, member in _public_members(module):
            if not (inspect.isclass(member) or inspect.isfunction(member)):
                continue
            if not (member.__doc__ or "").strip():
                undocumented.append(f"{module.__name__}.{name}")
            if inspect.isclass(member):
                for attr, value in vars(member).items():
                    if attr.startswith("_") or not callable(value):
                        continue
                    if not (getattr(value, "__doc__", None) or "").strip():
                        undocumented.append(f"{module.__name__}.{name}.{attr}")
    assert undocumented == []


def test_errors_form_the_documented_tree() -> None:
    assert issubclass(errors.APIError, errors.ArgosError)
    assert issubclass(errors.APIStatusError, errors.APIError)
    for status_error in (
        errors.BadRequestError,
        errors.AuthenticationError,
        errors.NotFoundError,
        errors.PayloadTooLargeError,
        errors.RateLimitError,
        errors.ServerError,
    ):
        assert issubclass(status_error, errors.APIStatusError)
    assert issubclass(errors.QuotaExceededError, errors.RateLimitError)
    assert issubclass(errors.APITimeoutError, errors.APIConnectionError)
    for other in (errors.ResponseDecodeError, errors.PaginationError, errors.ResponseTooLargeError):
        assert issubclass(other, errors.APIError)
    assert set(errors.__all__) <= set(argos_async.__all__)
