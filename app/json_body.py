"""JSON request bodies are strict UTF-8: every route's body parser refuses (→ 400) what is not.

Python's `json.loads(bytes)` decodes with `surrogatepass`, so CESU-8 bytes (`ED A0 80`) pass as
a lone surrogate, and a `"\\ud800"` escape yields one too; such a string cannot be written back
as UTF-8 (the log, a response), so it is refused at the door like any byte that is not UTF-8.
A leading byte-order mark is ignored, as RFC 8259 allows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # in the JSON text: a (perhaps paired) surrogate escape
SURROGATE = re.compile("[\ud800-\udfff]")  # in a parsed string: paired escapes became one character


def _not_utf8(problem: str) -> HTTPException:
    return HTTPException(400, f"request body is not valid UTF-8 JSON: {problem}")


def parse_json(body: bytes) -> Any:
    """The JSON value of `body`, which must be UTF-8 whose strings are all valid Unicode."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _not_utf8(f"{error.reason} at byte {error.start}") from None
    value = json.loads(text)
    if SURROGATE_ESCAPE.search(text):
        _refuse_unpaired_surrogates(value)
    return value


def _refuse_unpaired_surrogates(value: Any) -> None:
    pending = [value]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            pending.extend(node.keys())
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, str) and (found := SURROGATE.search(node)):
            raise _not_utf8(f"a string holds the unpaired surrogate \\u{ord(found.group()):04x}")


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """The route class of every router: its JSON body is parsed by `parse_json`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_json_handler
