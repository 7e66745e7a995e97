"""Fuzzing the scenario loader: it returns a Scenario or raises ScenarioError, never anything else.

Every property runs a fixed, derandomized set of examples (``FUZZ`` below), so CI
sees the same inputs every time. Sources of input:

* arbitrary text and bytes written to a file;
* arbitrary TOML documents (nested tables of strings, huge integers, nan/inf,
  dates and times, arrays) written with ``tomli_w``;
* every bundled scenario (and a few variants) mutated: keys deleted, renamed,
  added, values replaced by values of another type, tables nested and un-nested;
* random ``--set`` overrides on the bundled scenarios.

When loading fails, every line of the message starts with the file path and
then names a key path (or says ``invalid TOML``); when it succeeds, the
scenario survives ``dump_scenario`` unchanged.
"""

import copy
import datetime
import json
import re
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis.errors import InvalidArgument
from hypothesis import strategies as st

from eventhorizon.spiking.scenario import SpikingScenario
from eventhorizon.stream_scenario import StreamScenario
from eventhorizon.scenario import (
    Scenario,
    ScenarioError,
    apply_overrides,
    bundled_scenarios,
    dump_scenario,
    load_scenario,
    parse_scenario,
    read_document,
)

FUZZ = settings(max_examples=200, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])


# --------------------------------------------------------------------------
# vocabulary: the schema's own keys and values, so fuzzing reaches deep checks
# --------------------------------------------------------------------------


def _schema_words():
    keys, values = set(Scenario.model_fields), set()
    stack = [Scenario, SpikingScenario, StreamScenario]
    while stack:
        model = stack.pop()
        for name, field in model.model_fields.items():
            keys.add(name)
            for member in getattr(field.annotation, "__args__", (field.annotation,)):
                if isinstance(member, type) and hasattr(member, "model_fields"):
                    stack.append(member)
                elif isinstance(member, str):  # Literal values
                    values.add(member)
    return sorted(keys), sorted(values)


SCENARIO_TYPES = (Scenario, SpikingScenario, StreamScenario)
SCHEMA_KEYS, SCHEMA_VALUES = _schema_words()
assert {"network", "generator", "samples", "snapshot_every", "path"} <= set(SCHEMA_KEYS)
assert {"input_recurrent", "file", "fashion_mnist", "spiking", "heap", "tanh"} <= set(SCHEMA_VALUES)

keys = st.sampled_from(SCHEMA_KEYS) | st.text(max_size=8)
BIG_INTS = [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**30, 2**200, -(2**300)]
small_ints = st.integers(min_value=-5, max_value=1100)
integers = st.one_of(small_ints, small_ints, st.integers(min_value=-(2**63), max_value=2**63 - 1),
                     st.sampled_from(BIG_INTS) | st.integers(min_value=-(2**1000), max_value=2**1000))
timezones = st.sampled_from([None, datetime.timezone.utc, datetime.timezone(datetime.timedelta(hours=5, minutes=30)),
                             datetime.timezone(datetime.timedelta(hours=-8))])
scalars = (
    st.booleans()
    | integers
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=0, max_value=1)
    | st.sampled_from(SCHEMA_VALUES + SCHEMA_KEYS + ["w.npz", "w.npy", "../w.npz", "~/w.npy"])
    | st.text(max_size=12)
    | st.dates()
    | st.datetimes(timezones=timezones)
    | st.times()
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=20,
)
documents = st.dictionaries(keys, values, max_size=6)
sectioned_documents = st.dictionaries(
    st.sampled_from(list(Scenario.model_fields)),
    st.dictionaries(keys, values, max_size=6) | values,
    max_size=8,
)


def _type_name(value):
    return "table" if isinstance(value, dict) else "array" if isinstance(value, list) else type(value).__name__


# --------------------------------------------------------------------------
# the property
# --------------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _first_key(text):
    """The first key of the key path a message line starts with, and the rest of the line."""
    if text.startswith('"'):
        key, end = json.JSONDecoder().raw_decode(text)
        return key, text[end:]
    if text.startswith("(top level)"):
        return "(top level)", text[len("(top level)"):]
    match = _BARE.match(text)
    return (match.group(), text[match.end():]) if match else (None, text)


