"""Reading specs: YAML with line numbers, ``--set`` overrides, and errors that say where.

Every validation error becomes a `SpecError` naming the key path (``model.widht``), the YAML
line, what was expected and what was got, with the closest valid key for a typo.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import pathlib
import re
from typing import Any

import pydantic
import yaml

from ..core.files import is_file
from ..errors import SpecError, did_you_mean
from .schema import MODEL_CONFIGS, ModelConfig, Spec

Path = tuple[Any, ...]
MAX_SPEC_BYTES = 1 << 20  # a spec is text; data goes into the files it names


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. Under YAML 1.1 the condition key `on:` would
    read as True (and `no`, `off`, `yes` as booleans too)."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), [_first]
    )


def _mapping_without_repeats(loader, node, deep=False):
    """A mapping in which a key appears twice is refused: YAML would keep the last one and
    silently drop the other."""
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            continue  # yaml's own error follows: "found unhashable key"
        if key in seen:
            raise SpecError(
                f"key {_describe(key)} appears twice in one mapping (lines {seen[key]} and "
                f"{key_node.start_mark.line + 1}); keep one",
                line=key_node.start_mark.line + 1,
            )
        seen[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.construct_mapping = _mapping_without_repeats


def load_yaml(text: str):
    """Parse YAML text with the spec's rules (YAML 1.2 booleans)."""
    return yaml.load(text, Loader=_Loader)


def _line_map(text: str) -> dict[Path, int]:
    """1-based line of every mapping key and sequence item, by key path."""
    lines: dict[Path, int] = {}

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value
                lines[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                lines[path + (i,)] = v.start_mark.line + 1
                walk(v, path + (i,))

    try:
        root = yaml.compose(text, Loader=_Loader)
    except (yaml.YAMLError, RecursionError):
        return lines
    if root is not None:
        try:
            walk(root, ())
        except RecursionError:  # refused by `_check_shape`, with its own message
            return {}
    return lines


def read_yaml(path: str | os.PathLike) -> tuple[dict, dict[Path, int]]:
    """Load a spec file as plain data with its line map."""
    p = pathlib.Path(path)
    if not is_file(p) and not os.path.isdir(p):  # isdir: False for a name too long
        raise SpecError(f"no such spec file: {_describe(str(p))}", path=None)
    if not is_file(p):
        raise SpecError(f"{str(p)!r} is not a file; give the path of a YAML spec", path=None)
    raw = p.read_bytes()
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(
            f"{p.name} is {len(raw)} bytes; a spec is at most {MAX_SPEC_BYTES} bytes (put "
            "large data in a file the spec names: reference.file, data[].file)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(
            f"{p.name} is not UTF-8 text: byte {e.start} is {raw[e.start : e.start + 1]!r}; "
            "save the spec as UTF-8"
        ) from None
    try:
        data = load_yaml(text)
    except RecursionError:
        raise SpecError(
            f"{p.name} is nested too deeply to be a spec (or refers to itself through an "
            "alias); flatten it"
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise SpecError(
            f"{p.name} is not valid YAML: {getattr(e, 'problem', e)}", line=line
        ) from None
    _check_shape(data, p.name)
    if not isinstance(data, dict):
        raise SpecError(f"{p.name} must be a YAML mapping of keys (name:, coords:, ...)")
    return data, _line_map(text)


MAX_DEPTH = 64  # nesting of mappings and lists
MAX_NODES = 200_000  # values, aliases counted each time they are used


def _check_shape(data, name: str) -> None:
    """Refuse data nested deeper than `MAX_DEPTH`, with more than `MAX_NODES` values once
    aliases are expanded (a "billion laughs"), that contains itself, or with a mapping key
    that is not text (``? [a, b]: 1``, ``1.5: x``): an iterative walk, so it is quick and
    cannot overflow the stack."""
    stack, count = [(data, 1, ())], 0
    while stack:
        node, depth, above = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise SpecError(
                f"{name} holds more than {MAX_NODES} values once its aliases (*name) are "
                "expanded; a spec that large is not meant (write the values out, or put data "
                "in a file)"
            )
        if depth > MAX_DEPTH:
            raise SpecError(f"{name} is nested more than {MAX_DEPTH} levels deep; flatten it")
        if isinstance(node, dict | list):
            if id(node) in above:
                raise SpecError(f"{name} contains itself through an alias (&name ... *name)")
            if isinstance(node, dict):
                for key in node:
                    if not isinstance(key, str | int) or isinstance(key, bool):
                        raise SpecError(
                            f"{name} has a key {_describe(key)} that is not text: keys are "
                            "names such as `model:` (quote a key that YAML reads otherwise)"
                        )
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, depth + 1, above + (id(node),)) for c in children)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key.path=value`` overrides; values are read as YAML (``1e-3``, ``[64, 64]``).
    The data (a dict from Python too) and the result are held to the limits of a spec file
    (`_check_shape`)."""
    _check_shape(data, "the spec")
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise SpecError(
                f"--set needs KEY=VALUE (e.g. train.steps=200), got {item!r}", path="--set"
            )
        key, _, raw = item.partition("=")
        parts = [int(p) if p.isdigit() else p for p in key.strip().split(".")]
        if not all(str(p) for p in parts):
            raise SpecError(f"empty key in {key!r}", path="--set")
        try:
            value = load_yaml(raw)
        except yaml.YAMLError:
            value = raw
        node = data
        for depth, part in enumerate(parts[:-1]):
            nxt = node[part] if _has(node, part) else None
            if nxt is None or isinstance(nxt, str | int | float):
                # `equation: burgers` then `--set equation.nu=0.1`: widen the shorthand.
                nxt = {"name": nxt} if part == "equation" and isinstance(nxt, str) else {}
                if isinstance(node, list):
                    raise SpecError(
                        f"{'.'.join(map(str, parts[: depth + 1]))} is not in the spec", path="--set"
                    )
                node[part] = nxt
            node = nxt
        if isinstance(node, list) and not (isinstance(parts[-1], int) and parts[-1] < len(node)):
            raise SpecError(f"{key} is not an item of the list", path="--set")
        node[parts[-1]] = value
    if overrides:
        _check_shape(data, "the spec with its --set values")
    return data


def _has(node, part) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and part < len(node)


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "literal"}


def _clean_loc(loc, data) -> tuple:
    """Drop pydantic's union-branch tags from a location, keeping real keys and indices."""
    out, node = [], data
    for part in loc:
        if isinstance(part, int) or (isinstance(node, dict) and part in node):
            out.append(part)
            node = node[part] if _has(node, part) else None
        elif isinstance(part, str) and (
            part[:1].isupper() or "[" in part or part.split("[")[0].lower() in _TYPE_TAGS
        ):
            continue
        else:
            out.append(part)
            node = None
    return tuple(out)


