"""Request helpers every handler shares: query and body checks, the one error type and shape, JSON answers.

Handlers raise `ApiError` for bad input; `guarded_json_route` turns it into
`{"ok": false, "status": N, "error": ...}`, so no bad request ever becomes a 500, and lets in only
requests for this server's own names (access.py).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from dataclasses import dataclass
from functools import partial
from typing import Iterable

from aiohttp import web

from ..recording.writer import WriterBusy
from ..support.logs import warn_once
from .access import Access, is_loopback, split_host

MAX_QUERY_LENGTH = 200


MAX_PAGE = 100_000


COMPRESS_ABOVE_BYTES = 4096


MAX_BODY_BYTES = 64 * 1024
"""Every body this API takes is a few bytes of JSON; a larger one is refused before it is parsed."""


MAX_DAYS = 3650


VIEW_PARAMS = {"days", "user", "machine"}


class ApiError(Exception):
    """A request we refuse, with the status and a message that says what to change."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def guarded_json_route(access: Access, handler):
    """Wrap a handler returning (data, headers) into an aiohttp handler with our error shape and headers, that
    answers only requests for this server's own names (every route: they show absolute paths), and takes
    changes only from pages of its own origin."""

    async def route(request: web.Request) -> web.Response:
        try:
            refusal = access.host_refusal(request.headers.get("Host"))
            if refusal is None and request.method not in ("GET", "HEAD"):
                refusal = access.origin_refusal(request.headers.get("Origin"), request.headers.get("Host"))
            if refusal is not None:
                raise ApiError(403, refusal)
            data, headers = await handler(request)
            status = 200
            if request.method != "GET" and isinstance(data, dict):
                data = {"ok": True, **data}  # every change answers the same way; handlers say only what they did
        except ApiError as error:
            data, headers, status = _error_body(error.status, error.message), {}, error.status
        except WriterBusy as error:
            data, headers, status = _error_body(503, str(error)), {}, 503
        except Exception as error:  # logged in full for the user; the answer never shows internals
            warn_once(f"route:{request.path}", "%s failed (%s)", request.path, error, exc_info=True)
            data, headers, status = _error_body(500, "internal error; the ComfyUI log has the details"), {}, 500
        if isinstance(data, Download):  # every check passed before the first byte; a dropped client ends it
            return await data.send(request)
        if isinstance(data, EncodedJson):
            return await _send_encoded(request, data, status, headers)
        body = await asyncio.get_running_loop().run_in_executor(None, encode_json, data)
        response = web.Response(body=body, status=status, content_type="application/json", headers=headers)
        response.headers["Cache-Control"] = "no-store"
        if len(body) > COMPRESS_ABOVE_BYTES:
            response.enable_compression()
        return response

    route.__name__ = handler.__name__
    return route


@dataclass(frozen=True)
class Download:
    """A file answer, streamed in chunks so a large export never sits whole in memory as one response."""

    filename: str
    content_type: str
    chunks: Iterable[bytes]

    async def send(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": self.content_type,
            "Content-Disposition": f'attachment; filename="{self.filename}"',
            "Cache-Control": "no-store",
        })
        await response.prepare(request)
        for chunk in self.chunks:
            await response.write(chunk)
        await response.write_eof()
        return response


def _error_body(status: int, message: str) -> dict:
    """The one shape of every error this API answers."""
    return {"ok": False, "status": status, "error": message}


class EncodedJson:
    """A JSON answer encoded once and sent many times (a cached page of the model report), compressed once too.

    aiohttp compresses every answer anew: for a 20,000-model page (7-10 MB of JSON) that was most of a warm
    request, 20-40 ms of the event loop's time each time.
    """

    def __init__(self, body: bytes):
        self.body = body
        self._gzipped: bytes | None = None

    async def gzipped(self) -> bytes:
        """Compressed in an executor thread the first time (two first asks at once may both compress it)."""
        if self._gzipped is None:
            compress = partial(gzip.compress, self.body, compresslevel=6, mtime=0)
            self._gzipped = await asyncio.get_running_loop().run_in_executor(None, compress)
        return self._gzipped


