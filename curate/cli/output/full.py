"""Rich terminal output grouped by file, with severity colours and fix marks."""

from __future__ import annotations

import io
from itertools import groupby

from curate.cli.output import safe_text
from curate.cli.output.concise import footer

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def render(diagnostics, *, rules, summary, color=False) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, color_system="auto" if color else None,
                      width=120, highlight=False)
    for path, group in groupby(diagnostics, key=lambda d: d.path):
        console.print(Text(safe_text(path), style="bold underline"))
        table = Table(show_header=False, box=None, padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column()
        for d in group:
            mark = "" if d.fix is None else (" [*]" if d.fix.applicability == "safe" else " [-]")
            table.add_row(Text(d.severity, style=_STYLE[d.severity]), Text(f"{d.code}{mark}", style="bold"),
                          Text(f"{safe_text(d.message)}  ") + Text(safe_text(d.name), style="dim"))
            if d.fix is not None:
                table.add_row("", "", Text(f"fix: {safe_text(d.fix.description)}", style="green"))
        console.print(table)
        console.print()
    for text in footer(diagnostics):
        console.print(Text(text, style="bold"))
    return buf.getvalue()
