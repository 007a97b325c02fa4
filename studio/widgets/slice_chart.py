"""A horizontal bar chart of slice sizes drawn with block characters (no plotting dependency, stable output)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from curation.overview import SliceCount

BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(value: int, maximum: int, width: int) -> str:
    """``value`` of ``maximum`` as a bar of at most ``width`` cells, with eighth-cell resolution."""
    if maximum <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / maximum * width * 8))
    return "█" * (eighths // 8) + (BLOCKS[eighths % 8] if eighths % 8 else "")


def slice_chart(slices: list[SliceCount], *, width: int = 40, limit: int = 25) -> Table:
    """Production records per slice (blue) against accepted ones (green), largest slices first."""
    table = Table(box=None, padding=(0, 1), show_header=True, header_style="bold")
    table.add_column("slice", no_wrap=True, max_width=24)
    table.add_column("records", justify="right")
    table.add_column("production (blue) vs accepted (green)", no_wrap=True)
    top = max((s.records for s in slices), default=0)
    for s in slices[:limit]:
        bars = Text(bar(s.records, top, width), style="blue")
        bars.append("\n")
        bars.append(bar(s.accepted, top, width) or "·", style="green")
        table.add_row(s.slice, f"{s.records:,}\n{s.accepted:,} ✓", bars)
    if len(slices) > limit:
        rest = sum(s.records for s in slices[limit:])
        table.add_row(f"({len(slices) - limit} more)", f"{rest:,}", "")
    return table
