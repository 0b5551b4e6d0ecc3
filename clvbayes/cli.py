"""The ``clvbayes`` command line: ``clvbayes demo`` and ``clvbayes fit``.

Exit codes: 0 success; 2 bad command line or option value; 3 the input data cannot be used
(the message names the file, line and column); 4 the output folder cannot be written (an
earlier report without ``--overwrite``, a non-empty folder that is not a clvbayes report, or
not writable: checked before any fitting); 1 anything else.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DATA, EXIT_OUTPUT = 0, 1, 2, 3, 4

_DEMO_CALIBRATION_END = "1997-09-30"
_DEMO_OBSERVATION_END = "1998-06-30"


class _Failure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _print_published_comparison(data) -> None:
    """Maximum likelihood next to Fader, Hardie & Lee's published estimates (fast, exact)."""
    from clvbayes import BetaGeoModel, GammaGammaModel
    from clvbayes.reference import published_estimates

    published = published_estimates()
    bgnbd = BetaGeoModel(data).fit_mle()
    gg = GammaGammaModel(data).fit_mle()
    print(f"customers: {len(data):,}   repeat buyers: {(data['frequency'] > 0).sum():,}")
    print()
    print("maximum likelihood on the 39-week calibration period vs the published estimates:")
    print(f"{'parameter':<10}{'estimate':>12}{'std err':>10}{'published':>12}{'rel. diff':>12}")
    for model, key in ((bgnbd, "bgnbd"), (gg, "gamma_gamma")):
        ref = published[key]["params"]
        for name, value in model.params_.items():
            rel = (value - ref[name]) / ref[name]
            print(f"{name:<10}{value:>12.6f}{model.standard_errors_[name]:>10.4f}{ref[name]:>12.6g}{rel:>12.2e}")
    ll_ref = published["bgnbd"]["log_likelihood"]
    print(f"{'BG/NBD LL':<10}{bgnbd.log_likelihood_:>12.3f}{'':>10}{ll_ref:>12.3f}{bgnbd.log_likelihood_ - ll_ref:>12.2e}")
    print("sources:", published["bgnbd"]["source"], ";", published["gamma_gamma"]["source"])
    horizon = float(data["duration_holdout"].iloc[0])
    predicted = bgnbd.expected_purchases(horizon).sum()
    actual = int(data["frequency_holdout"].sum())
    print(f"holdout ({horizon:.0f} weeks) repeat transactions: predicted {predicted:,.1f}, actual {actual:,}")
    print()


def _settings(args: argparse.Namespace, **fixed):
    from clvbayes.workflow import AnalysisSettings

    values = dict(
        calibration_end=getattr(args, "calibration_end", None),
        observation_end=getattr(args, "observation_end", None),
        time_unit=getattr(args, "time_unit", "W"),
        horizon=args.horizon, margin=args.margin, period=args.period,
        contact_cost=args.contact_cost, acquisition_cost=args.acquisition_cost, new_window=args.new_window,
        chains=args.chains, draws=args.draws, tune=args.tune, value_draws=args.value_draws or None,
        seed=args.seed, hdi_prob=args.hdi_prob, refunds=getattr(args, "refunds", "raise"),
        model=getattr(args, "model", "bgnbd"),
        covariates=tuple(getattr(args, "covariates", ())), segment=getattr(args, "segment", None),
        pool_segments=bool(getattr(args, "pool_segments", False)),
    )
    if hasattr(args, "discount_rate"):  # else AnalysisSettings' default, the package's one
        values["discount_rate"] = args.discount_rate
    values.update(fixed)
    settings = AnalysisSettings(**values)
    try:
        settings.check()
    except ValueError as err:
        raise _Failure(EXIT_USAGE, str(err)) from err
    return settings


def _check_out(out: Path, overwrite: bool) -> None:
    """Exit 4 before any work if the report cannot go to ``out`` (:mod:`clvbayes.report.write`)."""
    from clvbayes.report.write import check_destination, check_writable

    try:
        check_destination(out, overwrite)
        check_writable(out)
    except OSError as err:  # FileExistsError, PermissionError, NotADirectoryError, ...
        raise _Failure(EXIT_OUTPUT, str(err)) from err


