"""Slice distribution charts drawn with block characters (no plotting dependency, stable output).

Without a dataset version: production records per slice against accepted ones.
With one: each slice's share of production against its share of the dataset version, headed by the
total-variation distance between the two distributions. The legend shows each series as a swatch in its bar's
colour, never a colour's name: the terminal theme decides how a named colour looks (the legend said "blue" over
purple bars), so the colours are fixed RGB and the legend draws them.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from curation.overview import DatasetComparison, SliceCount

BLOCKS = " ▏▎▍▌▋▊▉█"
PRODUCTION, ACCEPTED, DATASET = "#3d8bfd", "#3fb950", "#d163d1"  # the bars' colours (RGB: the same in any theme)


def legend(*series: tuple[str, str]) -> Text:
    """``██ name`` for each (name, colour), in the colour its bars have."""
    out = Text()
    for i, (name, colour) in enumerate(series):
        out.append("   " if i else "")
        out.append("██ ", style=colour)
        out.append(name, style="bold")
    return out


def bar(value: float, maximum: float, width: int) -> str:
    """``value`` of ``maximum`` as a bar of at most ``width`` cells, with eighth-cell resolution."""
    if maximum <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / maximum * width * 8))
    return "█" * (eighths // 8) + (BLOCKS[eighths % 8] if eighths % 8 else "")


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def slice_chart(
    slices: list[SliceCount], comparison: DatasetComparison | None = None, *, width: int = 36, limit: int = 25
) -> Group:
    """The slice chart: production vs accepted, or production vs a dataset version when ``comparison`` is given."""
    synthetic = any(s.synthetic for s in slices)
    table = Table(box=None, padding=(0, 1), show_header=True, header_style="bold")
    table.add_column("slice", no_wrap=True, max_width=24)
    table.add_column("records", justify="right")
    if comparison is None:
        head = legend(("production", PRODUCTION), ("accepted", ACCEPTED))
        head.append("\nno dataset version yet: build one on the Curation screen (5)", style="dim")
        if synthetic:
            table.add_column("synth", justify="right")
        table.add_column("", no_wrap=True)
        top = max((s.records for s in slices), default=0)
        for s in slices[:limit]:
            bars = Text(bar(s.records, top, width), style=PRODUCTION)
            bars.append("\n")
            bars.append(bar(s.accepted, top, width) or "·", style=ACCEPTED)
            synth = [_pct(s.synthetic / s.records) if s.records else ""] if synthetic else []
            table.add_row(s.slice, f"{s.records:,}\n{s.accepted:,} ✓", *synth, bars)
        if len(slices) > limit:
            rest = sum(s.records for s in slices[limit:])
            table.add_row(f"({len(slices) - limit} more)", f"{rest:,}", *([""] * (1 + synthetic)))
        return Group(head, table)

    c = comparison
    head = legend(("production", PRODUCTION), (f"dataset {c.version}", DATASET))
    head.append(f" ({c.n_train:,} training rows)", style="bold")
    head.append("\ntotal-variation distance ")
    head.append(f"{c.tv_distance:.3f}", style="bold yellow")
    if len(c.versions) > 1:
        head.append(f"  ·  v: next of {len(c.versions)} versions", style="dim")
    table.add_column("prod", justify="right")
    table.add_column(c.version, justify="right", max_width=14)
    if synthetic:
        table.add_column("synth", justify="right")
    table.add_column("", no_wrap=True)
    by_name = {s.slice: s for s in slices}
    names = [s.slice for s in slices] + sorted(set(c.dataset) - set(by_name), key=lambda k: -c.dataset[k])
    top = max([*c.production.values(), *c.dataset.values(), 0.0])
    for name in names[:limit]:
        s = by_name.get(name)
        prod, ds = c.production.get(name, 0.0), c.dataset.get(name, 0.0)
        bars = Text(bar(prod, top, width) or "·", style=PRODUCTION)
        bars.append("\n")
        bars.append(bar(ds, top, width) or "·", style=DATASET)
        records = f"{s.records:,}\n{s.accepted:,} ✓" if s else "0"
        synth = [(_pct(s.synthetic / s.records) if s and s.records else "")] if synthetic else []
        table.add_row(name, records, _pct(prod), _pct(ds), *synth, bars)
    if len(names) > limit:
        rest_p = sum(c.production.get(n, 0.0) for n in names[limit:])
        rest_d = sum(c.dataset.get(n, 0.0) for n in names[limit:])
        table.add_row(f"({len(names) - limit} more)", "", _pct(rest_p), _pct(rest_d), *([""] * (1 + synthetic)))
    return Group(head, table)
