"""Checks of the user's arguments, shared by the value functions, the workflow, the CLI and
the model fits: one rule and one message per kind of argument.

- numbers in the data's time unit (horizons, periods, windows) and costs: finite, >= 0 (or
  > 0); an infinite horizon only where the quantity allows it;
- ``margin``: a fraction of revenue, in [0, 1] (0 is allowed: a zero-margin segment is
  worth nothing; values above 1 are almost always a percentage typed as a number);
- ``discount_rate``: an effective annual rate in [0, 1] (0 to 100% a year; 10 for "10%" is
  refused rather than read as 1,000%);
- probabilities (``hdi_prob``, shares) in (0, 1) or [0, 1];
- random seeds: integers in [0, 2**32), what NumPy's legacy seeding, PyMC and nutpie all
  accept;
- convergence: the undiscounted value over an infinite horizon is finite only when the
  model's dropout shape > 1 (BG/NBD a, Pareto/NBD s; :func:`check_convergent`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "MAX_DISCOUNT_RATE",
    "MAX_SEED",
    "check_number",
    "check_probability",
    "check_horizon",
    "check_margin",
    "check_discount_rate",
    "check_seed",
    "check_convergent",
    "fraction_rule",
]

#: Largest effective annual discount rate accepted (100% a year).
MAX_DISCOUNT_RATE = 1.0
#: Random seeds are integers in [0, MAX_SEED].
MAX_SEED = 2**32 - 1

_RULES = {
    "margin": "a fraction of revenue in [0, 1], e.g. 0.3 for a 30% margin",
    "discount_rate": "an effective annual rate in [0, 1], e.g. 0.1 for 10% a year",
}


def fraction_rule(name: str, allow_zero: bool = True) -> str:
    """The rule of ``margin`` or ``discount_rate`` in words, for error messages."""
    rule = _RULES[name]
    return rule if allow_zero else rule.replace("[0, 1]", "(0, 1]")


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(
    value: object, name: str, *, allow_zero: bool = True, allow_inf: bool = False, unit: bool = False
) -> float:
    """``value`` as a float >= 0 (> 0 unless ``allow_zero``), finite unless ``allow_inf``.

    ``unit`` adds "(in the data's time unit)" to the message, for horizons and periods.
    """
    ok = _is_number(value) and not math.isnan(value) and (allow_inf or math.isfinite(value))
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "number" if allow_inf else "finite number"
        rule = ">= 0" if allow_zero else "> 0"
        where = " (in the data's time unit)" if unit else ""
        raise ValueError(f"{name} must be a {kind} {rule}{where}, got {value!r}.")
    return float(value)


def check_probability(value: object, name: str, *, closed: bool = False) -> float:
    """``value`` in (0, 1), or in [0, 1] when ``closed``."""
    inside = _is_number(value) and ((0 <= value <= 1) if closed else (0 < value < 1))
    if not inside:
        raise ValueError(f"{name} must be a number in {'[0, 1]' if closed else '(0, 1)'}, got {value!r}.")
    return float(value)


def check_horizon(horizon: object, *, finite: bool = False, what: str | None = None) -> float:
    """A horizon >= 0 in the data's time unit; ``finite`` refuses inf (``what`` needs one)."""
    value = check_number(horizon, "horizon", allow_inf=True, unit=True)
    if finite and math.isinf(value):
        raise ValueError(f"{what or 'This quantity'} needs a finite horizon (in the data's time unit).")
    return value


def _check_fraction(value: object, name: str, upper: float, allow_zero: bool = True) -> float:
    if not _is_number(value) or math.isnan(value) or not 0 <= value <= upper or (value == 0 and not allow_zero):
        hint = ""
        if _is_number(value) and 1 < value <= 100:
            hint = f" (for {value:g}% write {value / 100:g})"
        raise ValueError(f"{name} must be {fraction_rule(name, allow_zero)}; got {value!r}{hint}.")
    return float(value)


def check_margin(margin: object, *, allow_zero: bool = True) -> float:
    """A scalar profit margin in [0, 1] ((0, 1] unless ``allow_zero``)."""
    return _check_fraction(margin, "margin", 1.0, allow_zero)


def check_discount_rate(discount_rate: object) -> float:
    """A scalar effective annual discount rate in [0, :data:`MAX_DISCOUNT_RATE`]."""
    return _check_fraction(discount_rate, "discount_rate", MAX_DISCOUNT_RATE)


def check_seed(seed: object, name: str = "random_seed") -> int:
    """An integer seed in [0, :data:`MAX_SEED`] (NumPy integers accepted)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be a whole number from 0 to 2**32 - 1 = {MAX_SEED}, got {seed!r}.")
    return int(seed)


def check_convergent(shape: np.ndarray, undiscounted: bool, quantity: str, *, name: str = "a",
                     model: str = "BG/NBD", why: str = "") -> None:
    """Refuse an undiscounted value over an infinite horizon where it diverges.

    BG/NBD and MBG/NBD: given λ and p, a customer alive now makes a geometric number of
    further purchases before dropping out, with mean 1/p; given the history and alive
    p ~ Beta(a, b + x) (FHL 2005, Marketing Science 24(2); ``docs/theory/bgnbd_predictions.md``;
    MBG/NBD: b + x + 1), so E[Y(∞) | history] = P_alive · E[1/p] = P_alive (a + b + x - 1)/(a - 1)
    is finite if and only if a > 1.
    Pareto/NBD: the lifetime has mean 1/μ with μ ~ Gamma(s, β+T) given alive, and E[1/μ] is
    finite if and only if s > 1. Any discount rate > 0 or finite horizon makes it finite.

    Parameters
    ----------
    shape
        The draws of the family's shape parameter that must exceed 1 (``a``; Pareto/NBD ``s``:
        :attr:`clvbayes.families.Family.finite_total_param`).
    undiscounted
        Whether some customer has discount rate 0 and the horizon is infinite.
    quantity
        Name of the quantity, for the message.
    name, model, why
        The parameter's name, the model's label and the reason, for the message.
    """
    if not undiscounted:
        return
    bad = np.asarray(shape) <= 1.0
    if bad.any():
        n = int(bad.sum())
        why = why or ("the expected number of future purchases of a customer alive now, P_alive (a + b + x - 1) "
                      "/ (a - 1), is finite only for a > 1")
        raise ValueError(
            f"{quantity} with discount rate 0 over an infinite horizon is infinite for {n} of {bad.size} {model} "
            f"draws: they have {name} <= 1 (smallest {name} = {float(np.min(shape)):.4g}), and {why}. "
            "Give a discount rate > 0 (e.g. discount_rate=0.1) or a finite horizon."
        )
