"""Tests of the population simulator (BG/NBD in depth; Pareto/NBD and MBG/NBD here where they
differ, their closed forms in tests/test_family_contract.py) with Gamma-Gamma spend.

Simulated populations are compared, within Monte Carlo error, with closed forms written
here with scipy (independent of the package's kernels): Fader, Hardie & Lee (2005),
"Counting your customers the easy way", Marketing Science 24(2), eq. (8) (P(X(t) = x)),
eq. (9) (E[X(t)]) and the P(alive) expression of FHL's note "Computing P(alive) using the
BG/NBD model" (2008), and the Gamma-Gamma population mean p γ / (q - 1) (FHL 2005,
"RFM and CLV", JMR 42(4)). Every simulation is seeded.
"""

from __future__ import annotations

import hashlib
import math

import numba
import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from clvbayes.kernels.simulate import SIM_BLOCK, block_seed, simulate_population
from clvbayes.simulation import simulate_customers

# CDNOW-like BG/NBD parameters (FHL 2005: r = 0.243, α = 4.414, a = 0.793, b = 2.426) and
# a second set with a > 1 and many purchases per customer.
BG1 = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)
BG2 = dict(r=2.5, alpha=3.0, a=2.2, b=6.0)
GG = dict(p=6.25, q=3.74, gamma=15.44)
Z = 4.5  # z-score bound for Monte Carlo checks (seeded: deterministic, failure ~ 1e-5)


# ----------------------------------------------------------------------------- references


def ref_expected_x(r, alpha, a, b, t):
    """E[X(t)], FHL 2005 eq. (9)."""
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, z))


def ref_pmf(r, alpha, a, b, t, xmax):
    """P(X(t) = x) for x = 0..xmax, FHL 2005 eq. (8)."""
    x = np.arange(xmax + 1)
    lb = special.betaln(a, b)
    # NBD term Γ(r+x)/(Γ(r) x!) (α/(α+t))^r (t/(α+t))^x, i.e. the negative binomial pmf
    nbd = stats.nbinom.pmf(x, r, alpha / (alpha + t))
    first = np.exp(special.betaln(a, b + x) - lb) * nbd
    # 1 - Σ_{j<x} nbd_j = P(NB >= x)
    tail = np.concatenate([[0.0], stats.nbinom.sf(x[1:] - 1, r, alpha / (alpha + t))])
    second = np.where(x > 0, np.exp(special.betaln(a + 1, b + x - 1) - lb) * tail, 0.0)
    return first + second


def ref_p_alive(r, alpha, a, b, x, t_x, T):
    """P(alive at T | x, t_x, T), FHL (2008) note: 1/(1 + δ_{x>0} a/(b+x-1) ((α+T)/(α+t_x))^{r+x})."""
    x = np.asarray(x, float)
    with np.errstate(divide="ignore"):
        odds = np.where(
            x > 0,
            a / (b + np.maximum(x, 1) - 1) * np.exp((r + x) * np.log((alpha + T) / (alpha + t_x))),
            0.0,
        )
    return 1.0 / (1.0 + odds)


def assert_mean(sample, expected, label=""):
    sample = np.asarray(sample, float)
    se = sample.std(ddof=1) / math.sqrt(sample.size)
    assert abs(sample.mean() - expected) < Z * se, (label, sample.mean(), expected, se)


def test_references_are_consistent():
    # The pmf sums to 1 and its mean is eq. (9): checks the two references against each other.
    for prm in (BG1, BG2):
        for t in (5.0, 39.0):
            pmf = ref_pmf(**prm, t=t, xmax=3000)
            assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
            assert (np.arange(pmf.size) * pmf).sum() == pytest.approx(ref_expected_x(**prm, t=t), rel=1e-8)


# ----------------------------------------------------------------------------- distribution


