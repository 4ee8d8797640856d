"""The one private cattrs converter: JSON bodies to models and back.

Nothing here is public: callers use `structure` and `unstructure`, and
cattrs never appears in a signature or an exception a user can see.

Structuring rules
-----------------
* Wire keys are camelCase, fields snake_case. One hook factory generates a
  ``make_dict_structure_fn`` with ``override(rename=...)`` for every model,
  from the field definitions alone; quirks are declared on the fields
  (`_models.TOLERANT_ID`, `_models.WHOLE_BODY`, `_models.ONE_OR_MANY`),
  not listed here.
* Liberal where the meaning is clear: an int is accepted for a float
  (``37829`` -> ``37829.0``); a field typed ``X | None`` may be null or
  absent; a field with a default (an array, a write's ``status``) may be
  null or absent and takes its default; the tolerant id fields
  (``serviceId``, ``taskId``) take a number as its text.
* Strict where it is not: a bool is never a number, a string never a
  number, a number never a string; NaN and Infinity (which Python's json
  accepts, and ``1e400`` becomes) are never a number, nor is an int past
  the float range; ints must fit in 64 bits; a required value must be there.
* Timestamps are ISO-8601 strings (``Z`` or naive meaning UTC) or epoch
  numbers (milliseconds from `_models.EPOCH_MS_FROM` up, else seconds), and
  always come out timezone-aware. Arrays become tuples. Unknown keys are
  ignored.
* Raw JSON kept as received (`Response.body`, ``raw`` fields, webhook
  ``data``) is checked too (`_json_checks.check_json`): no NaN or Infinity,
  no int too long to print, at most `_json_checks.MAX_JSON_DEPTH` levels of
  nesting, so that nothing downstream (repr, json.dumps, a JSONL writer)
  can fail or recurse without bound.
* Special wire shapes are handled in one place, `_adapter_for`: a field
  marked WHOLE_BODY receives the entire body (`ServiceHistory` from a bare
  array, `CompatibilityMatrix` from a make-keyed object, `Response` from any
  JSON value, `TeslaAttributes.raw`); an empty body to a write is ``{}``.
  Webhook deliveries (v2 ``eventName``/``payload``, v4 ``eventType``/
  ``data``/``meta``) are read by hand (`_webhook_payloads`), which
  names the wire path of whatever does not fit.
* Any failure becomes `InvalidResponseError`. Its ``field`` is the path in
  WIRE names, as the JSON was received (``doors[2].status``,
  ``availableCapacities[0].capacity``, ``[3].serviceDate`` for an element
  of a top-level array, ``TESLA[0].startYear`` under a make key,
  ``meta.deliveredAt`` in a webhook). It is None when the body as a whole
  has the wrong shape. Messages name the expected and received JSON types,
  never the received value, so nothing the server sent (or a token) is
  echoed.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from math import isfinite
from typing import Any, Final, TypeVar, get_args, get_origin

import attrs
from cattrs import Converter
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, override

from . import _models, _models_account, _models_makes
from ._exceptions import InvalidResponseError
from ._json_checks import TIMESTAMP, Mismatch, Step, check_json
from ._models import (
    EMPTY_META,
    ONE_OR_MANY,
    TOLERANT_ID,
    WHOLE_BODY,
    Action,
    Meta,
    Status,
    parse_datetime,
    parse_timestamp,
)
from ._models_account import Access, WebhookChallenge
from ._v3_models import BUILDERS as V3_BUILDERS
from ._webhook_payloads import BUILDERS, adapt_challenge

__all__ = ["invalid_response", "structure", "unstructure"]

T = TypeVar("T")

_Hook = Callable[[Any, Any], Any]
_Adapter = Callable[[object], object]

_INT_MAX: Final = 2**63 - 1
"""Integers fields hold 64-bit values; anything larger is no count, year or id."""


# --- leaf hooks -----------------------------------------------------------
# Exact type checks: bool is an int subclass, and JSON never yields subclasses.


def _structure_str(value: Any, _: Any) -> str:
    if type(value) is str:
        return value
    raise Mismatch("a string", value)


def _structure_float(value: Any, _: Any) -> float:
    if type(value) is float:
        if isfinite(value):
            return value
        raise Mismatch("a finite number", value)
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise Mismatch("a number in float range", value) from None
    raise Mismatch("a number", value)


def _structure_int(value: Any, _: Any) -> int:
    if type(value) is int:
        if -_INT_MAX <= value <= _INT_MAX:
            return value
        raise Mismatch("an integer in 64-bit range", value)
    raise Mismatch("an integer", value)


def _structure_bool(value: Any, _: Any) -> bool:
    if type(value) is bool:
        return value
    raise Mismatch("a boolean", value)


def _structure_datetime(value: Any, _: Any) -> datetime:
    try:
        # ISO text, by far the usual case, skips parse_timestamp's dispatch.
        return parse_datetime(value) if type(value) is str else parse_timestamp(value)
    except ValueError:
        raise Mismatch(TIMESTAMP, value) from None


def _structure_tolerant_id(value: Any, _: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    raise Mismatch("a string or integer id", value)


def _structure_any(value: Any, _: Any) -> Any:
    check_json(value)
    return value


# --- container hook factories -------------------------------------------


def _is_tuple(tp: Any) -> bool:
    return get_origin(tp) is tuple


def _is_mapping(tp: Any) -> bool:
    return get_origin(tp) in (Mapping, dict)


def _structure_each(
    items: Iterable[tuple[Any, Any]], hook: _Hook, item_type: Any, tp: Any
) -> list[tuple[Any, Any]]:
    """Structure (index or key, item) pairs, collecting every failure like cattrs does."""
    done = []
    errors: list[Exception] = []
    for where, item in items:
        try:
            done.append((where, hook(item, item_type)))
        except Exception as exc:
            # The note carries the index or key that `_locate` turns into a path step.
            exc.add_note(IterableValidationNote(f"@ {where!r}", where, item_type))
            errors.append(exc)
    if errors:
        raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
    return done


def _tuple_hook(
    tp: Any, conv: Any = None, *, allow_null: bool = False, one_or_many: bool = False
) -> _Hook:
    """Arrays to tuples; *allow_null* reads null as (), *one_or_many* an object as one item."""
    (item_type, _ellipsis) = get_args(tp)
    item_hook = (conv or _converter).get_structure_hook(item_type)

    def structure_tuple(value: Any, _: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            if value is None and allow_null:
                return ()
            if one_or_many:
                if isinstance(value, dict):
                    return (item_hook(value, item_type),)
                raise Mismatch("an array or an object", value)
            raise Mismatch("an array", value)
        try:  # fast path; on any failure redo it item by item for the error's path
            return tuple([item_hook(item, item_type) for item in value])
        except Exception:
            pass
        return tuple(
            item for _, item in _structure_each(enumerate(value), item_hook, item_type, tp)
        )

    return structure_tuple


def _mapping_hook(tp: Any) -> _Hook:
    (_key_type, value_type) = get_args(tp)
    value_hook = None if value_type is Any else _converter.get_structure_hook(value_type)

    def structure_mapping(value: Any, _: Any) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise Mismatch("an object", value)
        if value_hook is None:  # raw JSON kept as received
            check_json(value)
            return value
        return dict(_structure_each(value.items(), value_hook, value_type, tp))

    return structure_mapping


# --- model hooks ----------------------------------------------------------

_WIRE_NAMES: dict[type, dict[str, str]] = {}
"""Per model: field name -> wire name ("" for a WHOLE_BODY field)."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _is_meta(field: attrs.Attribute[Any]) -> bool:
    return field.name == "meta" and field.type is Meta