def _event(text):
    """Record what happened (shown by ``pytest --hypothesis-show-statistics``); a no-op outside @given."""
    try:
        event(text)
    except InvalidArgument:
        pass


def check_message(message, path, document=None):
    """Every line: ``<path>: <key path>: …``, ``<path>: invalid TOML: …`` (with line and column), or, for a
    file that is not UTF-8 text, ``<path>: cannot read scenario file: …``."""
    prefix = f"{path}: "
    lines = message.split("\n")
    assert lines and all(lines), message
    for line in lines:
        assert line.startswith(prefix), (line, prefix)
        rest = line[len(prefix):]
        if rest.startswith(("invalid TOML: ", "cannot read scenario file: ")):
            continue
        key, after = _first_key(rest)
        assert key is not None, line
        known = {"(top level)"} | set(document or {}).union(*(schema.model_fields for schema in SCENARIO_TYPES))
        assert key in known, (key, line)
        assert re.match(r"(\.([A-Za-z0-9_-]+|\"([^\"\\]|\\.)*\"))*: \S", after), line  # rest of the path, then why


def load_only_scenario_error(path, overrides=()):
    """Load ``path``: a Scenario that survives dump_scenario, or a ScenarioError with a well-formed message."""
    try:
        document = apply_overrides(read_document(path), overrides)  # its keys may appear in messages
    except ScenarioError:
        document = None
    try:
        scenario = load_scenario(path, overrides)
    except ScenarioError as exc:
        message = str(exc)
        _event("invalid: " + message.split("\n")[0].removeprefix(f"{path}: ").split(":")[0][:20])
        if message.startswith("--set "):  # a malformed override names the override, not the file
            assert any(message.startswith(f"--set {item!r}: ") for item in overrides), message
            assert "\n" not in message
        else:
            check_message(message, path, document)
        return None
    _event("valid")
    assert isinstance(scenario, SCENARIO_TYPES)
    assert parse_scenario(tomllib.loads(dump_scenario(scenario))) == scenario
    return scenario


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        # weight files the "file" generator can find (relative to the scenario files written here)
        weights = np.zeros((800, 800), dtype=np.float32)
        np.save(directory / "w.npy", weights)
        sp.save_npz(directory / "w.npz", sp.csr_array(weights))
        yield directory


def write_document(scratch, document, name="fuzz.toml"):
    path = scratch / name
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# (a) arbitrary text and bytes
# --------------------------------------------------------------------------

FRAGMENTS = [line for p in bundled_scenarios().values() for line in p.read_text(encoding="utf-8").splitlines()] + [
    "[run]", "samples = 10", "seed = -1", "[learning]", "[plasticity]", "epochs = 3", "mode = \"spiking\"",
    "generator = \"file\"", "path = \"w.npz\"", "path = \"missing.npy\"", "inputs = 784", "[output]",
    "snapshots = [1.0]", "x = " + "[" * 600 + "]" * 600, "x = " + "9" * 5000, "seed = 0x" + "f" * 40,
    "epsilon = nan", "epsilon = inf", "[[network]]", "a = {b = {c = 1}}", "seed = 1979-05-27T07:32:00Z",
]


@FUZZ
@given(text=st.text(max_size=300) | st.builds("\n".join, st.lists(
    st.sampled_from(FRAGMENTS) | st.text(max_size=30), max_size=30)))
def test_fuzz_load_arbitrary_text(scratch, text):
    path = scratch / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    load_only_scenario_error(path)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_fuzz_load_arbitrary_bytes(scratch, raw):
    path = scratch / "fuzz.toml"
    path.write_bytes(raw)
    load_only_scenario_error(path)


# extreme literals tomli_w never writes: deep nesting, integers of thousands of digits, long floats
def _nested(depth, kind):
    return ("[" * depth + "]" * depth) if kind == "array" else ("{a = " * depth + "1" + "}" * depth)


