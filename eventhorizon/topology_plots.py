"""Figures of how a run's synapse graph changed during training (structural plasticity).

A training run with a ``[plasticity]`` section keeps snapshots of its synapse
graph in ``RUN/topology/`` (see :mod:`topology.snapshots`): one
``snapshot_NNNNN.npz`` per snapshot and ``index.json``, a list (in time
order) of ``{"file", "info", "metrics"}`` entries. ``info`` says where in
the run the snapshot was taken (``step``, ``epoch``, ``samples_seen``) and
how many synapses were ``born`` and ``died`` since the previous one;
``metrics`` holds graph metrics (density, reciprocity, clustering,
components, ...).

:func:`plot_topology_evolution` draws them all. Only the index is needed
for the metric and turnover curves; snapshot files are loaded for the
figures that show connectivity (at most :data:`MATRIX_PANELS`,
:data:`DEGREE_LINES` and :data:`GIF_FRAMES` of them, evenly spaced).

As in :mod:`eventhorizon.plots`, matplotlib is imported inside the
functions and figures are drawn on an Agg-backed
:class:`matplotlib.figure.Figure`, never through pyplot.
"""

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eventhorizon.plots import FIGURE_DPI
from topology.metrics import layer_of
from topology.snapshots import index_path, load_snapshot

__all__ = ["plot_topology_evolution"]

MATRIX_PANELS = 6      # snapshots shown in topology_matrices.png
DEGREE_LINES = 12      # snapshots drawn in topology_degrees.png
GIF_FRAMES = 60        # at most this many frames in topology_evolution.gif
GIF_FPS = 4
GIF_DPI = 80
POOL_PIXELS = 100      # a block image has at most this many pixels per side
GRAPH_MAX_NEURONS = 150  # topology_graph.png only up to this many neurons
GRAPH_MAX_ARROWS = 400   # more synapses than this: drawn as plain lines
SMALL_LAYER = 30      # layers up to this size: degree of each neuron instead of a histogram
IMAGE_SIDE = 28        # 784 = 28 x 28 input neurons: an image input
PRESENCE_LABEL = "fraction of possible\nsynapses present"


# ------------------------------------------------------------------ helpers
def _evenly_spaced(count, limit):
    """Up to ``limit`` indices into ``range(count)``, evenly spaced, first and last included.

    Examples
    --------
    >>> _evenly_spaced(10, 4).tolist()
    [0, 3, 6, 9]
    >>> _evenly_spaced(3, 6).tolist()
    [0, 1, 2]
    """
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, count - 1, min(count, limit))).astype(np.int64))


def _tile_for(shape, max_pixels=POOL_PIXELS):
    """Tile ``(rows, cols)`` so that pooling ``shape`` gives at most ``max_pixels`` per side.

    Examples
    --------
    >>> _tile_for((784, 500)), _tile_for((20, 10))
    ((8, 5), (1, 1))
    """
    return tuple(max(1, math.ceil(side / max_pixels)) for side in shape)


