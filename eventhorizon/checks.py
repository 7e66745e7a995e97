"""Argument checks shared by the event-driven and dense solvers."""

import numpy as np

__all__ = ["check_eps"]


def check_eps(eps):
    """Return ``eps`` as a float if it is a finite number > 0, else raise ``ValueError`` naming it.

    Examples
    --------
    >>> check_eps(1e-3)
    0.001
    """
    is_number = isinstance(eps, (int, float, np.integer, np.floating)) and not isinstance(eps, bool)
    if not is_number or not np.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    return float(eps)
