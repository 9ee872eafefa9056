"""`plot_model(model, path)`: a diagram of a zoo model, with AlexNet's two towers side by side.

Every layer is a box (name, type, output shape, parameters), top to bottom. A model with
grouped convolutions is drawn as the AlexNet paper's figure 2 draws it: from the first
convolution to the `Flatten`, each layer is split into one box per group (a tower, with its
share of the maps and parameters); a grouped convolution connects each tower only to itself,
a full convolution between them (AlexNet's conv3) takes the maps of every tower, drawn as
crossing arrows, and the towers join again at the `Flatten`.

Example:

>>> from zoo import create_model, plot_model
>>> plot_model(create_model("alexnet"), "alexnet.png")
'alexnet.png'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf

from zoo.model_summary import LayerStats, layer_stats

__all__ = ["plot_model"]

_COLORS = {
    "conv": "#8ecae6",
    "transpose": "#b5e48c",
    "pool": "#ffb703",
    "norm": "#cdb4db",
    "dense": "#fb8500",
}


def _color(kind: str) -> str:
    lowered = kind.lower()
    for key in ("transpose", "conv", "pool", "norm", "dense"):
        if key in lowered:
            return _COLORS[key]
    return "#e9ecef"


@dataclass(frozen=True)
class _Row:
    """One level of the diagram: a layer as `towers` boxes, linked to the level above."""

    stats: LayerStats
    towers: int
    link: str  # "straight", "fan-out" (one to many), "cross" (all to all), "merge" (many to one)


def _groups(layer: tf.keras.layers.Layer) -> int:
    return int(getattr(layer, "groups", 1) or 1)


def _levels(model: tf.keras.Model) -> list[_Row]:
    """The rows, with the towers of a model with grouped convolutions."""
    stats = layer_stats(model)
    towers = max((_groups(model.get_layer(s.name)) for s in stats), default=1)
    kinds = [s.kind.lower() for s in stats]
    start = next((i for i, k in enumerate(kinds) if "conv" in k), None)
    end = next((i for i, k in enumerate(kinds) if k in ("flatten", "globalaveragepooling2d")), None)
    if towers == 1 or start is None or end is None:
        return [_Row(s, 1, "straight") for s in stats]
    rows = []
    for index, s in enumerate(stats):
        split = start <= index < end
        if index == start:
            link = "fan-out"
        elif index == end:
            link = "merge"
        elif split and "conv" in kinds[index] and _groups(model.get_layer(s.name)) == 1:
            link = "cross"
        else:
            link = "straight"
        rows.append(_Row(s, towers if split else 1, link))
    return rows


def _label(row: _Row) -> str:
    shape = list(row.stats.output_shape[1:])
    if row.towers > 1:
        shape[-1] = shape[-1] // row.towers
    text = f"{row.stats.name} ({row.stats.kind})\n{tuple(shape)}"
    if row.stats.params:
        text += f"  {row.stats.params // row.towers:,} params"
    return text


def _centers(towers: int) -> list[float]:
    return [0.5] if towers == 1 else [0.27 + 0.46 * i / (towers - 1) for i in range(towers)]


def _arrows(axes, above: Sequence[float], below: Sequence[float], link: str, y: float) -> None:
    if link == "straight":
        pairs = list(zip(above, below, strict=True))
    else:  # fan-out, cross, merge: every box above feeds every box below
        pairs = [(a, b) for a in above for b in below]
    for a, b in pairs:
        color = "#c1121f" if link == "cross" and a != b else "#333"
        axes.annotate("", xy=(b, y - 0.25), xytext=(a, y + 0.25),
                      arrowprops={"arrowstyle": "->", "color": color})  # fmt: skip


def plot_model(model: tf.keras.Model, path: str, dpi: int = 120) -> str:
    """Draws the model (its towers side by side, see the module docstring) to a PNG.

    Matplotlib only (no graphviz). Returns `path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _levels(model)
    wide = max(row.towers for row in rows) > 1
    figure, axes = plt.subplots(figsize=(9.5 if wide else 6.5, 0.75 * len(rows) + 1.0))
    axes.set_xlim(0, 1)
    axes.set_ylim(-len(rows) + 0.3, 1.2)
    axes.axis("off")
    title = f"{model.name}: {sum(r.stats.params for r in rows):,} parameters"
    if wide:
        towers = max(r.towers for r in rows)
        title += f"\n{towers} towers (grouped convolutions); red: connections across towers"
    axes.set_title(title, fontsize=10)
    for index, row in enumerate(rows):
        y = -index + 0.5
        for x in _centers(row.towers):
            axes.text(x, y, _label(row), ha="center", va="center", fontsize=7.5,
                      family="monospace", bbox={"boxstyle": "round,pad=0.3", "edgecolor": "#333",
                                                "facecolor": _color(row.stats.kind)})  # fmt: skip
        if index:
            _arrows(axes, _centers(rows[index - 1].towers), _centers(row.towers), row.link, y + 0.5)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path
