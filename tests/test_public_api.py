"""The public surface: exactly the intended names, each documented."""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import re
import textwrap
from types import ModuleType

import pytest

import argos_async
import argos_async.dlt
from argos_async import ArgosClient, errors, models, otel, pytest_plugin, testing, webhooks
from argos_async._protocol import wire

EXPORTED = {
    "DEFAULT_BASE_URL",
    "LEGACY_BASE_URL",
    "DateFormat",
    "RawPage",
    "RequestTypeName",
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
    "ClientPausedError",
    "ClientStats",
    "CommentCode",
    "DecryptionError",
    "DeliveryError",
    "IdType",
    "InboxFullError",
    "KycResult",
    "NotFoundError",
    "Page",
    "PaginationError",
    "PayloadTooLargeError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestEvent",
    "RequestOptions",
    "RequestType",
    "ResponseDecodeError",
    "ResponseEvent",
    "ResponseTooLargeError",
    "RetryEvent",
    "SecureTransmission",
    "ServerError",
    "Stream",
    "Submission",
    "WebhookDecodeError",
    "__version__",
}

WEBHOOKS_EXPORTED = {
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
}


def test_exported_names_are_exactly_the_intended_ones() -> None:
    assert set(argos_async.__all__) == EXPORTED
    assert len(argos_async.__all__) == len(EXPORTED)
    for name in argos_async.__all__:
        assert hasattr(argos_async, name), name


def test_the_webhook_names_are_exactly_the_intended_ones() -> None:
    assert set(webhooks.__all__) == WEBHOOKS_EXPORTED
    assert len(webhooks.__all__) == len(WEBHOOKS_EXPORTED)
    for name in webhooks.__all__:
        assert hasattr(webhooks, name), name
    # The errors are the ones of the exception tree, not copies.
    assert webhooks.WebhookDecodeError is errors.WebhookDecodeError
    assert webhooks.InboxFullError is errors.InboxFullError
    assert webhooks.DeliveryError is errors.DeliveryError


def test_version() -> None:
    assert argos_async.__version__ == "0.1.0"


PUBLIC_MODULES = (
    argos_async,
    errors,
    models,
    testing,
    pytest_plugin,
    otel,
    argos_async.dlt,
    webhooks,
)


def _public_members(module: ModuleType) -> list[tuple[str, object]]:
    names = getattr(module, "__all__", [])
    return [(name, getattr(module, name)) for name in names]


def _doc(value: object) -> str:
    return (getattr(value, "__doc__", None) or "").strip()


def _member_doc(raw: object) -> str | None:
    """The docstring of a method-like class member (None: not method-like, e.g. a field)."""
    if isinstance(raw, (classmethod, staticmethod)):
        return _doc(raw.__func__)
    if isinstance(raw, property):
        return _doc(raw.fget)
    if isinstance(raw, functools.cached_property):
        return _doc(raw.func)
    if inspect.isfunction(raw):
        return _doc(raw)
    return None


def _is_doc(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and bool(node.value.value.strip())
    )


