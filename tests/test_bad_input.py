"""Bad input gets a clean `SpecError` quickly (issue 16): the classes the outside fuzz run
found in reading files and deriving defaults."""

import pathlib
import time

import numpy as np
import pytest

from pinnkit._solve import load_spec
from pinnkit.errors import SpecError
from pinnkit.spec.loader import MAX_DEPTH, MAX_NODES

PROBLEMS = pathlib.Path(__file__).resolve().parent.parent / "problems"


def _write(tmp_path, text: str | bytes, name="spec.yaml") -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _refused(path, match: str, seconds: float = 5.0) -> SpecError:
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
    text = (PROBLEMS / "poisson1d.yaml").read_text() + "\n".join(lines) + "\nbomb: *a9\n"
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


def test_a_key_that_is_not_text_is_refused(tmp_path):
    base = (PROBLEMS / "poisson1d.yaml").read_text()
    _refused(_write(tmp_path, base + "\nnull: 1\n"), "not text")
    _refused(_write(tmp_path, base + "\n2026-12-08: 1\n"), "not text")
    _refused(_write(tmp_path, base.replace("model:", "1.5: 2\nmodel:", 1)), "not text")


@pytest.mark.parametrize(
    "override, path",
    [
        ("equation.states=2.5", "equation.states"),
        ("equation.states=1000000000", "equation.states"),
        ("equation.width=-1", "equation.width"),
        ("equation.trace_weight=.nan", "equation.trace_weight"),
        ("equation.widht=2", "equation.widht"),
        ("equation.normalisation=both", "equation.normalisation"),
        ("equation.potential=exp(exp(100*x))", "equation.potential"),
        ("equation.potential=log(x-10)", "equation.potential"),
        ("domain.x=[1, -1]", "domain.x"),
        ("params.a=.inf", "params.a"),
    ],
)
def test_the_schrodinger_builtin_only_expands_validated_options(override, path):
    """Each of these reached the expansion (or the reference solver) unchecked and ended in
    a ValueError, TypeError or a non-finite reference; now the key path is named."""
    with pytest.raises(SpecError) as info:
        load_spec(PROBLEMS / "finite_well.yaml", [override])
    assert info.value.path == path


@pytest.mark.parametrize(
    "override, path",
    [
        ("train.steps=" + "9" * 400, "train.steps"),
        ("train.points.interior=.inf", "train.points.interior"),
        ("train.points.interior=10000000000", "train.points.interior"),
        ("train.seed=-1", "train.seed"),
        ("train.seed=" + "1" * 30, "train.seed"),
        ("model.backend=[mlp]", "model.backend"),
        ("model.width=.nan", "model.width"),
    ],
)
def test_sizes_and_numbers_are_bounded_and_finite(override, path):
    with pytest.raises(SpecError) as info:
        load_spec(PROBLEMS / "poisson1d.yaml", [override])
    assert info.value.path == path, info.value


@pytest.mark.parametrize(
    "content, match",
    [
        (b"x,t,u\n0,0,1\n0.5,0,nan\n", "must be finite"),
        (b"x,t,u\n0,0,one\n", "finite"),
        (b"\x00\xff\xfe garbage", "cannot read|finite"),
        (b"", "cannot read"),
    ],
)
def test_an_observation_file_that_is_not_a_table_of_numbers_is_refused(tmp_path, content, match):
    (tmp_path / "obs.csv").write_bytes(content)
    spec = (PROBLEMS / "heat_inverse_odil.yaml").read_text()
    spec = spec.replace("data/heat_inverse_stripe.csv", str(tmp_path / "obs.csv"))
    with pytest.raises(SpecError, match=match) as info:
        load_spec(_write(tmp_path, spec), base_dir=PROBLEMS).build()
    assert info.value.path.startswith("data")


def test_a_file_name_the_system_cannot_look_up_is_a_missing_file(tmp_path):
    """A name longer than the system allows raised OSError (ENAMETOOLONG) in `is_file`."""
    spec = (PROBLEMS / "heat_inverse_odil.yaml").read_text()
    for name in ["x" * 5000, "a\\0b.csv"]:
        text = spec.replace("data/heat_inverse_stripe.csv", name)
        with pytest.raises(SpecError, match="no such file") as info:
            load_spec(_write(tmp_path, text), base_dir=PROBLEMS)
        assert info.value.path.startswith("data")


CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"
# One file per class of the outside fuzz run (and of ours): what the error must name.
EXPECTED = {
    "alias_bomb.yaml": "values once its aliases",
    "backend_a_list.yaml": "model.backend",
    "deep_block.yaml": "levels deep",
    "deep_flow.yaml": "nested too deeply",
    "duplicate_key.yaml": "appears twice",
    "file_name_too_long.yaml": "no such file",
    "injection.yaml": "params.a",
    "key_not_text.yaml": "not text",
    "not_utf8.yaml": "not UTF-8",
    "schrodinger_domain_reversed.yaml": "domain.x",
    "schrodinger_option_nan.yaml": "equation.trace_weight",
    "schrodinger_potential_overflow.yaml": "equation.potential",
    "schrodinger_states_float.yaml": "equation.states",
    "schrodinger_width_negative.yaml": "equation.width",
    "self_reference.yaml": "contains itself",
    "steps_too_many_digits.yaml": "train.steps",
    "train_defaults_steps_text.yaml": "train.steps",
    "train_section_a_list.yaml": "train",
}


