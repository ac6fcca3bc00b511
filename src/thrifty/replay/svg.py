"""Tiny inline-SVG chart helpers for the replay report: no plotting library, no JavaScript.

The report must be one self-contained file a newcomer can open offline, so the three charts
(cost–quality curve, savings waterfall, model share) are drawn here as plain SVG strings.
Every text node and attribute goes through :func:`el`, which escapes it: labels and model
names come from user data. Scales never divide by zero: an empty or flat domain is widened.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "COLORS",
    "REFERENCE_STYLES",
    "LinearScale",
    "cost_quality_chart",
    "el",
    "fmt_money",
    "fmt_pct",
    "marker",
    "nice_ticks",
    "share_chart",
    "svg_doc",
    "waterfall_chart",
]

#: One palette for charts, legend and cards, so colours mean the same thing everywhere.
COLORS = {
    "ink": "#1f2937",
    "muted": "#6b7280",
    "grid": "#e5e7eb",
    "axis": "#9ca3af",
    "total": "#64748b",
    "line": "#2563eb",
    "chosen": "#ea580c",
    "saving": "#16a34a",
    "cost": "#dc2626",
    "target": "#7c3aed",
}
#: Marker styles cycled over reference points (shape, colour).
REFERENCE_STYLES = (
    ("square", "#475569"),
    ("triangle", "#b91c1c"),
    ("diamond", "#a16207"),
    ("star", "#0f766e"),
    ("cross", "#9d174d"),
)
CHAR_W = 6.9  # approximate px per character at font-size 12, for label layout


def fmt_money(value: float) -> str:
    """Dollars with enough digits to tell small costs apart: $12.34, $0.321, $0.0123."""
    if value == 0:
        return "$0.00"
    sign = "−" if value < 0 else ""
    a = abs(value)
    if a >= 1000:
        return f"{sign}${a:,.0f}"
    if a >= 1:
        return f"{sign}${a:,.2f}"
    decimals = min(8, 2 - math.floor(math.log10(a)))  # three significant digits
    text = f"{a:.{decimals}f}".rstrip("0")
    if len(text.split(".")[1]) < 2:
        text = f"{a:.2f}"
    return f"{sign}${text}"


def fmt_pct(value: float, *, signed: bool = False) -> str:
    """A percentage (already ×100) with one decimal."""
    text = f"{value:+.1f}%" if signed else f"{value:.1f}%"
    return text.replace("-", "−")


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]; a flat or inverted range is widened first."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad if lo != 0 else 0.0, hi + pad
    raw = (hi - lo) / max(1, count - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step + 1e-9) * step
    last = math.ceil(hi / step - 1e-9) * step
    n = round((last - first) / step)
    return [round(first + i * step, 12) for i in range(n + 1)]


def quality_ticks(lo: float, hi: float) -> list[float]:
    """:func:`nice_ticks` for a quality axis, with the top close to the best point: a coarse
    step would run the axis to 150 % for a best point of 103 %, where nothing is drawn."""
    ticks = nice_ticks(lo, hi)
    for count in range(6, 13):
        if ticks[-1] - hi <= 0.1 * (ticks[-1] - ticks[0]):
            break
        ticks = nice_ticks(lo, hi, count)
    return ticks


@dataclass(frozen=True)
class LinearScale:
    """Maps a data domain onto pixels; a zero-width domain maps everything to the middle."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float) -> float:
        if self.d1 == self.d0:
            return (self.r0 + self.r1) / 2
        return self.r0 + (value - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)


def _attr_name(name: str) -> str:
    return name.rstrip("_").replace("_", "-")