def _field_hook(field: attrs.Attribute[Any], conv: Any) -> _Hook | None:
    """A field's own hook when its declaration asks for more than its type's, else None."""
    if field.metadata.get(TOLERANT_ID):
        return _structure_tolerant_id
    if field.metadata.get(ONE_OR_MANY):
        return _tuple_hook(field.type, conv, allow_null=True, one_or_many=True)
    default = field.default
    if default is attrs.NOTHING or default is None or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return None
    # An optional field with a value default: null means "not given", as absent does.
    if _is_tuple(field.type):
        return _tuple_hook(field.type, conv, allow_null=True)
    inner = (conv or _converter).get_structure_hook(field.type)

    def null_is_default(value: Any, tp: Any) -> Any:
        return default if value is None else inner(value, tp)

    return null_is_default


def _model_hook(cls: type, conv: Any = None, detailed: bool = True) -> _Hook:
    wire: dict[str, str] = {}
    # Typed loosely: mypy would match ** against the _cattrs_* keyword flags.
    overrides: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if _is_meta(field):
            # Set from the response headers by `structure`, never from the body.
            overrides[field.name] = override(omit=True)
            continue
        whole = field.metadata.get(WHOLE_BODY)
        name = "" if whole else _camel(field.name)
        wire[field.name] = name
        hook = None if whole else _field_hook(field, conv)
        overrides[field.name] = override(rename=name, struct_hook=hook)
    if detailed:
        _WIRE_NAMES[cls] = wire
    generated: _Hook = make_dict_structure_fn(
        cls, conv or _converter, _cattrs_detailed_validation=detailed, **overrides
    )

    def structure_model(value: Any, _: Any) -> Any:
        if isinstance(value, dict):
            return generated(value, cls)
        raise Mismatch("an object", value)

    if not detailed and cls in _SHARED_VALUES:
        return _shared_hook(cls, structure_model, tuple(wire.values()))
    return structure_model


