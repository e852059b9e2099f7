"""PNG figures for reports and the tab: loss curves, several runs' curves, ratings with error bars.

matplotlib is imported inside each function with the Agg backend, so nothing here needs a display and
importing this module costs nothing.
"""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_curves(curves: dict[str, list[dict]], path: Path) -> Path | None:
    """Training (solid) and validation (dashed) loss by step for each named run; None if no points."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    drawn = False
    for name, events in curves.items():
        for key, style in (("loss", "-"), ("eval_loss", "--")):
            points = [(e["step"], e[key]) for e in events if e.get(key) is not None and "step" in e]
            if points:
                axes.plot(*zip(*points), style, label=f"{name} · {key}")
                drawn = True
    if not drawn:
        plt.close(figure)
        return None
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    return _save(figure, path)


def ratings_figure(rows: list[dict]):
    """Bradley-Terry ratings with their 95 % CIs as a matplotlib Figure (gr.Plot takes it as is)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 0.6 * len(rows) + 1.2))
    names = [row["model"] for row in rows][::-1]
    ratings = [row["bt"] for row in rows][::-1]
    low = [row["bt"] - row["ci_low"] for row in rows][::-1]
    high = [row["ci_high"] - row["bt"] for row in rows][::-1]
    axes.errorbar(ratings, range(len(rows)), xerr=[low, high], fmt="o", capsize=4)
    axes.set_yticks(range(len(rows)), names)
    axes.set_xlabel("Bradley-Terry rating (95 % CI)")
    axes.grid(alpha=0.3, axis="x")
    figure.tight_layout()
    return figure


def ratings_plot(rows: list[dict], path: Path) -> Path | None:
    return _save(ratings_figure(rows), path) if rows else None


def _save(figure, path: Path) -> Path:
    import io

    from core import atomic

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return atomic.write_bytes(path, buffer.getvalue())
