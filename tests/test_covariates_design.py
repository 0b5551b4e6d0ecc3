"""Covariate designs and attribute joins (clvbayes.covariates): encoding and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvbayes.covariates import build_design, join_attributes
from clvbayes.data.validate import DataValidationError


def _customers(n: int = 60, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": [f"{i:05d}" for i in range(n)],
        "income": rng.normal(50.0, 12.0, n),
        "age": rng.integers(18, 80, n),
        "channel": rng.choice(["web", "store", "phone"], n, p=[0.5, 0.3, 0.2]),
        "vip": rng.uniform(size=n) < 0.3,
    })


def test_numeric_columns_are_standardised_and_unstandardise_exactly():
    df = _customers()
    d = build_design(df, ["income", "age", "vip"])
    assert d.names == ("income", "age", "vip")
    np.testing.assert_allclose(d.matrix.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(d.matrix.std(axis=0), 1.0, rtol=1e-12)
    beta = np.array([[0.3, -0.2, 0.5], [0.1, 0.0, -1.0]])
    per_unit, shift = d.unstandardise(beta)
    raw = df[["income", "age", "vip"]].to_numpy(float)
    # Σ β z = Σ (β/s) v + shift, for every customer and draw
    np.testing.assert_allclose(d.matrix @ beta.T, raw @ per_unit.T + shift, rtol=1e-10, atol=1e-12)


def test_categorical_columns_use_treatment_coding_against_the_most_frequent_level():
    df = pd.DataFrame({"customer_id": range(9), "c": ["b", "a", "a", "c", "c", "b", "a", "c", "d"]})
    d = build_design(df, ["c"], min_level_count=1)
    # a and c tie at 3: sorted order puts 'a' first; then c, then b (2), d (1)
    assert d.levels["c"] == ("a", "c", "b", "d")
    assert d.names == ("c[c]", "c[b]", "c[d]")
    np.testing.assert_array_equal(d.matrix[:, 0], (df["c"] == "c").to_numpy(float))
    assert d.categorical_only
    d2 = build_design(df, ["c"], reference={"c": "d"}, min_level_count=1)
    assert d2.levels["c"][0] == "d" and "c[a]" in d2.names
    # a numeric store number as categorical
    df["store"] = [1, 1, 2, 2, 3, 3, 1, 2, 3]
    d3 = build_design(df, ["store"], categorical=["store"])
    assert d3.levels["store"] == (1, 2, 3) and d3.names == ("store[2]", "store[3]")  # a three-way tie


def test_transform_reproduces_the_design_and_refuses_unknown_levels():
    df = _customers()
    d = build_design(df, ["income", "channel"])
    np.testing.assert_allclose(d.transform(df), d.matrix, rtol=0, atol=1e-15)
    new = pd.DataFrame({"income": [50.0], "channel": ["fax"]}, index=["new1"])
    with pytest.raises(DataValidationError, match=r"'channel'.*'fax'.*new1"):
        d.transform(new)
    with pytest.raises(DataValidationError, match="no column 'income'"):
        d.transform(pd.DataFrame({"channel": ["web"]}))


def test_cells_of_a_categorical_design():
    df = _customers(200)
    df["region"] = np.where(df["income"] > 50, "north", "south")
    d = build_design(df, ["channel", "region"])
    rows, cell = d.cells()
    assert rows.shape[0] <= 6 and rows.shape[1] == d.n_terms
    np.testing.assert_array_equal(rows[cell], d.matrix)
    assert not build_design(df, ["channel", "income"]).categorical_only


@pytest.mark.parametrize(
    "change, columns, pattern",
    [
        (lambda df: df.assign(income=df["income"].where(df.index != 3)), ["income"],
         r"'income' is missing for 1 customers \('00003'\)"),
        (lambda df: df.assign(channel=df["channel"].where(df.index != 7)), ["channel"],
         r"'channel' is missing for 1 customers \('00007'\)"),
        (lambda df: df.assign(income=df["income"].where(df.index != 5, np.inf)), ["income"],
         r"'income' is infinite for customers '00005'"),
        (lambda df: df.assign(age=df["age"].astype(object).where(df.index != 2, "n/a")), ["age"],
         r"'age' holds numbers and text \(e.g. 'n/a' for customers '00002'\).*categorical=\['age'\]"),
        (lambda df: df.assign(income=4.0), ["income"], r"'income' is constant \(4 for every customer\)"),
        (lambda df: df.assign(channel="web"), ["channel"], r"'channel' has one level \('web'\)"),
        (lambda df: df.assign(channel=np.where(df.index == 9, "fax", df["channel"])), ["channel"],
         r"'channel' has levels seen in fewer than 2 customers: 'fax' \(customers '00009'\).*min_level_count=1"),
        (lambda df: df.assign(twice=2 * df["income"] - 3 * df["age"]), ["income", "age", "twice"],
         r"perfectly collinear: 'income', 'age', 'twice'"),
        (lambda df: df, ["nope"], r"no column 'nope'"),
        (lambda df: df, ["income", "income"], r"listed twice: 'income'"),
    ],
)
def test_bad_covariates_are_refused_with_the_column_and_customers(change, columns, pattern):
    df = change(_customers())
    with pytest.raises(DataValidationError, match=pattern):
        build_design(df, columns)


def test_text_read_as_text_is_categorical_unless_asked_otherwise():
    df = pd.DataFrame({"customer_id": range(6), "tier": ["1", "2", "1", "2", "x", "x"], "c": list("aabbcc")})
    with pytest.raises(DataValidationError, match="holds numbers and text"):
        build_design(df, ["tier"])
    assert build_design(df, ["tier"], categorical=["tier"]).levels["tier"] == ("1", "2", "x")
    assert build_design(df, ["c"]).names == ("c[b]", "c[c]")


def test_nested_categories_are_a_dummy_trap():
    df = pd.DataFrame({"customer_id": range(40),
                       "country": np.repeat(["fr", "de", "it", "es"], 10)})
    df["region"] = df["country"].map({"fr": "west", "es": "west", "de": "east", "it": "east"})
    with pytest.raises(DataValidationError, match=r"perfectly collinear: .*country.*region"):
        build_design(df, ["country", "region"])
    with pytest.raises(DataValidationError, match="2 customers cannot identify 2 covariate terms"):
        build_design(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 1.0]}), ["a", "b"], customer_id=None)


# --------------------------------------------------------------------------------------
# join_attributes
# --------------------------------------------------------------------------------------


def _summary() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["007", "012", "003"], "frequency": [1.0, 0.0, 4.0]})


def test_join_keeps_the_summary_order_and_dtypes_and_copies():
    s = _summary()
    a = pd.DataFrame({"customer_id": ["003", "007", "012"], "channel": pd.Categorical(["web", "store", "web"]),
                      "income": [1.0, 2.0, 3.0]})
    s0, a0 = s.copy(), a.copy()
    out = join_attributes(s, a)
    assert list(out["customer_id"]) == ["007", "012", "003"]
    assert list(out["income"]) == [2.0, 3.0, 1.0]
    assert isinstance(out["channel"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(s, s0)
    pd.testing.assert_frame_equal(a, a0)
    assert list(join_attributes(s, a, columns=["income"]).columns) == ["customer_id", "frequency", "income"]


def test_join_refuses_ids_missing_on_either_side():
    s = _summary()
    a = pd.DataFrame({"customer_id": ["007", "003", "999"], "income": [1.0, 2.0, 3.0]})
    with pytest.raises(DataValidationError, match=r"1 of 3 customers of the summary have no attributes \('012'\)"):
        join_attributes(s, a)
    a = pd.DataFrame({"customer_id": ["007", "003", "012", "999"], "income": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(DataValidationError, match=r"1 customers of the attributes are not in the summary \('999'\).*extra='ignore'"):
        join_attributes(s, a)
    assert join_attributes(s, a, extra="ignore").shape == (3, 3)


def test_join_explains_numeric_ids_that_lost_their_leading_zeros():
    a = pd.DataFrame({"customer_id": [7, 12, 3], "income": [1.0, 2.0, 3.0]})
    with pytest.raises(DataValidationError, match=r"ids are text and the attributes' ids numbers.*leading zeros"):
        join_attributes(_summary(), a)


def test_join_refuses_duplicates_clashes_and_missing_id_columns():
    s = _summary()
    a = pd.DataFrame({"customer_id": ["007", "007", "012", "003"], "income": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(DataValidationError, match=r"list 1 customers more than once \('007'\)"):
        join_attributes(s, a)
    a = pd.DataFrame({"customer_id": ["007", "012", "003"], "frequency": [1.0, 2.0, 3.0]})
    with pytest.raises(DataValidationError, match=r"'frequency' already exist"):
        join_attributes(s, a)
    with pytest.raises(DataValidationError, match=r"attributes has no id column 'customer_id'"):
        join_attributes(s, a.rename(columns={"customer_id": "id"}))
    with pytest.raises(DataValidationError, match=r"have no column 'nope'"):
        join_attributes(s, a.rename(columns={"frequency": "f"}), columns=["nope"])
