"""Example payloads shown in /docs; "Try it out" sends them as they are (tests post each one)."""

from __future__ import annotations

from pydantic.config import JsonDict

# 8×8 single-colour PNGs (tests/app/test_openapi.py checks their pixels).
RED_PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR42mP8z4AdMDEMKQkAzUEBD7t4NqoAAAAASUVORK5CYII="
BLUE_PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFUlEQVR42mNkYPjPgA0wMeAAg1MCAMtDAQ9w2TiCAAAAAElFTkSuQmCC"
)
GREEN_PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAE0lEQVR42mNkaGDACpgYGIaSBABqCACQdB1jOgAAAABJRU5ErkJggg=="
)

# JSON values, as `json_schema_extra` and OpenAPI examples take them.
RED: JsonDict = {"b64": RED_PNG_B64}
BLUE: JsonDict = {"b64": BLUE_PNG_B64}
GREEN: JsonDict = {"b64": GREEN_PNG_B64}
