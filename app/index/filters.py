"""The metadata filter language of `/search`, shared by every index backend (pure: no I/O).

A filter is a JSON object in the operator convention of MongoDB and Chroma:

    {"colour": "red"}                                   equality (= {"colour": {"$eq": "red"}})
    {"year": {"$gte": 2020, "$lt": 2024}}               several operators on a key: all must hold
    {"tag": {"$in": ["a", "b"]}, "kind": {"$ne": "x"}}  several keys at one level: all must hold
    {"$or": [{"tag": "a"}, {"$and": [{"n": {"$gt": 1}}, {"n": {"$lt": 5}}]}]}

Operators: `$eq $ne $gt $gte $lt $lte $in $nin` on a metadata key, `$and`/`$or` over non-empty
lists of filters. Values are scalars: strings, finite numbers, booleans and null (arrays and
objects are refused; `$in`/`$nin` take a non-empty list of scalars). `{}` matches everything
(it is refused inside `$and`/`$or`). Bounds: `MAX_FILTER_DEPTH`, `MAX_FILTER_TERMS`.

Semantics (MongoDB's for scalars, where it has one):
- values compare only within a type: numbers with numbers (1 == 1.0), strings with strings (by
  code point), booleans with booleans. A boolean is not a number. `$gt` between a number and a
  string is false. Order operators take a number or a string.
- a missing key matches no `$eq`/`$gt`/... /`$in`, but does match `$ne` and `$nin` (the item does
  not have that value), as in MongoDB; `{"k": null}` matches a missing key or a null value and
  `{"k": {"$ne": null}}` a present, non-null one.
- a stored array or object equals no scalar (unlike MongoDB, there is no matching of array elements).

`to_milvus_expr` compiles a filter to a Milvus boolean expression over a JSON field with the same
meaning (see its docstring for the one difference of Milvus Lite).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from app.errors import InvalidInput

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
MEMBERSHIP = ("$in", "$nin")
OPERATORS = COMPARISONS + MEMBERSHIP
GROUPS = ("$and", "$or")
MAX_FILTER_DEPTH = 8  # nested $and/$or levels
MAX_FILTER_TERMS = 512  # conditions and list entries in one filter (bounds parse, match and compile)
INT64 = 2**63 - 1

Scalar = Union[str, int, float, bool, None]  # noqa: UP007 — a runtime alias


@dataclass(frozen=True)
class Condition:
    """`metadata[key] <op> value`; `value` is a tuple of scalars for $in/$nin."""

    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class Group:
    """`$and` (all parts hold; none = always) or `$or` (one part holds)."""

    op: str
    parts: tuple[Condition | Group, ...]


@dataclass(frozen=True)
class Filter:
    """A parsed filter (see the module docstring): build it with `parse_filter`."""

    root: Group

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Whether an item with this metadata passes."""
        return _matches(self.root, metadata)

    def equalities(self) -> dict[str, Scalar]:
        """Key → non-null value that every matching item has (top-level `$eq`s, also inside a top-level
        `$and`), for pre-selecting candidates from postings. Numbers are equal by value (1 == 1.0)."""
        found: dict[str, Scalar] = {}
        pending = [self.root]
        while pending:
            for part in pending.pop().parts:
                if isinstance(part, Group) and part.op == "$and":
                    pending.append(part)
                elif isinstance(part, Condition) and part.op == "$eq" and part.value is not None:
                    found.setdefault(part.key, part.value)
        return found

    def __bool__(self) -> bool:
        """False for the filter that matches everything (`{}`)."""
        return bool(self.root.parts)


# --- parsing ------------------------------------------------------------------------------------


def parse_filter(raw: Any, where: str = "filter") -> Filter:
    """Check a filter as sent; `InvalidInput` names the path of the first fault
    (e.g. `filter.$or[1].year: $gt needs a number or a string`)."""
    budget = [MAX_FILTER_TERMS]
    return Filter(_parse_level(raw, where, 1, budget))


def as_filter(filter: Filter | Mapping[str, Any] | None) -> Filter | None:
    """A backend's `filter` argument as a `Filter`: parsed when raw, None for none."""
    return parse_filter(filter) if filter is not None and not isinstance(filter, Filter) else filter


def _spend(budget: list[int], n: int, where: str) -> None:
    budget[0] -= n
    if budget[0] < 0:
        raise InvalidInput(f"{where}: the filter has more than {MAX_FILTER_TERMS} conditions and list entries")


