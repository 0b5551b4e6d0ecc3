import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from clvbayes import compress_rows


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 200), st.just(3)), elements=st.integers(0, 4).map(float)))
def test_compress_roundtrip_against_numpy_unique(rows):
    out = compress_rows(rows[:, 0], rows[:, 1], rows[:, 2])
    uniq, counts = np.unique(rows, axis=0, return_counts=True)
    got = np.column_stack(out.columns)
    np.testing.assert_array_equal(got, uniq)  # np.unique sorts rows lexicographically too
    np.testing.assert_array_equal(out.weights, counts)
    for k in range(3):
        np.testing.assert_array_equal(out.columns[k][out.inverse], rows[:, k])
    assert out.weights.sum() == rows.shape[0]


def test_compress_empty_and_errors():
    out = compress_rows(np.empty(0), np.empty(0))
    assert out.n_unique == 0
    try:
        compress_rows(np.zeros(2), np.zeros(3))
    except ValueError as err:
        assert "equal length" in str(err)
    else:  # pragma: no cover
        raise AssertionError("mismatched lengths must raise")