def _fmt_attr(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return html.escape(str(value), quote=True)


def el(tag: str, *children: str, text: str | None = None, **attrs: object) -> str:
    """One escaped SVG/HTML element; ``class_`` → ``class``, ``font_size`` → ``font-size``.

    ``children`` are already-built markup; ``text`` is raw user text and gets escaped.
    """
    parts = "".join(f' {_attr_name(k)}="{_fmt_attr(v)}"' for k, v in attrs.items() if v is not None)
    body = "".join(children) + (html.escape(text) if text is not None else "")
    return f"<{tag}{parts}>{body}</{tag}>"


def svg_doc(width: int, height: int, label: str, *children: str) -> str:
    """A responsive SVG root with an accessible name (shown as a native tooltip, too)."""
    return el(
        "svg",
        el("title", text=label),
        *children,
        viewBox=f"0 0 {width} {height}",
        width="100%",
        role="img",
        aria_label=label,
        class_="chart",
        font_family="inherit",
        font_size=12,
    )


def marker(shape: str, x: float, y: float, size: float, color: str, tip: str = "") -> str:
    """A point marker; shapes differ so reference points read apart even in greyscale."""
    s = size
    tip_el = el("title", text=tip) if tip else ""
    style = {"fill": color, "stroke": "white", "stroke_width": 1.2}
    if shape == "circle":
        return el("circle", tip_el, cx=x, cy=y, r=s, **style)
    if shape == "square":
        return el("rect", tip_el, x=x - s, y=y - s, width=2 * s, height=2 * s, **style)
    pts: Sequence[tuple[float, float]]
    if shape == "triangle":
        pts = [(x, y - s * 1.2), (x + s * 1.1, y + s * 0.9), (x - s * 1.1, y + s * 0.9)]
    elif shape == "diamond":
        pts = [(x, y - s * 1.3), (x + s * 1.1, y), (x, y + s * 1.3), (x - s * 1.1, y)]
    elif shape == "star":
        pts = [
            (x + (s * 1.4 if i % 2 == 0 else s * 0.6) * math.sin(i * math.pi / 5),
             y - (s * 1.4 if i % 2 == 0 else s * 0.6) * math.cos(i * math.pi / 5))
            for i in range(10)
        ]  # fmt: skip
    else:  # cross
        w = s * 0.45
        pts = [
            (x - w, y - s), (x + w, y - s), (x + w, y - w), (x + s, y - w), (x + s, y + w),
            (x + w, y + w), (x + w, y + s), (x - w, y + s), (x - w, y + w), (x - s, y + w),
            (x - s, y - w), (x - w, y - w),
        ]  # fmt: skip
    points = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
    return el("polygon", tip_el, points=points, **style)


@dataclass
class LabelPlacer:
    """Greedy label layout: nudge each label until it overlaps no earlier one."""

    left: float
    right: float
    top: float
    bottom: float
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)

    def place(self, x: float, y: float, text: str, color: str, weight: str = "normal") -> str:
        width = len(text) * CHAR_W + 4
        for dy in (0, -14, 14, -28, 28, -42, 42):
            for side in (1, -1):
                box = self._box(x, y + dy, width, side)
                if box and not any(_overlap(box, b) for b in self.boxes):
                    return self._emit(box, text, color, weight)
        return self._emit(self._box(x, y, width, 1, clamp=True), text, color, weight)

    def _box(
        self, x: float, y: float, width: float, side: int, clamp: bool = False
    ) -> tuple[float, float, float, float] | None:
        x0 = x + 9 if side > 0 else x - 9 - width
        y0 = y - 13
        if clamp:
            x0 = min(max(x0, self.left), self.right - width)
        elif x0 < self.left or x0 + width > self.right or y0 < self.top or y0 + 16 > self.bottom:
            return None
        return (x0, y0, x0 + width, y0 + 16)

    def _emit(self, box: tuple[float, float, float, float] | None, text: str, color: str,
              weight: str) -> str:  # fmt: skip
        assert box is not None  # clamp=True always yields a box
        self.boxes.append(box)
        # A translucent white plate keeps the label readable where it crosses a line or grid.
        x0, y0, x1, y1 = box
        plate = el("rect", x=x0, y=y0, width=x1 - x0, height=y1 - y0, rx=3, fill="white",
                   fill_opacity=0.85)  # fmt: skip
        return plate + el("text", text=text, x=x0 + 2, y=y0 + 12, fill=color, font_weight=weight)

    def block(self, x: float, y: float, r: float) -> None:
        """Reserve a marker's area so no label covers a data point."""
        self.boxes.append((x - r, y - r, x + r, y + r))


def _overlap(a: Iterable[float], b: Iterable[float]) -> bool:
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    return ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1


# --- charts ---------------------------------------------------------------------------------

#: (label, cost in USD, quality retained as a fraction)
Point = tuple[str, float, float]


