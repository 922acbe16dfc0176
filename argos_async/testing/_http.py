"""aiohttp responses in the gateway's shape, for the server and the faults alike; and which
hosts count as loopback, for where the emulator listens and where it sends webhooks."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from ._wire import JSON_CONTENT_TYPE, MESSAGE_KEY, STATUS_MESSAGES, error_body

__all__ = ["error_response", "is_loopback", "json_response"]


def json_response(body: bytes, status: int = 200) -> web.Response:
    """A response with a JSON body already encoded."""
    return web.Response(status=status, body=body, content_type=JSON_CONTENT_TYPE)


def error_response(
    status: int, message: str | None = None, *, key: str = MESSAGE_KEY
) -> web.Response:
    """An error as the gateway sends it: `{"message": ...}`, by default its message for the
    status."""
    if message is None:
        message = STATUS_MESSAGES[status]
    return json_response(error_body(message, key=key), status)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (an IPv6 one with or without brackets)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