def _run(transactions, settings, args: argparse.Namespace, source: str, command: str, attributes=None) -> int:
    from clvbayes.data.validate import DataValidationError
    from clvbayes.report.write import write_report
    from clvbayes.workflow import StepPrinter, analysis_steps, run_analysis

    out = Path(args.out)
    steps = StepPrinter(analysis_steps(settings) + 2, quiet=args.quiet)
    progressbar = not args.no_progress and not args.quiet and sys.stderr.isatty()
    try:
        analysis = run_analysis(transactions, settings, attributes=attributes, source=source, progress=steps,
                                progressbar=progressbar)
    except DataValidationError as err:
        raise _Failure(EXIT_DATA, str(err)) from err
    try:
        write_report(analysis, out, overwrite=args.overwrite, command=command, progress=steps)
    except (FileExistsError, PermissionError, OSError) as err:
        raise _Failure(EXIT_OUTPUT, f"could not write the report to {out}: {err}") from err
    _print_headlines(analysis, out)
    return EXIT_OK


def _print_headlines(a, out: Path) -> None:
    from clvbayes.plotting._common import duration
    from clvbayes.report.html import fmt
    from clvbayes.value.quantities import hdi_names
    from clvbayes.workflow import NO_AMOUNTS

    s = a.settings
    lo, hi = hdi_names(s["hdi_prob"])
    ch = a.churn.summary.loc["total"]
    pct = f"{100 * s['hdi_prob']:g}%"
    if a.has_amounts:
        eq = a.equity.summary.loc["total"]
        print(f"customer equity over {duration(s['horizon'], s['time_unit'])}: {fmt(eq['mean'])} "
              f"({pct} HDI {fmt(eq[lo])} to {fmt(eq[hi])})")
        if 0.2 in a.concentration.index:
            print(f"share of equity held by the top 20% of customers: {100 * a.concentration.loc[0.2, 'mean']:.1f}%")
    else:
        print(f"expected purchases over {duration(s['horizon'], s['time_unit'])}: "
              f"{fmt(a.customers['expected_purchases'].sum())}")
        print(f"not computed: {NO_AMOUNTS}")
    print(f"expected alive: {fmt(ch['alive_mean'])} of {len(a.data):,}; churn rate next "
          f"{duration(s['period'], s['time_unit'])}: {100 * ch['churn_rate_mean']:.2f}%")
    if a.validation is not None:
        t = a.validation.total
        print(f"holdout repeat purchases: actual {fmt(t['actual'])}, predicted {fmt(t['mean'])} "
              f"[{fmt(t['lower'])}, {fmt(t['upper'])}]")
    for name, d in a.diagnostics.items():
        if not d["converged"]:
            print(f"warning: {name} did not pass the convergence checks: {'; '.join(d['problems'])}", file=sys.stderr)
        for text in d.get("warnings", ()):
            print(f"warning: {name}: {text}", file=sys.stderr)
    for text in a.notes:
        print(f"note: {text}", file=sys.stderr)
    print(f"report: {out / 'report.html'}")


def _demo(args: argparse.Namespace) -> int:
    from clvbayes import calibration_holdout_split
    from clvbayes.datasets import load_cdnow_sample

    from clvbayes.report.write import report_files

    out = Path(args.out)
    # the demo may replace an earlier report (recognised by its marker), never anything else
    if report_files(out) is not None:
        args.overwrite = True
    _check_out(out, args.overwrite)
    settings = _settings(args, calibration_end=_DEMO_CALIBRATION_END, observation_end=_DEMO_OBSERVATION_END,
                         time_unit="W")
    print(f"clvbayes demo: CDNOW sample (2,357 customers), calibration 1997-01-01..{_DEMO_CALIBRATION_END}, "
          f"holdout to {_DEMO_OBSERVATION_END}, time in weeks")
    transactions = load_cdnow_sample()[["customer_id", "date", "amount"]]
    _print_published_comparison(calibration_holdout_split(
        transactions, calibration_end=_DEMO_CALIBRATION_END, observation_end=_DEMO_OBSERVATION_END))
    command = "clvbayes demo " + " ".join(shlex.quote(a) for a in args.argv)
    return _run(transactions, settings, args, "CDNOW 1/10 sample (Fader, Hardie & Lee 2005)", command.strip())


