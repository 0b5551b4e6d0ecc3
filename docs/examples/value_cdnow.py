"""CDNOW sample: CLV, customer equity, value concentration, churn and lifecycle over the
joint BG/NBD x Gamma-Gamma posterior (the figures quoted in docs/guide/value.md).

Run: python docs/examples/value_cdnow.py   (about a minute; the first run compiles)
"""

import pandas as pd

import clvbayes as cb

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 12)
pd.set_option("display.precision", 4)

tx = cb.datasets.load_cdnow_sample()
rfm = cb.rfm_summary(tx, observation_end="1998-06-30")  # the whole 78 weeks; time unit: weeks

bgnbd = cb.BetaGeoModel(rfm)
bgnbd.fit(chains=4, draws=1000, tune=1000, random_seed=2026, progressbar=False)
gamma_gamma = cb.GammaGammaModel(rfm)
gamma_gamma.fit(chains=4, draws=1000, tune=1000, random_seed=2026, progressbar=False)

# One year ahead, 10% a year, 30% margin on revenue
clv = cb.customer_lifetime_value(bgnbd, gamma_gamma, rfm, horizon=52, discount_rate=0.1, margin=0.3)
print(clv)
print(clv.summary.sort_values("mean", ascending=False).head(5))

equity = cb.customer_equity(clv, acquisition_cost=15.0, retention_cost=2.0, payback_probability=0.9)
print(equity)
print(equity.summary)
print(equity.acquisition.T)
print(equity.retention)

print(cb.value_concentration(clv, shares=(0.05, 0.1, 0.2, 0.5)))

churn = cb.churn_analysis(bgnbd, gamma_gamma, rfm, period=13, contact_cost=1.0, horizon=52,
                          discount_rate=0.1, margin=0.3, segment=None)
print(churn)
print(churn.summary.T)
stages = cb.lifecycle_stages(churn, new_window=4)
print(cb.stage_summary(churn, stages))

# The rule of thumb the write-off rule replaces: a silence window (default: the 90th percentile
# of the repeat buyers' inter-purchase times; 36.3 weeks on these 78 weeks)
window = cb.value.heuristics.default_silence_window(rfm)
lost_by_silence = cb.value.heuristics.silence_window_lost(rfm, window)
print(f"silence window {window:.1f} weeks: {lost_by_silence.sum():,} customers "
      f"({lost_by_silence.mean():.0%}) lost; expected-value rule: {churn.customers['lost'].sum():,}")
