"""Charts for chat replies: pure functions returning PNG bytes, sized to be read on a phone.

Each chart is drawn on its own `Figure` (the object-oriented API, never pyplot's global state),
so renders may run concurrently in `asyncio.to_thread`. Fractions come in as fractions
(0.4 = 40%) and are shown as percentages. Empty input gives a chart that says "no data".
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Literal

import matplotlib

matplotlib.use("Agg")  # before anything can pull in a GUI backend: the bot runs headless

from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from core.metrics import drawdown_series

# 6.4 × 4.8 in at 150 dpi = 960 × 720 px: sharp in Telegram's preview, fonts still large.
FIGSIZE = (6.4, 4.8)
DPI = 150
TITLE_SIZE = 17
LABEL_SIZE = 14
TICK_SIZE = 13
# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
BLUE, ORANGE, GREEN, RED = "#0072B2", "#E69F00", "#009E73", "#D55E00"
GREY, SKY, YELLOW = "#999999", "#56B4E9", "#F0E442"
DENSE = 60  # more points than this: draw them faint and a 7-day mean bold
CURVE_COLOURS = (BLUE, ORANGE, GREEN, RED, "#CC79A7", SKY, "#000000")

# Seed 002's premium table: below −10% accumulate, 5–20% basis trade, above 20% de-risk.
SEED_002_THRESHOLDS: Mapping[str, Decimal] = {
    "accumulate_below": Decimal("-0.10"),
    "basis_above": Decimal("0.05"),
    "derisk_above": Decimal("0.20"),
}


# ── plumbing ────────────────────────────────────────────────────────────────────────────────


def _figure(title: str, rows: int = 1, ratios: Sequence[int] | None = None) -> tuple[Figure, list]:
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, 1, sharex=rows > 1, squeeze=False, height_ratios=ratios)[:, 0]
    fig.suptitle(title, fontsize=TITLE_SIZE, fontweight="bold", x=0.02, ha="left")
    for ax in axes:
        ax.tick_params(labelsize=TICK_SIZE)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(alpha=0.25)
    return fig, list(axes)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    fig.clear()  # drop artists now rather than at garbage collection
    return buf.getvalue()


def _no_data(title: str, what: str = "no data") -> bytes:
    fig, (ax,) = _figure(title)
    ax.axis("off")
    ax.text(0.5, 0.5, what, ha="center", va="center", fontsize=TITLE_SIZE + 4, color=GREY)
    return _png(fig)


def _legend(ax: Axes, handles: list | None = None, **where: object) -> None:
    """A legend on a nearly opaque white box, so that data passing behind it stays readable."""
    kwargs = {"handles": handles} if handles else {}
    ax.legend(
        **kwargs,
        fontsize=LABEL_SIZE - 1,
        frameon=True,
        facecolor="white",
        edgecolor="none",
        framealpha=0.85,
        **where,
    )


def _date_axis(ax: Axes) -> None:
    locator = AutoDateLocator(minticks=3, maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _pct(decimals: int = 0) -> PercentFormatter:
    return PercentFormatter(xmax=1, decimals=decimals)


def _level_label(ax: Axes, y: float, text: str, colour: str) -> None:
    """A label sitting on a horizontal line at the right edge, readable over the data."""
    ax.annotate(
        text,
        xy=(1, y),
        xycoords=("axes fraction", "data"),
        xytext=(-4, 3),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=LABEL_SIZE - 1,
        color=colour,
        fontweight="bold",
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
    )


def _view_limits(values: Sequence[float], levels: Sequence[float]) -> tuple[float, float]:
    """Y range holding the values, every level and zero, with a margin."""
    lo, hi = min(0.0, *values, *levels), max(0.0, *values, *levels)
    pad = (hi - lo) * 0.08 or 0.01
    return lo - pad, hi + pad


def _trailing_mean(xs: Sequence[date], ys: Sequence[float], days: int = 7) -> list[float]:
    """Mean of the points in the trailing `days` window ending at each point (by time, not count)."""
    out: list[float] = []
    lo, total = 0, 0.0
    for hi, (x, y) in enumerate(zip(xs, ys, strict=True)):
        total += y
        while (x - xs[lo]).days >= days:
            total -= ys[lo]
            lo += 1
        out.append(total / (hi - lo + 1))
    return out


def _series(
    ax: Axes, xs: Sequence[date], ys: Sequence[float], label: str, steps: bool = False
) -> list[float]:
    """Plot a series; a dense one faint with its bold 7-day mean. Returns what sets the y range.

    `steps` draws each value over the interval before it, as a funding print settles that interval.
    """
    style = "steps-pre" if steps else "default"
    if len(ys) <= DENSE:
        ax.plot(xs, ys, color=BLUE, linewidth=2.2, label=label, drawstyle=style)
        return list(ys)
    smooth = _trailing_mean(xs, ys)
    ax.plot(xs, ys, color=SKY, linewidth=0.8, alpha=0.8, label=label, drawstyle=style)
    ax.plot(xs, smooth, color=BLUE, linewidth=2.4, label="7-day mean")
    # Range from the mean plus a margin: single spikes may leave the frame, trends may not.
    return smooth


def _signed(fraction: float) -> str:
    """A percentage with a true minus sign, which reads better than a hyphen at small sizes."""
    return f"{fraction:.0%}".replace("-", "−")


# ── allocation ──────────────────────────────────────────────────────────────────────────────


def allocation_chart(
    weights_before: Mapping[str, Decimal],
    weights_after: Mapping[str, Decimal],
    targets: Mapping[str, Decimal] | None,
    title: str,
) -> bytes:
    """Horizontal bars of each asset's weight before and after a rebalance, with target marks."""
    targets = targets or {}
    names = list(dict.fromkeys([*weights_after, *weights_before, *targets]))
    if not names:
        return _no_data(title)
    # Largest position on top, where the eye starts.
    names.sort(key=lambda n: float(weights_after.get(n, weights_before.get(n, 0))))
    fig, (ax,) = _figure(title)
    ys = range(len(names))
    height = 0.38
    before = [float(weights_before.get(n, 0)) for n in names]
    after = [float(weights_after.get(n, 0)) for n in names]
    old = ax.barh([y + height / 2 for y in ys], before, height, color=GREY, label="before")
    new = ax.barh([y - height / 2 for y in ys], after, height, color=BLUE, label="after")
    # Padding clears the target tick, which usually sits right at the end of the "after" bar.
    ax.bar_label(old, [_signed(w) for w in before], padding=8, fontsize=LABEL_SIZE, color="#555555")
    ax.bar_label(new, [_signed(w) for w in after], padding=8, fontsize=LABEL_SIZE, fontweight="bold")
    handles = [old, new]
    marked = [(y, float(targets[n])) for y, n in zip(ys, names, strict=True) if n in targets]
    if marked:
        handles.append(
            ax.vlines(
                [t for _, t in marked],
                [y - 2.3 * height / 2 for y, _ in marked],
                [y + 2.3 * height / 2 for y, _ in marked],
                colors="black",
                linewidths=3,
                zorder=3,
                label="target",
            )
        )
    ax.set_yticks(list(ys), names, fontsize=LABEL_SIZE + 1)
    ax.xaxis.set_major_formatter(_pct())
    everything = [*before, *after, *(t for _, t in marked), 0.0]
    # Room beyond the longest bars for their labels (a short book's label sits on the left).
    ax.set_xlim(min(everything) * 1.7, max(everything) * 1.25 or 1)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.grid(axis="y", visible=False)
    _legend(ax, handles, loc="lower right")
    return _png(fig)


