"""One-line progress of a campaign (done/total, rate, ETA, failures) for `ews-ir campaign watch`."""

from __future__ import annotations

from typing import Any, TextIO

BAR_WIDTH = 30


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "--"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def render(status: dict[str, Any], *, bar: bool) -> str:
    """`[#####.....]  120/500  24%  3.1/s  ETA 2m03s  failed 2  executing`; without `bar` for log files."""
    progress = status.get("progress") or {}
    failed = (status.get("counters") or {}).get(status.get("phase"), {}).get("failed", 0)
    done, total = int(progress.get("done") or 0), progress.get("total")
    fraction = done / total if total else 0.0
    parts = []
    if bar:
        filled = int(fraction * BAR_WIDTH)
        parts.append("[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]")
    parts.append(f"{done}/{total if total is not None else '?'}")
    parts.append(f"{fraction:.0%}" if total else "--%")
    rate = progress.get("rate_per_s")
    parts.append(f"{rate:.1f}/s" if isinstance(rate, int | float) else "-/s")
    parts.append(f"ETA {format_duration(progress.get('eta_s'))}")
    parts.append(f"failed {failed}")
    parts.append(str(status.get("status", "?")))
    return "  ".join(parts)


class ProgressPrinter:
    """Redraws one line on a terminal; elsewhere prints a line only when the progress changed."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last = ""

    def update(self, status: dict[str, Any]) -> None:
        line = render(status, bar=self.tty)
        if self.tty:
            self.out.write("\r\x1b[2K" + line)
        elif line != self._last:
            self.out.write(line + "\n")
        self.out.flush()
        self._last = line

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()
