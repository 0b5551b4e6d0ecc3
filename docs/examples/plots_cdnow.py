"""CDNOW sample: every plot of clvbayes.plotting, saved to docs/_static/plots/<name>.png,
and the numbers quoted in the plots guide (docs/guide/plots.md).

Run: python docs/examples/plots_cdnow.py   (a minute or two; the first run compiles)

Calibration to 1997-09-30 (39 weeks), holdout to 1998-06-30 (39 weeks), weeks; BG/NBD and
Gamma-Gamma fitted by NUTS with default priors (2 chains x 500 draws, seed 2026).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import clvbayes as cb  # noqa: E402
from clvbayes import plotting  # noqa: E402
from clvbayes.value.plotdata import customer_purchase_times, pareto_curve, period_transactions  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "_static" / "plots"
OUT.mkdir(parents=True, exist_ok=True)
CAL_END, OBS_END = "1997-09-30", "1998-06-30"
CUSTOMER = 593  # 7 repeat purchases in calibration, the last 18 weeks before its end

tx = cb.datasets.load_cdnow_sample()
split = cb.calibration_holdout_split(tx, calibration_end=CAL_END, observation_end=OBS_END)
bgnbd = cb.BetaGeoModel(split)
bgnbd.fit(chains=2, draws=500, tune=500, random_seed=2026, progressbar=False)
gamma_gamma = cb.GammaGammaModel(split)
gamma_gamma.fit(chains=2, draws=500, tune=500, random_seed=2026, progressbar=False)


def save(ax, name: str) -> None:
    fig = ax.figure
    fig.set_size_inches(7.5, 4.8)
    fig.tight_layout()
    fig.savefig(OUT / f"{name}.png", dpi=100)
    plt.close(fig)
    print("wrote", OUT / f"{name}.png")


save(plotting.plot_frequency_recency_matrix(bgnbd, horizon=13, max_frequency=12), "frequency_recency_matrix")
save(plotting.plot_frequency_recency_matrix(bgnbd, horizon=13, max_frequency=12, statistic="hdi_width"),
     "frequency_recency_matrix_hdi_width")
save(plotting.plot_probability_alive_matrix(bgnbd, max_frequency=12), "probability_alive_matrix")
save(plotting.plot_period_transactions(bgnbd, random_seed=0), "period_transactions")
print(period_transactions(bgnbd, random_seed=0))

validation = cb.holdout_validation(bgnbd, split, random_seed=0)
save(plotting.plot_calibration_holdout(validation), "calibration_holdout")
print(validation.by_frequency)
tracking = cb.purchase_tracking(bgnbd, tx, calibration_end=CAL_END, observation_end=OBS_END)
save(plotting.plot_purchase_tracking(tracking), "purchase_tracking")
save(plotting.plot_purchase_tracking(tracking, cumulative=False), "purchase_tracking_weekly")

times, T = customer_purchase_times(tx, CUSTOMER, observation_end=CAL_END)
save(plotting.plot_probability_alive_history(bgnbd, times, T), "probability_alive_history")
print(times, T)

# One year ahead, 10% a year, 30% margin on revenue; segments: acquisition month
clv = cb.customer_lifetime_value(bgnbd, gamma_gamma, split, horizon=52, discount_rate=0.1, margin=0.3)
equity = cb.customer_equity(clv)
save(plotting.plot_equity_posterior(equity), "equity_posterior")
print(equity.summary)
save(plotting.plot_pareto(clv), "pareto")
curve = pareto_curve(clv, include=(0.2,))
print(curve.loc[curve["customer_share"] == 0.2])
save(plotting.plot_equity_by_segment(equity), "equity_by_segment")
