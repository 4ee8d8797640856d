"""Hostile batch envelopes over real loopback HTTP: every caller gets a model or a SmartcarError.

Hypothesis writes batch envelopes as JSON *text* (so they can hold NaN,
Infinity, ``1e400``, 400-digit integers and nesting deeper than the parser
allows), with items that are not objects, paths that are not strings or not
requested or twice there, codes that are strings, bools, floats or out of
range, headers that are not objects, and bodies of every wrong shape. An
``aiohttp.web`` app on 127.0.0.1 serves them (one app for the module, in its
own thread, answering each example's script) to concurrent callers on one
Client: several paths per vehicle, so that they coalesce into one batch, and
the same path read by several callers.

Each example asserts that every caller resolves exactly once with a model of
the type it asked for or a SmartcarError subclass; that a path whose item is
a readable 2xx answer gets exactly the model that answer describes, whatever
its neighbours hold; that nothing hangs (anyio.fail_after); that no task is
left behind; that asyncio reports nothing (no "exception was never retrieved",
no "destroyed but pending"); and that the client still reads afterwards.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any

import anyio
import attrs
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import TOKEN, leftover_tasks, settle

import smartcar_async as sc
from smartcar_async._batch import Answer, RawItem
from smartcar_async._coalescer import Coalescer, QueueKey
from smartcar_async._converter import structure, unstructure
from smartcar_async._endpoints import model_for_path, normalize_path
from smartcar_async._observability import Counters, Hooks

HEALTHY = "vehicle-healthy"

# --- what a healthy answer looks like, per path ---------------------------------

GOOD: dict[str, Any] = {
    "/odometer": {"distance": 21919},
    "/location": {"latitude": 37.4292, "longitude": -122.1381},
    "/battery": {"percentRemaining": 0.3, "range": 40.5},
    "/fuel": {"amountRemaining": 53.2, "percentRemaining": 0.3, "range": 40.5},
    "/vin": {"vin": "1234A67Q90F2T4567"},
    "/charge": {"isPluggedIn": True, "state": "CHARGING"},
    "/security": {
        "isLocked": False,
        "doors": [
            {"type": "frontLeft", "status": "CLOSED"},
            {"type": "backLeft", "status": "OPEN"},
        ],
        "windows": [],
        "chargingPort": [{"type": "chargingPort", "status": "CLOSED"}],
    },
    "/tires/pressure": {"backLeft": 219.3, "backRight": 219, "frontLeft": 219.1, "frontRight": 219},
    "/diagnostics/dtcs": {"activeCodes": [{"code": "P302D", "timestamp": "2024-09-05T14:48:00Z"}]},
    "/": {"id": "36ab27d0", "make": "TESLA", "model": "Model S", "year": 2014},
    "/tesla/battery": {"percentRemaining": None, "range": None, "heaterOn": False},
}
MODELS: dict[str, type] = {path: model_for_path(path) for path in GOOD}
MODELS["/tesla/battery"] = sc.TeslaBattery

Read = Callable[[sc.Vehicle], Coroutine[Any, Any, Any]]
READERS: dict[str, Read] = {
    "/odometer": lambda car: car.odometer(),
    "/location": lambda car: car.location(),
    "/battery": lambda car: car.battery(),
    "/fuel": lambda car: car.fuel(),
    "/vin": lambda car: car.vin(),
    "/charge": lambda car: car.charge(),
    "/security": lambda car: car.lock_status(),
    "/tires/pressure": lambda car: car.tire_pressure(),
    "/diagnostics/dtcs": lambda car: car.diagnostic_trouble_codes(),
    "/": lambda car: car.attributes(),
    "/tesla/battery": lambda car: car.tesla.battery(),
}


# --- JSON text with what json.dumps will not write --------------------------------


@attrs.frozen
class Raw:
    """A JSON fragment written into the text as is: NaN, 1e400, 400 digits, deep nesting."""

    text: str


def dump(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)  # a float NaN or Infinity comes out as NaN / Infinity


def nested(depth: int) -> Raw:
    return Raw("[" * depth + "1" + "]" * depth)


# --- strategies -----------------------------------------------------------------

hostile_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(
        [
            Raw("NaN"),
            Raw("Infinity"),
            Raw("-Infinity"),
            Raw("1e400"),
            Raw("-1e999"),
            Raw("9" * 400),  # an int far past float and 64-bit range
            Raw("1" + "0" * 19),
            "21919",  # a string where a number goes
            "2024-13-45T99:00:00Z",
            "",
        ]
    ),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.builds(nested, st.integers(60, 200)),  # deep, yet within the parser's reach
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def bodies(draw: st.DrawFn, path: str) -> Any:
    """A body for a 2xx item: the healthy one, or one poisoned in a single place, or anything."""
    good = GOOD[path]
    how = draw(st.sampled_from(["good", "good", "good", "poison", "drop", "replace"]))
    if how == "good" or not good:
        return good
    if how == "replace":
        return draw(hostile_values)
    key = draw(st.sampled_from(sorted(good)))
    poisoned = dict(good)
    if how == "drop":
        del poisoned[key]
    else:
        poisoned[key] = draw(hostile_values)
    return poisoned


error_bodies = st.one_of(
    st.sampled_from(
        [
            {"type": "VEHICLE_STATE", "code": "ASLEEP", "statusCode": 409, "description": "zz"},
            {"type": "RATE_LIMIT", "code": "VEHICLE", "statusCode": 429},
            {"type": "SERVER", "code": "INTERNAL", "statusCode": 500},
            {"type": "PERMISSION", "code": None, "statusCode": 403, "resolution": "REAUTHENTICATE"},
            {"error": "vehicle_state_error", "message": "v1", "code": "VS_000"},
            {"type": Raw("NaN"), "statusCode": Raw("1e400")},
            {"statusCode": 10**30, "detail": {"x": 1}, "resolution": [1]},
            "an HTML page",
        ]
    ),
    hostile_values,
)
# Valid HTTP statuses, 2xx aside: each must give its callers a typed error.
error_codes = st.sampled_from(
    [150, 301, 400, 401, 403, 404, 408, 409, 418, 429, 430, 500, 501, 502, 503]
)
# Codes no HTTP answer has: the path fails, its neighbours do not.
bad_codes: st.SearchStrategy[Any] = st.sampled_from(
    ["200", True, False, 200.0, None, 99, 600, 10**30, Raw("1e400"), Raw("NaN"), [200], {}]
)
retry_after = st.sampled_from([0, 0.01, "0", "0.01", 30, "30", "soon", -5, Raw("NaN"), 1e6])
headers = st.one_of(
    st.just({}),
    st.builds(lambda ra: {"Retry-After": ra}, retry_after),
    st.builds(
        lambda ra: {"retry-after": ra, "sc-data-age": "2019-10-24T00:43:46.000Z"}, retry_after
    ),
    st.sampled_from(
        [
            {"sc-data-age": Raw("NaN"), "sc-unit-system": 5, "sc-fetched-at": "yesterday"},
            {"sc-data-age": "9999-12-31T23:59:59-23:59", "sc-request-id": ["x"]},
            [],
            "sc-data-age",
            None,
            Raw("1e400"),
        ]
    ),
)


def path_spelling(path: str) -> st.SearchStrategy[Any]:
    """The path as an item may spell it: normalisable variants, or ones that match nothing."""
    bare = path.strip("/")
    return st.sampled_from(
        [path, path, path, bare, f"/{bare}/", f"//{bare}", path.upper() + "X", 7, None, Raw("NaN")]
    )


@st.composite
def items_for(draw: st.DrawFn, path: str) -> list[dict[str, Any]]:
    """Zero to two items answering one requested path."""
    items = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 0, 2]))):
        kind = draw(st.sampled_from(["ok", "ok", "ok", "ok", "error", "bad_code"]))
        entry: dict[str, Any] = {"path": draw(path_spelling(path))}
        if kind == "ok":
            entry["code"] = draw(st.sampled_from([200, 200, 200, 201, 202]))
            entry["body"] = draw(bodies(path))
        elif kind == "error":
            entry["code"] = draw(error_codes)
            entry["body"] = draw(error_bodies)
        else:
            entry["code"] = draw(bad_codes)
            entry["body"] = draw(bodies(path))
        if draw(st.booleans()):
            entry["headers"] = draw(headers)
        for key in draw(st.lists(st.sampled_from(["code", "body", "headers"]), max_size=1)):
            entry.pop(key, None)
        items.append(entry)
    return items


junk_items: st.SearchStrategy[Any] = st.sampled_from(
    [
        1,
        "responses",
        None,
        [],
        {},
        {"code": 200, "body": {"distance": 1}},
        {"path": "/unknown/path", "code": 200, "body": {"distance": 1}, "headers": {}},
        {"path": ["/odometer"], "code": 200, "body": {"distance": 1}},
        {"path": "/odometer", "code": "oops", "body": nested(70)},
    ]
)


@attrs.frozen
class VehicleScript:
    vehicle_id: str
    callers: dict[str, int]  # path -> how many callers read it
    status: int  # of the batch envelope
    text: str  # the batch envelope, as sent


@st.composite
def vehicle_scripts(draw: st.DrawFn, vehicle_id: str) -> VehicleScript:
    paths = draw(st.lists(st.sampled_from(sorted(GOOD)), min_size=2, max_size=5, unique=True))
    callers = {path: draw(st.integers(1, 3)) for path in paths}
    items: list[Any] = []
    for path in paths:
        items.extend(draw(items_for(path)))
    items.extend(draw(st.lists(junk_items, max_size=3)))
    items = draw(st.permutations(items))
    shape = draw(
        st.sampled_from(
            ["ok"] * 15 + ["not_list", "top_array", "nan_top", "too_deep", "text", "http_500"]
        )
    )
    status = 200
    envelope: Any = {"responses": items}
    if shape == "not_list":
        envelope = {"responses": {"0": items[:1]}}
    elif shape == "top_array":
        envelope = items
    elif shape == "nan_top":
        envelope = {"responses": items, "count": Raw("NaN")}
    elif shape == "too_deep":  # deeper than the JSON parser goes: the whole body is unreadable
        envelope = {"responses": [*items, {"path": "/x", "code": 200, "body": nested(5000)}]}
    elif shape == "http_500":
        status = 500
    text = "<html>not json</html>" if shape == "text" else dump(envelope)
    return VehicleScript(vehicle_id, callers, status, text)


# --- the expected outcome, from the envelope as the client will read it ------------


def _readable(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def effective_items(text: str) -> dict[str, Any] | None:
    """Each normalised path's answering item, following the documented envelope rules.

    None when the envelope as a whole is unreadable.
    """
    body = _readable(text)
    if not isinstance(body, dict) or not isinstance(body.get("responses"), list):
        return None
    chosen: dict[str, Any] = {}
    for entry in body["responses"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        key = normalize_path(entry["path"])
        if key in chosen and _valid_code(chosen[key].get("code")):
            continue
        if key not in chosen or _valid_code(entry.get("code")):
            chosen[key] = entry
    return chosen


def _valid_code(code: object) -> bool:
    return type(code) is int and 100 <= code <= 599


def expected_model(entry: dict[str, Any] | None, path: str) -> Any:
    """The model a 2xx item describes, or None when callers must get an error instead."""
    if entry is None or not _valid_code(entry.get("code")) or not 200 <= entry["code"] < 300:
        return None
    try:
        return structure(MODELS[path], entry.get("body"))
    except sc.InvalidResponseError:
        return None


# --- the loopback server: one for the module, in its own thread -----------------------


class ScriptedServer:
    """Answers each vehicle's batch with its scripted envelope, and single GETs consistently."""

    def __init__(self) -> None:
        self.scripts: dict[str, VehicleScript] = {}
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile-envelopes", daemon=True)
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the loopback server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/v2.0/vehicles/{vid}/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        vid, tail = request.match_info["vid"], "/" + request.match_info["tail"]
        if vid == HEALTHY:
            return _json(200, dump(GOOD[normalize_path(tail)]))
        script = self.scripts.get(vid)
        if script is None:
            return _json(404, '{"type": "RESOURCE_NOT_FOUND", "code": "PATH"}')
        if request.method == "POST" and tail == "/batch":
            return _json(script.status, script.text)
        # A path sent alone (one caller, or a retry) gets its item as a plain answer.
        items = effective_items(script.text) if script.status == 200 else None
        entry = (items or {}).get(normalize_path(tail))
        if items is None or entry is None:
            return _json(404, '{"type": "RESOURCE_NOT_FOUND", "code": "PATH"}')
        code = entry.get("code")
        if not _valid_code(code) or code < 200 or code == 304:
            return _json(502, '"no HTTP answer has this status"')
        text = dump(entry["body"]) if "body" in entry else ""
        wait = (
            entry.get("headers", {}).get("Retry-After")
            if isinstance(entry.get("headers"), dict)
            else None
        )
        return _json(
            code, text, {"Retry-After": str(wait)} if isinstance(wait, int | float | str) else None
        )


