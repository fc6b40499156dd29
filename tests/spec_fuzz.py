"""Mutated specs for the fuzz tests and the ``make fuzz`` tier (issue 16).

A mutation is a plain tuple drawn from a seed (``random.Random``) or from hypothesis, applied
to one of the shipped ``problems/*.yaml``: a key deleted or retyped, a value replaced by a
random string, unicode, a huge, negative or non-finite number, deep nesting or a
code-injection string; or, on the file's text, invalid bytes, an alias bomb, a self-reference
or a deep flow collection. `classify` loads and validates the result without training and
names the outcome: ``ok`` (a valid spec), ``spec_error`` (a clean `SpecError`), ``bug``
(any other exception), ``timeout`` (no answer within the bound) or ``code_ran`` (an injected
command left its mark).

Run as a script for the big tier::

    python tests/spec_fuzz.py --n 10000 --seed 20261207 --jobs 2
    python tests/spec_fuzz.py --n 300 --seed 20261208 --jobs 2 --cli
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import pathlib
import random
import signal
import sys
import tempfile
import time
import traceback

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROBLEMS = sorted((ROOT / "problems").glob("*.yaml"))
MARK = pathlib.Path(tempfile.gettempdir()) / "pinnkit-fuzz-code-ran"
CLI_STARTUP = 10.0  # seconds added to the bound for a new process

INJECTIONS = [
    f"__import__('os').system('touch {MARK}')",
    f"exec(\"open('{MARK}', 'w')\")",
    "().__class__.__bases__[0].__subclasses__()",
    f"!!python/object/apply:os.system ['touch {MARK}']",
    "{{ 7 * 7 }}",
    "${HOME}",
    "$(touch /tmp/x)",
    "lambda: 0",
    "x.__dict__",
    "'; DROP TABLE specs; --",
    "../../../../etc/passwd",
    "/dev/zero",
    "\x00",
]
STRINGS = [
    "",
    " ",
    "sin(",
    "u_xx +",
    "2**2**2**2**2**2",
    "9" * 400,
    "(" * 500 + "x" + ")" * 500,
    "-" * 300 + "x",
    "u" + "_x" * 60,
    "x" * 5000,
    "1e999",
    "nan",
    "inf",
    "ü∂x²",
    "\u202e\u0000\ud7ff",
    "🙂",
    "u_t + u*u_x - 0.01/pi*u_xx",
    "exp(exp(exp(exp(x))))",
    "x if x else y",
    "[x for x in y]",
    "a" * 50 + "(x)",
    "sum",
    "True",
]
NUMBERS = [0, -1, -(10**9), 10**9, 10**30, 2**63, -(2**63), 1e308, -1e308, 1e-320]
SPECIAL = [math.nan, math.inf, -math.inf, None, True, False, [], {}, [[]], {"": None}]

KINDS = (
    "delete",
    "retype",
    "string",
    "inject",
    "number",
    "special",
    "nest",
    "duplicate_list",
    "bytes",
    "alias_bomb",
    "self_reference",
    "deep_flow",
    "truncate",
)


def paths(node, prefix=()):
    """Every key path of plain YAML data, parents before children."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, prefix + (i,))
    return out


def _set(data, path, value, delete=False):
    node = data
    for p in path[:-1]:
        node = node[p]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value


def _get(data, path):
    for p in path:
        data = data[p]
    return data


def _nested(value, depth):
    for _ in range(depth):
        value = [value]
    return value


def draw(rng: random.Random) -> tuple:
    """One mutation: (problem index, kind, path choice, payload choice, size)."""
    return (
        rng.randrange(len(PROBLEMS)),
        rng.choice(KINDS),
        rng.randrange(10**6),
        rng.randrange(10**6),
        rng.choice([1, 2, 3, 10, 100, 1000, 5000]),
    )