@pytest.mark.parametrize("prm", [BG1, BG2], ids=["cdnow", "a>1"])
def test_frequency_matches_bgnbd(prm):
    T = 39.0
    df = simulate_customers(**prm, T=T, n_customers=200_000, seed=11)
    x = df["frequency"].to_numpy()
    assert_mean(x, ref_expected_x(**prm, t=T), "E[X(T)]")
    assert_mean(x == 0, ref_pmf(**prm, t=T, xmax=0)[0], "P(X(T)=0)")
    # latent draws
    assert_mean(df["true_lambda"], prm["r"] / prm["alpha"], "E[lambda]")
    assert_mean(df["true_p_drop"], prm["a"] / (prm["a"] + prm["b"]), "E[p_drop]")
    # recency is within (0, T] for repeat buyers, 0 otherwise
    rec = df["recency"].to_numpy()
    assert np.all((rec > 0) == (x > 0)) and np.all(rec <= T)


@pytest.mark.parametrize("prm", [BG1, BG2], ids=["cdnow", "a>1"])
def test_frequency_distribution_chi_square(prm):
    """Goodness of fit of the simulated X(T) to FHL 2005 eq. (8) at fixed T."""
    T, n = 30.0, 100_000
    x = simulate_customers(**prm, T=T, n_customers=n, seed=5)["frequency"].to_numpy()
    pmf = ref_pmf(**prm, t=T, xmax=200)
    expected = n * pmf
    k = int(np.nonzero(expected >= 20)[0].max())  # pool the sparse tail into ">= k"
    obs = np.bincount(np.minimum(x, k), minlength=k + 1)
    exp = np.append(expected[:k], n - expected[:k].sum())
    pval = stats.chisquare(obs, exp).pvalue
    assert pval > 1e-4, (pval, obs, exp)


def test_expected_x_at_several_horizons():
    ts = np.array([1.0, 4.0, 13.0, 39.0, 78.0])
    T = np.repeat(ts, 60_000)
    df = simulate_customers(**BG1, T=T, seed=2024)
    for t in ts:
        assert_mean(df.loc[df["T"] == t, "frequency"], ref_expected_x(**BG1, t=t), f"E[X({t})]")


def test_holdout_counts():
    """E[holdout count] = E[X(T+h)] - E[X(T)] (unconditional, fixed T), and the calibration
    plus holdout count is distributed as X(T+h)."""
    T, h = 20.0, 26.0
    df = simulate_customers(**BG2, T=T, n_customers=150_000, holdout=h, seed=77)
    xh = df["frequency_holdout"].to_numpy()
    assert_mean(xh, ref_expected_x(**BG2, t=T + h) - ref_expected_x(**BG2, t=T), "holdout")
    tot = df["frequency"].to_numpy() + xh
    assert_mean(tot == 0, ref_pmf(**BG2, t=T + h, xmax=0)[0], "P(X(T+h)=0)")
    # customers dead at T make no holdout purchases
    assert np.all(xh[~df["true_alive"].to_numpy()] == 0)


@pytest.mark.parametrize("prm", [BG1, BG2], ids=["cdnow", "a>1"])
def test_true_alive_matches_p_alive(prm):
    """Tower property: E[1{alive at T} - P(alive | x, t_x, T)] = 0, also among repeat buyers."""
    T = np.repeat([10.0, 39.0], 80_000)
    df = simulate_customers(**prm, T=T, seed=99)
    pa = ref_p_alive(**prm, x=df["frequency"], t_x=df["recency"], T=df["T"])
    diff = df["true_alive"].to_numpy(float) - pa
    assert_mean(diff, 0.0, "all")
    rep = df["frequency"].to_numpy() > 0
    assert_mean(diff[rep], 0.0, "repeat buyers")
    assert np.all(df["true_alive"].to_numpy()[~rep])  # no dropout before the first repeat


# ----------------------------------------------------------------------------- spend


def test_spend_matches_gamma_gamma():
    df, tx = simulate_customers(**BG2, **GG, T=39.0, n_customers=100_000, seed=3, return_transactions=True)
    p, q, g = GG["p"], GG["q"], GG["gamma"]
    rep = df["frequency"] > 0
    mv = df.loc[rep, "monetary_value"].to_numpy()
    nu = df.loc[rep, "true_nu"].to_numpy()
    assert_mean(mv, p * g / (q - 1), "E[mean repeat value]")
    assert_mean(df["true_nu"], q / g, "E[nu]")
    # given ν each value has mean p/ν: E[m ν / p] = 1 exactly, with a small variance
    assert_mean(mv * nu / p, 1.0, "E[m nu / p]")
    assert np.all(df.loc[~rep, "monetary_value"] == 0.0)
    first = tx.loc[tx["time"] == 0.0, "amount"].to_numpy()
    assert first.size == len(df)
    assert_mean(first, p * g / (q - 1), "first purchase")
    # Gamma(p, rate ν) values: KS test of z ν ~ Gamma(p, 1) over all transactions
    zs = tx["amount"].to_numpy() * df["true_nu"].to_numpy()[tx["customer_id"].to_numpy()]
    assert stats.kstest(zs[:50_000], stats.gamma(p).cdf).pvalue > 1e-4


