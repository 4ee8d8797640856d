"""orjson and the standard library give the same results, value for value and error for error.

`smartcar_async._json` reads and writes JSON with orjson when it is installed.
These tests hold it to the standard library on the suite's hostile cases (the
ones tests/models/test_hostile_envelopes.py and tests/transport send: NaN,
Infinity, 1e400, 400-digit and just-past-64-bit ints, nesting deeper than the
parser goes, BOMs, UTF-16, bad UTF-8, lone surrogates, duplicate keys) and on
whatever Hypothesis writes; then through the real client and emulator over
loopback, once per codec, with the same answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import json
from typing import Any

import attrs
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from speedups_support import need, orjson_codec, outcome
from support import TOKEN, make_client, serve

import smartcar_async as sc
from smartcar_async import _json
from smartcar_async.testing import Emulator

HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


HOSTILE_TEXTS = [
    "NaN",
    "[Infinity,-Infinity]",
    '{"distance": NaN}',
    "1e400",
    "-1e999",
    "1.7976931348623157e309",
    "4.9e-325",
    "9" * 400,
    "9" * 5000,  # past int's default digit limit: a ValueError
    "1" + "0" * 19,
    str(2**63),
    str(2**64 - 1),
    str(2**64),
    str(-(2**63)),
    str(-(2**63) - 1),
    "[12345678901234567890.5]",
    '"12345678901234567890123"',
    "-0",
    "-0.0",
    "1E5",
    "0.1",
    "1.0000000000000000000000001",
    nested(60),
    nested(200),
    nested(600),
    nested(1_100),
    nested(5_000),
    '{"a": 1, "a": 2, "b": 3}',
    '"\\ud800"',
    '"\\ud83d\\ude00"',
    '"\\u0000"',
    '"tab\there"',
    "[1,]",
    "00",
    "",
    "   ",
    " [1] ",
    "[1] x",
    "true\x00",
    "<html>not json</html>",
    '{"responses": [{"path": "/odometer", "code": 200, "body": {"distance": 1}}]}',
]
HOSTILE_BYTES = [
    b"\xef\xbb\xbf" + b'{"a": 1}',  # a UTF-8 BOM: json.loads(bytes) reads it
    '{"a": "é"}'.encode("utf-16"),
    '{"a": "é"}'.encode("utf-16-be"),
    '{"a": "é"}'.encode("utf-32"),
    b'"\xff"',
    b'"\xc3"',
    b'{"a": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8
    b"\x00",
    bytearray(b'{"a": 1}'),
]


def test_orjson_errors_are_the_standard_librarys_kinds() -> None:
    orjson = need("orjson")
    assert issubclass(orjson.JSONDecodeError, json.JSONDecodeError)
    assert issubclass(orjson.JSONEncodeError, TypeError)


def test_the_backend_is_orjson_exactly_when_the_codec_is_in_use() -> None:
    expected = _json.orjson_loads if _json.BACKEND == "orjson" else json.loads
    assert _json.loads is expected


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=lambda t: repr(t[:24]))
def test_hostile_text_reads_the_same(text: str) -> None:
    loads, _ = orjson_codec()
    assert outcome(lambda: loads(text)) == outcome(lambda: json.loads(text))
    raw = text.encode()
    assert outcome(lambda: loads(raw)) == outcome(lambda: json.loads(raw))


@pytest.mark.parametrize("raw", HOSTILE_BYTES, ids=repr)
def test_hostile_bytes_read_the_same(raw: bytes) -> None:
    loads, _ = orjson_codec()
    assert outcome(lambda: loads(raw)) == outcome(lambda: json.loads(raw))


@pytest.mark.parametrize("text", ["\ufeff{}", '{"a": "\ud800"}', '"\udfff"'], ids=repr)
def test_strings_the_bytes_path_cannot_hold_read_the_same(text: str) -> None:
    loads, _ = orjson_codec()
    assert outcome(lambda: loads(text)) == outcome(lambda: json.loads(text))


def test_a_big_int_is_an_int_not_a_float() -> None:
    loads, _ = orjson_codec()
    assert loads(b'{"distance": 18446744073709551616}') == {"distance": 2**64}
    assert type(loads(b"-9223372036854775809")) is int


# --- Hypothesis: JSON text with what json.dumps will not write -------------------

fragments = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "9" * 400,
        "1" + "0" * 19,
        str(-(2**63) - 1),
        '"\\ud800"',
        '"é\\u00e9"',
        "1e-7",
        nested(70),
    ]
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.floats(min_value=1e14, max_value=1e18),
    st.text(max_size=8),
    st.text(st.characters(max_codepoint=0x7F), max_size=8),
)


def _text(value: Any) -> str:
    if isinstance(value, tuple):  # a raw fragment
        return str(value[0])
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return json.dumps(value)


hostile_documents = st.recursive(
    st.one_of(json_scalars, st.tuples(fragments)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=20,
)


@HYPOTHESIS
@given(hostile_documents, st.sampled_from(["", " ", "\ufeff", "x"]))
def test_any_document_reads_the_same(document: Any, edge: str) -> None:
    loads, _ = orjson_codec()
    text = _text(document)
    text = edge + text if edge == "\ufeff" else text + edge
    assert outcome(lambda: loads(text)) == outcome(lambda: json.loads(text))
    raw = text.encode("utf-8", "surrogatepass")
    assert outcome(lambda: loads(raw)) == outcome(lambda: json.loads(raw))


@HYPOTHESIS
@given(st.binary(max_size=48) | st.text('[]{}":,0123456789.eE-+ ntrufalsNIy\\u\ufeff', max_size=48))
def test_any_bytes_read_the_same(data: bytes | str) -> None:
    loads, _ = orjson_codec()
    assert outcome(lambda: loads(data)) == outcome(lambda: json.loads(data))


# --- writing ------------------------------------------------------------------------

json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=20,
)


@HYPOTHESIS
@given(json_values)
def test_any_value_writes_the_same_bytes(value: Any) -> None:
    _, dumps = orjson_codec()
    assert outcome(lambda: dumps(value)) == outcome(lambda: _json.stdlib_dumps(value))


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        [float("inf"), float("-inf")],
        {"value": 1e-5, "big": 1e16, "small": 1.5e-7, "f": 12345678901234567.0},
        2**64,
        -(2**63) - 1,
        {1: "int key", None: "null key", 2.5: "float key", False: "bool key"},
        ("a", "tuple"),
        'é\u2028\x7f\x00\x1f"\\/',
        {"path": "/odometer"},
        Colour.RED,
        Level.HIGH,
        {Colour.RED: Level.HIGH},
        datetime.datetime(2024, 1, 1),
        Point(1),
        object(),
        {1, 2},
        b"bytes",
        _circular(),
    ],
    ids=repr,
)
def test_what_orjson_would_write_otherwise_goes_to_the_standard_library(value: Any) -> None:
    _, dumps = orjson_codec()
    assert outcome(lambda: dumps(value)) == outcome(lambda: _json.stdlib_dumps(value))


def test_deeper_than_orjson_writes_is_still_written() -> None:
    _, dumps = orjson_codec()
    deep: Any = 1
    for _ in range(300):  # orjson stops at 254 levels
        deep = [deep]
    assert dumps(deep) == _json.stdlib_dumps(deep)


# --- the same answers through the client, the stub and the emulator, per codec -------

READS = ("odometer", "location", "tire_pressure", "vin", "lock_status")
ENVELOPES: list[bytes] = [
    b'{"responses":[{"path":"/odometer","code":200,"body":{"distance":NaN}}]}',
    b'{"responses":[{"path":"/odometer","code":200,"body":{"distance":1e400}}]}',
    b'{"responses":[{"path":"/odometer","code":200,"body":{"distance":18446744073709551616}}]}',
    b'{"responses":[{"path":"/odometer","code":200,"body":{"distance":' + b"9" * 400 + b"}}]}",
    b'{"responses":[{"path":"/odometer","code":200,"body":{"distance":1}},'
    b'{"path":"/vin","code":200,"body":{"vin":"\\ud800"}}]}',
    b'{"responses":[{"path":"/odometer","code":200,"body":' + nested(100).encode() + b"}]}",
    b'{"responses":[{"path":"/odometer","code":200,"body":' + nested(5000).encode() + b"}]}",
    b"\xef\xbb\xbf" + b'{"responses":[{"path":"/odometer","code":200,"body":{"distance":2}}]}',
    '{"responses":[{"path":"/odometer","code":200,"body":{"distance":3}}]}'.encode("utf-16"),
    b'{"responses":[{"path":"/odometer","code":200,"body":{"distance":"\xff"}}]}',
    b'{"responses":[{"path":"/odometer","code":200,"body":{"distance":4,"distance":5}}]}',
]


def _answer(value: object) -> object:
    """A read's outcome without what changes from run to run (timestamps, request ids)."""
    if isinstance(value, BaseException):
        return (type(value).__name__, str(value).split(" (request id")[0])
    if attrs.has(type(value)):
        return attrs.asdict(value, filter=lambda field, _: field.name != "meta")  # type: ignore[arg-type]
    return value


