"""One document (document.blocks), two renderings: a self-contained report.html (charts embedded) and
report.md."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.analyse.document import Block
from bench.analyse.plots import DPI, Chart
from bench.analyse.tables import Table

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
color:#1b1b1b;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 12px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px;background:#fff;font-size:.92em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
table.verdicts{font-size:1em;width:100%}
ul.answer li{margin:6px 0}
tr.winner-second td:nth-child(4){color:#a33c00}tr.winner-first td:nth-child(4){color:#00548a}
tr.winner-same td:nth-child(4),tr.winner-unclear td:nth-child(4){color:#555}
.banner{background:#fff3cd;border:1px solid #e0b400;padding:10px 14px;font-weight:600;margin:8px 0}
.note{color:#555;font-size:.9em}
figure{margin:18px 0;background:#fff;border:1px solid #e2e2e2;padding:10px}
figure img{max-width:100%;height:auto;display:block}
figcaption{color:#444;font-size:.9em;margin-top:6px}
pre{background:#272822;color:#f8f8f2;padding:10px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
"""

# Lets a headless browser test read whether every chart decoded (the page needs no script otherwise).
SCRIPT = """window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  document.body.dataset.imagesTotal = String(imgs.length);
  document.body.dataset.imagesLoaded = String(
    imgs.filter(function (i) { return i.naturalWidth > 0; }).length);
});"""


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def html_table(table: Table, head: bool = True) -> str:
    out = ["<table>"]
    if head and any(table.headers):
        out.append("<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in table.headers) + "</tr></thead>")
    out.append("<tbody>")
    for i, row in enumerate(table.rows):
        cls = f' class="{_esc(table.classes[i])}"' if table.classes else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def md_table(table: Table) -> str:
    headers = [h or " " for h in table.headers]
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _img(chart: Chart) -> str:
    """The PNG inline, shown at 96/150 of its pixel width so text has the same size in every chart."""
    data = chart.path.read_bytes()
    width = int.from_bytes(data[16:20], "big") * 96 // DPI  # IHDR width
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return f'<img src="{uri}" width="{width}" alt="{_esc(chart.title)}">'


def _chart_id(chart: Chart) -> str:
    return "chart-" + chart.path.stem


def render_html(doc: Sequence[Block], run_id: str) -> str:
    parts = [
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Sync vs async: {_esc(run_id)}</title><style>{CSS}</style></head><body><main>",
    ]
    for block in doc:
        anchor = f' id="{_esc(block.anchor)}"' if block.anchor else ""
        if block.kind in ("h1", "h2", "h3"):
            parts.append(f"<{block.kind}{anchor}>{_esc(block.text)}</{block.kind}>")
        elif block.kind in ("p", "note", "banner"):
            cls = f' class="{block.kind}"' if block.kind != "p" else ""
            parts.append(f"<p{cls}>{_esc(block.text)}</p>")
        elif block.kind == "table" and block.table is not None:
            parts.append(html_table(block.table, head=any(block.table.headers)))
        elif block.kind == "answer":
            items = "".join(
                f'<li>{_esc(s.text)} <a href="#{_esc(s.link)}">[{_esc(s.link)}]</a></li>'
                for s in block.sentences
            )
            parts.append(f'<ul class="answer">{items}</ul>')
        elif block.kind == "charts":
            if not block.charts:
                parts.append("<p>No chart: the run has no measured points.</p>")
            for chart in block.charts:
                parts.append(
                    f'<figure id="{_chart_id(chart)}">{_img(chart)}'
                    f"<figcaption><strong>{_esc(chart.title)}.</strong> "
                    f"{_esc(chart.caption)}</figcaption></figure>"
                )
        elif block.kind == "code":
            parts.append(f"<pre><code>{_esc(block.text)}</code></pre>")
    parts += ["</main>", f"<script>{SCRIPT}</script>", "</body></html>\n"]
    return "\n".join(parts)


def render_md(doc: Sequence[Block], run_dir: Path) -> str:
    parts: list[str] = []
    for block in doc:
        if block.kind in ("h1", "h2", "h3"):
            parts += ["#" * int(block.kind[1]) + " " + block.text, ""]
        elif block.kind == "banner":
            parts += [f"> **{block.text}**", ""]
        elif block.kind in ("p", "note"):
            parts += [block.text, ""]
        elif block.kind == "table" and block.table is not None:
            parts += [md_table(block.table), ""]
        elif block.kind == "answer":
            parts += [f"- {s.text} ([{s.link}](#{s.link}))" for s in block.sentences] + [""]
        elif block.kind == "charts":
            for chart in block.charts:
                rel = chart.path.relative_to(run_dir).as_posix()
                parts += [f"### {chart.title}", "", f"![{chart.title}]({rel})", "", chart.caption, ""]
            if not block.charts:
                parts += ["No chart: the run has no measured points.", ""]
        elif block.kind == "code":
            parts += ["```bash", block.text, "```", ""]
    return "\n".join(parts)