def _documented_names(body: list[ast.stmt]) -> set[str]:
    """Names that a statement list defines with a docstring: a def or class with one, or an
    assignment followed by a string (the attribute-docstring convention Sphinx reads)."""
    documented = set()
    for stmt, after in zip(body, [*body[1:], None], strict=True):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if ast.get_docstring(stmt):
                documented.add(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and after is not None and _is_doc(after):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            documented |= {t.id for t in targets if isinstance(t, ast.Name)}
    return documented


def _module_tree(module: ModuleType) -> ast.Module:
    return ast.parse(inspect.getsource(module))


def _defining_module(module: ModuleType, name: str) -> ModuleType:
    """The module whose source defines ``name``, following ``from x import name``."""
    for node in _module_tree(module).body:
        if isinstance(node, ast.ImportFrom) and any(a.name == name for a in node.names):
            assert module.__package__ is not None
            target = importlib.util.resolve_name(
                "." * node.level + (node.module or ""), module.__package__
            )
            return _defining_module(importlib.import_module(target), name)
    return module


def test_every_public_name_has_a_docstring() -> None:
    """Classes, functions, and their methods, properties, class- and static methods have a
    docstring; any other exported name (a constant, a type alias, a pytest fixture) is
    defined with one in its module's source (dunders like ``__version__`` excepted)."""
    undocumented = []
    for module in PUBLIC_MODULES:
        for name, member in _public_members(module):
            where = f"{module.__name__}.{name}"
            if inspect.isclass(member):
                if not _doc(member):
                    undocumented.append(where)
                for attr, raw in vars(member).items():
                    if attr.startswith("_"):
                        continue
                    doc = _member_doc(raw)
                    if doc is not None and not doc:
                        undocumented.append(f"{where}.{attr}")
            elif inspect.isroutine(member):
                if not _doc(member):
                    undocumented.append(where)
            elif not name.startswith("__"):
                origin = _defining_module(module, name)
                if name not in _documented_names(_module_tree(origin).body):
                    undocumented.append(where)
    assert undocumented == []


def test_the_docstring_check_sees_what_it_checks() -> None:
    """A guard on the guard: the checks above do reach these kinds of members."""
    assert _member_doc(vars(testing.ArgosEmulator)["url"]) is not None
    assert _member_doc(vars(models.Page)["raw_items"]) is not None
    assert _member_doc(vars(testing.Dataset)["generate"]) is not None
    assert _defining_module(argos_async, "DEFAULT_BASE_URL").__name__ == wire.__name__
    assert {"DEFAULT_BASE_URL", "LEGACY_BASE_URL"} <= _documented_names(_module_tree(wire).body)
    assert "DEFAULT_CLIENT_OPTIONS" in _documented_names(_module_tree(pytest_plugin).body)
    assert "argos_client" in _documented_names(_module_tree(pytest_plugin).body)
    assert "Timestamp" in _documented_names(_module_tree(models).body)
    assert "NOT_DOCUMENTED" not in _documented_names(ast.parse("NOT_DOCUMENTED = 1\nX = 2\n").body)


@pytest.mark.parametrize(
    "cls",
    [
        testing.RecordedRequest,
        testing.RecordedResponse,
        testing.RecordedWebhook,
        models.Page,
        models.PageKey,
        argos_async.RequestEvent,
        argos_async.ResponseEvent,
        argos_async.RetryEvent,
    ],
)
def test_every_field_of_the_record_types_is_documented(cls: type) -> None:
    (node,) = ast.parse(textwrap.dedent(inspect.getsource(cls))).body
    assert isinstance(node, ast.ClassDef)
    fields = {
        stmt.target.id
        for stmt in node.body
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
    }
    assert fields
    assert fields == _documented_names(node.body) & fields


def _unmentioned(doc: str, names: set[str]) -> set[str]:
    return {n for n in names if not re.search(rf"`{re.escape(n)}`", doc)}


@pytest.mark.anyio
async def test_the_emulator_docstring_covers_its_arguments_and_attributes() -> None:
    arguments = set(inspect.signature(testing.ArgosEmulator.__init__).parameters) - {"self"}
    async with testing.ArgosEmulator(10) as emu:
        attributes = {a for a in vars(emu) if not a.startswith("_")}
    properties = {a for a, v in vars(testing.ArgosEmulator).items() if isinstance(v, property)}
    assert {"dataset", "requests", "responses", "in_flight", "max_in_flight"} <= attributes
    assert "url" in properties
    doc = testing.ArgosEmulator.__doc__ or ""
    assert _unmentioned(doc, arguments | attributes | properties) == set()


def test_the_dataset_docstring_covers_its_attributes() -> None:
    ds = testing.Dataset.generate(10, 1)
    attributes = {a for a in vars(ds) if not a.startswith("_")}
    assert {"items", "ids", "position", "heavy_email"} <= attributes
    assert _unmentioned(testing.Dataset.__doc__ or "", attributes) == set()


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
    assert issubclass(errors.DecryptionError, errors.ResponseDecodeError)
    for other in (errors.ResponseDecodeError, errors.PaginationError, errors.ResponseTooLargeError):
        assert issubclass(other, errors.APIError)
    for outside_the_api in (errors.CheckpointError, errors.WebhookDecodeError):
        assert issubclass(outside_the_api, errors.ArgosError)
        assert issubclass(outside_the_api, ValueError)
        assert not issubclass(outside_the_api, errors.APIError)
    for inbox_error in (errors.InboxFullError, errors.DeliveryError):
        assert issubclass(inbox_error, errors.ArgosError)
        assert not issubclass(inbox_error, (errors.APIError, ValueError))
    assert set(errors.__all__) <= set(argos_async.__all__)


def test_the_hosts_are_the_documented_ones() -> None:
    # API-NOTES: the seed's host is legacy, the current documentation's is the default.
    assert argos_async.LEGACY_BASE_URL == "https://rest-api.argoskyc.com"
    assert argos_async.DEFAULT_BASE_URL == "https://rest-api.argosidentity.com"


@pytest.mark.anyio
async def test_arguments_override_the_environment_which_overrides_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with testing.ArgosEmulator(20, seed=1) as emu, testing.ArgosEmulator(20, seed=2) as env:
        monkeypatch.setenv("ARGOS_API_KEY", env.api_key)
        monkeypatch.setenv("ARGOS_BASE_URL", env.url)
        async with ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos:
            assert argos.base_url == emu.url
            await argos.get_submission(emu.dataset.ids[0])
        assert [r.headers["x-api-key"] for r in emu.requests] == [emu.api_key]
        assert env.requests == []

        async with ArgosClient() as argos:
            assert argos.base_url == env.url
            await argos.get_submission(env.dataset.ids[0])
        assert [r.headers["x-api-key"] for r in env.requests] == [env.api_key]

        # Each one on its own: the key from the argument, the host from the environment.
        monkeypatch.setenv("ARGOS_API_KEY", "not-the-key")
        async with ArgosClient(api_key=env.api_key) as argos:
            await argos.get_submission(env.dataset.ids[1])
        assert [r.headers["x-api-key"] for r in env.requests] == [env.api_key] * 2

    monkeypatch.delenv("ARGOS_BASE_URL")
    async with ArgosClient(api_key="k") as argos:
        assert argos.base_url == argos_async.DEFAULT_BASE_URL
    monkeypatch.setenv("ARGOS_BASE_URL", "")  # set but empty: the default too
    async with ArgosClient(api_key="k") as argos:
        assert argos.base_url == argos_async.DEFAULT_BASE_URL
