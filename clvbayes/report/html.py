"""``report.html``: one self-contained page (figures embedded as base64 PNG, CSS inline, no
scripts, no network), readable offline in any browser."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math

import pandas as pd

from clvbayes.plotting._common import duration, unit_name
from clvbayes.value.quantities import hdi_names
from clvbayes.workflow import NO_AMOUNTS

__all__ = ["render_html", "fmt"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1.5rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
.meta{color:#666;font-size:.9rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:.8rem;margin:1rem 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.7rem .9rem;background:#fafafa}
.card .label{font-size:.8rem;color:#555;text-transform:uppercase;letter-spacing:.03em}
.card .value{font-size:1.35rem;font-weight:600}.card .interval{font-size:.85rem;color:#555}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0 1rem}
.scroll{overflow-x:auto;max-width:100%}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}
figure{margin:1rem 0;display:inline-block;max-width:100%}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555;max-width:700px}
.ok{color:#1a7f37;font-weight:600}.warn{color:#b35900;font-weight:600}
code{background:#f4f4f4;padding:0 .2rem}
"""


def fmt(value: object, digits: int = 4) -> str:
    """A number as the report prints it: thousands separators, ``digits`` significant digits
    (at least the integer part), ``-`` for missing values."""
    if value is None:
        return "-"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return f"{value:,}"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    if not math.isfinite(v):
        return "-"
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    decimals = max(0, digits - 1 - mag)
    return f"{v:,.{decimals}f}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _table(df: pd.DataFrame, *, index: bool = True, digits: int = 4) -> str:
    shown = df.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: fmt(v, digits))
        elif pd.api.types.is_integer_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: f"{int(v):,}")
    return f'<div class="scroll">{shown.to_html(index=index, escape=True, border=0)}</div>'


def _card(label: str, value: str, interval: str = "") -> str:
    inner = f'<div class="label">{html.escape(label)}</div><div class="value">{value}</div>'
    if interval:
        inner += f'<div class="interval">{interval}</div>'
    return f'<div class="card">{inner}</div>'


def _figure(fig) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    return (
        f'<figure id="fig-{fig.name}"><img alt="{html.escape(fig.caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
    )


def _hdi(row, lo: str, hi: str) -> str:
    return f"[{fmt(row[lo])}, {fmt(row[hi])}]"


