"""Chart geometry for server-rendered inline SVG: pure arithmetic, drawn by ``_charts.html``."""

from __future__ import annotations

from dataclasses import dataclass, field

PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 12, 28


@dataclass
class Chart:
    width: int
    height: int
    title: str
    bars: list[dict] = field(default_factory=list)  # x, y, w, h, cls, label
    lines: list[dict] = field(default_factory=list)  # points, cls, label
    dots: list[dict] = field(default_factory=list)  # x, y, cls, label
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # cls, name

    @property
    def empty(self) -> bool:
        return not (self.bars or self.lines or self.dots)


def _ticks(top: float, y_of, fmt: str) -> list[tuple[float, str]]:
    return [(y_of(top * i / 4), format(top * i / 4, fmt)) for i in range(5)]


def _every(labels: list[str], room: float) -> int:
    return max(1, int(len(labels) * 40 / max(room, 1)) + 1)


def stacked_bars(title: str, labels: list[str], series: dict[str, list[float]], width: int = 640,
                 height: int = 220) -> Chart:
    """One bar per label, the series stacked in order; series names become CSS classes."""
    chart = Chart(width, height, title, legend=[(f"s-{name}", name.replace("_", " ")) for name in series])
    plot_w, plot_h = width - PAD_LEFT - PAD_RIGHT, height - PAD_TOP - PAD_BOTTOM
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    step = plot_w / max(len(labels), 1)

    def y_of(v: float) -> float:
        return PAD_TOP + plot_h - v / top * plot_h

    every = _every(labels, plot_w)
    for i, label in enumerate(labels):
        base = 0.0
        x = PAD_LEFT + i * step + step * 0.15
        for name, values in series.items():
            v = values[i]
            if v:
                chart.bars.append({"x": round(x, 1), "y": round(y_of(base + v), 1), "w": round(step * 0.7, 1),
                                   "h": round(v / top * plot_h, 1), "cls": f"s-{name}",
                                   "label": f"{label}: {v:g} {name.replace('_', ' ')}"})
            base += v
        if i % every == 0:
            chart.x_labels.append((round(PAD_LEFT + (i + 0.5) * step, 1), label))
    chart.y_ticks = _ticks(top, y_of, ".0f" if top >= 4 else ".1f")
    return chart


def line_chart(title: str, labels: list[str], values: list[float | None], width: int = 640, height: int = 180,
               fmt: str = ".2f", cls: str = "s-line") -> Chart:
    chart = Chart(width, height, title)
    plot_w, plot_h = width - PAD_LEFT - PAD_RIGHT, height - PAD_TOP - PAD_BOTTOM
    top = max((v for v in values if v is not None), default=0) or 1
    step = plot_w / max(len(labels), 1)

    def y_of(v: float) -> float:
        return PAD_TOP + plot_h - v / top * plot_h

    points = [(PAD_LEFT + (i + 0.5) * step, y_of(v), labels[i], v) for i, v in enumerate(values) if v is not None]
    if points:
        chart.lines.append({"points": " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points), "cls": cls,
                            "label": title})
        chart.dots = [{"x": round(x, 1), "y": round(y, 1), "cls": cls, "label": f"{lab}: {format(v, fmt)}"}
                      for x, y, lab, v in points]
    every = _every(labels, plot_w)
    chart.x_labels = [(round(PAD_LEFT + (i + 0.5) * step, 1), lab) for i, lab in enumerate(labels) if i % every == 0]
    chart.y_ticks = _ticks(top, y_of, fmt)
    return chart


def unit_bars(title: str, items: list[tuple[str, float | None]], width: int = 640, row: int = 22) -> Chart:
    """Horizontal bars on [0, 1] (per-field accuracy)."""
    height = PAD_TOP + PAD_BOTTOM + row * max(len(items), 1)
    left = 150
    chart = Chart(width, height, title)
    plot_w = width - left - PAD_RIGHT
    for i, (name, value) in enumerate(items):
        y = PAD_TOP + i * row
        chart.x_labels.append((y + row * 0.7, name))  # used as row labels
        if value is not None:
            chart.bars.append({"x": left, "y": y + 3, "w": round(value * plot_w, 1), "h": row - 6,
                               "cls": "s-accuracy", "label": f"{name}: {value:.1%}"})
    chart.y_ticks = [(left + plot_w * t, f"{t:.0%}") for t in (0, 0.5, 1)]  # x positions for the scale
    return chart


def calibration(title: str, points: list[tuple[float, float]], side: int = 220) -> Chart:
    """Confidence (x) against observed accuracy (y), both on [0, 1], with the diagonal."""
    chart = Chart(PAD_LEFT + side + PAD_RIGHT, PAD_TOP + side + PAD_BOTTOM, title)

    def xy(cx: float, cy: float) -> tuple[float, float]:
        return PAD_LEFT + cx * side, PAD_TOP + (1 - cy) * side

    (x0, y0), (x1, y1) = xy(0, 0), xy(1, 1)
    chart.lines.append({"points": f"{x0:.1f},{y0:.1f} {x1:.1f},{y1:.1f}", "cls": "s-diagonal", "label": "perfect"})
    if points:
        pts = [xy(cx, cy) for cx, cy in points]
        chart.lines.append({"points": " ".join(f"{x:.1f},{y:.1f}" for x, y in pts), "cls": "s-line",
                            "label": "observed"})
        chart.dots = [{"x": round(x, 1), "y": round(y, 1), "cls": "s-line", "label": f"{cx:.2f} → {cy:.2f}"}
                      for (x, y), (cx, cy) in zip(pts, points)]
    chart.y_ticks = [(xy(0, t)[1], f"{t:.1f}") for t in (0, 0.5, 1)]
    chart.x_labels = [(xy(t, 0)[0], f"{t:.1f}") for t in (0, 0.5, 1)]
    return chart