async def _send_encoded(request: web.Request, data: EncodedJson, status: int, headers: dict) -> web.Response:
    """`data` as it is, or gzipped for a client that takes it."""
    headers = {**headers, "Cache-Control": "no-store", "Vary": "Accept-Encoding"}
    body = data.body
    if len(body) > COMPRESS_ABOVE_BYTES and "gzip" in request.headers.get("Accept-Encoding", "").lower():
        body = await data.gzipped()
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def encode_json(data) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: a file name that is not UTF-8, a header echoed back
        return json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def query_params(request: web.Request, allowed: set[str]) -> dict[str, str]:
    """The query parameters, refusing names this route does not know (a typo should not pass silently)."""
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise ApiError(400, f"unknown query parameter {unknown[0]!r}; this route takes: {known}")
    params = {name: request.query.get(name) for name in request.query}
    for name, value in params.items():
        _require_storable([name, value], f"the query parameter {ascii(name)}")
    return params


def path_values(request: web.Request) -> dict[str, str]:
    """The values matched in the route's path ({model_type}, {model_name}...), each one storable."""
    values = dict(request.match_info)
    _require_storable(values, "the path")
    return values


def _require_storable(value, where: str) -> None:
    """Refuse text SQLite cannot store or a name cannot hold (a lone surrogate, a NUL) anywhere in `value`.

    One check for every value a request brings (query, path, JSON body), so no handler meets such text and
    turns it into a 500. Iterative: a body nested near the JSON parser's depth limit must not exhaust the stack.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and not _is_storable(item):
            raise ApiError(400, f"{where} holds text that cannot be stored ({ascii(item[:MAX_QUERY_LENGTH])}): "
                                "a NUL character or a lone surrogate; send valid Unicode text without NUL")


def _is_storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def choices_param(params: dict[str, str], name: str, allowed: tuple[str, ...] | None) -> set[str]:
    """A comma-separated parameter such as status=safe_to_remove,consider_removing."""
    value = params.get(name)
    if value is None:
        return set()
    chosen = {part.strip() for part in value.split(",") if part.strip()}
    if not chosen or any(len(c) > MAX_QUERY_LENGTH or not re.fullmatch(r"[\w.\-]+", c) for c in chosen):
        raise ApiError(400, f"{name} must be a comma-separated list of names")
    bad = sorted(chosen - set(allowed)) if allowed is not None else []
    if bad:
        raise ApiError(400, f"unknown {name} {bad[0]!r}; use one of: {', '.join(allowed)}")
    return chosen


def text_param(params: dict[str, str], name: str, lower: bool = True) -> str:
    value = params.get(name) or ""
    if len(value) > MAX_QUERY_LENGTH:
        raise ApiError(400, f"{name} is longer than {MAX_QUERY_LENGTH} characters")
    return value.lower() if lower else value


def one_of_param(params: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name, default)
    if value not in allowed:
        raise ApiError(400, f"unknown {name} {value[:MAX_QUERY_LENGTH]!r}; use one of: {', '.join(allowed)}")
    return value


def days_param(params: dict[str, str]) -> int | None:
    """`days`: 7, 30, 90 or any whole number up to MAX_DAYS, or 'all' (the default): None."""
    value = params.get("days", "all")
    if value == "all":
        return None
    if not re.fullmatch(r"\d{1,4}", value) or not 1 <= int(value) <= MAX_DAYS:
        raise ApiError(400, f"days must be all or a whole number of days from 1 to {MAX_DAYS} (e.g. 7, 30, 90)")
    return int(value)


def integer_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if not re.fullmatch(r"\d{1,10}", value) or not low <= int(value) <= high:
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}")
    return int(value)


async def json_body(request: web.Request):
    if request.content_type != "application/json":
        raise ApiError(415, "send the body as JSON with the header Content-Type: application/json")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = await request.text()
    except web.HTTPException as error:  # e.g. over ComfyUI's upload size limit
        raise ApiError(error.status, f"could not read the body ({error.reason})") from None
    except (UnicodeDecodeError, LookupError) as error:  # not UTF-8, or an unknown charset
        raise ApiError(400, f"the body is not valid JSON ({error})") from None
    if len(text) > MAX_BODY_BYTES:
        raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ApiError(400, f"the body is not valid JSON ({error})") from None
    _require_storable(body, "the JSON body")
    return body


def from_this_computer(request: web.Request) -> bool:
    """A client on this machine, asking by a loopback name, from a loopback page or from no page (a script).
    A reverse proxy on this machine counts as local: it is the user's own."""
    origin = request.headers.get("Origin")
    host_name, _port = split_host(request.headers.get("Host"), 80)
    origin_name, _port = split_host(origin.partition("://")[2], 80) if origin else ("localhost", None)
    return is_loopback(request.remote) and is_loopback(host_name) and is_loopback(origin_name)


def is_short_text(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 1000
