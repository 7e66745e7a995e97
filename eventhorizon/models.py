"""Rate neuron models: activation functions ρ and their Lipschitz constants.

Each model has a name (used in scenarios), an integer code (used in kernels),
a Lipschitz constant ``L`` (``|ρ(a) − ρ(b)| ≤ L·|a − b|``, used for the
scheduler's cheap bound on a neuron's pending change) and a numpy version
for the dense reference.
"""

from typing import NamedTuple

import numpy as np

from scheduler.jit import kernel

__all__ = ["RateModel", "RATE_MODELS", "get_model", "check_straight_through"]

TANH, HARD_SIGMOID, CLIPPED_RELU = 0, 1, 2
CLIPPED_RELU_CAP = 6.0


class RateModel(NamedTuple):
    """A rate neuron model.

    Attributes
    ----------
    name : str
    code : int
        The kernel's code for it.
    lipschitz : float
    description : str
    """

    name: str
    code: int
    lipschitz: float
    description: str

    @property
    def piecewise_linear(self):
        """True when ρ is a clip: cheap enough that the scheduler's keys are exact (:mod:`eventhorizon.kernels`).

        Examples
        --------
        >>> get_model("hard_sigmoid").piecewise_linear, get_model("tanh").piecewise_linear
        (True, False)
        """
        return self.code != TANH

    def __call__(self, u, out=None):
        """ρ(u) with numpy (float32 in, float32 out).

        Examples
        --------
        >>> get_model("hard_sigmoid")(np.array([-1.0, 0.5, 2.0], dtype=np.float32)).tolist()
        [0.0, 0.5, 1.0]
        """
        if self.code == TANH:
            return np.tanh(u, out=out)
        cap = 1.0 if self.code == HARD_SIGMOID else CLIPPED_RELU_CAP
        return np.clip(u, 0.0, cap, out=out)


RATE_MODELS = {
    m.name: m
    for m in (
        RateModel("tanh", TANH, 1.0, "ρ(u) = tanh(u)"),
        RateModel("hard_sigmoid", HARD_SIGMOID, 1.0, "ρ(u) = clip(u, 0, 1) (EqProp's hard sigmoid)"),
        RateModel("clipped_relu", CLIPPED_RELU, 1.0, "ρ(u) = clip(u, 0, 6) (ReLU6)"),
    )
}


def get_model(name):
    """Look up a rate model by name.

    Examples
    --------
    >>> get_model("tanh").lipschitz
    1.0
    """
    try:
        return RATE_MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"activation must be one of {sorted(RATE_MODELS)}, got {name!r}") from None


def check_straight_through(activation, straight_through):
    """``straight_through`` as a bool; ValueError unless it is a bool and, when true, ``activation`` is a clip.

    The straight-through nudge (:func:`eventhorizon.eqprop_rows._nudge_current`)
    moves a saturated output to the edge of ρ's linear range, which only a
    clipped ρ has.

    Examples
    --------
    >>> check_straight_through("hard_sigmoid", True)
    True
    >>> check_straight_through("tanh", True)
    Traceback (most recent call last):
    ...
    ValueError: straight_through needs a clipped activation (hard_sigmoid or clipped_relu), got 'tanh'
    """
    if not isinstance(straight_through, (bool, np.bool_)):
        raise ValueError(f"straight_through must be true or false, got {straight_through!r}")
    if straight_through and not get_model(activation).piecewise_linear:
        raise ValueError(f"straight_through needs a clipped activation (hard_sigmoid or clipped_relu), "
                         f"got {activation!r}")
    return bool(straight_through)


@kernel(inline=True)
def _rho(code, u):
    """ρ(u) for the model with kernel code ``code`` (float32)."""
    if code == TANH:
        return np.tanh(u)
    cap = np.float32(1.0) if code == HARD_SIGMOID else np.float32(CLIPPED_RELU_CAP)
    return min(max(u, np.float32(0.0)), cap)
