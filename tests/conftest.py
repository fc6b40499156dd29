import os
import sys

# Tests import helpers from each other (e.g. `from test_trainer import small_spec`).
sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("MPLBACKEND", "Agg")
