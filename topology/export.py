"""Export a synapse graph for graph tools (Gephi, Cytoscape, networkx) as GraphML or GEXF.

Nodes are the neuron ids ``0..n-1``, with an int attribute ``layer`` when
layer sizes are given; every synapse is a directed edge ``pre -> post`` with
a float attribute ``weight``. Files are written uncompressed, to a temporary
name that is then renamed, so a crash never leaves half a file.
"""

import os
from pathlib import Path

import networkx as nx

from topology.metrics import layer_of

__all__ = ["GRAPH_FORMATS", "write_graph"]

GRAPH_FORMATS = ("graphml", "gexf")

_WRITERS = {"graphml": nx.write_graphml, "gexf": nx.write_gexf}


def _format(path, fmt):
    fmt = path.suffix.lower().lstrip(".") if fmt is None else fmt
    if fmt not in GRAPH_FORMATS:
        raise ValueError(f"cannot write {str(path)!r} as {fmt!r}: the format (fmt, or the file suffix) must be "
                         f"one of {', '.join(GRAPH_FORMATS)}")
    return fmt


def write_graph(graph, path, layer_sizes=(), fmt=None):
    """Write ``graph`` to ``path`` as GraphML or GEXF, atomically.

    Parameters
    ----------
    graph : SynapseGraph
    path : str or Path
    layer_sizes : sequence of int
        Neurons per layer in id order, summing to ``graph.n``; when given, every
        node gets an int attribute ``layer``.
    fmt : {"graphml", "gexf"}, optional
        Default: from the suffix of ``path`` (``.graphml`` or ``.gexf``).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If the format is neither given nor inferable, or not in :data:`GRAPH_FORMATS`.

    Examples
    --------
    >>> import tempfile
    >>> from topology.store import SynapseGraph
    >>> g = SynapseGraph.from_edges(3, pre=[0, 1], post=[1, 2], weight=[0.5, -1.0])
    >>> out = write_graph(g, Path(tempfile.mkdtemp()) / "g.graphml", layer_sizes=[2, 1])
    >>> h = nx.read_graphml(out, node_type=int)
    >>> sorted(h.edges(data="weight")), h.nodes[2]["layer"]
    ([(0, 1, 0.5), (1, 2, -1.0)], 1)
    """
    path = Path(path)
    fmt = _format(path, fmt)
    nx_graph = graph.to_networkx()
    if len(layer_sizes):
        layers = layer_of(layer_sizes, graph.n).tolist()
        nx.set_node_attributes(nx_graph, dict(enumerate(layers)), "layer")
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            _WRITERS[fmt](nx_graph, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