def _axes(
    xs: LinearScale, ys: LinearScale, xticks: Sequence[float], yticks: Sequence[float],
    xfmt: Callable[[float], str], yfmt: Callable[[float], str], xlabel: str, ylabel: str,
) -> str:  # fmt: skip
    """Grid lines, tick labels and axis titles for a plot box given by the two scales."""
    left, right, bottom, top = xs.r0, xs.r1, ys.r0, ys.r1
    out = []
    for t in yticks:
        y = ys(t)
        out.append(el("line", x1=left, x2=right, y1=y, y2=y, stroke=COLORS["grid"]))
        out.append(el("text", text=yfmt(t), x=left - 8, y=y + 4, text_anchor="end",
                      fill=COLORS["muted"]))  # fmt: skip
    for t in xticks:
        x = xs(t)
        out.append(el("line", x1=x, x2=x, y1=bottom, y2=bottom + 5, stroke=COLORS["axis"]))
        out.append(el("text", text=xfmt(t), x=x, y=bottom + 19, text_anchor="middle",
                      fill=COLORS["muted"]))  # fmt: skip
    out.append(el("line", x1=left, x2=right, y1=bottom, y2=bottom, stroke=COLORS["axis"]))
    out.append(el("text", text=xlabel, x=(left + right) / 2, y=bottom + 40,
                  text_anchor="middle", fill=COLORS["ink"], font_size=13))  # fmt: skip
    cy = (top + bottom) / 2
    out.append(el("text", text=ylabel, x=16, y=cy, text_anchor="middle", fill=COLORS["ink"],
                  font_size=13, transform=f"rotate(-90 16 {cy:.1f})"))  # fmt: skip
    return "".join(out)


def cost_quality_chart(curve: Sequence[Point], refs: Sequence[Point], chosen: Point | None,
                       target: float | None) -> str:  # fmt: skip
    """Scatter of cost (x) against quality retained (y): the tuner's curve plus references."""
    w, h = 880, 420
    left, right, top, bottom = 70, w - 24, 20, h - 56
    pts = [*curve, *refs, *([chosen] if chosen else [])]
    costs = [p[1] for p in pts] or [0.0]
    quals = [p[2] for p in pts] + ([target] if target is not None else []) or [1.0]
    xticks = nice_ticks(min(0.0, *costs), max(costs) * 1.08 if max(costs) > 0 else 0.0)
    yticks = quality_ticks(min(quals), max(quals))
    xs = LinearScale(xticks[0], xticks[-1], left, right)
    ys = LinearScale(yticks[0], yticks[-1], bottom, top)
    xlabel, ylabel = "cost of the replayed requests (USD)", "quality retained (% of baseline)"
    out = [_axes(xs, ys, xticks, yticks, fmt_money, lambda v: fmt_pct(v * 100), xlabel, ylabel)]
    if target is not None:
        y = ys(target)
        out.append(el("line", x1=left, x2=right, y1=y, y2=y, stroke=COLORS["target"],
                      stroke_width=1.5, stroke_dasharray="6 4"))  # fmt: skip
    line = sorted(curve, key=lambda p: (p[1], p[2]))
    if len(line) > 1:
        path = " ".join(f"{xs(c):.1f},{ys(q):.1f}" for _, c, q in line)
        out.append(el("polyline", points=path, fill="none", stroke=COLORS["line"],
                      stroke_width=2, stroke_linejoin="round"))  # fmt: skip
    for name, c, q in line:
        out.append(marker("circle", xs(c), ys(q), 4, COLORS["line"], _tip(name, c, q)))
    for i, (name, c, q) in enumerate(refs):
        shape, color = REFERENCE_STYLES[i % len(REFERENCE_STYLES)]
        out.append(marker(shape, xs(c), ys(q), 6, color, _tip(name, c, q)))
    if chosen:
        x, y = xs(chosen[1]), ys(chosen[2])
        out.append(el("circle", cx=x, cy=y, r=10, fill="none", stroke=COLORS["chosen"],
                      stroke_width=2.5))  # fmt: skip
        out.append(marker("circle", x, y, 5.5, COLORS["chosen"], _tip(*chosen)))
    # Labels last, most important first, so they sit on top and never cover a point.
    labels = LabelPlacer(left, right, top, bottom)
    for _, c, q in pts:
        labels.block(xs(c), ys(q), 11 if chosen and (c, q) == chosen[1:] else 7)
    if chosen:
        text = "chosen: " + _tip(*chosen)
        out.append(labels.place(xs(chosen[1]) + 4, ys(chosen[2]) - 6, text, COLORS["chosen"],
                                "bold"))  # fmt: skip
    for i, (name, c, q) in enumerate(refs):
        out.append(labels.place(xs(c), ys(q), name, REFERENCE_STYLES[i % len(REFERENCE_STYLES)][1]))
    if target is not None:
        text = f"target {fmt_pct(target * 100)}"
        out.append(labels.place(right - len(text) * CHAR_W - 20, ys(target) - 5, text,
                                COLORS["target"]))  # fmt: skip
    return svg_doc(w, h, "Cost versus quality retained", *out)