# ----------------------------------------------------------------------------- transactions


def _summary_from_transactions(tx, T):
    t = tx["time"].to_numpy()
    cid = tx["customer_id"].to_numpy()
    Ti = T[cid]
    cal = (t > 0) & (t <= Ti)
    hold = t > Ti
    n = T.size
    out = pd.DataFrame(index=pd.RangeIndex(n, name="customer_id"))
    out["frequency"] = np.bincount(cid[cal], minlength=n)
    rec = np.zeros(n)
    np.maximum.at(rec, cid[cal], t[cal])
    out["recency"] = rec
    out["frequency_holdout"] = np.bincount(cid[hold], minlength=n)
    if "amount" in tx:
        a = tx["amount"].to_numpy()
        s = np.bincount(cid[cal], weights=a[cal], minlength=n)
        out["monetary_value"] = np.divide(s, out["frequency"], out=np.zeros(n), where=out["frequency"] > 0)
        sh = np.bincount(cid[hold], weights=a[hold], minlength=n)
        fh = out["frequency_holdout"]
        out["monetary_value_holdout"] = np.divide(sh, fh, out=np.zeros(n), where=fh > 0)
    return out


PN = dict(r=0.55, alpha=10.58, s=0.61, beta=11.67)  # Pareto/NBD, CDNOW (Fader & Hardie 2005 note)
MBG = dict(r=0.53, alpha=6.18, a=0.89, b=1.61)  # MBG/NBD, CDNOW (BDF 2007)
MODELS = {"bgnbd": BG2, "pnbd": PN, "mbgnbd": MBG}