extreme_literals = st.one_of(
    st.builds(_nested, st.integers(1, 50) | st.integers(200, 3000), st.sampled_from(["array", "table"])),
    st.builds(lambda n, sign: sign + "9" * n, st.integers(1, 30) | st.integers(4000, 6000),
              st.sampled_from(["", "-", "+"])),
    st.builds(lambda n, prefix, digit: prefix + digit * n, st.integers(1, 6000),
              st.sampled_from(["0x", "0o", "0b"]), st.sampled_from(["1", "7"])),
    st.builds(lambda n: "1." + "0" * n + "1e" + "9" * min(n, 50), st.integers(1, 3000)),
    st.builds(lambda n: '"' + "x" * n + '"', st.integers(0, 100_000)),
)


@FUZZ
@given(st.sampled_from(sorted(bundled_scenarios())), st.integers(0, 40), keys.filter(_BARE.fullmatch), extreme_literals)
def test_fuzz_extreme_literals(scratch, name, line, key, literal):
    """A valid scenario with one line ``key = <extreme literal>`` inserted (or replacing a value)."""
    lines = bundled_scenarios()[name].read_text(encoding="utf-8").splitlines()
    line = min(line, len(lines))
    if line < len(lines) and "=" in lines[line] and not lines[line].startswith("#"):
        lines[line] = lines[line].partition("=")[0] + "= " + literal  # replace an existing value
    else:
        lines.insert(line, f"{key} = {literal}")
    path = scratch / "fuzz.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_only_scenario_error(path)


# --------------------------------------------------------------------------
# (b) arbitrary TOML documents
# --------------------------------------------------------------------------


@FUZZ
@given(documents)
def test_fuzz_arbitrary_toml_documents(scratch, document):
    load_only_scenario_error(write_document(scratch, document))


@FUZZ
@given(sectioned_documents)
def test_fuzz_sectioned_toml_documents(scratch, document):
    load_only_scenario_error(write_document(scratch, document))


# Python values no TOML writer produces: ints too long for str() (> 4300 digits), tuples
huge_ints = st.builds(lambda bits, sign: sign * (1 << bits), st.integers(14_000, 20_000), st.sampled_from([1, -1]))
python_values = st.recursive(
    scalars | huge_ints,
    lambda children: st.lists(children, max_size=4) | st.lists(children, max_size=3).map(tuple)
    | st.dictionaries(keys, children, max_size=5),
    max_leaves=20,
)
python_documents = st.dictionaries(st.sampled_from(list(Scenario.model_fields)) | keys,
                                   st.dictionaries(keys, python_values, max_size=6) | python_values, max_size=8)


@FUZZ
@given(sectioned_documents | documents | python_documents)
def test_fuzz_parse_documents_directly(document):
    """Straight into parse_scenario (no TOML round trip): same property, with source as the prefix."""
    try:
        result = parse_scenario(document, source="fuzz.toml")
    except ScenarioError as exc:
        check_message(str(exc), "fuzz.toml", document)
    else:
        assert isinstance(result, SCENARIO_TYPES)


# --------------------------------------------------------------------------
# (c) mutated valid scenarios
# --------------------------------------------------------------------------


def _base_documents():
    bases = {name: read_document(path) for name, path in bundled_scenarios().items()}
    quick = bases["quickstart"]
    bases["layered"] = dict(copy.deepcopy(quick),
                            network={"generator": "layered", "sizes": [64, 10], "feedback": True, "density": 0.5})
    bases["random_sparse"] = dict(copy.deepcopy(quick), network={"generator": "random_sparse", "neurons": 100,
                                                                 "inputs": 64, "density": 0.1, "seed": 3})
    bases["file"] = dict(copy.deepcopy(quick), network={"generator": "file", "path": "w.npz", "inputs": 64},
                         output={"figures": False, "save_states": True})
    bases["fashion_file"] = dict(copy.deepcopy(bases["fashion_settle"]),
                                 network={"generator": "file", "path": "w.npy", "inputs": 784})
    return bases


BASES = _base_documents()


def test_base_documents_are_valid(scratch):
    """Mutations start from valid documents, so they walk every error path from a valid start."""
    for name, document in BASES.items():
        assert isinstance(load_only_scenario_error(write_document(scratch, document)), SCENARIO_TYPES)