def _fields_of(model_cls, loc) -> list[str]:
    """Valid keys at a location of the schema, for 'did you mean'."""
    cls = model_cls
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        found = None
        for cand in getattr(ann, "__args__", (ann,)):
            for inner in getattr(cand, "__args__", (cand,)):
                if isinstance(inner, type) and issubclass(inner, pydantic.BaseModel):
                    found = inner
        if found is None:
            return []
        cls = found
    return list(getattr(cls, "model_fields", {}))


def _describe(value) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def translate(err: pydantic.ValidationError, data, lines, schema, prefix=()) -> SpecError:
    """The first (most useful) validation error as a SpecError with path, line and fix."""
    messages = []
    seen = set()
    for e in err.errors():
        loc = prefix + _clean_loc(e["loc"], _get(data, prefix))
        if loc in seen and e["type"] != "extra_forbidden":
            continue
        seen.add(loc)
        path = ".".join(str(p) for p in loc) or "(top level)"
        line = _nearest_line(lines, loc)
        kind = e["type"]
        if kind == "extra_forbidden":
            valid = _fields_of(schema, loc[len(prefix) : -1])
            hint = did_you_mean(str(loc[-1]), valid)
            msg = f"unknown key {loc[-1]!r}{hint} valid keys here: {', '.join(valid)}"
        elif kind == "missing":
            msg = f"required key {loc[-1]!r} is missing"
        else:
            got = _describe(e.get("input"))
            msg = f"{e['msg'].rstrip('.')}; got {got}"
        messages.append((path, line, msg))
    # Prefer unknown-key and missing-key errors: a union's other branches add noise.
    messages.sort(key=lambda m: 0 if ("unknown key" in m[2] or "missing" in m[2]) else 1)
    path, line, msg = messages[0]
    extra = f" (and {len(messages) - 1} more problem(s))" if len(messages) > 1 else ""
    return SpecError(msg + extra, path=path, line=line)


@dataclasses.dataclass(frozen=True)
class SpecSource:
    """A validated spec of its own kind (glioma, battery), its raw data and the folder its
    relative paths start from."""

    spec: Any
    data: dict
    base_dir: pathlib.Path

    @property
    def name(self) -> str:
        return self.spec.name

    def file(self, value: str | None, key: str) -> pathlib.Path | None:
        """The file a spec value names (relative to the spec's folder), checked to exist;
        None if not given. ``key`` is the key path for the error."""
        if value is None:
            return None
        path = pathlib.Path(value).expanduser()
        path = path if path.is_absolute() else self.base_dir / path
        if not is_file(path):
            raise SpecError(
                f"no file {_describe(str(path))}; give a path relative to the spec's folder "
                f"({str(self.base_dir)!r}) or an absolute one",
                path=key,
            )
        return path


