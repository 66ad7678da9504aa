"""The drift diff as one self-contained HTML page (inline CSS and SVG, no scripts, viewable offline)."""

from __future__ import annotations

from html import escape
from typing import Any

from .drift import Change

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.major{background:#fdd}.near-tie{background:#ffd}.minor{background:#eef}.differs{font-weight:bold}
code{font-size:90%}svg text{font-size:11px;font-family:monospace}svg{max-width:100%;height:auto}
.cause{font-size:110%;border-left:4px solid #c33;padding-left:8px}
table.changes{table-layout:fixed;width:100%}table.changes td{overflow-wrap:anywhere}
table.changes col.severity{width:7em}table.changes col.kind{width:10em}table.changes col.test{width:22%}
"""


def _bars(old_top: list[list[Any]], new_top: list[list[Any]]) -> str:
    old = {row[1]: row for row in old_top}
    new = {row[1]: row for row in new_top}
    tokens = list(dict.fromkeys([row[1] for row in old_top] + [row[1] for row in new_top]))
    height = 18 * len(tokens) + 20
    parts = [
        f'<svg width="560" height="{height}" viewBox="0 0 560 {height}" role="img" '
        'aria-label="old and new top-k probabilities">'
    ]
    parts.append(
        '<text x="0" y="12">token</text><text x="160" y="12" fill="#888">old</text><text x="360" y="12" fill="#36c">new</text>'
    )
    for i, token in enumerate(tokens):
        y = 20 + 18 * i
        piece = (old.get(token) or new.get(token) or ["?"])[0]
        p_old = old[token][2] if token in old else 0.0
        p_new = new[token][2] if token in new else 0.0
        parts.append(f'<text x="0" y="{y + 11}">{escape(repr(piece))[:22]}</text>')
        parts.append(f'<rect x="160" y="{y}" width="{180 * p_old:.1f}" height="7" fill="#aaa"/>')
        parts.append(f'<rect x="160" y="{y + 7}" width="{180 * p_new:.1f}" height="7" fill="#36c"/>')
        parts.append(f'<text x="360" y="{y + 11}">{p_old:.4f} -&gt; {p_new:.4f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def short_test(nodeid: str) -> str:
    """A test id as the page shows it: its module and test name, the parameters left to the hover (the cell's title)."""
    path, _, name = nodeid.partition("::")
    return f"{path.rsplit('/', 1)[-1]}::{name.split('[', 1)[0]}" + ("[…]" if "[" in name else "")


def render_html(
    old_name: str,
    new_name: str,
    changes: list[Change],
    table: list[tuple[str, str, int]],
    environments: list[tuple[str, str, str]],
    compared: int,
    causes: list[str] | None = None,
) -> str:
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>lmbehave diff</title><style>{STYLE}</style></head><body>"
    ]
    out.append(f"<h1>Behaviour drift: <code>{escape(old_name)}</code> &rarr; <code>{escape(new_name)}</code></h1>")
    out += [f"<p class='cause'>{escape(line)}</p>" for line in causes or []]  # the root cause heads the page
    out.append(f"<p>{compared} observations compared, {len(changes)} changes.</p>")
    out.append("<h2>Summary</h2><table><tr><th>severity</th><th>kind</th><th>count</th></tr>")
    out += [f"<tr class='{s}'><td>{s}</td><td>{escape(k)}</td><td>{n}</td></tr>" for s, k, n in table]
    out.append("</table><h2>Environments</h2><table><tr><th>what</th><th>old</th><th>new</th></tr>")
    out += [
        f"<tr class='{'differs' if a != b else ''}'><td>{escape(w)}</td><td>{escape(a)}</td><td>{escape(b)}</td></tr>"
        for w, a, b in environments
    ]
    out.append(
        "</table><h2>Changes, worst first</h2><table class='changes'><colgroup><col class='severity'><col class='kind'>"
        "<col class='test'><col class='what'></colgroup>"
        "<tr><th>severity</th><th>kind</th><th>test</th><th>what changed</th></tr>"
    )
    for change in changes:
        chart = _bars(change.details["old_top"], change.details["new_top"]) if "old_top" in change.details else ""
        out.append(
            f"<tr class='{change.severity}'><td>{change.severity}</td><td>{escape(change.kind)} ({escape(change.layer)})</td>"
            f"<td title='{escape(change.test)}'><code>{escape(short_test(change.test))}</code> #{change.index}</td>"
            f"<td>{escape(change.summary)}{'<br>' + chart if chart else ''}</td></tr>"
        )
    out.append("</table></body></html>")
    return "\n".join(out)
