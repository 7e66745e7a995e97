"""Argument checks shared by the event-driven and dense solvers."""

import numpy as np

from eventhorizon.kernels import Rule

__all__ = ["check_eps", "check_relaxation", "settle_rule"]


def _is_real_number(value):
    """A Python or numpy int/float, not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_eps(eps):
    """Return ``eps`` as a float if it is a finite number > 0, else raise ``ValueError`` naming it.

    Examples
    --------
    >>> check_eps(1e-3)
    0.001
    """
    if not _is_real_number(eps) or not np.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    return float(eps)


def check_relaxation(relaxation):
    """Return the over-relaxation factor ω as a float if ``0 < ω < 2``, else raise ``ValueError`` naming it.

    Examples
    --------
    >>> check_relaxation(1.05)
    1.05
    """
    if not _is_real_number(relaxation) or not np.isfinite(relaxation) or not 0 < relaxation < 2:
        raise ValueError(f"relaxation must be a number in (0, 2) (1 = plain updates), got {relaxation!r}")
    return float(relaxation)


def settle_rule(eps, relaxation=1.0):
    """The kernels' :class:`~eventhorizon.kernels.Rule` from checked ``eps`` and ``relaxation``.

    Examples
    --------
    >>> settle_rule(1e-3).relaxation
    np.float32(1.0)
    """
    return Rule(np.float32(check_eps(eps)), np.float32(check_relaxation(relaxation)))