def validate_as(schema, data: dict, lines: dict[Path, int] | None = None):
    """Validate spec data against one pydantic schema (a glioma or battery spec), with the
    errors of `translate`."""
    return _validated(schema, data, lines or {})


def _get(data, loc):
    node = data
    for p in loc:
        node = node[p] if _has(node, p) else None
    return node


def _nearest_line(lines, loc) -> int | None:
    for n in range(len(loc), 0, -1):
        if tuple(loc[:n]) in lines:
            return lines[tuple(loc[:n])]
    return None


def _validated(schema, data, lines, prefix: Path = ()):
    """``schema.model_validate`` of the data at ``prefix``, its errors as a `SpecError` with
    the whole key path."""
    try:
        return schema.model_validate(_get(data, prefix))
    except pydantic.ValidationError as e:
        raise translate(e, data, lines, schema, prefix=prefix) from None


def validate(data: dict, lines: dict[Path, int] | None = None) -> tuple[Spec, ModelConfig]:
    """Validate plain spec data: the spec, and its model section by the backend's schema.

    Everything a user wrote is checked for type and range before anything is derived from
    it: an eigenvalue spec is validated as written, its equation's options by their schema,
    and only then expanded; backend training defaults only see a validated train section."""
    lines = lines or {}
    from ..equations.schrodinger import (
        SchrodingerOptions,
        expand_schrodinger,
        is_eigen_spec,
        reference_energies,
    )

    raw = _validated(Spec, data, lines)  # as written, before anything is derived from it
    backend = raw.model.get("backend", "mlp")
    if not isinstance(backend, str) or backend not in MODEL_CONFIGS:
        hint = did_you_mean(str(backend), list(MODEL_CONFIGS))
        raise SpecError(
            f"unknown backend {_describe(backend)}{hint} backends are {sorted(MODEL_CONFIGS)}",
            path="model.backend",
            line=lines.get(("model", "backend")),
        )
    if is_eigen_spec(data):
        if isinstance(data["equation"], dict):
            options = _validated(SchrodingerOptions, data, lines, ("equation",))
        else:
            options = SchrodingerOptions()
        data = expand_schrodinger(data, options)
        energies = reference_energies(data)
        if energies is not None:
            ref = data["reference"]
            ref["unknowns"] = {**energies, **ref.get("unknowns", {})}
    defaults = getattr(MODEL_CONFIGS[backend], "train_defaults", None)
    if defaults is not None:
        # a backend's own training defaults (gp: Gauss–Newton phases, float64)
        data = {**data, "train": defaults(dict(data.get("train") or {}))}
    spec = _validated(Spec, data, lines)
    data = {**data, "model": spec.model}  # {} where the spec has no model section
    model = _validated(MODEL_CONFIGS[backend], data, lines, ("model",))
    check_memory(spec, model, lines)
    return spec, model


def device_bytes() -> float:
    """The memory of the device training runs on: an accelerator's limit where JAX reports
    one, else the machine's physical memory."""
    import jax

    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - a backend without memory statistics
        stats = {}
    if stats.get("bytes_limit"):
        return float(stats["bytes_limit"])
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_memory(spec: Spec, model: ModelConfig, lines=None) -> None:
    """Refuse, before anything is allocated, a spec whose training step the backend estimates
    (`ModelConfig.step_bytes`) to need more memory than the device has; the message names the
    key that sizes it and the override ``train.memory_check: false``."""
    train = spec.train
    if not train.memory_check:
        return
    itemsize = 8 if train.dtype == "float64" else 4
    points = train.points.interior + train.points.boundary
    need, key = model.step_bytes(len(spec.coords), points, itemsize)
    value = train.points.interior if key == "train.points.interior" else model.grid
    refuse_beyond_device(need, key, value, "one training step", lines)


def refuse_beyond_device(need: float, key: str, value, what: str, lines=None) -> None:
    """A `SpecError` naming ``key`` (now ``value``) when ``need`` bytes, the estimate of
    ``what``, exceed the device's memory; the override is ``train.memory_check: false``."""
    have = device_bytes()
    if need > have:
        raise SpecError(
            f"{what} needs about {need / 2**30:.3g} GiB by pinnkit's estimate and the device "
            f"has {have / 2**30:.3g} GiB: lower {key} (now {value}) or the model's size, or "
            "set train.memory_check: false to try anyway",
            path=key,
            line=_nearest_line(lines or {}, tuple(key.split("."))),
        )