# Small value objects that a response repeats many times: one LockStatus holds
# a dozen OpenStatus, drawn from a handful of (type, status) pairs. Frozen and
# compared by value, so one instance per pair can serve every response; that
# spares a fleet poller an allocation per door per read. Only classes whose
# fields are all required strings qualify (checked below): a missing key and
# an explicit null must not share a cache entry, and equal keys must mean
# equal fields.
_SHARED_VALUES: Final = frozenset({_models.OpenStatus})
_SHARED_MAX: Final = 4096
"""Distinct instances kept per class; past it, new ones are built but not kept."""

for _cls in _SHARED_VALUES:
    assert all(
        field.type is str and field.default is attrs.NOTHING for field in attrs.fields(_cls)
    ), _cls


def _shared_hook(cls: type, build: _Hook, names: tuple[str, ...]) -> _Hook:
    cache: dict[Any, Any] = {}
    key_of = operator.itemgetter(*names)

    def structure_shared(value: Any, _: Any) -> Any:
        if type(value) is dict:
            try:
                return cache[key_of(value)]
            except (KeyError, TypeError):
                pass  # not seen yet, or a key missing, or an unhashable value
        model = build(value, cls)  # raises what is wrong with the value
        if len(cache) < _SHARED_MAX:
            # Built, so every key is there and every value a str.
            cache[key_of(value)] = model
        return model

    return structure_shared


_converter: Final = Converter(detailed_validation=True)
_converter.register_structure_hook_factory(attrs.has, _model_hook)
_converter.register_structure_hook_factory(_is_tuple, _tuple_hook)
_converter.register_structure_hook_factory(_is_mapping, _mapping_hook)
for _type, _hook in (
    (str, _structure_str),
    (float, _structure_float),
    (int, _structure_int),
    (bool, _structure_bool),
    (datetime, _structure_datetime),
    (Any, _structure_any),
):
    _converter.register_structure_hook(_type, _hook)

_converter.register_unstructure_hook(datetime, datetime.isoformat)

# The same rules without cattrs' detailed validation: tried first, because valid
# bodies are the rule; a failure is structured again by `_converter` for its path.
_fast: Final = Converter(detailed_validation=False)
_fast.register_structure_hook_factory(attrs.has, lambda cls: _model_hook(cls, _fast, False))
_fast.register_structure_hook_factory(_is_tuple, lambda tp: _tuple_hook(tp, _fast))
_fast.register_structure_hook_factory(_is_mapping, _mapping_hook)
for _type, _hook in (
    (str, _structure_str),
    (float, _structure_float),
    (int, _structure_int),
    (bool, _structure_bool),
    (datetime, _structure_datetime),
    (Any, _structure_any),
):
    _fast.register_structure_hook(_type, _hook)


def _tuple_unstructure_hook(tp: Any) -> Callable[[Any], list[Any]]:
    (item_type, _ellipsis) = get_args(tp)
    item_hook = _converter.get_unstructure_hook(item_type)
    return lambda value: [item_hook(item) for item in value]


_converter.register_unstructure_hook_factory(_is_tuple, _tuple_unstructure_hook)


def _unstructure_meta(meta: Meta) -> dict[str, Any]:
    # ``reused``/``age`` only on reused answers: every other answer's output stays as it was.
    out: dict[str, Any] = {
        "data_age": None if meta.data_age is None else meta.data_age.isoformat(),
        "fetched_at": None if meta.fetched_at is None else meta.fetched_at.isoformat(),
        "unit_system": meta.unit_system,
        "request_id": meta.request_id,
    }
    if meta.reused:
        out["reused"], out["age"] = True, meta.age
    return out


_converter.register_unstructure_hook(Meta, _unstructure_meta)


# --- special wire shapes ------------------------------------------------


def _empty_is_object(body: object) -> object:
    # A write answered 2xx with no body at all: as good as "{}".
    return {} if body is None else body


def _wrap_whole(body: object) -> object:
    return {"": body}


def _add_whole(body: object) -> object:
    return {**body, "": body} if isinstance(body, dict) else body


def _adapter_for(cls: type) -> _Adapter | None:
    if cls is WebhookChallenge:
        return adapt_challenge
    if cls is Status or cls is Action:
        return _empty_is_object
    fields = [field for field in attrs.fields(cls) if not _is_meta(field)]
    if not any(field.metadata.get(WHOLE_BODY) for field in fields):
        return None
    return _wrap_whole if len(fields) == 1 else _add_whole


# --- the plans, built once at import -------------------------------------