def _tip(name: str, cost: float, quality: float) -> str:
    return f"{name} ({fmt_money(cost)}, {fmt_pct(quality * 100)})"


def waterfall_chart(steps: Sequence[tuple[str, float]]) -> str:
    """From baseline cost to actual cost: totals as full bars, each technique as a float."""
    w, h = 880, 330
    left, right, top, bottom = 70, w - 20, 28, h - 36
    bars: list[tuple[str, float, float, str, str]] = []  # label, from, to, colour, caption
    run = 0.0
    for i, (name, value) in enumerate(steps):
        if i == 0 or i == len(steps) - 1:
            bars.append((name, 0.0, value, COLORS["total"], fmt_money(value)))
            run = value
        else:
            color = COLORS["saving"] if value < 0 else COLORS["cost"] if value else COLORS["axis"]
            caption = ("+" if value > 0 else "") + fmt_money(value)
            bars.append((name, run, run + value, color, caption))
            run += value
    levels = [v for b in bars for v in b[1:3]] or [0.0]
    yticks = nice_ticks(min(0.0, *levels), max(0.0, *levels))
    ys = LinearScale(yticks[0], yticks[-1], bottom, top)
    slot = (right - left) / max(1, len(bars))
    xs = LinearScale(0, 1, left, right)
    out = [_axes(xs, ys, [], yticks, str, fmt_money, "", "cost (USD)")]
    for i, (name, lo, hi, color, caption) in enumerate(bars):
        x0 = left + i * slot + slot * 0.18
        bw = slot * 0.64
        y0, y1 = sorted((ys(lo), ys(hi)))
        out.append(el("rect", el("title", text=f"{name}: {caption}"), x=x0, y=y0, width=bw,
                      height=max(1.5, y1 - y0), fill=color, rx=2))  # fmt: skip
        out.append(el("text", text=caption, x=x0 + bw / 2, y=y0 - 6, text_anchor="middle",
                      fill=COLORS["ink"], font_weight="bold"))  # fmt: skip
        short = name if len(name) <= 18 else name[:17] + "…"
        out.append(el("text", text=short, x=x0 + bw / 2, y=bottom + 20, text_anchor="middle",
                      fill=COLORS["ink"], font_size=13))  # fmt: skip
        if i + 1 < len(bars):
            y = ys(hi)
            out.append(el("line", x1=x0 + bw, x2=x0 + slot, y1=y, y2=y, stroke=COLORS["axis"],
                          stroke_dasharray="3 3"))  # fmt: skip
    return svg_doc(w, h, "Savings waterfall from baseline cost to actual cost", *out)


def share_chart(rows: Sequence[tuple[str, float, str]]) -> str:
    """Horizontal bars: share of requests per model (0..1), annotated with count and cost."""
    w, row_h = 880, 34
    left, right, top = 210, w - 230, 10
    bottom = top + row_h * len(rows)
    h = bottom + 50
    xticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    xs = LinearScale(0.0, 1.0, left, right)
    out = []
    for t in xticks:
        x = xs(t)
        out.append(el("line", x1=x, x2=x, y1=top, y2=bottom, stroke=COLORS["grid"]))
        out.append(el("text", text=fmt_pct(t * 100), x=x, y=bottom + 18, text_anchor="middle",
                      fill=COLORS["muted"]))  # fmt: skip
    out.append(el("text", text="share of requests (%)", x=(left + right) / 2, y=bottom + 40,
                  text_anchor="middle", fill=COLORS["ink"], font_size=13))  # fmt: skip
    for i, (name, share, caption) in enumerate(rows):
        y = top + i * row_h + 6
        share = min(1.0, max(0.0, share))
        short = name if len(name) <= 26 else name[:25] + "…"
        out.append(el("text", el("title", text=name), text=short, x=left - 10, y=y + 15,
                      text_anchor="end", fill=COLORS["ink"], font_size=13))  # fmt: skip
        out.append(el("rect", x=left, y=y, width=right - left, height=22, fill="#f3f4f6", rx=3))
        bar_w = max(1.5, xs(share) - left)
        out.append(el("rect", el("title", text=f"{name}: {caption}"), x=left, y=y, width=bar_w,
                      height=22, fill=COLORS["line"], rx=3))  # fmt: skip
        out.append(el("text", text=caption, x=right + 10, y=y + 15, fill=COLORS["ink"]))
    return svg_doc(w, h, "Share of requests by model", *out)