def _entries(doc, prefix=()):
    """Paths to every value (table entries and array items), containers included."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc)
    for key, value in items:
        yield prefix + (key,)
        if isinstance(value, (dict, list)):
            yield from _entries(value, prefix + (key,))


def _tables(doc, prefix=()):
    if isinstance(doc, dict):
        yield prefix
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from _tables(value, prefix + (key,))


def _get(doc, path):
    for key in path:
        doc = doc[key]
    return doc


def _typo(word):
    return st.sampled_from([word[:-1], word + word[-1:], word[1:], word.upper(), word.replace("_", "-")])


def mutate(data, doc, values=values):
    """One random mutation of ``doc`` in place (new values drawn from ``values``)."""
    kind = data.draw(st.sampled_from(["delete", "replace", "tweak", "add", "rename", "nest", "unnest"]), label="kind")
    entries = list(_entries(doc))
    table_entries = [p for p in entries if isinstance(_get(doc, p[:-1]), dict)]
    if kind == "delete" and entries:
        path = data.draw(st.sampled_from(entries), label="delete")
        del _get(doc, path[:-1])[path[-1]]
    elif kind == "replace" and entries:
        path = data.draw(st.sampled_from(entries), label="replace")
        old = _get(doc, path)
        _get(doc, path[:-1])[path[-1]] = data.draw(values.filter(lambda v: _type_name(v) != _type_name(old)),
                                                   label="value")
    elif kind == "tweak" and entries:  # same type, another value: reaches range checks and valid variants
        path = data.draw(st.sampled_from(entries), label="tweak")
        old = _get(doc, path)
        same = {bool: st.booleans(), int: small_ints | integers, float: st.floats(-1, 2) | scalars,
                str: st.sampled_from(SCHEMA_VALUES) | st.text(max_size=5)}.get(type(old), values)
        _get(doc, path[:-1])[path[-1]] = data.draw(same, label="value")
    elif kind == "rename" and table_entries:
        path = data.draw(st.sampled_from(table_entries), label="rename")
        parent = _get(doc, path[:-1])
        new = data.draw(keys | (_typo(path[-1]) if path[-1] else keys), label="to")
        parent[new] = parent.pop(path[-1])
    elif kind == "nest" and entries:
        path = data.draw(st.sampled_from(entries), label="nest")
        parent = _get(doc, path[:-1])
        parent[path[-1]] = {data.draw(keys, label="key"): parent[path[-1]]}
    elif kind == "unnest" and any(isinstance(_get(doc, p), dict) for p in table_entries):
        path = data.draw(st.sampled_from([p for p in table_entries if isinstance(_get(doc, p), dict)]), label="unnest")
        parent, table = _get(doc, path[:-1]), _get(doc, path)
        if table and data.draw(st.booleans(), label="hoist"):
            del parent[path[-1]]
            parent.update(table)  # its keys move up a level
        else:
            parent[path[-1]] = next(iter(table.values())) if table else data.draw(scalars, label="value")
    else:
        path = data.draw(st.sampled_from(list(_tables(doc))), label="add to")
        _get(doc, path)[data.draw(keys, label="key")] = data.draw(values, label="value")


@FUZZ
@given(st.data(), st.sampled_from(sorted(BASES)))
def test_fuzz_mutated_scenarios(scratch, data, base):
    doc = copy.deepcopy(BASES[base])
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        mutate(data, doc)
    load_only_scenario_error(write_document(scratch, doc))


@FUZZ
@given(st.data(), st.sampled_from(sorted(BASES)))
def test_fuzz_mutated_documents_directly(scratch, data, base):
    """The same mutations straight into parse_scenario, with Python values no TOML file holds (huge ints, tuples)."""
    doc = copy.deepcopy(BASES[base])
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        mutate(data, doc, values=python_values)
    try:
        result = parse_scenario(doc, source="fuzz.toml", base_dir=scratch)
    except ScenarioError as exc:
        check_message(str(exc), "fuzz.toml", doc)
    else:
        assert isinstance(result, SCENARIO_TYPES)


# --------------------------------------------------------------------------
# (c) random --set overrides
# --------------------------------------------------------------------------

OVERRIDE_KEYS = sorted({".".join(p) for doc in BASES.values() for p in _entries(doc)
                        if all(isinstance(k, str) for k in p)} | {
    "learning.rate", "plasticity", "run.epochs", "run.duration", "output.snapshots", "network.path", "a.b.c",
    "description.x", "run.samples.x", "network", "run", "dynamics.mode",
})


def _toml_value_text(value):
    """A scalar as TOML value text, e.g. ``1.5``, ``"text"``, ``1979-05-27``."""
    return tomli_w.dumps({"v": value}).partition("=")[2].strip()


override_keys = st.sampled_from(OVERRIDE_KEYS) | st.builds(".".join, st.lists(keys, min_size=1, max_size=3)) \
    | st.text(max_size=10)
override_values = st.builds(_toml_value_text, scalars) | st.text(max_size=15) | extreme_literals \
    | st.sampled_from(["0", "-1", "true", "[784, 10]", "spiking", "file", "1e-3", "inf", "nan", "{a = 1}", ""])
override_items = st.builds(lambda k, v: f"{k}={v}", override_keys, override_values)
overrides = st.lists(st.one_of(override_items, override_items, override_items, st.text(max_size=20)),
                     min_size=1, max_size=4)


@FUZZ
@given(st.sampled_from(sorted(BASES)), overrides)
def test_fuzz_overrides(scratch, base, items):
    load_only_scenario_error(write_document(scratch, BASES[base], name=f"{base}.toml"), items)


# --------------------------------------------------------------------------
# valid by construction: accepted, and unchanged by dump_scenario
# --------------------------------------------------------------------------

INT64 = 2**63 - 1
unit_open_low = st.floats(0, 1, exclude_min=True)          # (0, 1]
positive = st.floats(0, 1e300, exclude_min=True)           # > 0, finite
seeds = st.integers(0, INT64)
activations = st.sampled_from(["tanh", "hard_sigmoid", "clipped_relu"])
sizes = st.integers(1, 2000) | st.integers(1, INT64)


def _with_optional(required, optional):
    return st.fixed_dictionaries(required, optional=optional)


valid_networks = st.one_of(
    _with_optional({"generator": st.just("input_recurrent"), "inputs": sizes, "hidden": sizes,
                    "spectral_norm": st.floats(0, 1, exclude_max=True)},
                   {"recurrent_density": unit_open_low, "activation": activations, "seed": seeds}),
    _with_optional({"generator": st.just("layered"), "sizes": st.lists(sizes, min_size=2, max_size=5)},
                   {"feedback": st.booleans(), "density": unit_open_low, "activation": activations, "seed": seeds}),
    st.integers(1, 2000).flatmap(lambda n: _with_optional(
        {"generator": st.just("random_sparse"), "neurons": st.just(n), "inputs": st.integers(0, n - 1),
         "density": unit_open_low}, {"weight_scale": positive, "activation": activations, "seed": seeds})),
    _with_optional({"generator": st.just("file"), "path": st.sampled_from(["w.npz", "w.npy"]),
                    "inputs": st.integers(0, 2000)}, {"activation": activations}),
)
valid_documents = st.fixed_dictionaries(
    {"network": valid_networks,
     "input": _with_optional({"source": st.just("generated")}, {"density": unit_open_low, "seed": seeds}),
     "dynamics": _with_optional({"epsilon": positive}, {"mode": st.just("rate"),
                                                        "scheduler": st.sampled_from(["tournament", "heap"]),
                                                        "max_updates": st.integers(1, INT64)}),
     "run": _with_optional({"samples": st.integers(1, INT64)},
                           {"seed": st.integers(0, INT64 - 1), "compare_dense": st.booleans(),
                            "checkpoint_seconds": positive})},
    optional={"description": st.text(max_size=40),
              "output": _with_optional({}, {"figures": st.booleans(), "save_states": st.booleans()}),
              "flops": _with_optional({}, {"repeats": st.integers(1, INT64)})},
)


@FUZZ
@given(valid_documents)
def test_fuzz_valid_documents_load_and_round_trip(scratch, document):
    scenario = load_only_scenario_error(write_document(scratch, document))
    assert isinstance(scenario, SCENARIO_TYPES), document
    seed = document["run"].get("seed", 0)
    if document["network"]["generator"] != "file":
        assert scenario.network.seed == document["network"].get("seed", seed)
    assert scenario.input.seed == document["input"].get("seed", seed + 1)
