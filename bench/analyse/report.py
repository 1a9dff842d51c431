"""The report of one run folder: charts/*.png, a self-contained report.html and report.md.

Both documents open with the verdicts (sync or async for each workload, and by how much), then the
charts, the detailed numbers, the environment and every limit, the invalid points and the command that
reproduces the run. The document is built once (document.py: its blocks; tables.py: the tables as plain
text cells) and rendered twice (render.py: HTML and Markdown).
"""

from __future__ import annotations

from pathlib import Path

from bench.analyse.document import blocks
from bench.analyse.interference import probe_waits, with_waits
from bench.analyse.layers import compared, write_layers
from bench.analyse.plots import draw_all
from bench.analyse.render import render_html, render_md
from bench.analyse.summary import analyse
from bench.analyse.work import route_statements
from bench.store.run import Run, load_run


def build_report(run_dir: Path) -> tuple[Path, Path]:
    """Write charts/*.png, report.html and report.md into `run_dir`; return (report.html, report.md)."""
    return write_report(load_run(Path(run_dir)))


def write_report(data: Run) -> tuple[Path, Path]:
    result = analyse(data.points)
    result.layer_pairs = compared(write_layers(data.run_dir))
    result.interference = with_waits(result.interference, probe_waits(data.run_dir))
    result.work = route_statements(data.run_dir)
    charts = draw_all(data, result, data.run_dir / "charts")
    html_path, md_path = data.run_dir / "report.html", data.run_dir / "report.md"
    doc = blocks(data, result, charts)  # built once, rendered twice
    html_path.write_text(render_html(doc, data.meta.get("run_id") or data.run_dir.name), encoding="utf-8")
    md_path.write_text(render_md(doc, data.run_dir), encoding="utf-8")
    return html_path, md_path