def _pool_presence(rows, cols, shape, tile):
    """Fraction of present synapses in each ``tile`` of a ``shape`` block.

    Parameters
    ----------
    rows, cols : array_like of int
        Coordinates of the present synapses inside the block (no duplicates).
    shape : (int, int)
        Block size (pre-synaptic neurons, post-synaptic neurons).
    tile : (int, int)
        Tile size; edge tiles may be smaller and are divided by their own area.

    Returns
    -------
    ndarray of float, shape ``(ceil(shape[0] / tile[0]), ceil(shape[1] / tile[1]))``

    Examples
    --------
    >>> _pool_presence([0, 0, 3], [0, 1, 2], (4, 3), (2, 2)).tolist()
    [[0.5, 0.0], [0.0, 0.5]]
    """
    n_rows, n_cols = (int(s) for s in shape)
    th, tw = (int(t) for t in tile)
    height, width = -(-n_rows // th), -(-n_cols // tw)
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    counts = np.bincount((rows // th) * width + cols // tw, minlength=height * width).reshape(height, width)
    tile_rows = np.minimum(th, n_rows - th * np.arange(height))
    tile_cols = np.minimum(tw, n_cols - tw * np.arange(width))
    return counts / np.outer(tile_rows, tile_cols)


def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    fig.savefig(path, dpi=FIGURE_DPI)
    fig.clear()  # no pyplot: clearing releases the artists
    return path


def _fmt_epoch(epoch):
    return f"{round(float(epoch), 2):g}"


def _number(value):
    """A metric value as float; None, missing or non-numeric -> NaN."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# ---------------------------------------------------------------- run data
@dataclass(frozen=True)
class _Block:
    """A rectangle ``A[r0:r1, c0:c1]`` of the adjacency matrix, with axis labels."""

    name: str
    r0: int
    r1: int
    c0: int
    c1: int
    ylabel: str
    xlabel: str
    row_tile: int = 0  # pool this many rows per tile (0: from the block size)

    @property
    def shape(self):
        return (self.r1 - self.r0, self.c1 - self.c0)

    @property
    def tile(self):
        rows, cols = _tile_for(self.shape)
        return (self.row_tile or rows, cols)


def _read_index(run_dir):
    path = index_path(run_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file, the run had no [plasticity] snapshots (topology/index.json "
            f"is written only by training runs with a [plasticity] section)")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the snapshot index: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty JSON list of snapshot entries, got {entries!r:.80}")
    for k, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ValueError(f"{path}: entry {k} has no \"file\" naming its snapshot")
    return path, entries


class _Run:
    """The snapshot index of a run directory; snapshot files are loaded on demand."""

    def __init__(self, run_dir):
        self.dir = Path(run_dir)
        self.index_path, entries = _read_index(self.dir)
        self.infos = [entry.get("info") or {} for entry in entries]
        self.metrics = [entry.get("metrics") or {} for entry in entries]
        self.files = [self.index_path.parent / entry["file"] for entry in entries]
        self.epochs = np.array([_number(info.get("epoch", info.get("step", k))) for k, info in enumerate(self.infos)])
        self.epochs = np.where(np.isnan(self.epochs), np.arange(len(entries)), self.epochs)
        self.snapshot = functools.lru_cache(maxsize=16)(self._load)
        graph, sizes, _ = self.snapshot(len(entries) - 1)
        self.n = graph.n
        self.sizes = [int(s) for s in sizes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    def __len__(self):
        return len(self.files)

    def _load(self, k):
        return load_snapshot(self.files[k])

    def graph(self, k):
        return self.snapshot(k)[0]

    @property
    def layered(self):
        return len(self.sizes) >= 2

    def step(self, k):
        return self.infos[k].get("step", k)

    def synapses(self, k):
        value = self.infos[k].get("synapses", self.metrics[k].get("synapses"))
        return int(value) if value is not None else self.graph(k).nnz

    def series(self, key):
        return np.array([_number(m.get(key)) for m in self.metrics])

    def layer_name(self, layer):
        role = " input" if layer == 0 else " output" if layer == len(self.sizes) - 1 else ""
        return f"layer {layer}{role}"

    def span(self):
        first, last = _fmt_epoch(self.epochs[0]), _fmt_epoch(self.epochs[-1])
        return f"epoch {first}" if first == last else f"epochs {first} to {last}"


def _block_coords(graph, block):
    """``(rows, cols)`` of the synapses of ``graph`` inside ``block`` (block-relative)."""
    pre, post = graph.pre_ids(), graph.indices.astype(np.int64)
    keep = (pre >= block.r0) & (pre < block.r1) & (post >= block.c0) & (post < block.c1)
    return pre[keep] - block.r0, post[keep] - block.c0


def _block_image(graph, block):
    """``(image, tile, synapses)``: fraction of present synapses per tile of ``block``."""
    rows, cols = _block_coords(graph, block)
    return _pool_presence(rows, cols, block.shape, block.tile), block.tile, rows.size


def _is_mirror(graph, forward, backward):
    """True when the synapses of ``backward`` are exactly the transposed synapses of ``forward``."""
    rows, cols = _block_coords(graph, forward)
    b_rows, b_cols = _block_coords(graph, backward)
    width = forward.shape[1]
    return np.array_equal(np.sort(rows * width + cols), np.sort(b_cols * width + b_rows))


def _blocks(run, graphs):
    """Blocks of ``A`` worth showing and a note on the feedback blocks left out.

    Layered: every non-empty layer ``l -> l+1`` block, plus every other
    non-empty block, except feedback blocks ``l+1 -> l`` that only mirror
    their forward block. Otherwise the whole adjacency.
    """
    if not run.layered:
        return [_Block(f"all {run.n} neurons", 0, run.n, 0, run.n, "pre-synaptic neuron",
                       "post-synaptic neuron")], ""
    offsets, n_layers = run.offsets, len(run.sizes)

    def block(a, b):
        # image input: tiles of a quarter pixel row (7 pixels) keep rows of the image apart
        row_tile = IMAGE_SIDE // 4 if a == 0 and _is_image_input(run) else 0
        return _Block(f"layer {a} → {b}", int(offsets[a]), int(offsets[a + 1]), int(offsets[b]),
                      int(offsets[b + 1]), f"{run.layer_name(a)} neuron (pre)", f"{run.layer_name(b)} neuron (post)",
                      row_tile)

    layer = layer_of(run.sizes, run.n)
    counts = sum(np.bincount(layer[g.pre_ids()] * n_layers + layer[g.indices], minlength=n_layers ** 2)
                 for g in graphs).reshape(n_layers, n_layers)
    shown = [block(a, a + 1) for a in range(n_layers - 1) if counts[a, a + 1]]
    mirrored = []
    for a in range(n_layers):
        for b in range(n_layers):
            if b == a + 1 or not counts[a, b]:
                continue
            if b == a - 1 and counts[b, a] and all(_is_mirror(g, block(b, a), block(a, b)) for g in graphs):
                mirrored.append(f"{a} → {b}")
                continue
            shown.append(block(a, b))
    note = f"feedback blocks (layer {', '.join(mirrored)}) mirror their forward blocks and are not shown" \
        if mirrored else ""
    return shown, note


# ---------------------------------------------------------------- figures
def _presence_colorbar(cbar, tile, fontsize, short=False):
    """Label a block image's colorbar: a fraction per tile, or present/absent when not pooled."""
    if tile == (1, 1):
        cbar.set_ticks([0.0, 1.0], labels=["absent", "present"])
        cbar.set_label("synapse", fontsize=fontsize)
    elif short:
        cbar.set_label(f"fraction present\n(per {tile[0]}×{tile[1]} tile)", fontsize=fontsize)
    else:
        cbar.set_label(f"{PRESENCE_LABEL}\n(per tile of {tile[0]}×{tile[1]} neurons)", fontsize=fontsize)
    cbar.ax.tick_params(labelsize=fontsize - 1)


def _plot_matrices(run, path):
    picks = _evenly_spaced(len(run), MATRIX_PANELS)
    graphs = [run.graph(k) for k in picks]
    blocks, note = _blocks(run, graphs)
    fig = _figure((2.5 * len(picks) + 1.8, 2.7 * len(blocks) + 1.3))
    axes = fig.subplots(len(blocks), len(picks), squeeze=False)
    for i, block in enumerate(blocks):
        drawn = [_block_image(graph, block) for graph in graphs]
        tile = drawn[0][1]
        pooled = tile != (1, 1)
        vmax = max(max(float(image.max()) for image, _, _ in drawn), 1e-9) if pooled else 1.0
        possible = block.shape[0] * block.shape[1]
        for j, (k, (image, _, count)) in enumerate(zip(picks, drawn)):
            ax = axes[i, j]
            handle = ax.imshow(image, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0.0,
                               vmax=vmax, extent=(0, block.shape[1], block.shape[0], 0))
            ax.set_title(f"epoch {_fmt_epoch(run.epochs[k])} (step {run.step(k)})\n"
                         f"{count:,} synapses ({100.0 * count / possible:.1f}%)", fontsize=9)
            ax.set_xlabel(block.xlabel, fontsize=8)
            ax.tick_params(labelsize=7)
            if j == 0:
                size = f"{block.shape[0]}×{block.shape[1]}"
                ax.set_ylabel(f"{block.name} ({size})\n{block.ylabel}", fontsize=8)
        cbar = fig.colorbar(handle, ax=list(axes[i, :]), shrink=0.9, pad=0.01)
        _presence_colorbar(cbar, tile, fontsize=8)
    what = "layer blocks of the adjacency A[pre, post]" if run.layered else "the adjacency A[pre, post]"
    title = f"Synapse presence in {what} at {len(picks)} of {len(run)} snapshots ({run.span()})"
    fig.suptitle(title + (f"\n{note}" if note else ""), fontsize=11)
    return _save(fig, path)


def _degree_panels(run):
    """``[(title, degrees(graph) -> int array)]``: one histogram panel each."""
    if not run.layered:
        return [(f"all {run.n} neurons: in-degree", lambda g: g.fan_in()),
                (f"all {run.n} neurons: out-degree", lambda g: g.fan_out())]
    offsets = run.offsets

    def forward(graph, layer):  # synapses layer-1 -> layer, block-relative
        return _block_coords(graph, _Block("", int(offsets[layer - 1]), int(offsets[layer]), int(offsets[layer]),
                                           int(offsets[layer + 1]), "", ""))

    panels = [(f"{run.layer_name(0)} ({run.sizes[0]} neurons):\nout-degree to layer 1",
               lambda g: np.bincount(forward(g, 1)[0], minlength=run.sizes[0]))]
    for layer in range(1, len(run.sizes)):
        panels.append((f"{run.layer_name(layer)} ({run.sizes[layer]} neurons):\nin-degree from layer {layer - 1}",
                       functools.partial(lambda g, layer: np.bincount(forward(g, layer)[1],
                                                                      minlength=run.sizes[layer]), layer=layer)))
    return panels


def _epoch_colors(run, picks):
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    lo, hi = float(run.epochs[picks].min()), float(run.epochs[picks].max())
    norm = Normalize(lo, hi if hi > lo else lo + 1.0)
    mappable = ScalarMappable(norm=norm, cmap=colormaps["viridis"])
    return mappable, [mappable.to_rgba(run.epochs[k]) for k in picks]


def _integer_bins(lo, hi, max_bins=40):
    """Histogram edges for integers ``lo..hi``: equal whole-number widths, at most ``max_bins`` bins.

    Examples
    --------
    >>> _integer_bins(3, 5).tolist()
    [2.5, 3.5, 4.5, 5.5]
    >>> _integer_bins(0, 99, max_bins=40)[:3].tolist()  # width 3
    [-0.5, 2.5, 5.5]
    """
    width = max(1, math.ceil((hi - lo + 1) / max_bins))
    n_bins = math.ceil((hi - lo + 1) / width)
    return lo - 0.5 + width * np.arange(n_bins + 1, dtype=float)


def _plot_degrees(run, path):
    from matplotlib.ticker import MaxNLocator

    picks = _evenly_spaced(len(run), DEGREE_LINES)
    panels = _degree_panels(run)
    graphs = [run.graph(k) for k in picks]
    mappable, colors = _epoch_colors(run, picks)
    fig = _figure((4.0 * len(panels) + 1.2, 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, degrees) in zip(axes, panels):
        values = [degrees(graph) for graph in graphs]
        if values[0].size <= SMALL_LAYER:  # too few neurons for a histogram: each neuron's degree
            for v, color in zip(values, colors):
                ax.plot(np.arange(v.size), v, "-o", color=color, markersize=3.5, linewidth=1.0)
            ax.set_xlabel("neuron (index in its layer)")
            ax.set_ylabel("synapses")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            edges = _integer_bins(min(int(v.min()) for v in values), max(int(v.max()) for v in values))
            centres = (edges[:-1] + edges[1:]) / 2
            for v, color in zip(values, colors):
                ax.plot(centres, np.histogram(v, edges)[0], drawstyle="steps-mid", color=color, linewidth=1.3)
            ax.set_xlabel("synapses per neuron" + (f" (bins of {edges[1] - edges[0]:g})" if edges[1] - edges[0] > 1
                                                   else ""))
            ax.set_ylabel("neurons")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    fig.colorbar(mappable, ax=list(axes), label="epoch", pad=0.01)
    fig.suptitle(f"Degree distributions over training: one line per snapshot "
                 f"({len(picks)} of {len(run)}, {run.span()})", fontsize=11)
    return _save(fig, path)


def _layer_density_series(run):
    """``{"layer a → b": densities over time}`` for every block non-empty at some snapshot.

    A feedback block with the same densities as its forward block shares its curve (``"layer a ↔ b"``).
    """
    n_layers = len(run.sizes)
    if n_layers < 2:
        return {}
    counts = [m.get("layer_counts") for m in run.metrics]
    dens = [m.get("layer_density") for m in run.metrics]
    out = {}
    for a in range(n_layers):
        for b in range(n_layers):
            def cell(table, k):
                try:
                    return table[k][a][b]
                except (TypeError, IndexError, KeyError):
                    return None
            if not any(_number(cell(counts, k)) > 0 for k in range(len(run))):
                continue
            series = np.array([_number(cell(dens, k)) for k in range(len(run))])
            if np.all(np.isnan(series)):
                continue
            mirror = out.get(f"layer {b} → {a}")
            if mirror is not None and np.array_equal(mirror, series, equal_nan=True):
                out[f"layer {b} ↔ {a}"] = out.pop(f"layer {b} → {a}")  # feedback mirroring its forward block
            else:
                out[f"layer {a} → {b}"] = series
    return out


def _curve_panel(ax, x, curves, title, ylabel, log_if_wide=False, empty="not recorded"):
    """Draw ``{label: y}`` against ``x``; the note ``empty`` instead when nothing was recorded."""
    drawn = False
    for label, (y, style) in curves.items():
        if np.all(np.isnan(y)):
            continue
        ax.plot(x, y, label=label, markersize=3.5, linewidth=1.3, **({"marker": "o"} | style))
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, color="0.4")
    elif len(curves) > 1:
        ax.legend(fontsize=7)
    if drawn and log_if_wide:
        values = np.concatenate([y[np.isfinite(y)] for y, _ in curves.values()])
        if values.size and values.min() > 0 and values.max() / values.min() > 30:
            ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)


def _plot_metrics(run, path):
    x = run.epochs
    s = run.series
    fig = _figure((15.0, 9.5))
    axes = fig.subplots(3, 4, sharex=True).ravel()
    for ax in axes:
        ax.xaxis.set_tick_params(labelbottom=True)
    plain = {}
    _curve_panel(axes[0], x, {"synapses": (s("synapses"), plain)}, "synapses", "synapses")
    _curve_panel(axes[1], x, {"density": (s("density"), plain)}, "density (whole graph)",
                 "synapses / possible pairs")
    blocks = {name: (y, plain) for name, y in _layer_density_series(run).items()}
    _curve_panel(axes[2], x, blocks, "density per layer block (pre → post)", "fraction of block present")
    _curve_panel(axes[3], x, {"mean degree": (s("mean_degree"), plain),
                              "max in-degree": (s("max_in_degree"), plain),
                              "max out-degree": (s("max_out_degree"), plain)},
                 "degrees", "synapses per neuron")
    _curve_panel(axes[4], x, {"reciprocity": (s("reciprocity"), plain)}, "reciprocity",
                 "fraction of synapses\nwith a reverse synapse")
    sampled = np.array([bool(m.get("clustering_sampled")) for m in run.metrics])
    clustering = s("average_clustering")
    _curve_panel(axes[5], x, {"average clustering": (clustering, plain)},
                 "average clustering" + (" (open: sampled estimate)" if sampled.any() else ""),
                 "clustering coefficient")
    if sampled.any() and not np.all(np.isnan(clustering[sampled])):
        axes[5].plot(x[sampled], clustering[sampled], "o", color="C0", markerfacecolor="white", markersize=5)
    _curve_panel(axes[6], x, {"weak": (s("weak_components"), plain), "strong": (s("strong_components"), plain)},
                 "connected components", "components", log_if_wide=True)
    _curve_panel(axes[7], x, {"weak": (s("largest_weak_component"), plain),
                              "strong": (s("largest_strong_component"), plain)},
                 "largest component", "neurons", log_if_wide=True)
    _curve_panel(axes[8], x, {"dead units": (s("dead_units"), plain),
                              "isolated neurons": (s("isolated_neurons"), plain)},
                 "dead units and isolated neurons", "neurons")
    sources = [m.get("path_sources") for m in run.metrics if m.get("path_sources")]
    path_title = "mean shortest path" + (f" (from {sources[-1]} sources)" if sources else "")
    _curve_panel(axes[9], x, {"mean shortest path": (s("mean_shortest_path"), plain)}, path_title,
                 "synapses along the path")
    sigma = s("small_world_sigma")
    no_triangles = np.all(np.nan_to_num(s("average_clustering")) == 0)
    _curve_panel(axes[10], x, {"σ": (sigma, plain)}, "small-world σ", "σ (> 1: small world)",
                 empty="undefined: no triangles\n(clustering is 0)" if no_triangles else "not recorded")
    if not np.all(np.isnan(sigma)):
        axes[10].axhline(1.0, color="0.5", linestyle=":", linewidth=1)
    _curve_panel(axes[11], x, {"mean |w|": (s("weight_mean_abs"), plain), "std of w": (s("weight_std"), plain)},
                 "synaptic weights", "weight (model units)")
    fig.suptitle(f"Graph metrics over training ({len(run)} snapshot{'s' if len(run) > 1 else ''}, {run.span()})",
                 fontsize=12)
    return _save(fig, path)


def _plot_turnover(run, path):
    from eventhorizon.plots import FIGURE_SIZE

    fig = _figure(FIGURE_SIZE)
    ax = fig.add_subplot()
    born = np.array([_number(info.get("born")) for info in run.infos[1:]])
    died = np.array([_number(info.get("died")) for info in run.infos[1:]])
    if len(run) < 2:
        ax.text(0.5, 0.5, "a single snapshot: no interval between snapshots yet", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
        totals = ""
    else:
        start, end = run.epochs[:-1], run.epochs[1:]
        gaps = end - start
        positive = gaps[gaps > 0]
        fallback = float(np.median(positive)) if positive.size else 1.0
        width = 0.8 * np.where(gaps > 0, gaps, fallback)
        centres = (start + end) / 2
        ax.bar(centres, np.nan_to_num(born), width, color="C2", label="born")
        ax.bar(centres, -np.nan_to_num(died), width, color="C3", label="died")
        ax.plot(centres, born - died, "o", color="black", markersize=3.5, label="net change")
        ax.axhline(0.0, color="0.3", linewidth=0.8)
        ax.legend(fontsize=8)
        totals = f"\n{int(np.nansum(born)):,} born and {int(np.nansum(died)):,} died in {len(run) - 1} intervals " \
                 f"({run.span()})"
    ax.set_xlabel("epoch")
    ax.set_ylabel("synapses per interval\n(born > 0, died < 0)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Synapse turnover between successive snapshots" + totals, fontsize=11)
    return _save(fig, path)


def _is_image_input(run):
    return run.layered and run.sizes[0] == IMAGE_SIDE * IMAGE_SIDE


def _fanout_map(graph):
    return graph.fan_out()[:IMAGE_SIDE * IMAGE_SIDE].reshape(IMAGE_SIDE, IMAGE_SIDE)


def _image_axes(ax):
    ax.set_xlabel("pixel column", fontsize=9)
    ax.set_ylabel("pixel row", fontsize=9)
    ax.tick_params(labelsize=8)


def _plot_input_fanout(run, path):
    last = len(run) - 1
    first_map, last_map = _fanout_map(run.graph(0)), _fanout_map(run.graph(last))
    change = last_map - first_map
    fig = _figure((12.0, 4.3))
    axes = fig.subplots(1, 3)
    vmax = max(int(first_map.max()), int(last_map.max()), 1)
    for ax, k, image in ((axes[0], 0, first_map), (axes[1], last, last_map)):
        handle = ax.imshow(image, cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"epoch {_fmt_epoch(run.epochs[k])} (step {run.step(k)})\n"
                     f"{int(image.sum()):,} synapses from the input", fontsize=10)
        _image_axes(ax)
    fig.colorbar(handle, ax=list(axes[:2]), label="synapses per input pixel", shrink=0.85, pad=0.01)
    limit = max(int(np.abs(change).max()), 1)
    handle = axes[2].imshow(change, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    axes[2].set_title(f"change, last − first\n({int(change.sum()):+,} synapses)", fontsize=10)
    _image_axes(axes[2])
    fig.colorbar(handle, ax=axes[2], label="change in synapses per pixel", shrink=0.85, pad=0.01)
    fig.suptitle("Synapses per input pixel (out-degree of each of the 28×28 input neurons), first and last snapshot",
                 fontsize=11)
    return _save(fig, path)


def _write_gif(run, path):
    from matplotlib.animation import PillowWriter

    picks = _evenly_spaced(len(run), GIF_FRAMES)
    blocks, _ = _blocks(run, [run.graph(picks[0]), run.graph(picks[-1])])
    frames = [[_block_image(run.graph(k), block)[0] for block in blocks] for k in picks]
    fanouts = [_fanout_map(run.graph(k)) for k in picks] if _is_image_input(run) else None
    n_panels = len(blocks) + (fanouts is not None)
    fig = _figure((max(3.4 * n_panels + 0.4, 5.0), 4.1))
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    handles = []
    for i, block in enumerate(blocks):
        pooled = block.tile != (1, 1)
        vmax = max(max(float(frame[i].max()) for frame in frames), 1e-9) if pooled else 1.0
        ax = axes[i]
        handles.append(ax.imshow(frames[0][i], aspect="auto", interpolation="nearest", cmap="viridis", vmin=0.0,
                                 vmax=vmax, extent=(0, block.shape[1], block.shape[0], 0)))
        ax.set_title(f"{block.name}: " + ("synapse density" if pooled else "synapses"), fontsize=10)
        ax.set_xlabel(block.xlabel, fontsize=8)
        ax.set_ylabel(block.ylabel, fontsize=8)
        ax.tick_params(labelsize=8)
        _presence_colorbar(fig.colorbar(handles[-1], ax=ax, pad=0.01), block.tile, fontsize=8, short=True)
    if fanouts is not None:
        ax = axes[-1]
        handles.append(ax.imshow(fanouts[0], cmap="viridis", vmin=0, vmax=max(int(max(f.max() for f in fanouts)), 1),
                                 interpolation="nearest"))
        ax.set_title("synapses per input pixel", fontsize=10)
        _image_axes(ax)
        cbar = fig.colorbar(handles[-1], ax=ax, pad=0.01)
        cbar.set_label("synapses", fontsize=8)
        cbar.ax.tick_params(labelsize=8)
    title = fig.suptitle("", fontsize=11)

    def show(frame):
        k = picks[frame]
        for handle, image in zip(handles, frames[frame] + ([fanouts[frame]] if fanouts is not None else [])):
            handle.set_data(image)
        title.set_text(f"Synapse graph, snapshot {k + 1} of {len(run)}\n"
                       f"epoch {_fmt_epoch(run.epochs[k])}, step {run.step(k)}, {run.synapses(k):,} synapses")

    show(len(picks) - 1)  # lay out with the longest numbers, then freeze the layout
    fig.canvas.draw()
    fig.set_layout_engine("none")
    writer = PillowWriter(fps=GIF_FPS)
    with writer.saving(fig, path, dpi=GIF_DPI):
        for frame in range(len(picks)):
            show(frame)
            writer.grab_frame()
    fig.clear()
    return path


def _plot_graph(run, path):
    import networkx as nx
    from matplotlib.lines import Line2D

    k = len(run) - 1
    graph = run.graph(k)
    nxg = graph.to_networkx()
    fig = _figure((9.0, 6.5))
    ax = fig.add_subplot()
    if run.layered:
        layer = layer_of(run.sizes, run.n)
        nx.set_node_attributes(nxg, {node: int(layer[node]) for node in nxg.nodes}, "layer")
        pos = nx.multipartite_layout(nxg, subset_key="layer")
        node_color = [f"C{layer[node] % 10}" for node in nxg.nodes]
    else:
        pos = nx.spring_layout(nxg, seed=0)
        node_color = "0.35"
    weights = np.array([w for _, _, w in nxg.edges(data="weight")], dtype=float)
    scale = float(np.abs(weights).max()) if weights.size else 1.0
    arrows = graph.nnz <= GRAPH_MAX_ARROWS
    if weights.size:
        nx.draw_networkx_edges(nxg, pos, ax=ax, edge_color=np.where(weights > 0, "tab:red", "tab:blue").tolist(),
                               width=(0.3 + 2.2 * np.abs(weights) / (scale or 1.0)).tolist(), alpha=0.55,
                               arrows=arrows, node_size=60, **({"arrowsize": 8} if arrows else {}))
    nx.draw_networkx_nodes(nxg, pos, ax=ax, node_size=60, node_color=node_color, edgecolors="black",
                           linewidths=0.5)
    ax.legend(handles=[Line2D([], [], color="tab:red", lw=2, label="w > 0"),
                       Line2D([], [], color="tab:blue", lw=2, label="w < 0")],
              fontsize=8, loc="upper right", title=f"line width ∝ |w| (max {scale:.3g})", title_fontsize=8)
    ax.set_yticks([])
    if run.layered:  # after networkx, which hides the tick labels
        ticks = [float(np.mean([pos[node][0] for node in range(run.offsets[a], run.offsets[a + 1])]))
                 for a in range(len(run.sizes))]
        ax.set_xticks(ticks, [f"{run.layer_name(a)}\n({run.sizes[a]} neurons)" for a in range(len(run.sizes))])
        ax.tick_params(axis="x", bottom=False, labelbottom=True, labelsize=10)
    else:
        ax.set_xticks([])
        ax.set_xlabel("spring layout (positions have no units)")
    for spine in ax.spines.values():
        spine.set_visible(False)
    direction = "" if arrows else ", drawn without arrows"
    ax.set_title(f"Synapse graph at the last snapshot (epoch {_fmt_epoch(run.epochs[k])}, step {run.step(k)})\n"
                 f"{graph.n} neurons, {graph.nnz:,} synapses{direction}", fontsize=11)
    return _save(fig, path)


# ------------------------------------------------------------------ public
def plot_topology_evolution(run_dir, out_dir=None, gif=True):
    """Draw how the synapse graph of a run changed, from its ``topology/`` snapshots.

    Writes, into ``out_dir``:

    ``topology_matrices.png``
        Synapse presence in each layer block of the adjacency ``A[pre, post]``
        (layer ``l -> l+1``, and any block that is not a mirrored feedback
        block; the whole matrix when the graph is not layered) at up to
        :data:`MATRIX_PANELS` evenly spaced snapshots, first and last
        included. Blocks larger than :data:`POOL_PIXELS` per side are pooled
        into tiles showing the fraction of possible synapses present (for a
        28×28 image input, tiles of 7 input pixels along a pixel row).
    ``topology_degrees.png``
        Out-degree histogram of the input layer and in-degree histograms of
        the other layers (forward synapses), one line per snapshot coloured
        by epoch; layers of at most :data:`SMALL_LAYER` neurons show each
        neuron's degree instead of a histogram.
    ``topology_metrics.png``
        The index's graph metrics against epoch (synapses, density, per-block
        density, degrees, reciprocity, clustering, components, dead units,
        shortest paths, small-world σ, weights).
    ``topology_turnover.png``
        Synapses born and died between successive snapshots.
    ``topology_input_fanout.png``
        Only when the input layer has 784 = 28×28 neurons: synapses per input
        pixel at the first and last snapshot and their difference.
    ``topology_evolution.gif``
        Only when ``gif`` and there are at least two snapshots: one frame per
        snapshot (at most :data:`GIF_FRAMES`, evenly spaced) of the block
        densities (and the input fan-out map).
    ``topology_graph.png``
        Only up to :data:`GRAPH_MAX_NEURONS` neurons: a drawing of the last
        snapshot, edges coloured by weight sign, width by ``|w|``.

    Parameters
    ----------
    run_dir : str or os.PathLike
        A run directory holding ``topology/index.json`` and the snapshot
        files it names.
    out_dir : str or os.PathLike, optional
        Where to write; ``run_dir/figures`` by default (created if missing).
    gif : bool
        Write the animation (the slowest figure).

    Returns
    -------
    list of pathlib.Path
        The files written, in the order above.

    Raises
    ------
    FileNotFoundError
        ``topology/index.json`` is missing: the run had no ``[plasticity]``
        snapshots.
    ValueError
        The index is unreadable or empty.
    topology.snapshots.SnapshotError
        A snapshot file it names is missing or damaged.

    Examples
    --------
    >>> import json, shutil, tempfile
    >>> from topology.generators import layered
    >>> from topology.snapshots import save_snapshot
    >>> run_dir = Path(tempfile.mkdtemp())
    >>> (run_dir / "topology").mkdir()
    >>> sizes, index = (4, 3, 2), []
    >>> for step, g in enumerate([layered(sizes, seed=0, feedback=True), layered(sizes, seed=0, density=0.7)]):
    ...     info = {"step": step, "epoch": 0.5 * step, "samples_seen": 30 * step,
    ...             "born": 0 if step == 0 else 2, "died": 0 if step == 0 else 5, "synapses": g.nnz}
    ...     save_snapshot(run_dir / "topology" / f"snapshot_{step:05d}.npz", g, sizes, info)
    ...     metrics = {"neurons": 9, "synapses": g.nnz, "density": g.nnz / 72,
    ...                "layer_counts": [[0, 12, 0], [0, 0, 6], [0, 6, 0]],
    ...                "layer_density": [[None, 1.0, None], [None, None, 1.0], [None, 1.0, None]],
    ...                "mean_degree": g.nnz / 9, "max_in_degree": 6, "max_out_degree": 5,
    ...                "isolated_neurons": 0, "dead_units": 0, "reciprocity": 0.5,
    ...                "average_clustering": 0.0, "clustering_sampled": False, "weak_components": 1,
    ...                "largest_weak_component": 9, "strong_components": 5, "largest_strong_component": 5,
    ...                "mean_shortest_path": 1.8, "path_sources": 9, "small_world_sigma": None,
    ...                "weight_mean_abs": 0.5, "weight_std": 0.6}
    ...     index.append({"file": f"snapshot_{step:05d}.npz", "info": info, "metrics": metrics})
    >>> _ = (run_dir / "topology" / "index.json").write_text(json.dumps(index))
    >>> [path.name for path in plot_topology_evolution(run_dir)]  # doctest: +NORMALIZE_WHITESPACE
    ['topology_matrices.png', 'topology_degrees.png', 'topology_metrics.png', 'topology_turnover.png',
     'topology_evolution.gif', 'topology_graph.png']
    >>> shutil.rmtree(run_dir)
    """
    run = _Run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    paths = [_plot_matrices(run, out / "topology_matrices.png"),
             _plot_degrees(run, out / "topology_degrees.png"),
             _plot_metrics(run, out / "topology_metrics.png"),
             _plot_turnover(run, out / "topology_turnover.png")]
    if _is_image_input(run):
        paths.append(_plot_input_fanout(run, out / "topology_input_fanout.png"))
    if gif and len(run) >= 2:
        paths.append(_write_gif(run, out / "topology_evolution.gif"))
    if run.n <= GRAPH_MAX_NEURONS:
        paths.append(_plot_graph(run, out / "topology_graph.png"))
    return paths