def test_the_corpus_holds_every_class():
    assert sorted(p.name for p in CORPUS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_corpus_entry_is_a_clean_error(name):
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_spec(CORPUS / name, base_dir=PROBLEMS)
    assert time.perf_counter() - start < 5.0  # a hang bound, not a speed figure
    assert EXPECTED[name] in f"{info.value.path} {info.value}"


@pytest.mark.parametrize(
    "name, override, path",
    [
        ("poisson1d", "train.points.interior=100000000", "train.points.interior"),
        ("helmholtz2d_pig", "model.gaussians=1000000", "train.points.interior"),
        ("gp_poisson2d_sin100", "model.grid=100000", "model.grid"),
        ("wave1d_odil", "model.grid=1000000", "model.grid"),
    ],
)
def test_a_step_too_large_for_the_device_is_refused_before_allocation(name, override, path):
    start = time.perf_counter()
    with pytest.raises(SpecError, match="GiB.*memory_check: false") as info:
        load_spec(PROBLEMS / f"{name}.yaml", [override])
    assert info.value.path == path and time.perf_counter() - start < 5
    load_spec(PROBLEMS / f"{name}.yaml", [override, "train.memory_check=false"])  # as meant


@pytest.mark.parametrize("damage", ["not_nifti", "empty", "nan", "flat"])
def test_a_nifti_file_that_is_not_a_usable_image_is_a_clean_error(tmp_path, damage):
    import numpy as np

    from pinnkit.reference.glioma import read_nifti, write_nifti

    path = tmp_path / "scan.nii.gz"
    volume, affine = np.ones((4, 5, 6), np.float32), np.eye(4)
    if damage in ("not_nifti", "empty"):
        path.write_bytes(b"P6\n4 4\n255\n" + bytes(48) if damage == "not_nifti" else b"")
    else:
        if damage == "nan":
            volume[1, 2, 3] = np.nan
        if damage == "flat":
            import nibabel as nib

            nib.save(nib.Nifti1Image(np.ones((4, 5), np.float32), affine), str(path))
        else:
            write_nifti(path, volume, affine)
    match = {"nan": r"voxel \(1, 2, 3\)", "flat": "3D image"}.get(damage, "not a readable NIfTI")
    with pytest.raises(SpecError, match=match):
        read_nifti(path)


@pytest.mark.parametrize(
    "override, match",
    [
        ("train.steps", "KEY=VALUE"),
        ("train..steps=3", "empty key"),
        ("conditions.9.u=1", "not in the spec"),
        ("train.steps=" + "[" * 100 + "]" * 100, "levels deep"),
        (
            "description=[&a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], " + ", ".join(["*a"] * 5) + "]",
            "string",
        ),
        ("model.0=1", "valid string"),
        ("train=&t {steps: *t}", "contains itself|valid integer"),
    ],
)
def test_a_bad_set_is_a_clean_error(override, match):
    with pytest.raises(SpecError, match=match):
        load_spec(PROBLEMS / "poisson1d.yaml", [override])


def test_a_spec_given_as_a_python_dict_has_the_same_limits():
    import yaml

    data = yaml.safe_load((PROBLEMS / "poisson1d.yaml").read_text())
    data["extra"] = data
    with pytest.raises(SpecError, match="contains itself"):
        load_spec(data)


@pytest.mark.parametrize(
    "content, match",
    [
        ("time_s,voltage_V\n0,4.1\n10,4.0\n", None),
        ("time_s,voltage_V\n0,4.1\n10,nan\n", "finite"),
        ("time_s,voltage_V\n0,4100\n10,4000\n", "millivolts"),
        ("time_s,voltage_V\n0,4.1\n10\n", "not two numbers"),
        ("", "empty"),
    ],
)
def test_a_calibration_curve_is_checked_before_sampling(tmp_path, content, match):
    """Beyond test_battery's missing column and times that do not increase."""
    pytest.importorskip("blackjax")
    from pinnkit.battery.calibrate import read_voltage_csv

    path = tmp_path / "curve.csv"
    path.write_text(content)
    if match is None:
        t, v = read_voltage_csv(path)
        assert t.tolist() == [0, 10] and v.tolist() == [4.1, 4.0]
        return
    with pytest.raises(SpecError, match=match) as info:
        read_voltage_csv(path)
    assert info.value.path == "--data"


def test_an_operator_batch_too_large_for_the_device_is_refused():
    spec = PROBLEMS / "sfno_ns2d_small.yaml"
    with pytest.raises(SpecError, match="GiB.*memory_check: false") as info:
        load_spec(spec, ["train.batch_size=100000000"])
    assert info.value.path == "train.batch_size"
    load_spec(spec, ["train.batch_size=100000000", "train.memory_check=false"])


@pytest.mark.parametrize(
    "override, path",
    [
        ("train.levels.0.points=1000000000", "train.levels[0].points"),
        ("reference.times=1000000000", "reference.times"),
    ],
)
def test_a_battery_level_or_reference_too_large_for_the_device_is_refused(override, path):
    spec = PROBLEMS / "spm_surrogate.yaml"
    with pytest.raises(SpecError, match="GiB.*memory_check: false") as info:
        load_spec(spec, [override])
    assert info.value.path == path
    load_spec(spec, [override, "train.memory_check=false"])


def test_a_reference_table_may_have_empty_cells_but_not_infinite_ones(tmp_path):
    """The Ghia table leaves u empty on one centreline and v on the other: not known there."""
    spec = PROBLEMS / "cavity_re100.yaml"
    reference = load_spec(spec).problem().reference()
    assert np.isnan(reference.values["u"]).any() and np.isfinite(reference.values["v"]).any()
    table = (PROBLEMS / "data" / "ghia1982_re100.csv").read_text().replace("0.84123", "inf")
    (tmp_path / "ghia.csv").write_text(table)
    with pytest.raises(SpecError, match="not infinite") as info:
        load_spec(spec, [f"reference.file={tmp_path / 'ghia.csv'}"]).problem().reference()
    assert info.value.path == "reference.file"