async def _read_each(client: sc.Client, vehicle_ids: list[str]) -> list[object]:
    answers: list[object] = []
    for vehicle_id in vehicle_ids:
        car = client.vehicle(vehicle_id, access_token=TOKEN)
        got = await asyncio.gather(
            *(getattr(car, name)() for name in READS), return_exceptions=True
        )
        answers.extend(_answer(value) for value in got)
    return answers


async def _hostile_and_emulated() -> list[object]:
    async def envelope(request: web.Request) -> web.Response:
        index = int(request.path.split("/")[3].removeprefix("car-"))
        return web.Response(body=ENVELOPES[index], content_type="application/json")

    async with serve(envelope) as stub, make_client(stub.url, max_retries=0) as client:
        answers = await _read_each(client, [f"car-{i}" for i in range(len(ENVELOPES))])
    emu = Emulator(vehicles=3, seed=7)
    emu.freeze_clock()  # the simulated cars move with time: both runs see them at the start
    async with emu, make_client(emu.url) as client:
        answers += await _read_each(client, list(emu.fleet.ids))
    return answers


async def test_the_client_and_the_emulator_answer_the_same_with_either_codec(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every call site reads `_json.loads`/`_json.dumps` when called: swapping both is enough."""
    fast_loads, fast_dumps = orjson_codec()
    codecs = {"stdlib": (json.loads, _json.stdlib_dumps), "orjson": (fast_loads, fast_dumps)}
    answers = {}
    for name, (loads, dumps) in codecs.items():
        monkeypatch.setattr(_json, "loads", loads)
        monkeypatch.setattr(_json, "dumps", dumps)
        answers[name] = await _hostile_and_emulated()
    assert answers["orjson"] == answers["stdlib"]
    # Not vacuous: some reads failed, some succeeded.
    kinds = {type(a) for a in answers["stdlib"]}
    assert tuple in kinds
    assert dict in kinds
