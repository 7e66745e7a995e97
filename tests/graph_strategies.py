"""Hypothesis strategies for small synapse graphs, shared by the topology tests."""

import numpy as np
from hypothesis import strategies as st

from topology.store import SynapseGraph


@st.composite
def small_graphs(draw, max_n=9, min_density=0.1):
    """A directed graph of 2..max_n neurons, no self-loops, normal weights, density drawn in [min_density, 0.9]."""
    n = draw(st.integers(2, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dense = (rng.random((n, n)) < draw(st.floats(min_density, 0.9))) * rng.normal(size=(n, n))
    np.fill_diagonal(dense, 0)
    return SynapseGraph.from_dense(dense.astype(np.float32))
