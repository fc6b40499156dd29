"""Bad input gets a clean `SpecError` quickly (issue 16): the classes the outside fuzz run
found in reading files and deriving defaults."""

import pathlib
import time

import pytest

from pinnkit._solve import load_spec
from pinnkit.errors import SpecError
from pinnkit.spec.loader import MAX_DEPTH, MAX_NODES

PROBLEMS = pathlib.Path(__file__).resolve().parent.parent / "problems"


def _write(tmp_path, text: str | bytes, name="spec.yaml") -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _refused(path, match: str, seconds: float = 1.0) -> SpecError:
    start = time.perf_counter()
    with pytest.raises(SpecError, match=match) as info:
        load_spec(path, base_dir=PROBLEMS)
    assert time.perf_counter() - start < seconds
    return info.value


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path):
    raw = (PROBLEMS / "poisson1d.yaml").read_bytes()
    at = raw.index(b"coords")
    error = _refused(_write(tmp_path, raw[:at] + b"\xff" + raw[at + 1 :]), "not UTF-8")
    assert f"byte {at}" in str(error)


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    text = (PROBLEMS / "poisson1d.yaml").read_text() + "\n".join(lines) + "\ndescription: *a9\n"
    _refused(_write(tmp_path, text), f"more than {MAX_NODES} values")


def test_a_self_reference_and_deep_nesting_are_refused(tmp_path):
    base = (PROBLEMS / "poisson1d.yaml").read_text()
    _refused(_write(tmp_path, base + "\nloop: &loop\n  - *loop\n"), "contains itself")
    deep = base + "\nextra: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"
    _refused(_write(tmp_path, deep), "nested too deeply")
    deep = base + "\nextra: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    _refused(_write(tmp_path, deep), f"more than {MAX_DEPTH} levels")


def test_a_folder_is_not_a_spec(tmp_path):
    _refused(tmp_path, "is not a file")


@pytest.mark.parametrize("name", ["gp_poisson1d_sin100", "wave1d_odil", "infinite_well"])
def test_derived_training_defaults_take_a_null_or_refuse_a_wrong_steps(name, tmp_path):
    text = (PROBLEMS / f"{name}.yaml").read_text()
    load_spec(PROBLEMS / f"{name}.yaml", ["train.steps=null"])  # the default count
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, text), ["train.steps=abc"], base_dir=PROBLEMS)
    assert info.value.path == "train.steps"
