"""The filter language: parsing (errors name the path), MongoDB's matching rules, equalities, and
the Milvus expressions it compiles to (their behaviour on Milvus: tests/app/test_index_milvus.py)."""

from __future__ import annotations

import pytest

from app.errors import InvalidInput
from app.index.filters import MAX_FILTER_DEPTH, MAX_FILTER_TERMS, milvus_string, parse_filter, to_milvus_expr


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"$or": [{"a": 1}, {"year": {"$gt": True}}]}, r"^filter\.\$or\[1\]\.year: \$gt needs a number or a string"),
        ({"year": {"$gtt": 1}}, r"^filter\.year: unknown operator '\$gtt'; use one of \$eq, \$ne, \$gt, \$gte"),
        ({"$not": {"a": 1}}, r"^filter\.\$not: unknown operator '\$not'; at this level use \$and, \$or"),
        ({"a": {"$in": []}}, r"^filter\.a: \$in needs a non-empty list"),
        ({"a": {"$nin": "x"}}, r"^filter\.a: \$nin needs a non-empty list"),
        ({"a": {"$in": [1, [2]]}}, r"^filter\.a\.\$in\[1\]: \$in compares with a string, number, boolean or null"),
        ({"a": [1, 2]}, r"^filter\.a: \$eq compares with .* not an array"),
        ({"a": {"b": 1}}, r"^filter\.a: \$eq compares with .* not an object"),
        ({"a": {"$eq": 1, "b": 2}}, r"^filter\.a: mixes operators and plain keys"),
        ({"$and": []}, r"^filter\.\$and: \$and needs a non-empty list of filters"),
        ({"$or": [{}]}, r"^filter\.\$or\[0\]: an empty filter inside"),
        ({"$or": [3]}, r"^filter\.\$or\[0\]: a filter is a JSON object, not a number"),
        ({"a": {"$lt": float("inf")}}, r"finite"),
        ({"a": 2**64}, r"64-bit"),
        ([1], r"^filter: a filter is a JSON object, not an array"),
    ],
)
def test_bad_filters_are_refused_naming_the_path(raw, message):
    with pytest.raises(InvalidInput, match=message):
        parse_filter(raw)


def test_hostile_filters_are_bounded():
    deep: dict = {"a": 1}
    for _ in range(10_000):  # far deeper than the stack: refused at MAX_FILTER_DEPTH, never recursed into
        deep = {"$or": [deep]}
    with pytest.raises(InvalidInput, match=f"nested more than {MAX_FILTER_DEPTH} levels"):
        parse_filter(deep)
    with pytest.raises(InvalidInput, match=f"more than {MAX_FILTER_TERMS} conditions"):
        parse_filter({"a": {"$in": list(range(MAX_FILTER_TERMS + 1))}})
    wide = {"$or": [{"$or": [{"k": i} for i in range(40)]} for _ in range(40)]}
    with pytest.raises(InvalidInput, match=f"more than {MAX_FILTER_TERMS} conditions"):
        parse_filter(wide)


@pytest.mark.parametrize(
    ("raw", "metadata", "expected"),
    [
        ({"n": 1}, {"n": 1.0}, True),  # numbers compare by value
        ({"n": 1}, {"n": True}, False),  # a boolean is not a number
        ({"n": True}, {"n": 1}, False),
        ({"n": {"$gt": 0}}, {"n": True}, False),
        ({"n": {"$gt": 1}}, {"n": "2"}, False),  # number vs string: false
        ({"n": {"$lt": "b"}}, {"n": "a"}, True),
        ({"n": {"$ne": 1}}, {}, True),  # MongoDB: $ne and $nin match a missing key
        ({"n": {"$nin": [1]}}, {}, True),
        ({"n": {"$ne": 1}}, {"n": "1"}, True),
        ({"n": {"$gt": 1}}, {}, False),
        ({"n": {"$in": [1, None]}}, {}, True),  # null: missing or null
        ({"n": None}, {"n": None}, True),
        ({"n": {"$ne": None}}, {"n": 0}, True),
        ({"n": 1}, {"n": [1, 2]}, False),  # no matching of array elements
        ({"n": {"$gte": 1, "$lte": 1}}, {"n": 1}, True),
        ({"a": 1, "b": 2}, {"a": 1}, False),  # several keys: and
        ({}, {"anything": 1}, True),
    ],
)
def test_matches_follows_mongodb(raw, metadata, expected):
    assert parse_filter(raw).matches(metadata) is expected


def test_equalities_are_what_every_match_must_have():
    f = parse_filter({"a": 1, "b": {"$gt": 2}, "$and": [{"c": "x"}, {"$or": [{"d": 1}, {"d": 2}]}], "e": None})
    assert f.equalities() == {"a": 1, "c": "x"}  # not d (in an $or), not e (null also matches missing)
    assert parse_filter({"$or": [{"a": 1}]}).equalities() == {}


def test_milvus_expressions():
    f = parse_filter({"year": {"$gt": 2020, "$ne": 2022}, "tag": {"$in": ["a", "b"]}, "x": None, "big": 1e300})
    assert to_milvus_expr(f) == (
        '(metadata["year"] > 2020 and (not exists metadata["year"] or metadata["year"] != 2022) and '
        '(metadata["tag"] == "a" or metadata["tag"] == "b") and (not exists metadata["x"]) and '
        'metadata["big"] == 1e+300)'
    )
    assert to_milvus_expr(parse_filter({"$or": [{"f": True}, {"f": {"$lt": -1.5}}]}), field="m") == (
        '(m["f"] == true or m["f"] < -1.5)'
    )
    assert to_milvus_expr(parse_filter({})) == ""


def test_strings_are_escaped_so_no_quote_ends_them():
    assert milvus_string('a"b\\c\nd\te\r😀') == '"a\\"b\\\\c\\nd\\te\\r😀"'
    injected = to_milvus_expr(parse_filter({'k"] == 1 or metadata["k': '" or id != "'}))
    assert injected == 'metadata["k\\"] == 1 or metadata[\\"k"] == "\\" or id != \\""'