# ── funding ─────────────────────────────────────────────────────────────────────────────────


def _intervals(times: Sequence[datetime], fallback: float) -> list[float]:
    """Each print's interval in hours: the gap to its neighbour when that is 1–8 h, else fallback."""
    gaps = [(b - a).total_seconds() / 3600 for a, b in pairwise(times)]
    out = []
    for i in range(len(times)):
        gap = gaps[i - 1] if i else (gaps[0] if gaps else fallback)
        out.append(round(gap) if 1 <= gap <= 8 else fallback)
    return out


def funding_chart(
    prints: Sequence[tuple[datetime, Decimal]],
    thresholds: Mapping[str, Decimal],
    title: str,
    values: Literal["rate", "apr"] = "rate",
    interval_hours: Decimal | None = None,
) -> bytes:
    """Funding APR over time with each threshold (an APR, 0.10 = 10%) as a labelled line.

    `prints` are rates per interval (each annualized with the gap to its neighbour, or with
    `interval_hours`), or APRs already when `values="apr"`.
    """
    if not prints:
        return _no_data(title)
    ordered = sorted(prints, key=lambda p: p[0])
    times = [t for t, _ in ordered]
    if values == "apr":
        aprs = [float(v) for _, v in ordered]
    else:
        fallback = float(interval_hours) if interval_hours else 8.0
        fixed = [fallback] * len(times) if interval_hours else _intervals(times, fallback)
        aprs = [float(v) * 8760 / h for (_, v), h in zip(ordered, fixed, strict=True)]
    fig, (ax,) = _figure(title)
    ax.axhline(0, color="black", linewidth=0.8)
    label = "each print" if len(aprs) > DENSE else "funding APR"
    shown = _series(ax, times, aprs, label, steps=True)
    levels = sorted(((float(v), k) for k, v in thresholds.items()), reverse=True)
    for i, (level, name) in enumerate(levels):
        colour = RED if i % 2 == 0 else GREEN
        ax.axhline(level, color=colour, linestyle="--", linewidth=1.8)
        _level_label(ax, level, f"{name} {level:.0%}", colour)
    ax.set_ylim(*_view_limits(shown, [lv for lv, _ in levels]))
    ax.yaxis.set_major_formatter(_pct())
    ax.set_ylabel("APR", fontsize=LABEL_SIZE)
    _date_axis(ax)
    if len(aprs) > DENSE:  # one line needs no legend: the title says what it is
        _legend(ax, loc="best", ncols=2)
    return _png(fig)


