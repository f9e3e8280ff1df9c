"""Checks shared by the commands that draw a figure (``stream --plot``, ``bench pipeline
--plot``, ``python -m avemotion.benchmarks.pipeline --plot``)."""

from __future__ import annotations

from pathlib import Path


def check_plot_suffix(plot: str, flag: str = "--plot") -> None:
    """Refuse a figure file matplotlib cannot write, before the work that precedes the
    figure: savefig would fail only at the end, after the stream or the benchmark, and lose
    what was computed. No suffix is written as png
    (:func:`~avemotion.atomic.save_figure_atomic`)."""
    from matplotlib.figure import Figure

    writable = Figure().canvas.get_supported_filetypes()
    suffix = Path(plot).suffix.lower().lstrip(".")
    if suffix and suffix not in writable:
        raise ValueError(
            f"{flag} {plot}: matplotlib cannot write .{suffix} files; expected one of "
            + ", ".join(f".{s}" for s in sorted(writable))
        )
