"""A random stream whose whole state is one uint64 (SplitMix64), for kernels that must checkpoint it.

Numba's ``np.random`` keeps a hidden per-thread state that cannot be saved;
this stream's state is an array the caller owns, so a checkpoint holds it
and a resumed run draws exactly what an uninterrupted one would. SplitMix64
(Steele, Lea & Flood 2014; the seeding generator of xoshiro) passes
BigCrush and costs a few multiply-xor-shifts per draw.
"""

import numpy as np

from scheduler.jit import kernel

__all__ = ["new_stream", "uniforms"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_UNIT = 1.0 / 9007199254740992.0  # 2**-53


def new_stream(seed):
    """A stream state (uint64[1]) for ``seed`` (any int >= 0).

    Examples
    --------
    >>> new_stream(7).dtype.name
    'uint64'
    """
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.array([seed % 2**64], dtype=np.uint64)


@kernel(inline=True)
def _next_u64(state):
    z = state[0] + _GOLDEN
    state[0] = z
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@kernel(inline=True)
def _uniform(state):
    """A float64 in [0, 1) with 53 random bits."""
    return np.float64(_next_u64(state) >> _S11) * _UNIT


@kernel
def _uniforms(state, out):
    for k in range(out.shape[0]):
        out[k] = _uniform(state)


def uniforms(state, count):
    """``count`` draws in [0, 1) from ``state`` (advanced in place).

    Examples
    --------
    >>> s = new_stream(0)
    >>> u = uniforms(s, 3)
    >>> bool(((0 <= u) & (u < 1)).all()), uniforms(new_stream(0), 3).tolist() == u.tolist()
    (True, True)
    """
    if state.dtype != np.uint64 or state.shape != (1,):
        raise ValueError(f"state must be uint64[1] (see new_stream), got {state.dtype}{list(state.shape)}")
    out = np.empty(int(count), dtype=np.float64)
    _uniforms(state, out)
    return out
