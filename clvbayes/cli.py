"""The ``clvbayes`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    # imported here so that `clvbayes --help` answers at once
    import numpy as np

    from clvbayes import BetaGeoModel, GammaGammaModel, calibration_holdout_split
    from clvbayes.datasets import load_cdnow_sample
    from clvbayes.reference import published_estimates

    PUBLISHED = published_estimates()
    print("clvbayes demo: CDNOW sample (2,357 customers), calibration 1997-01-01..1997-09-30, "
          "holdout to 1998-06-30, time in weeks")
    data = calibration_holdout_split(
        load_cdnow_sample(), calibration_end="1997-09-30", observation_end="1998-06-30"
    )
    print(f"customers: {len(data):,}   repeat buyers: {(data['frequency'] > 0).sum():,}")

    bgnbd = BetaGeoModel(data).fit_mle()
    gg = GammaGammaModel(data).fit_mle()

    rows = []
    for model, key in ((bgnbd, "bgnbd"), (gg, "gamma_gamma")):
        published = PUBLISHED[key]["params"]
        for name, value in model.params_.items():
            se = model.standard_errors_[name]
            ref = published[name]
            rows.append((name, value, se, ref, (value - ref) / ref))
    print()
    print(f"{'parameter':<10}{'estimate':>12}{'std err':>10}{'published':>12}{'rel. diff':>12}")
    for name, value, se, ref, rel in rows:
        print(f"{name:<10}{value:>12.6f}{se:>10.4f}{ref:>12.6g}{rel:>12.2e}")
    ll_ref = PUBLISHED["bgnbd"]["log_likelihood"]
    print(f"{'BG/NBD LL':<10}{bgnbd.log_likelihood_:>12.3f}{'':>10}{ll_ref:>12.3f}"
          f"{bgnbd.log_likelihood_ - ll_ref:>12.2e}")
    print("sources:", PUBLISHED["bgnbd"]["source"], ";", PUBLISHED["gamma_gamma"]["source"])

    horizon = float(data["duration_holdout"].iloc[0])
    predicted = bgnbd.expected_purchases(horizon).sum()
    actual = int(data["frequency_holdout"].sum())
    alive = bgnbd.probability_alive()
    spend = gg.expected_spend()
    print()
    print(f"holdout ({horizon:.0f} weeks) repeat transactions: predicted {predicted:,.1f}, actual {actual:,}")
    print(f"mean P(alive) at calibration end: {alive.mean():.3f}; "
          f"customers with P(alive) < 0.5: {(alive < 0.5).sum():,}")
    print(f"expected spend per transaction: mean ${spend.mean():.2f} "
          f"(population mean ${gg.params_['p'] * gg.params_['gamma'] / (gg.params_['q'] - 1):.2f})")
    dert = bgnbd.dert(np.log1p(0.10) / 52.0)
    print(f"expected discounted future transactions (10%/yr), total: {dert.sum():,.0f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from clvbayes._version import __version__

    parser = argparse.ArgumentParser(
        prog="clvbayes",
        description="Customer lifetime value with BG/NBD and Gamma-Gamma models.",
    )
    parser.add_argument("--version", action="version", version=f"clvbayes {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="fit BG/NBD and Gamma-Gamma to the bundled CDNOW sample and compare with the published estimates",
        description="Fit BG/NBD and Gamma-Gamma by maximum likelihood to the bundled CDNOW sample "
        "(39-week calibration) and print the estimates next to the published ones.",
    )
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