# ── basis / premium ─────────────────────────────────────────────────────────────────────────

# key → (band label, fill, fill alpha, text colour, which side of the level is shaded)
_BANDS = {
    "accumulate_below": ("accumulate", GREEN, 0.16, "#00704F", "below"),
    "basis_above": ("basis trade", YELLOW, 0.35, "#6B5D00", "above"),
    "derisk_above": ("de-risk", RED, 0.14, "#A33F00", "above"),
}


def basis_chart(
    series: Sequence[tuple[date, Decimal]],
    thresholds: Mapping[str, Decimal],
    title: str,
) -> bytes:
    """Annualized premium over time with seed 002's regime bands shaded.

    `thresholds` uses the config's names (accumulate_below, basis_above, derisk_above, e.g.
    `SEED_002_THRESHOLDS`); any other key is drawn as a labelled dashed line.
    """
    if not series:
        return _no_data(title)
    ordered = sorted(series, key=lambda p: p[0])
    days = [d for d, _ in ordered]
    ys = [float(v) for _, v in ordered]
    levels = {k: float(v) for k, v in thresholds.items()}
    fig, (ax,) = _figure(title)
    ax.axhline(0, color="black", linewidth=0.8)
    shown = _series(ax, days, ys, "each day" if len(ys) > DENSE else "premium")
    low, high = _view_limits(shown, list(levels.values()))
    ax.set_ylim(low, high)
    # Shade each band between its own level and the next level (or the chart edge).
    edges = sorted(levels[k] for k in _BANDS if k in levels)
    for key, (label, fill, alpha, ink, side) in _BANDS.items():
        if key not in levels:
            continue
        level = levels[key]
        if side == "below":
            lo, hi = low, level
        else:
            lo, hi = level, next((e for e in edges if e > level), high)
        ax.axhspan(lo, hi, color=fill, alpha=alpha, linewidth=0, zorder=0)
        ax.text(
            0.99,
            (max(lo, low) + min(hi, high)) / 2,
            label,
            transform=ax.get_yaxis_transform(),
            fontsize=LABEL_SIZE - 1,
            color=ink,
            fontweight="bold",
            ha="right",
            va="center",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.75},
        )
    for key, level in levels.items():
        if key not in _BANDS and level not in edges:
            ax.axhline(level, color=GREY, linestyle="--", linewidth=1.4)
            _level_label(ax, level, f"{key.replace('_', ' ')} {level:.0%}", "#555555")
    if len(ys) > DENSE:
        _legend(ax, loc="best", ncols=2)
    ax.yaxis.set_major_formatter(_pct())
    ax.set_ylabel("annualized premium", fontsize=LABEL_SIZE)
    _date_axis(ax)
    return _png(fig)


# ── equity ──────────────────────────────────────────────────────────────────────────────────


def _money(x: float, _pos: object = None) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"


def equity_chart(curves: Mapping[str, Sequence[tuple[date, float]]], title: str) -> bytes:
    """Equity curves (legend shows each total return) above a panel of their drawdowns."""
    present = {name: list(c) for name, c in curves.items() if c}
    if not present:
        return _no_data(title)
    fig, (top, bottom) = _figure(title, rows=2, ratios=(3, 1))
    for i, (name, curve) in enumerate(present.items()):
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        days = [d for d, _ in curve]
        values = [float(v) for _, v in curve]
        change = values[-1] / values[0] - 1
        top.plot(days, values, color=colour, linewidth=2, label=f"{name}  {change:+.0%}")
        falls = [-dd for _, dd in drawdown_series(curve)]
        # Lines, not fills: overlapping fills of several curves blend into one muddy colour.
        bottom.plot(days, falls, color=colour, linewidth=1.4)
    top.yaxis.set_major_formatter(FuncFormatter(_money))
    _legend(top, loc="upper left")
    bottom.yaxis.set_major_formatter(_pct())
    bottom.set_ylabel("drawdown", fontsize=LABEL_SIZE - 1)
    bottom.yaxis.set_major_locator(MaxNLocator(3))
    _date_axis(bottom)
    return _png(fig)