def _fit(args: argparse.Namespace) -> int:
    import warnings

    from clvbayes.data.read import read_attributes, read_transactions
    from clvbayes.data.validate import AmbiguousDateWarning, DataValidationError

    out = Path(args.out)
    settings = _settings(args)
    if (settings.covariates or settings.segment) and args.attributes is None:
        raise _Failure(EXIT_USAGE, "--covariates and --segment name columns of the customer attributes: give the "
                                   "file with --attributes FILE.")
    amount_col = None if args.amount_col.strip().lower() == "none" else args.amount_col
    if amount_col is None and (args.acquisition_cost is not None or args.margin != 1.0):
        raise _Failure(EXIT_USAGE, "--margin and --acquisition-cost apply to money values, which a log without "
                                   "amounts (--amount-col none) does not have; leave them out.")
    _check_out(out, args.overwrite)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AmbiguousDateWarning)
            transactions = read_transactions(
                args.transactions, customer_col=args.customer_col, date_col=args.date_col,
                amount_col=amount_col, date_format=args.date_format, date_unit=args.date_unit,
                refunds=args.refunds,
            )
    except DataValidationError as err:
        raise _Failure(EXIT_DATA, str(err)) from err
    for w in caught:  # a plain line on stderr, not a Python warning with a source location
        print(f"clvbayes fit: warning: {w.message}", file=sys.stderr)
    attributes = None
    if args.attributes is not None:
        try:
            attributes = read_attributes(args.attributes, customer_col=args.customer_col)
        except DataValidationError as err:
            raise _Failure(EXIT_DATA, str(err)) from err
    command = "clvbayes fit " + " ".join(shlex.quote(a) for a in args.argv)
    return _run(transactions, settings, args, str(args.transactions), command, attributes)


