"""The documentation says what the code does: snippets that define what they use, figures
computed from the data set the page is about, and statements about the tests, the
benchmarks and the notebooks that agree with the files they describe."""

from __future__ import annotations

import ast
import builtins
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import clvbayes
from clvbayes.value import heuristics

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# Pages with Python snippets a reader copies: the user guide, the how-tos, getting started.
SNIPPET_PAGES = sorted(
    [*DOCS.glob("guide/*.md"), *DOCS.glob("howto/*.md"), *DOCS.glob("getting_started/*.md"),
     DOCS / "index.md", ROOT / "README.md"]
)
# The user guide is read in order (docs/user_guide.md) and its later pages continue from the
# data guide: they may use what its snippet defines (clvbayes, tx, split, ...).
GUIDE_CONTEXT = DOCS / "guide" / "data.md"


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _flat(text: str) -> str:
    """Markdown text with line breaks and runs of spaces folded, for phrase searches."""
    return " ".join(text.split())


def _names(code: str) -> tuple[set[str], set[str]]:
    """Names a snippet binds (assignments, imports, defs, arguments) and names it reads."""
    bound, read = set(), set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store | ast.Del) else read).add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return bound, read


def _page_names(path: Path) -> tuple[set[str], set[str]]:
    bound, read = set(), set()
    for code in PYTHON_BLOCK.findall(_read(path)):
        b, r = _names(code)
        bound |= b
        read |= r
    return bound, read


@pytest.mark.parametrize("page", SNIPPET_PAGES, ids=[str(p.relative_to(ROOT)) for p in SNIPPET_PAGES])
def test_snippets_define_every_name_they_use(page):
    # e.g. the plots guide's `cb.stage_summary(report, stages)` with neither name defined
    bound, read = _page_names(page)
    if page.parent == GUIDE_CONTEXT.parent:
        bound |= _page_names(GUIDE_CONTEXT)[0]
    undefined = sorted(read - bound - set(dir(builtins)))
    assert not undefined, f"{page.relative_to(ROOT)}: snippets use {undefined} without defining them"


def test_snippets_parse_and_call_stage_summary_with_a_churn_report():
    # The real signatures: lifecycle_stages(report, *, new_window), stage_summary(report, stages),
    # where report is what churn_analysis returns.
    plots = _read(DOCS / "guide" / "plots.md")
    assert "churn = cb.churn_analysis(" in plots
    assert "cb.lifecycle_stages(churn, new_window=" in plots and "cb.stage_summary(churn, stages)" in plots


def test_no_page_promises_a_release():
    # "Bayesian fitting (fit() with PyMC/nutpie) arrives in the next release": fit() exists.
    assert callable(clvbayes.BetaGeoModel.fit)
    pages = [ROOT / "README.md", *DOCS.rglob("*.md")]
    stale = [str(p.relative_to(ROOT)) for p in pages
             if re.search(r"next release|coming soon|future release|arrives in", _read(p), flags=re.I)]
    assert not stale


def test_value_guide_composes_clv_with_p_alive_once(cdnow_transactions):
    rfm = clvbayes.rfm_summary(cdnow_transactions, observation_end="1998-06-30")
    bgnbd = clvbayes.BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, data=rfm)
    gg = clvbayes.GammaGammaModel.from_params({"p": 6.25, "q": 3.74, "gamma": 15.44}, data=rfm)
    m = clvbayes.customer_metrics(
        bgnbd, gg, rfm, quantities=("clv", "p_alive", "discounted_purchases", "spend"),
        horizon=52, discount_rate=0.1, margin=0.3,
    )
    mean = {k: v.summary["mean"].to_numpy() for k, v in m.items()}
    # discounted_purchases already holds P(alive): clv = spend x discounted_purchases
    np.testing.assert_allclose(mean["clv"], mean["spend"] * mean["discounted_purchases"], rtol=1e-12)
    assert not np.allclose(mean["clv"], mean["spend"] * mean["p_alive"] * mean["discounted_purchases"])
    value = _read(DOCS / "guide" / "value.md")
    rows = {line.split("|")[1].strip(): line for line in value.splitlines() if line.startswith("| `")}
    assert "P(alive) x E[discounted purchases in (T, T+H] \\| alive]" in rows["`clv`"]
    assert "P(alive) x E[discounted purchases in (T, T+H] \\| alive]" in rows["`discounted_purchases`"]
    assert rows["`clv`"].count("P(alive)") == 1


def test_silence_window_figures_are_those_of_the_pages_data(cdnow_transactions):
    # The value guide and the churn how-to use the whole 78 weeks to 1998-06-30; the
    # validation guide the 39-week calibration period.
    rfm = clvbayes.rfm_summary(cdnow_transactions, observation_end="1998-06-30")
    window = heuristics.default_silence_window(rfm)
    lost = heuristics.silence_window_lost(rfm, window)
    for page in (DOCS / "guide" / "value.md", DOCS / "howto" / "churn.md"):
        text = _flat(_read(page))
        assert f"{window:.1f} weeks" in text, page.name
        share = f"{100 * lost.mean():.0f}"
        assert f"{int(lost.sum()):,} customers, {share}" in text, page.name
        assert f"{share}% of the base" in text or f"{share} % of the base" in text, page.name
        assert "21.5-week silence window would" not in text, page.name
    split = clvbayes.calibration_holdout_split(cdnow_transactions, calibration_end="1997-09-30",
                                               observation_end="1998-06-30")
    calibration_window = heuristics.default_silence_window(split)
    validation = _flat(_read(DOCS / "guide" / "validation.md"))
    assert f"{calibration_window:.1f} weeks on CDNOW" in validation
    lost_cal = heuristics.silence_window_lost(split, calibration_window).mean()
    assert f"calls {lost_cal:.0%} of the customers lost" in validation