def apply(mutation: tuple) -> tuple[str, pathlib.Path]:
    """The mutated spec's YAML text (or bytes, as latin-1 text for invalid ones) and the
    problem it came from."""
    index, kind, where, what, size = mutation
    source = PROBLEMS[index % len(PROBLEMS)]
    from pinnkit.spec.loader import load_yaml  # the spec's YAML 1.2 rules: `on:` is a key

    text = source.read_text()
    data = load_yaml(text)
    keys = paths(data)
    path = keys[where % len(keys)]
    if kind == "delete":
        _set(data, path, None, delete=True)
    elif kind == "retype":
        old = _get(data, path)
        choices = [1, 1.5, "text", [1, 2], {"a": 1}, None, True]
        choices = [c for c in choices if type(c) is not type(old)]
        _set(data, path, choices[what % len(choices)])
    elif kind == "string":
        _set(data, path, STRINGS[what % len(STRINGS)])
    elif kind == "inject":
        _set(data, path, INJECTIONS[what % len(INJECTIONS)])
    elif kind == "number":
        value = NUMBERS[what % len(NUMBERS)]
        _set(data, path, value * size if isinstance(value, int) and abs(value) < 10**12 else value)
    elif kind == "special":
        _set(data, path, SPECIAL[what % len(SPECIAL)])
    elif kind == "nest":
        _set(data, path, _nested(_get(data, path), size))
    elif kind == "duplicate_list":
        old = _get(data, path)
        _set(data, path, [old] * size)
    if kind in ("delete", "retype", "string", "inject", "number", "special", "duplicate_list"):
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False), source
    if kind == "nest":
        try:
            return yaml.safe_dump(data, sort_keys=False), source
        except RecursionError:
            return text + "\nextra: " + "[" * size + "]" * size + "\n", source
    if kind == "bytes":
        raw = bytearray(text.encode())
        r = random.Random(what)
        for _ in range(max(1, size // 100)):
            raw[r.randrange(len(raw))] = r.choice([0x80, 0xFF, 0xC3, 0xE2, 0xF0, 0x00, 0xFE])
        return raw.decode("latin-1"), source
    if kind == "alias_bomb":
        levels = 3 + what % 8
        lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        for i in range(1, levels):
            refs = ", ".join([f"*a{i - 1}"] * 9)
            lines.append(f"a{i}: &a{i} [{refs}]")
        lines.append(f"bomb: *a{levels - 1}")
        return text + "\n" + "\n".join(lines) + "\n", source
    if kind == "self_reference":
        return text + "\nloop: &loop\n  - *loop\n", source
    if kind == "deep_flow":
        return text + "\nextra: " + "{a: " * size + "1" + "}" * size + "\n", source
    if kind == "truncate":
        return text[: where % max(1, len(text))], source
    raise ValueError(kind)


def _alarm(signum, frame):
    raise TimeoutError


def classify(mutation: tuple, timeout: float = 5.0, cli: bool = False) -> tuple[str, str]:
    """Load and validate one mutated spec: (outcome, detail)."""
    from pinnkit._solve import load_spec
    from pinnkit.errors import SpecError

    text, source = apply(mutation)
    MARK.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / source.name
        path.write_bytes(text.encode("latin-1") if mutation[1] == "bytes" else text.encode())
        # relative files (reference data, scans) resolve against the problem's own folder
        previous = signal.signal(signal.SIGALRM, _alarm)
        # through the CLI, a new interpreter starts and imports jax first (2-4 s)
        signal.setitimer(signal.ITIMER_REAL, timeout + (CLI_STARTUP if cli else 0.0))
        start = time.perf_counter()
        try:
            if cli:
                outcome, detail = _through_cli(path, source.parent, timeout)
            else:
                load_spec(path, base_dir=source.parent)
                outcome, detail = "ok", ""
        except SpecError as e:
            outcome, detail = "spec_error", str(e)[:200]
        except TimeoutError:
            outcome, detail = "timeout", f"{time.perf_counter() - start:.1f} s"
        except RecursionError as e:  # noqa: B014 - named for the report
            outcome, detail = "bug", "RecursionError: " + str(e)[:100]
        except Exception as e:  # noqa: BLE001 - the point is to catch every other kind
            tb = traceback.extract_tb(e.__traceback__)
            where = f"{pathlib.Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
            outcome, detail = "bug", f"{type(e).__name__} at {where}: {str(e)[:120]}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    if MARK.exists():
        outcome, detail = "code_ran", str(mutation)
    return outcome, detail


def _through_cli(path, base, timeout):
    import subprocess

    spec = base / f".fuzz-{os.getpid()}-{path.name}"
    spec.write_bytes(path.read_bytes())
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pinnkit.cli", "validate", str(spec)],
            capture_output=True,
            text=True,
            timeout=timeout + CLI_STARTUP + 5,  # killed if the alarm somehow did not fire
            errors="replace",
        )
    except subprocess.TimeoutExpired:
        return "timeout", "cli"
    finally:
        spec.unlink(missing_ok=True)
    if proc.returncode == 0:
        return "ok", ""
    if proc.returncode == 2 and "Traceback" not in proc.stderr:
        return "spec_error", proc.stderr.strip()[-200:]
    return "bug", f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"


def _shard(args):
    seed, start, stop, timeout, cli = args
    rng = random.Random(seed)
    mutations = [draw(rng) for _ in range(stop)][start:]
    return [(m, *classify(m, timeout, cli=cli)) for m in mutations]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--out", default=None, help="write every bug and timeout here (JSON)")
    parser.add_argument(
        "--cli", action="store_true", help="through `pinnkit validate` in a new process each"
    )
    args = parser.parse_args(argv)
    import multiprocessing

    bounds = [args.n * i // args.jobs for i in range(args.jobs + 1)]
    tasks = [(args.seed, a, b, args.timeout, args.cli) for a, b in zip(bounds, bounds[1:])]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = [r for shard in pool.map(_shard, tasks) for r in shard]
    counts = collections.Counter(outcome for _, outcome, _ in results)
    where = "through the CLI" if args.cli else "in process"
    print(f"{args.n} mutated specs, seed {args.seed}, {where}, {time.perf_counter() - start:.0f} s")
    print("| outcome | count |\n|---|---|")
    for outcome in ("spec_error", "ok", "bug", "timeout", "code_ran"):
        print(f"| {outcome} | {counts.get(outcome, 0)} |")
    bad = [(m, o, d) for m, o, d in results if o in ("bug", "timeout", "code_ran")]
    classes = collections.Counter(
        d.split(":")[0] + " " + d.split(" at ")[-1].split(":")[0] for _, _, d in bad
    )
    for name, count in classes.most_common(40):
        print(f"  {count:5d}  {name}")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(bad, indent=1, default=str))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
