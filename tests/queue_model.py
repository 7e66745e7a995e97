"""Reusable Hypothesis state machine for indexed max-priority queues.

:func:`make_queue_machine` builds a
:class:`hypothesis.stateful.RuleBasedStateMachine` that drives a queue class
and a plain-Python model (``dict`` id -> float32 key, max via ``max()``) with
the same operations and compares them after every step.

Queue protocol expected from ``queue_cls``:

* ``queue_cls(n)`` -- empty queue over the ids ``0 .. n-1``;
* ``push(i, key)`` -- insert ``i`` or update its key; the key is rounded to
  float32;
* ``pop_max() -> (id, key)`` / ``peek_max() -> (id, key)`` -- the lowest id
  among those with the largest key; ``peek_max`` returns what the next
  ``pop_max`` returns; both raise ``IndexError`` when empty;
* ``remove(i)`` -- remove ``i``, no-op when absent;
* ``key(i)`` -- key of a queued id, ``KeyError`` when absent;
* ``__len__``, ``__contains__`` (False for ids outside ``[0, n)``).
"""

import math

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

__all__ = ["finite_float32_keys", "make_queue_machine"]

_F32_MAX = float(np.finfo(np.float32).max)

# Finite keys, heavily biased towards a few repeated values so that ties
# (duplicate keys) are common; also float64 values that need rounding.
finite_float32_keys = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, 1e-3]),
    st.integers(-3, 3).map(float),
    st.floats(width=32, allow_nan=False, allow_infinity=False),
    st.floats(min_value=-_F32_MAX, max_value=_F32_MAX, allow_nan=False),
)


def make_queue_machine(queue_cls, n, check_structure=None):
    """Return a state-machine class testing ``queue_cls`` against a dict model.

    Parameters
    ----------
    queue_cls : type
        Queue class following the protocol in the module docstring.
    n : int
        Number of ids; small values (about 4-16) give many collisions.
    check_structure : callable, optional
        ``check_structure(queue)`` is run as an extra invariant after every
        step, for implementation-specific checks of internal arrays.

    Returns
    -------
    type
        A ``RuleBasedStateMachine`` subclass; use its ``TestCase`` attribute.
    """
    ids = st.integers(0, n - 1)

    class QueueMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.queue = queue_cls(n)
            self.model = {}

        # -- helpers -----------------------------------------------------
        def _model_max(self):
            return max(self.model.values())

        def _check_top(self, got):
            i, k = got
            assert 0 <= i < n
            assert i in self.model, f"returned id {i} is not queued"
            best = self._model_max()
            assert k == best, f"returned key {k}, model max {best}"
            assert self.model[i] == best, f"id {i} has key {self.model[i]}, max is {best}"
            lowest = min(j for j, key in self.model.items() if key == best)
            assert i == lowest, f"returned id {i} of a tie for the max; the lowest id is {lowest}"

        # -- rules -------------------------------------------------------
        @rule(i=ids, key=finite_float32_keys)
        def push(self, i, key):
            self.queue.push(i, key)
            self.model[i] = np.float32(key)

        @precondition(lambda self: self.model)
        @rule(data=st.data(), key=finite_float32_keys)
        def update_present(self, data, key):
            i = data.draw(st.sampled_from(sorted(self.model)), label="i")
            self.queue.push(i, key)
            self.model[i] = np.float32(key)

        @precondition(lambda self: self.model)
        @rule()
        def pop_max(self):
            peeked = self.queue.peek_max()
            popped = self.queue.pop_max()
            assert peeked == popped, f"peek {peeked} != pop {popped}"
            self._check_top(popped)
            del self.model[popped[0]]

        @precondition(lambda self: not self.model)
        @rule()
        def pop_empty(self):
            with pytest.raises(IndexError):
                self.queue.pop_max()
            with pytest.raises(IndexError):
                self.queue.peek_max()

        @precondition(lambda self: self.model)
        @rule()
        def peek_max(self):
            self._check_top(self.queue.peek_max())

        @rule(i=ids)
        def remove(self, i):
            self.queue.remove(i)
            self.model.pop(i, None)

        @precondition(lambda self: self.model)
        @rule(data=st.data())
        def remove_present(self, data):
            i = data.draw(st.sampled_from(sorted(self.model)), label="i")
            self.queue.remove(i)
            del self.model[i]

        @rule(i=ids)
        def key(self, i):
            if i in self.model:
                assert self.queue.key(i) == self.model[i]
            else:
                with pytest.raises(KeyError):
                    self.queue.key(i)

        # -- invariants --------------------------------------------------
        @invariant()
        def length_matches(self):
            assert len(self.queue) == len(self.model)

        @invariant()
        def contains_matches(self):
            for i in range(n):
                assert (i in self.queue) == (i in self.model), f"id {i}"
            assert -1 not in self.queue
            assert n not in self.queue

        @invariant()
        def keys_match(self):
            for i, k in self.model.items():
                got = self.queue.key(i)
                assert math.isfinite(got)
                assert got == k, f"id {i}: key {got}, model {k}"

        if check_structure is not None:

            @invariant()
            def structure(self):
                check_structure(self.queue)

    QueueMachine.__name__ = QueueMachine.__qualname__ = f"{queue_cls.__name__}Machine"
    return QueueMachine