@pytest.mark.parametrize("model, spend", [("bgnbd", True), ("bgnbd", False), ("pnbd", True), ("mbgnbd", True)])
def test_summary_from_transactions_equals_summary(model, spend):
    rng = np.random.default_rng(8)
    T = rng.uniform(1.0, 60.0, 30_000)
    kw = GG if spend else {}
    df, tx = simulate_customers(**MODELS[model], **kw, model=model, T=T, holdout=30.0, seed=21,
                                return_transactions=True)
    assert list(tx.columns) == (["customer_id", "time", "amount"] if spend else ["customer_id", "time"])
    # sorted by customer, then time; first purchase at 0 for everyone
    assert np.all(np.diff(tx["customer_id"].to_numpy()) >= 0)
    assert (tx["time"] == 0.0).sum() == len(df)
    assert np.all(tx.groupby("customer_id")["time"].diff().dropna() > 0)
    assert tx["time"].max() <= T.max() + 30.0
    ref = _summary_from_transactions(tx, T)
    for col in ("frequency", "recency", "frequency_holdout"):
        np.testing.assert_array_equal(df[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
    if spend:
        for col in ("monetary_value", "monetary_value_holdout"):
            np.testing.assert_allclose(df[col].to_numpy(), ref[col].to_numpy(), rtol=1e-12, err_msg=col)


# ----------------------------------------------------------------------------- other families


def test_pareto_nbd_latent_lifetime():
    """SMC (1987): μ ~ Gamma(s, rate β), lifetime ~ Exp(μ); alive means not yet past it, and
    no purchase falls after it."""
    T, h = 39.0, 26.0
    df, tx = simulate_customers(**PN, model="pnbd", T=T, n_customers=50_000, holdout=h, seed=31,
                                return_transactions=True)
    assert list(df.columns[df.columns.str.startswith("true_")]) == [
        "true_lambda", "true_mu", "true_lifetime", "true_alive", "true_alive_holdout"]
    life = df["true_lifetime"].to_numpy()
    np.testing.assert_array_equal(df["true_alive"], life > T)
    np.testing.assert_array_equal(df["true_alive_holdout"], life > T + h)
    assert (tx["time"].to_numpy() <= life[tx["customer_id"].to_numpy()]).all()
    assert_mean(df["true_mu"], PN["s"] / PN["beta"], "E[mu]")
    # P(lifetime > t) = (β/(β+t))^s (the Lomax survival function)
    assert_mean(life > T, (PN["beta"] / (PN["beta"] + T)) ** PN["s"], "P(tau > T)")
    assert_mean(df["true_lambda"], PN["r"] / PN["alpha"], "E[lambda]")


def test_mbgnbd_can_drop_out_at_time_zero():
    """BDF (2007): a dropout chance right after the first purchase too: just after time 0 a
    customer is alive with probability E[1 - p] = b/(a+b) (BG/NBD: surely)."""
    df = simulate_customers(**MBG, model="mbgnbd", T=1e-9, n_customers=50_000, seed=32)
    assert (df["frequency"] == 0).all()
    assert_mean(df["true_alive"], MBG["b"] / (MBG["a"] + MBG["b"]), "P(alive at 0+)")
    bg = simulate_customers(**MBG, T=1e-9, n_customers=2000, seed=32)
    assert bg["true_alive"].all()  # BG/NBD: no dropout before the first repeat purchase


def test_unknown_model_and_mixed_parameters():
    with pytest.raises(ValueError, match="Unknown model family"):
        simulate_customers(**BG1, model="nope", T=1.0, n_customers=1, seed=0)
    with pytest.raises(TypeError, match="not both"):
        simulate_customers(0.2, 4.0, 0.8, 2.4, T=1.0, r=0.2, n_customers=1, seed=0)
    with pytest.raises(TypeError, match="Unexpected argument"):
        simulate_customers(**BG1, s=1.0, T=1.0, n_customers=1, seed=0)
    with pytest.raises(TypeError, match="needs T"):
        simulate_customers(**BG1, n_customers=1, seed=0)
    with pytest.raises(ValueError, match="beta must be"):
        simulate_customers(**{**PN, "beta": -1.0}, model="pnbd", T=1.0, n_customers=1, seed=0)


# ----------------------------------------------------------------------------- reproducibility


def test_bgnbd_output_is_unchanged():
    """The BG/NBD population of a seed is part of the API (cached benchmark data, published
    examples): this digest was taken before the simulator became generic over families
    (commit ecaadeb); every column present then, and the transactions, must be bit-identical."""
    T = np.linspace(0.5, 60.0, 3000)
    df, tx = simulate_customers(2.5, 3.0, 2.2, 6.0, T, **GG, holdout=20.0, seed=7, return_transactions=True)
    h = hashlib.sha256()
    for c in ["frequency", "recency", "T", "monetary_value", "frequency_holdout", "monetary_value_holdout",
              "true_lambda", "true_p_drop", "true_nu", "true_alive"]:
        h.update(np.ascontiguousarray(df[c].to_numpy()).tobytes())
    for c in tx.columns:
        h.update(np.ascontiguousarray(tx[c].to_numpy()).tobytes())
    assert h.hexdigest() == "a97a4bc567e0f2aaf455ef3609bc39dc10da8c9798872cd38da6b1f464da3c52"
    # the legacy kernel entry point is the generic simulator at BG/NBD's cores
    nan = math.nan
    pop = simulate_population(2.5, 3.0, 2.2, 6.0, T, nan, nan, nan, False, 0.0, 7)
    np.testing.assert_array_equal(pop[0], simulate_customers(2.5, 3.0, 2.2, 6.0, T, seed=7)["frequency"])



def test_same_seed_same_result_different_seed_differs():
    kw = dict(**BG1, **GG, T=39.0, n_customers=5000, holdout=10.0, return_transactions=True)
    s1, t1 = simulate_customers(**kw, seed=1)
    s2, t2 = simulate_customers(**kw, seed=1)
    s3, t3 = simulate_customers(**kw, seed=2)
    pd.testing.assert_frame_equal(s1, s2)
    pd.testing.assert_frame_equal(t1, t2)
    assert not s1["true_lambda"].equals(s3["true_lambda"])
    assert not s1["frequency"].equals(s3["frequency"])


def test_prefix_stable_when_adding_customers():
    small = simulate_customers(**BG1, T=39.0, n_customers=2 * SIM_BLOCK + 5, seed=4)
    big = simulate_customers(**BG1, T=39.0, n_customers=5 * SIM_BLOCK, seed=4)
    pd.testing.assert_frame_equal(small, big.iloc[: len(small)])


def test_block_seeds_distinct():
    seeds = [block_seed(s, k) for s in (0, 1, 12345) for k in range(1000)]
    assert all(0 <= v < 2**32 for v in seeds)
    for s in (0, 1, 12345):
        assert len({block_seed(s, k) for k in range(1000)}) == 1000


def test_independent_of_thread_count():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 Numba threads")
    T = np.linspace(1.0, 50.0, 20 * SIM_BLOCK + 17)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = simulate_customers(**BG1, **GG, T=T, holdout=5.0, seed=9, return_transactions=True)
        numba.set_num_threads(2)
        b = simulate_customers(**BG1, **GG, T=T, holdout=5.0, seed=9, return_transactions=True)
    finally:
        numba.set_num_threads(before)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])