def _parse_level(raw: Any, where: str, depth: int, budget: list[int]) -> Group:
    """One filter object: keys (and-ed) and `$and`/`$or` groups."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: a filter is a JSON object, not {_kind(raw)}")
    if depth > MAX_FILTER_DEPTH:
        raise InvalidInput(f"{where}: $and/$or nested more than {MAX_FILTER_DEPTH} levels deep")
    if depth > 1 and not raw:
        raise InvalidInput(f"{where}: an empty filter inside $and/$or (it would match everything)")
    parts: list[Condition | Group] = []
    for key, value in raw.items():
        path = f"{where}.{key}"
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"{where}: keys must be non-empty strings")
        if key in GROUPS:
            if not isinstance(value, list) or not value:
                raise InvalidInput(f"{path}: {key} needs a non-empty list of filters")
            _spend(budget, len(value), path)
            parts.append(
                Group(key, tuple(_parse_level(v, f"{path}[{i}]", depth + 1, budget) for i, v in enumerate(value)))
            )
        elif key.startswith("$"):
            raise InvalidInput(
                f"{path}: unknown operator {key!r}; at this level use {', '.join(GROUPS)} or a metadata key"
            )
        else:
            parts.extend(_parse_key(key, value, path, budget))
    return Group("$and", tuple(parts))


def _parse_key(key: str, value: Any, where: str, budget: list[int]) -> list[Condition]:
    """The conditions on one key: a plain value (equality) or an operator object."""
    if isinstance(value, Mapping) and value and all(isinstance(op, str) and op.startswith("$") for op in value):
        _spend(budget, len(value), where)
        return [_parse_operator(key, op, operand, where, budget) for op, operand in value.items()]
    if isinstance(value, Mapping) and any(isinstance(op, str) and op.startswith("$") for op in value):
        raise InvalidInput(f"{where}: mixes operators and plain keys; write operators only ({', '.join(OPERATORS)})")
    _spend(budget, 1, where)
    return [Condition(key, "$eq", _scalar(value, where, "$eq"))]


def _parse_operator(key: str, op: str, operand: Any, where: str, budget: list[int]) -> Condition:
    if op in MEMBERSHIP:
        if not isinstance(operand, list) or not operand:
            raise InvalidInput(f"{where}: {op} needs a non-empty list of strings, numbers, booleans or nulls")
        _spend(budget, len(operand), where)
        return Condition(key, op, tuple(_scalar(v, f"{where}.{op}[{i}]", op) for i, v in enumerate(operand)))
    if op in ("$eq", "$ne"):
        return Condition(key, op, _scalar(operand, where, op))
    if op in COMPARISONS:
        if isinstance(operand, bool) or not isinstance(operand, int | float | str):
            raise InvalidInput(f"{where}: {op} needs a number or a string, not {_kind(operand)}")
        return Condition(key, op, _scalar(operand, where, op))
    raise InvalidInput(f"{where}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}")


def _scalar(value: Any, where: str, op: str) -> Scalar:
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        if abs(value) > INT64:
            raise InvalidInput(f"{where}: {op}: integer {value} is out of the 64-bit range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{where}: {op}: numbers must be finite, not {json.dumps(value)}")
        return value
    raise InvalidInput(f"{where}: {op} compares with a string, number, boolean or null, not {_kind(value)}")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__


# --- matching -----------------------------------------------------------------------------------

_MISSING = object()


def _matches(node: Condition | Group, metadata: Mapping[str, Any]) -> bool:
    if isinstance(node, Group):
        test = all if node.op == "$and" else any
        return test(_matches(part, metadata) for part in node.parts)
    stored = metadata.get(node.key, _MISSING)
    if node.op == "$in":
        return any(_equal(stored, v) for v in node.value)
    if node.op == "$nin":
        return not any(_equal(stored, v) for v in node.value)
    if node.op == "$eq":
        return _equal(stored, node.value)
    if node.op == "$ne":
        return not _equal(stored, node.value)
    return _ordered(stored, node.op, node.value)


def _type_class(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _equal(stored: Any, value: Scalar) -> bool:
    if value is None:
        return stored is None or stored is _MISSING
    return _type_class(stored) == _type_class(value) and stored == value


def _ordered(stored: Any, op: str, value: int | float | str) -> bool:
    if _type_class(stored) != _type_class(value):
        return False
    if op == "$gt":
        return stored > value
    if op == "$gte":
        return stored >= value
    if op == "$lt":
        return stored < value
    return stored <= value


# --- Milvus -------------------------------------------------------------------------------------

_MILVUS_CMP = {"$eq": "==", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def milvus_string(text: str) -> str:
    """A Milvus string literal: double quotes; backslash, quote, newline, CR and tab escaped (the
    escapes both Milvus's grammar and Milvus Lite's tokenizer read), every other character as is."""
    return f'"{text.translate(_ESCAPES)}"'


def to_milvus_expr(filter: Filter, field: str = "metadata") -> str:
    """The filter as a Milvus boolean expression over the JSON field `field` ("" for `{}`).

    Milvus gives a missing key, a null or a value of another type an unknown result that `not`
    keeps unknown, so the expression has no `not` over a comparison: `$ne` becomes
    `not exists f["k"] or f["k"] != v`, `$in` an `or` of `==` (Milvus Lite takes no `in` on a JSON
    key), `{"k": null}` becomes `not exists f["k"]` (true for missing or null). Checked against
    Milvus Lite, whose Python engine differs in one way: it takes `true` for 1 and `false` for 0.
    """
    if not filter:
        return ""
    return _milvus(filter.root, field)


def _milvus(node: Condition | Group, field: str) -> str:
    if isinstance(node, Group):
        joiner = " and " if node.op == "$and" else " or "
        parts = [_milvus(part, field) for part in node.parts]
        return parts[0] if len(parts) == 1 else "(" + joiner.join(parts) + ")"
    ref = f"{field}[{milvus_string(node.key)}]"
    if node.op in MEMBERSHIP:
        op = "$eq" if node.op == "$in" else "$ne"
        joiner = " or " if node.op == "$in" else " and "
        parts = [_milvus(Condition(node.key, op, v), field) for v in node.value]
        return parts[0] if len(parts) == 1 else "(" + joiner.join(parts) + ")"
    if node.value is None:
        return f"(not exists {ref})" if node.op == "$eq" else f"(exists {ref})"
    comparison = f"{ref} {_MILVUS_CMP[node.op]} {_milvus_literal(node.value)}"
    return f"(not exists {ref} or {comparison})" if node.op == "$ne" else comparison


def _milvus_literal(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return milvus_string(value)
    return repr(value)  # ints exactly; floats as the shortest repr that round-trips (1e+300, 5e-324)
