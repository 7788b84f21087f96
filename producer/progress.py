"""How a campaign reads on a terminal: one-line progress (done/total, rate, ETA, failures) while
`ews-ir campaign watch` runs, and a short summary (counts per phase, verification, reason) after it and
`status`; `scripts/demo` prints the same verification line."""

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


def verification_line(status: dict[str, Any]) -> str | None:
    """What the verify phase found, in one line; None before it ran (or when it does not run)."""
    found = status.get("verification")
    if not found:
        return None
    copies, mailboxes = found["copies_remaining"], found["mailboxes_with_copies"]
    line = f"{found['mailboxes_checked']} of {found['mailboxes']} acted mailboxes searched again: {copies} "
    line += "copy" if copies == 1 else "copies"
    line += " left where the action should have removed them"
    if copies:
        line += f" (in {mailboxes} {'mailbox' if mailboxes == 1 else 'mailboxes'})"
    if found["mailboxes_failed"]:
        line += f"; {found['mailboxes_failed']} could not be checked"
    return line


def summary(status: dict[str, Any]) -> list[str]:
    """A few lines for a person: the campaign's status, each phase's counts, the verification, the reason."""
    counters = status.get("counters") or {}
    lines = [f"campaign {status.get('id')}: {status.get('status')} ({status.get('action')})"]
    preview, execute = counters.get("preview"), counters.get("execute")
    if preview:
        lines.append(
            f"  searched   {preview.get('done')}/{preview.get('total')} mailboxes, {preview.get('matched')} "
            f"with matches, {preview.get('items_found')} messages"
        )
    if execute:
        lines.append(
            f"  acted      {execute.get('acted')} mailboxes ({execute.get('items_acted')} messages), "
            f"{execute.get('already_gone')} already gone, {execute.get('failed')} failed"
        )
    verified = verification_line(status)
    if verified:
        lines.append(f"  verified   {verified}")
    reason = status.get("reason")
    if reason:
        lines.append(f"  reason     {reason.get('code')}: {reason.get('message')}")
    return lines