_NOT_RESPONSES: Final = frozenset({Meta, Access})
_PLANS: Final[dict[type, tuple[_Hook, _Adapter | None, bool, _Hook]]] = {}

for _v3_cls, _v3_build in V3_BUILDERS.items():
    _PLANS[_v3_cls] = (_v3_build, None, False, _v3_build)

for _module in (_models, _models_account, _models_makes):
    for _name in _module.__all__:
        _cls = getattr(_module, _name)
        if not (isinstance(_cls, type) and attrs.has(_cls)) or _cls in _NOT_RESPONSES:
            continue
        _build = BUILDERS.get(_cls)
        if _build is not None:
            _PLANS[_cls] = (_build, None, False, _build)
        else:
            _PLANS[_cls] = (
                _converter.get_structure_hook(_cls),
                _adapter_for(_cls),
                any(_is_meta(field) for field in attrs.fields(_cls)),
                _fast.get_structure_hook(_cls),
            )


def structure(cls: type[T], body: object, meta: Meta = EMPTY_META) -> T:
    """Build model *cls* from a parsed JSON *body*, with *meta* from the headers.

    Raises InvalidResponseError when the body does not fit; TypeError when
    *cls* is not a response model (a bug in the caller, not in the answer).
    """
    try:
        hook, adapt, has_meta, fast = _PLANS[cls]
    except KeyError:
        raise TypeError(f"{cls!r} is not a Smartcar response model") from None
    model: T
    try:
        model = fast(body if adapt is None else adapt(body), cls)
    except Exception:
        try:
            model = hook(body if adapt is None else adapt(body), cls)
        except Exception as exc:
            raise _invalid(cls, exc, meta) from None
    if has_meta and meta is not EMPTY_META:
        # The instance is not shared yet, so this is still construction; going
        # through __init__ again (attrs.evolve) would double the cost.
        object.__setattr__(model, "meta", meta)
    return model


def unstructure(model: object) -> dict[str, Any]:
    """A model as a JSON-ready dict: snake_case keys, ISO-8601 strings, lists, meta included."""
    if not attrs.has(type(model)):
        raise TypeError(f"{type(model)!r} is not a model")
    result: dict[str, Any] = _converter.unstructure(model, unstructure_as=type(model))
    return result


# --- errors ---------------------------------------------------------------


def _locate(exc: BaseException) -> tuple[list[Step], BaseException]:
    """Follow the first failure down cattrs' exception groups, collecting its path."""
    path: list[Step] = []
    while isinstance(exc, BaseValidationError):
        child = exc.exceptions[0]
        # Each level appends its own note, so the last note names this step.
        note = next(reversed(getattr(child, "__notes__", ())), None)
        if isinstance(note, AttributeValidationNote) and isinstance(exc, ClassValidationError):
            name = _WIRE_NAMES.get(exc.cl, {}).get(note.name, note.name)
            if name:
                path.append(("attr", name))
        elif isinstance(note, IterableValidationNote):
            path.append(("index" if isinstance(note.index, int) else "key", note.index))
        exc = child
    if isinstance(exc, Mismatch):
        path.extend(exc.path)
    return path, exc


def _count(exc: BaseException) -> int:
    if isinstance(exc, BaseValidationError):
        return sum(_count(child) for child in exc.exceptions)
    return 1


_KEY_CHARS: Final = 64


def _render(path: list[Step]) -> str:
    out = ""
    for kind, step in path:
        if kind == "index":
            out += f"[{step}]"
            continue
        if kind == "key" and isinstance(step, str) and len(step) > _KEY_CHARS:
            step = step[:_KEY_CHARS] + "…"  # a key is the server's text: keep it short
        if kind == "key" and not (isinstance(step, str) and step.isidentifier()):
            out += f"[{json.dumps(step, ensure_ascii=False)}]"
        else:
            out += f".{step}" if out else str(step)
    return out


def invalid_response(cls: type, exc: Exception, request_id: str | None) -> InvalidResponseError:
    """The `InvalidResponseError` for a failure (a `Mismatch` naming its path) reading *cls*."""
    return _invalid(cls, exc, Meta(request_id=request_id))


def _invalid(cls: type, exc: Exception, meta: Meta) -> InvalidResponseError:
    path, leaf = _locate(exc)
    if isinstance(leaf, Mismatch):
        reason = f"expected {leaf.expected}, got {leaf.got}"
    elif isinstance(leaf, KeyError):
        reason = "required field is missing"
    else:
        reason = f"invalid value ({type(leaf).__name__})"
    field = _render(path) or None
    message = f"Invalid {cls.__name__} response: " + (f"{field}: " if field else "") + reason
    if (more := _count(exc) - 1) > 0:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InvalidResponseError(message, field=field, request_id=meta.request_id)