def _json(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text, content_type="application/json", headers=headers)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def young_heap() -> Iterator[None]:
    """Exempt everything alive now from garbage collection while the test runs.

    Each example collects garbage to make asyncio report any future or task
    dropped with an unretrieved exception; with the older objects frozen, that
    collection walks only what the example made (well under a millisecond,
    against about 100 ms for the whole heap).
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# --- the property -------------------------------------------------------------------


async def run_example(server: ScriptedServer, scripts: list[VehicleScript]) -> None:
    loop = asyncio.get_running_loop()
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    outcomes: dict[tuple[str, str, int], list[Any]] = {}

    async def caller(car: sc.Vehicle, path: str, n: int) -> None:
        slot = outcomes.setdefault((car.vehicle_id, path, n), [])
        try:
            slot.append(await READERS[path](car))
        except sc.SmartcarError as exc:
            slot.append(exc)

    with anyio.fail_after(15):
        async with sc.Client(
            api_origin=server.url,
            timeout=5,
            max_retries=1,
            retry_backoff=0.001,
            max_backoff=0.002,
            max_retry_after=0.05,
            batch_window=0.005,
            close_timeout=2,
        ) as client:
            async with anyio.create_task_group() as tg:
                for script in scripts:
                    car = client.vehicle(script.vehicle_id, access_token=TOKEN)
                    for path, count in script.callers.items():
                        for n in range(count):
                            tg.start_soon(caller, car, path, n)
            # The client still works: a healthy vehicle reads normally, unless an
            # application-wide 429 now (rightly) holds every vehicle back.
            healthy = client.vehicle(HEALTHY, access_token=TOKEN)
            try:
                after: Any = await healthy.odometer()
            except sc.RateLimitError as exc:
                after = exc
            if isinstance(after, sc.RateLimitError):
                assert after.code == "SMARTCAR_API", after
            else:
                assert after == sc.Odometer(21919.0, meta=after.meta)
    await settle()
    gc.collect()
    await settle()
    assert leftover_tasks() == []
    assert reports == [], [context.get("message") for context in reports]

    for script in scripts:
        items = effective_items(script.text) if script.status == 200 else None
        for path, count in script.callers.items():
            entry = None if items is None else items.get(normalize_path(path))
            expected = expected_model(entry, path)
            for n in range(count):
                got = outcomes[(script.vehicle_id, path, n)]
                assert len(got) == 1, f"{path} resolved {len(got)} times"
                outcome = got[0]
                assert not isinstance(outcome, sc.ClientClosedError)
                if isinstance(outcome, sc.SmartcarError):
                    # A readable 2xx item is delivered whatever its neighbours hold.
                    assert expected is None, (path, outcome, entry)
                    continue
                assert type(outcome) is MODELS[path]
                json.dumps(unstructure(outcome), allow_nan=False)  # no NaN or Infinity inside
                assert expected is not None, (path, outcome, entry)
                assert attrs.evolve(outcome, meta=expected.meta) == expected  # type: ignore[misc]


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        # young_heap is meant to span every example.
        HealthCheck.function_scoped_fixture,
    ],
)
@given(
    scripts=st.integers(1, 2).flatmap(
        lambda n: st.tuples(*(vehicle_scripts(f"vehicle-{i}") for i in range(n)))
    )
)
def test_hostile_envelopes_give_each_caller_a_model_or_a_smartcar_error(
    server: ScriptedServer, young_heap: None, scripts: tuple[VehicleScript, ...]
) -> None:
    server.scripts = {script.vehicle_id: script for script in scripts}
    asyncio.run(run_example(server, list(scripts)))


# --- a few envelopes spelled out, as regression tests --------------------------------


def _script(callers: dict[str, int], *items: Any, status: int = 200) -> VehicleScript:
    return VehicleScript("vehicle-0", callers, status, dump({"responses": list(items)}))


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(
            _script(
                {"/odometer": 2, "/location": 1, "/vin": 1},
                {"path": "/odometer", "code": True, "body": GOOD["/odometer"]},
                {"path": "/location", "code": 200, "body": GOOD["/location"], "headers": []},
                "junk",
                {"path": "/vin", "code": 200, "body": {"vin": Raw("NaN")}},
            ),
            id="bool-code-list-headers-nan-body",
        ),
        pytest.param(
            _script(
                {"/odometer": 1, "/battery": 1},
                {"path": "odometer", "code": "200", "body": {"distance": 1}},
                {"path": "/odometer/", "code": 200, "body": GOOD["/odometer"]},
                {"path": "/odometer", "code": 200, "body": {"distance": 2}},
                {"path": "/unrequested", "code": 200, "body": {}},
            ),
            id="duplicates-first-readable-wins-battery-missing",
        ),
        pytest.param(
            _script(
                {"/security": 1, "/fuel": 1},
                {"path": "/security", "code": 10**30, "body": {}},
                {"path": "/fuel", "code": 200, "body": {"range": Raw("1e400")}},
            ),
            id="huge-code-overflowing-float",
        ),
    ],
)
def test_spelled_out_envelopes(server: ScriptedServer, script: VehicleScript) -> None:
    server.scripts = {script.vehicle_id: script}
    asyncio.run(run_example(server, [script]))


async def test_an_unreadable_code_names_its_item_and_spares_its_neighbours(
    server: ScriptedServer,
) -> None:
    script = _script(
        {"/odometer": 1, "/location": 1},
        {"path": "/location", "code": 200, "body": GOOD["/location"]},
        "not an item",
        {"path": "/odometer", "code": "200", "body": GOOD["/odometer"]},
    )
    server.scripts = {script.vehicle_id: script}
    async with sc.Client(api_origin=server.url, max_retries=0, timeout=5) as client:
        car = client.vehicle(script.vehicle_id, access_token=TOKEN)
        async with anyio.create_task_group() as tg:
            results: dict[str, Any] = {}

            async def read(path: str) -> None:
                try:
                    results[path] = await READERS[path](car)
                except sc.SmartcarError as exc:
                    results[path] = exc

            tg.start_soon(read, "/odometer")
            tg.start_soon(read, "/location")
    assert results["/location"] == sc.Location(37.4292, -122.1381, meta=results["/location"].meta)
    error = results["/odometer"]
    assert isinstance(error, sc.InvalidResponseError)
    assert error.field == "responses[2].code"


class _BrokenHeaders(Mapping[str, Any]):
    """Headers whose iteration fails: stands for any bug met while reading one item."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("a bug while reading an item")

    def __len__(self) -> int:
        return 1


