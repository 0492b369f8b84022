"""Limits from the server's settings, carried by the schemas: one annotation per field drives
both its validation (a 422 that says the limit) and the OpenAPI document (`maxItems`,
`maxLength`, `maximum`).

    texts: Annotated[list[Text], MAX_ITEMS]              # at most PCCLIP_MAX_ITEMS entries
    k: Annotated[int, Maximum("max_search_k")] = 10     # at most PCCLIP_MAX_SEARCH_K

Settings are per app (tests build apps with different limits in one process), so a bound is
read when it is used: from the settings of the app serving the request or building its
document (`serving`, set by `app.limits.SchemaLimitsMiddleware` and `app.openapi`). Outside
both (`app.client` checking a body before sending it, a script) there is no bound: limits are
a server's, and the server checks them.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sized
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from app.settings import Settings

_serving: ContextVar[Settings | None] = ContextVar("pcclip_serving_settings", default=None)


@contextmanager
def serving(settings: Settings) -> Iterator[None]:
    """Bounds are read from `settings` inside this block."""
    token = _serving.set(settings)
    try:
        yield
    finally:
        _serving.reset(token)


def limit(setting: str) -> int:
    """The value of `setting` for the app being served, for a check that spans several fields."""
    settings = _serving.get()
    if settings is None:
        raise LookupError(f"no app is being served here to read {setting!r} from (see app.schemas.limits)")
    return getattr(settings, setting)


def _bound(setting: str) -> int | None:
    """The value of `setting` for the app being served; None outside one (no bound)."""
    settings = _serving.get()
    return None if settings is None else getattr(settings, setting)


class Bound(ABC):
    """An annotation: the value is bounded by the setting `setting`. Subclasses say what is
    bounded (`check`) and how the document says it (`keyword` on nodes of `json_types`)."""

    keyword: ClassVar[str]
    json_types: ClassVar[tuple[str, ...]]
    before: ClassVar[bool] = False  # checked on the raw input, before the value itself is validated

    def __init__(self, setting: str) -> None:
        if setting not in Settings.model_fields:
            raise ValueError(f"{setting!r} is not a setting; bounds name fields of app.settings.Settings")
        self.setting = setting

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.setting!r})"

    @abstractmethod
    def check(self, value: Any, bound: int) -> None:
        """Raise PydanticCustomError when `value` is over `bound`."""

    def _validate(self, value: Any) -> Any:
        bound = _bound(self.setting)
        if bound is not None:
            self.check(value, bound)
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        schema = handler(source)
        if self.before:
            return core_schema.no_info_before_validator_function(self._validate, schema)
        return core_schema.no_info_after_validator_function(self._validate, schema)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        bound = _bound(self.setting)
        if bound is None:
            return json_schema
        json_schema = copy.deepcopy(json_schema)  # never write into a shared constant (WithJsonSchema's)
        for node in (json_schema, *json_schema.get("anyOf", ())):  # the node, or the variants of a union
            if node.get("type") in self.json_types:
                node[self.keyword] = bound
        return json_schema


class MaxItems(Bound):
    """At most `setting` entries in a list (checked before the entries are validated, so an
    oversized list costs no per-entry work). In a union, only the list is bounded."""

    keyword = "maxItems"
    json_types = ("array",)
    before = True

    def check(self, value: Any, bound: int) -> None:
        if isinstance(value, Sized) and not isinstance(value, str | bytes | Mapping) and len(value) > bound:
            raise PydanticCustomError(
                "too_long", "{count} entries; at most {limit} per request", {"count": len(value), "limit": bound}
            )


class MaxChars(Bound):
    """At most `setting` characters in a string."""

    keyword = "maxLength"
    json_types = ("string",)

    def check(self, value: Any, bound: int) -> None:
        if isinstance(value, str) and len(value) > bound:
            raise PydanticCustomError(
                "too_long", "{length} characters; at most {limit}", {"length": len(value), "limit": bound}
            )


class Maximum(Bound):
    """A number of at most `setting`."""

    keyword = "maximum"
    json_types = ("integer", "number")

    def check(self, value: Any, bound: int) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool) and value > bound:
            raise PydanticCustomError("less_than_equal", "{value}; at most {limit}", {"value": value, "limit": bound})


MAX_ITEMS = MaxItems("max_items")  # every list of a request, unless it has its own setting
MAX_CHARS = MaxChars("max_text_chars")  # every text of a request