# ----------------------------------------------------------------------------- edge cases, API


def test_frame_layout():
    df = simulate_customers(**BG1, **GG, T=[5.0, 10.0, 20.0], holdout=3.0, seed=0)
    assert df.index.name == "customer_id"
    assert list(df.index) == [0, 1, 2]
    assert list(df.columns) == [
        "frequency", "recency", "T", "monetary_value", "frequency_holdout",
        "monetary_value_holdout", "true_lambda", "true_p_drop", "true_nu", "true_alive",
        "true_alive_holdout",
    ]  # fmt: skip
    df0 = simulate_customers(**BG1, T=np.array([5.0]), seed=0)
    assert list(df0.columns) == ["frequency", "recency", "T", "true_lambda", "true_p_drop", "true_alive"]
    assert len(simulate_customers(**BG1, T=[], seed=0)) == 0


def test_extreme_parameters_do_not_crash():
    # tiny shapes: λ and p_drop draws may underflow to 0 (no purchases / never drops out)
    df = simulate_customers(r=1e-4, alpha=1e-4, a=1e-4, b=1e4, T=10.0, n_customers=3000, seed=1)
    assert np.all(np.isfinite(df["recency"]))
    out = simulate_population(1e-4, 1.0, 1e-4, 1.0, np.full(100, 5.0), np.nan, np.nan, np.nan, False, 0.0, 3)
    assert np.all(out[0] >= 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(r=-1.0), "r must be"),
        (dict(alpha=0.0), "alpha must be"),
        (dict(a=float("nan")), "a must be"),
        (dict(b="x"), "b must be"),
        (dict(T=-1.0), "T must be positive"),
        (dict(T=[1.0, 0.0], n_customers=None), "T must be positive"),
        (dict(T=[[1.0]], n_customers=None), "one-dimensional"),
        (dict(n_customers=None), "n_customers"),
        (dict(T=[1.0, 2.0], n_customers=3), "does not match"),
        (dict(p=1.0), "all three"),
        (dict(p=1.0, q=-2.0, gamma=1.0), "q must be"),
        (dict(holdout=0.0), "holdout must be"),
        (dict(seed=1.5), "seed"),
        (dict(seed=True), "seed"),
        (dict(seed=-3), "seed"),
    ],
)
def test_argument_validation(kwargs, match):
    base = dict(**BG1, T=10.0, n_customers=10, seed=0)
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        simulate_customers(**base)


@pytest.mark.slow
def test_one_million_customers():
    df = simulate_customers(**BG1, **GG, T=39.0, n_customers=1_000_000, holdout=39.0, seed=123)
    assert_mean(df["frequency"], ref_expected_x(**BG1, t=39.0), "E[X(39)]")
    assert_mean(df["frequency_holdout"], ref_expected_x(**BG1, t=78.0) - ref_expected_x(**BG1, t=39.0))
