import os
import sys

# Tests import helpers from each other (e.g. `from test_trainer import small_spec`).
sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads; see pinnkit/__init__

# Many tests compile the same small programs: share compilations through JAX's persistent
# cache (keyed by the program, so it never changes a result).
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".jax_cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import jax  # noqa: E402  (after the environment above)
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _x64_as_found():
    """A float64 solve turns x64 on for the whole process (`train.dtype: float64`): give each
    test back the setting it started with, so no test runs in another's precision."""
    before = bool(jax.config.jax_enable_x64)
    yield
    jax.config.update("jax_enable_x64", before)


@pytest.fixture
def x64():
    """float64 for one test (`_x64_as_found` gives the setting back afterwards)."""
    jax.config.update("jax_enable_x64", True)