def test_the_slow_marker_and_the_suite_time_are_stated_one_way():
    pyproject = _read(ROOT / "pyproject.toml")
    assert "addopts = \"-ra --strict-markers -m 'not slow'\"" in pyproject
    readme, start = _flat(_read(ROOT / "README.md")), _flat(_read(DOCS / "getting_started" / "index.md"))
    for text in (readme, start):
        # -m slow selects the slow tests only; it does not add them to the default run
        assert "`python -m pytest -m slow` runs only" in text or "`python -m pytest -m slow` runs *only*" in text
        assert '`python -m pytest -m "slow or not slow"` runs everything' in text
        assert "default test suite (about 5-9 minutes on 2 cores" in text
    for page in [ROOT / "README.md", ROOT / "notebooks" / "README.md", *DOCS.rglob("*.md")]:
        text = _flat(_read(page))
        assert not re.search(r"-m slow` adds|ten minutes|test suite \(a few minutes|The test suite runs them", text), page.name


def test_benchmarks_readme_lists_every_script():
    readme = _read(ROOT / "benchmarks" / "README.md")
    table = {line.split("|")[1].strip().strip("`") for line in readme.splitlines() if line.startswith("| `")}
    scripts = {p.name for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_")}
    assert scripts <= table, sorted(scripts - table)


def test_notebook_04_says_what_its_fast_mode_prints(monkeypatch):
    # Section 6 prints whether the full draws were kept (keep_draws="auto"); the text must
    # not claim the customers x draws array is never built when, in fast mode, it is.
    from clvbayes.value.quantities import _keep

    nb = json.loads(_read(ROOT / "notebooks" / "04_scaling_to_millions.ipynb"))
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    markdown = _flat(" ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"))
    kept = {}
    for fast in ("1", "0"):
        monkeypatch.setenv("CLVBAYES_FAST", fast)
        params = {"os": os, "print": lambda *a, **k: None}
        exec("".join(code["source"]), params)
        kept[fast] = _keep("auto", params["N_VALUE_DRAWS"], params["N_CUSTOMERS"], 2)
    assert kept == {"1": True, "0": False}
    assert "`full draws kept: True`" in markdown and "they are not kept (`False`)" in markdown
    assert "never built unless it is small" not in markdown


def test_top_customers_snippet_takes_as_many_customers_as_value_concentration(cdnow_transactions):
    # value_concentration's top 20% of 2,357 customers are 472 (rounded up); the how-to's
    # campaign list took round(0.2 * n) = 471.
    rfm = clvbayes.rfm_summary(cdnow_transactions, observation_end="1998-06-30")
    bgnbd = clvbayes.BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, data=rfm)
    gg = clvbayes.GammaGammaModel.from_params({"p": 6.25, "q": 3.74, "gamma": 15.44}, data=rfm)
    clv = clvbayes.customer_lifetime_value(bgnbd, gg, rfm, horizon=52, discount_rate=0.1, margin=0.3)
    shares = clvbayes.value_concentration(clv, shares=(0.2,))
    expected = int(shares["customers"].iloc[0])
    page = _read(DOCS / "howto" / "top_customers.md")
    expr = re.search(r"^top = ranked\.head\((.+)\)", page, flags=re.M).group(1)  # greedy: to the last ")"
    import math

    assert eval(expr, {"math": math, "round": round, "len": len, "ranked": range(len(rfm))}) == expected == 472


# Pages whose snippets run as written, on the bundled data, once fit() is a maximum-likelihood
# fit: their NUTS fits would take minutes, and every value function takes either kind of fit
# (a point estimate is one draw). Left out: the pages that need a posterior (summary(),
# check_convergence(), the hdi_width matrix), a report folder or a Dask scheduler, and the
# user-guide pages that continue from the data guide.
EXECUTED_PAGES = [
    DOCS / "index.md",
    DOCS / "guide" / "value.md",
    DOCS / "guide" / "validation.md",
    *(DOCS / "howto" / f"{name}.md" for name in ("churn", "customer_equity", "customer_value", "new_customers", "top_customers", "validate")),
]


@pytest.mark.parametrize("page", EXECUTED_PAGES, ids=[p.stem for p in EXECUTED_PAGES])
def test_snippets_run_with_maximum_likelihood_fits(page, monkeypatch, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def fit_mle(self, method="nuts", **_):
        assert method == "nuts", "a snippet asked for another method: run it"
        return self.fit_mle()

    for cls in (clvbayes.BetaGeoModel, clvbayes.GammaGammaModel):
        monkeypatch.setattr(cls, "fit", fit_mle)
    monkeypatch.chdir(tmp_path)  # a snippet that writes a file writes it here
    namespace: dict = {}
    text = _read(page)
    try:
        for match in PYTHON_BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 2
            exec(compile(match.group(1), f"{page.relative_to(ROOT)}:{line}", "exec"), namespace)
    finally:
        plt.close("all")
    assert namespace, "no snippet ran"