def render_html(analysis, figures, *, command: str | None = None) -> str:
    """The report page for ``analysis`` with ``figures`` (from
    :func:`clvbayes.report.figures.report_figures`) embedded.

    Parameters
    ----------
    analysis
        A :class:`clvbayes.workflow.Analysis`.
    figures
        The rendered figures.
    command
        The command line that produced the report, shown under "Settings".

    Returns
    -------
    str
        The HTML document.
    """
    a = analysis
    s = a.settings
    pct = f"{100 * s['hdi_prob']:g}%"
    unit = s["time_unit"]
    by_section: dict[str, list] = {}
    for f in figures:
        by_section.setdefault(f.section, []).append(f)

    def figs(section: str) -> str:
        return "".join(_figure(f) for f in by_section.get(section, []))

    money = a.has_amounts
    lo, hi = hdi_names(s["hdi_prob"])
    ch = a.churn.summary.loc["total"]
    horizon = s["horizon"]
    eq = a.equity.summary if money else None
    total = eq.loc["total"] if money else None
    top20 = a.concentration.loc[0.2] if money and 0.2 in a.concentration.index else None

    cards = [_card("Customers", f"{len(a.data):,}", f"{int((a.data['frequency'] > 0).sum()):,} repeat buyers")]
    if money:
        cards += [
            _card(f"Customer equity ({duration(horizon, unit)})", fmt(total["mean"]), f"{pct} HDI {_hdi(total, lo, hi)}"),
            _card("Mean CLV per customer", fmt(total["per_customer"])),
        ]
    else:
        purchases = a.customers["expected_purchases"].sum()
        cards.append(_card(f"Expected purchases ({duration(horizon, unit)})", fmt(purchases), "all customers"))
    cards += [
        _card("Expected alive", fmt(ch["alive_mean"]), f"of {len(a.data):,} customers"),
        _card(f"Churn rate next {duration(s['period'], unit)}", _pct(ch["churn_rate_mean"]),
              f"{pct} HDI [{_pct(ch[f'churn_rate_{lo}'])}, {_pct(ch[f'churn_rate_{hi}'])}]"),
    ]
    if top20 is not None:
        cards.append(_card("Equity held by the top 20%", _pct(top20["mean"]),
                           f"{pct} HDI [{_pct(top20[lo])}, {_pct(top20[hi])}]"))
    if a.validation is not None:
        t = a.validation.total
        cards.append(_card("Holdout repeat purchases", f"{fmt(t['actual'])} actual",
                           f"predicted {fmt(t['mean'])} [{fmt(t['lower'])}, {fmt(t['upper'])}]"))
    if money and a.equity.acquisition is not None:
        acq = a.equity.acquisition.iloc[0]
        cards.append(_card("Value of a new customer", fmt(acq["value_mean"]),
                           f"CLV/CAC {fmt(acq['ratio_mean'], 3)}; P(pays back CAC) {fmt(acq['p_payback'], 3)}"))

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>clvbayes report: {html.escape(str(s['source']))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Customer lifetime value report</h1>",
        f'<p class="meta">Data: {html.escape(str(s["source"]))} &middot; clvbayes {html.escape(s["clvbayes_version"])} '
        f"&middot; generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>",
        '<section id="key-figures"><h2>Key figures</h2>',
        f"<p>Values are as of {html.escape(str(a.data.attrs.get('observation_end', s['observation_end']) or 'the last purchase'))}, "
        f"over the next {duration(horizon, unit)} (one year by default)"
        + (f", discounted at {fmt(100 * s['discount_rate'], 3)}% a year, with margin {fmt(s['margin'], 3)}" if money else "")
        + f"; intervals are {pct} highest-density intervals over the posterior.</p>",
        "" if money else f'<p class="warn" id="no-amounts">Not computed: {html.escape(NO_AMOUNTS)}</p>',
        f'<div class="cards">{"".join(cards)}</div></section>',
    ]

    # data
    d = a.summary()["data"]
    data_rows = pd.DataFrame({"value": [
        d["source"], f"{d['transactions']:,}", f"{d['customers']:,}", f"{d['repeat_buyers']:,}",
        f"{d['first_date']} to {d['last_date']}", fmt(d["total_spend"]) if money else "no amount column",
    ]}, index=["source", "purchases", "customers", "repeat buyers", "dates", "total spend"])
    if d.get("rows_after_observation_end"):
        data_rows.loc["left out"] = f"{d['rows_after_observation_end']:,} purchases after the observation end"
    notes = [f'<p class="warn">{html.escape(n)}</p>' for n in a.notes]
    parts += ['<section id="data"><h2>Data</h2>', data_rows.to_html(border=0), *notes, "</section>"]

    # models
    parts.append('<section id="models"><h2>Models and diagnostics</h2>')
    fam = a.purchase_model.family
    parts.append(f"<p>{html.escape(fam.label)} ({html.escape(fam.reference)}) for purchases and dropout"
                 + (", Gamma-Gamma for spend per purchase" if money else " (no Gamma-Gamma model for spend: the log "
                    "has no amounts)") + ", fitted by NUTS to the whole observation period.</p>")
    if a.model_selection is not None:
        sel = a.model_selection
        parts.append(f'<h3 id="model-selection">Which purchase model</h3><p>Every model was fitted to '
                     f"{html.escape(sel['fitted_to'])} and compared by PSIS-LOO (expected log predictive density of "
                     f"a new customer, higher is better): {html.escape(sel['reason'])}</p>")
        parts.append(_table(sel["table"]))
    covs = s.get("covariates") or []
    if covs:
        parts.append(f'<h3 id="covariates">Covariates</h3><p>{html.escape(", ".join(covs))} shift the purchase and '
                     "dropout parameters (and spend per purchase) of each customer; coefficients on the standardised "
                     "scale (numeric columns) or as log ratios to the most frequent level (categories), with their "
                     f"per-unit value (docs/guide/covariates.md).</p>")
        for model in (a.purchase_model, a.gamma_gamma):
            if model is not None and callable(getattr(model, "coefficient_summary", None)):
                parts.append(_table(model.coefficient_summary(hdi_prob=s["hdi_prob"]), index=False))
    if getattr(a, "pooling", None) is not None:
        parts.append(
            f'<h3 id="pooling">Segments of {html.escape(str(s["segment"]))}, pooled</h3><p>Each segment has its own '
            "purchase and dropout parameters, drawn from a shared population distribution whose spread is fitted "
            "too (partial pooling: HierarchicalPurchaseModel). The table gives each segment's mean purchase rate "
            f"r/alpha while alive, per time unit: pooled (posterior mean and {100 * s['hdi_prob']:g}% HDI), its "
            "customers fitted alone (unpooled, maximum likelihood) and the population's; shrinkage is the share of "
            "the way from the unpooled to the population rate that pooling moved it (0: none, 1: all the way). "
            "Small segments shrink more.</p>")
        parts.append(_table(a.pooling))
    for key, title in ((fam.name, fam.label), ("gamma_gamma", "Gamma-Gamma"),
                       (f"{fam.name}_calibration", f"{fam.label}, calibration period"),
                       ("gamma_gamma_calibration", "Gamma-Gamma, calibration period")):
        if key not in a.diagnostics:
            continue
        diag = a.diagnostics[key]
        status = ('<span class="ok">Converged.</span>' if diag["converged"] else
                  '<span class="warn">check: ' + html.escape(" ".join(diag["problems"])) + "</span>")
        parts.append(f"<h3>{title}</h3><p>{status} Max r_hat {fmt(diag['max_r_hat'], 3)}, "
                     f"min ESS (bulk) {fmt(diag['min_ess_bulk'], 3)}, {diag['divergences']} divergences.</p>")
        parts += [f'<p><span class="warn">{html.escape(w)}</span></p>' for w in diag.get("warnings", ())]
        parts.append(_table(diag["parameters"]))
    parts += [figs("models"), "</section>"]

    # holdout
    if a.validation is not None:
        v = a.validation
        t = v.total
        metrics = v.metrics.copy()
        metrics.columns = [f"{q} {m}" for q, m in metrics.columns]
        parts += [
            '<section id="holdout"><h2>Holdout check</h2>',
            f"<p>Models fitted to the calibration period (to {html.escape(str(s['calibration_end']))}) forecast "
            f"the {duration(v.duration, unit)} that follow. Total repeat purchases: actual <b>{fmt(t['actual'])}</b>, "
            f"predicted <b>{fmt(t['mean'])}</b> ({pct} interval [{fmt(t['lower'])}, {fmt(t['upper'])}]).</p>",
            "<h3>Errors per customer: model vs rules of thumb</h3>", _table(metrics),
            "<h3>By calibration frequency</h3>", _table(v.by_frequency),
            figs("holdout"), "</section>",
        ]

    # value
    if money:
        acq = ""
        if a.equity.acquisition is not None:
            acq = "<h3>Acquisition</h3>" + _table(a.equity.acquisition)
        conc = a.concentration.copy()
        conc.index = [f"top {100 * k:g}%" for k in conc.index]
        parts += [
            '<section id="value"><h2>Customer value and equity</h2>',
            f"<p>Customer equity is the sum of the customers' CLVs, draw by draw: {fmt(total['mean'])} "
            f"({pct} HDI {_hdi(total, lo, hi)}).</p>",
            f"<h3>Equity by {html.escape(str(eq.index.name or 'segment'))}</h3>", _table(eq),
            "<h3>Concentration</h3>", _table(conc), acq, figs("value"), "</section>",
        ]
    else:
        parts += ['<section id="value"><h2>Customer value and equity</h2>',
                  f"<p>Not computed: {html.escape(NO_AMOUNTS)} Give the amount column with <code>--amount-col</code> "
                  "to add them.</p></section>"]

    # churn
    churn_table = a.churn.summary
    if money:
        written_off = f"(contact cost {fmt(s['contact_cost'], 3)})"
        risk = f"valuable customers at risk holding {fmt(ch['value_at_risk_mean'])} of value"
    else:
        written_off = f"(P(alive) below {fmt(a.churn.settings['lost_p_alive'], 3)}: without amounts there is no value to weigh against the contact cost)"
        risk = "customers at risk among those with the most expected purchases if alive"
    parts += [
        '<section id="churn"><h2>Churn</h2>',
        f"<p>Next {duration(s['period'], unit)}: {fmt(ch['dropouts_mean'])} expected dropouts among "
        f"{fmt(ch['alive_mean'])} expected alive customers; {int(ch['lost']):,} customers written off "
        f"{written_off}; {int(ch['at_risk']):,} {risk}.</p>",
        _table(churn_table), "<h3>Lifecycle stages</h3>", _table(a.stage_table), "</section>",
    ]

    # customers
    rank = "clv" if money else "expected_purchases"
    top = a.customers.sort_values(rank, ascending=False).head(20)
    parts += [
        '<section id="customers"><h2>Customers</h2>',
        f"<p>The 20 customers with the highest {'CLV' if money else 'expected purchases'} (all customers are in "
        "<code>customers.csv</code>).</p>",
        _table(top), figs("customers"), "</section>",
    ]

    # settings
    settings = pd.DataFrame({"value": [html.escape(str(v)) for v in s.values()]}, index=list(s.keys()))
    parts += ['<section id="settings"><h2>Settings</h2>']
    if command:
        parts.append(f"<p>Command: <code>{html.escape(command)}</code></p>")
    parts += [settings.to_html(border=0, escape=False),
              "<p>Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in a.timings.items()) + "</p>", "</section>"]
    parts += [
        '<section id="citing"><h2>Citing</h2><p>clvbayes (see <code>CITATION.cff</code>); Fader, P. S., Hardie, '
        "B. G. S. &amp; Lee, K. L. (2005). &ldquo;Counting your customers&rdquo; the easy way: an alternative to "
        "the Pareto/NBD model. <i>Marketing Science</i> 24(2), 275&ndash;284; Fader, Hardie &amp; Lee (2005). RFM "
        "and CLV: using iso-value curves for customer base analysis. <i>Journal of Marketing Research</i> 42(4), "
        "415&ndash;430.</p></section>",
        "</body></html>",
    ]
    return "\n".join(parts)
