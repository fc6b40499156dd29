"""Property-based tests of bad input (issue 16): specs mutated from the shipped problems the
ways `spec_fuzz` knows (keys deleted or retyped, random strings, unicode, huge and non-finite
numbers, deep nesting, injection strings, invalid bytes, alias bombs, truncation) are either
valid or refused with a `SpecError`, within a time bound, in process and through the CLI.
Nothing else: no other exception, no hang, no code run.

CI draws a modest number of examples; ``make fuzz`` draws 10,000
(``PINNKIT_FUZZ_EXAMPLES``), besides the seeded table of ``tests/spec_fuzz.py``.
"""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_fuzz import KINDS, PROBLEMS, classify

EXAMPLES = int(os.environ.get("PINNKIT_FUZZ_EXAMPLES", "300"))
SECONDS = 5.0  # the bound on one load and validation

mutations = st.tuples(
    st.integers(0, len(PROBLEMS) - 1),
    st.sampled_from(KINDS),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.sampled_from([1, 2, 3, 10, 100, 1000, 5000]),
)
settle = settings(
    deadline=None,
    database=None,  # a failure prints its example; no folder of examples in the checkout
    suppress_health_check=[HealthCheck.too_slow],
)


@settings(settle, max_examples=EXAMPLES)
@given(mutations)
def test_a_mutated_spec_is_valid_or_a_clean_error(mutation):
    outcome, detail = classify(mutation, timeout=SECONDS)
    assert outcome in ("ok", "spec_error"), (outcome, detail)


@settings(settle, max_examples=max(3, EXAMPLES // 40))
@given(mutations)
def test_through_the_cli_a_mutated_spec_exits_0_or_2_without_a_traceback(mutation):
    outcome, detail = classify(mutation, timeout=SECONDS, cli=True)
    assert outcome in ("ok", "spec_error"), (outcome, detail)