def _column_list(text: str) -> tuple[str, ...]:
    """A --covariates value: comma-separated column names."""
    names = tuple(part.strip() for part in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected column names separated by commas, got {text!r}")
    return names


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _date(text: str) -> str:
    """A --calibration-end/--observation-end value: checked here (a usage error), passed on as written."""
    from clvbayes.data.validate import parse_end_date

    try:
        parse_end_date(text, "date")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date such as 2024-03-31, got {text!r}") from None
    return text


def _checked(check, kind: type = float):
    """An argparse ``type=``: parse ``kind``, then ``check`` it (clvbayes.value.arguments);
    a bad value is a usage error (exit 2) naming the option, never a traceback."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}"
            ) from None
        try:
            return check(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def _add_model_options(p: argparse.ArgumentParser, *, draws: int, tune: int, chains: int) -> None:
    from clvbayes.value import arguments as A

    from clvbayes.families import family_names

    units = partial(A.check_number, allow_zero=False, unit=True)
    m = p.add_argument_group("model")
    m.add_argument("--model", default="bgnbd", choices=(*family_names(), "auto"),
                   help="purchase model: bgnbd (BG/NBD, Fader, Hardie & Lee 2005), pnbd (Pareto/NBD, Schmittlein, "
                        "Morrison & Colombo 1987), mbgnbd (MBG/NBD, Batislam, Denizel & Filiztekin 2007), or auto: fit "
                        "each (to the calibration period when there is one) and keep the best by PSIS-LOO; the report "
                        "shows the comparison and the reason (default bgnbd).")
    g = p.add_argument_group("value settings")
    g.add_argument("--horizon", type=_checked(partial(units, name="horizon")), default=None, metavar="UNITS",
                   help="CLV horizon in time units (default: one year, e.g. 52.18 weeks).")
    g.add_argument("--discount-rate", type=_checked(A.check_discount_rate), default=argparse.SUPPRESS, metavar="RATE",
                   help="effective annual discount rate, 0 to 1 (default 0.1 = 10%% a year).")
    g.add_argument("--margin", type=_checked(partial(A.check_margin, allow_zero=False)), default=1.0,
                   help="profit margin applied to spend, a fraction in (0, 1] (default 1: values are revenue; "
                        "e.g. 0.3).")
    g.add_argument("--period", type=_checked(partial(units, name="period")), default=None, metavar="UNITS",
                   help="churn period for expected dropouts and churn rate, in time units (default: a quarter).")
    g.add_argument("--contact-cost", type=_checked(partial(A.check_number, name="contact_cost")), default=1.0,
                   metavar="COST",
                   help="cost of keeping one customer in a retention programme; customers whose expected "
                        "value does not cover it are written off (default 1).")
    g.add_argument("--acquisition-cost", type=_checked(partial(A.check_number, name="acquisition_cost",
                                                               allow_zero=False)),
                   default=None, metavar="CAC",
                   help="cost of acquiring a customer: adds the value of a new customer vs CAC (default: none).")
    g.add_argument("--new-window", type=_checked(partial(units, name="new_window")), default=None, metavar="UNITS",
                   help="customers whose first purchase is this recent are 'new' (default: the churn period).")
    g.add_argument("--hdi-prob", type=_checked(partial(A.check_probability, name="hdi_prob")), default=0.94,
                   metavar="P", help="mass of the credible intervals, in (0, 1) (default 0.94).")
    s = p.add_argument_group("sampling")
    s.add_argument("--draws", type=_positive_int, default=draws, help=f"NUTS draws per chain (default {draws}).")
    s.add_argument("--tune", type=_positive_int, default=tune, help=f"NUTS tuning steps per chain (default {tune}).")
    s.add_argument("--chains", type=_positive_int, default=chains, help=f"NUTS chains (default {chains}).")
    s.add_argument("--value-draws", type=_checked(lambda n: int(A.check_number(n, "value_draws")), int), default=1000,
                   metavar="N",
                   help="posterior draws used for per-customer values, evenly spaced (default 1000; 0 = all).")
    s.add_argument("--seed", type=_checked(partial(A.check_seed, name="seed"), int), default=1,
                   help="random seed of every fit and simulation, 0 to 2**32 - 1 (default 1).")
    o = p.add_argument_group("output")
    o.add_argument("--overwrite", action="store_true",
                   help="replace an earlier clvbayes report in --out (only once the new report is complete); "
                        "any other non-empty folder is refused.")
    o.add_argument("--no-progress", action="store_true", help="no sampler progress bars.")
    o.add_argument("--quiet", action="store_true", help="print no progress, only the results.")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``clvbayes`` command."""
    from clvbayes._version import __version__
    from clvbayes.data.validate import DATE_UNITS

    parser = argparse.ArgumentParser(
        prog="clvbayes",
        description="Customer lifetime value with Buy-Till-You-Die models (BG/NBD, Pareto/NBD, MBG/NBD) and "
        "Gamma-Gamma fitted by NUTS. Each command writes a report folder: summary.json, customers.csv, idata.nc "
        "(purchase model fit), "
        "idata_gamma_gamma.nc, plots/*.png and a self-contained report.html.",
        epilog="Exit codes: 0 success, 2 bad option, 3 unusable input data, 4 output folder not writable, 1 other errors.",
    )
    parser.add_argument("--version", action="version", version=f"clvbayes {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the whole analysis on the bundled CDNOW sample and write a report",
        description="Fit BG/NBD and Gamma-Gamma to the bundled CDNOW sample (2,357 customers; calibration "
        f"1997-01-01..{_DEMO_CALIBRATION_END}, holdout to {_DEMO_OBSERVATION_END}, weeks): maximum likelihood "
        "next to the published estimates, then NUTS fits, diagnostics, the holdout check, CLV, equity and churn, "
        "written as a report folder.",
    )
    demo.add_argument("--out", default="clvbayes-demo", metavar="DIR",
                      help="report folder (default clvbayes-demo); an earlier clvbayes report there is replaced, "
                           "any other non-empty folder is refused")
    _add_model_options(demo, draws=1000, tune=1000, chains=4)
    demo.set_defaults(func=_demo)

    fit = sub.add_parser(
        "fit",
        help="fit the models to your purchase log (CSV or Parquet) and write a report",
        description="Read a purchase log (one row per purchase: customer, date, amount), summarise it, fit "
        "BG/NBD and Gamma-Gamma by NUTS, check convergence, and (with --calibration-end) check the forecast "
        "of the holdout period; then compute CLV, P(alive), expected purchases, churn and customer equity as "
        "of --observation-end and write the report folder. Nothing is written unless everything succeeds. "
        "A log without amounts (--amount-col none): BG/NBD only, no spend, CLV or equity.",
    )
    fit.add_argument("transactions", type=Path, metavar="TRANSACTIONS",
                     help="purchase log: .csv (header line required) or .parquet")
    cols = fit.add_argument_group("input columns")
    cols.add_argument("--customer-col", default="customer_id", metavar="NAME",
                      help="column with the customer id (default customer_id)")
    cols.add_argument("--date-col", default="date", metavar="NAME", help="column with the purchase date (default date)")
    cols.add_argument("--amount-col", default="amount", metavar="NAME",
                      help="column with the amount spent, >= 0 unless --refunds (default amount); 'none' for a log "
                           "without amounts: purchases, P(alive), churn and stages only, no spend, CLV or equity")
    cols.add_argument("--date-format", default=None, metavar="FMT",
                      help="date format such as %%Y%%m%%d or %%d/%%m/%%Y (default: ISO dates and date-times, "
                           "else inferred from the first value; a warning says when day and month could be swapped)")
    cols.add_argument("--date-unit", default=None, choices=DATE_UNITS, metavar="UNIT",
                      help="the dates are numbers counting time since 1970-01-01 in this unit: s (epoch seconds), "
                           "ms, us, ns, m, h or D (days); numeric dates are refused without it")
    cols.add_argument("--refunds", default="raise", choices=("raise", "drop", "net"),
                      help="negative amounts: raise (an error, default), drop (ignore them) or net (subtract "
                           "each from the same day's or the latest earlier purchase, never below 0)")
    per = fit.add_argument_group("periods")
    per.add_argument("--calibration-end", default=None, type=_date, metavar="DATE",
                     help="last day of the calibration period: the models are also fitted up to this day and "
                          "their forecast of the rest is checked against what happened (default: no check)")
    per.add_argument("--observation-end", default=None, type=_date, metavar="DATE",
                     help="last day of observation; values are as of this day and later purchases are left out "
                          "(the report says how many) (default: the last purchase)")
    per.add_argument("--time-unit", default="W", metavar="UNIT",
                     help="time unit of the models: W (weeks), D (days) or e.g. 14D (default W)")
    att = fit.add_argument_group("customer attributes")
    att.add_argument("--attributes", type=Path, default=None, metavar="FILE",
                     help="customer attributes: .csv or .parquet with one row per customer, the id in the "
                          "--customer-col column and the columns --covariates and --segment name; every customer of "
                          "the log needs a row (ids as in the log: 007 is not 7)")
    att.add_argument("--covariates", type=_column_list, default=(), metavar="COL,COL",
                     help="attribute columns that shift each customer's purchase, dropout and spend parameters "
                          "(numeric or categorical; see docs/guide/covariates.md); needs --attributes")
    att.add_argument("--segment", default=None, metavar="COL",
                     help="attribute column to report equity, churn and stages by (instead of the acquisition "
                          "cohort); needs --attributes")
    att.add_argument("--pool-segments", action="store_true",
                     help="fit the purchase model with the --segment segments partially pooled (each segment its "
                          "own parameters, drawn from a shared population distribution; NUTS; categorical "
                          "--covariates only, one --model family); the report adds the segments' pooled and "
                          "unpooled purchase rates")
    fit.add_argument("--out", required=True, metavar="DIR", help="report folder to create")
    _add_model_options(fit, draws=1000, tune=1000, chains=4)
    fit.set_defaults(func=_fit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``clvbayes`` command with ``argv`` (default: the process arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help/--version exit 0, errors exit 2
        return int(exit_.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    args.argv = argv[1:]
    try:
        return int(args.func(args))
    except _Failure as failure:
        print(f"clvbayes {args.command}: error: {failure}", file=sys.stderr)
        return failure.code
    except KeyboardInterrupt:
        print(f"clvbayes {args.command}: interrupted; nothing was written.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