async def test_a_bug_reading_one_item_fails_only_its_callers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def execute(key: QueueKey, paths: tuple[str, ...], spent: int = 0) -> Answer:
        return Answer(
            {
                "/odometer": RawItem(200, GOOD["/odometer"], _BrokenHeaders()),
                "/location": RawItem(200, GOOD["/location"], {}),
            },
            "req-1",
        )

    coalescer = Coalescer(
        executor=execute,
        window=0,
        max_batch_size=10,
        max_flights_per_queue=1,
        join_inflight=True,
        counters=Counters(),
        hooks=Hooks((), ()),
    )
    key = QueueKey("vehicle-0", "token", "metric", None)
    with anyio.fail_after(5):
        odometer, location = await asyncio.gather(
            coalescer.read(key, "/odometer", sc.Odometer),
            coalescer.read(key, "/location", sc.Location),
            return_exceptions=True,
        )
    assert isinstance(odometer, sc.SmartcarError)
    assert "RuntimeError" in str(odometer)
    assert location == sc.Location(37.4292, -122.1381, meta=location.meta)  # type: ignore[union-attr]
    assert "Routing '/odometer' for vehicle vehicle-0 failed" in caplog.text
    await settle()
    assert coalescer.task_count == 0
    assert coalescer.queue_count == 0
