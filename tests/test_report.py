"""bench.report on the committed fixture run (a copy): files, PNG resolution, verdicts, and a real headless
Chromium that must decode every embedded chart."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from bench.analyse.document import machine_speed
from bench.analyse.report import build_report
from bench.analyse.summary import analyse
from bench.cli.report import report_cmd
from bench.store.run import load_run

FIXTURE = Path(__file__).parent / "fixtures" / "run-small"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A private copy of the fixture run, for tests that change it."""
    return Path(shutil.copytree(FIXTURE, tmp_path / FIXTURE.name))


@pytest.fixture(scope="module")
def built_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One report built from a copy of the fixture, shared by the tests that only read it."""
    return Path(shutil.copytree(FIXTURE, tmp_path_factory.mktemp("report") / FIXTURE.name))


@pytest.fixture(scope="module")
def built(built_dir: Path) -> tuple[Path, Path]:
    return build_report(built_dir)


def test_report_files_exist(built_dir: Path, built: tuple[Path, Path]) -> None:
    html_path, md_path = built
    assert html_path == built_dir / "report.html" and html_path.stat().st_size > 0
    assert md_path == built_dir / "report.md" and md_path.stat().st_size > 0
    names = {p.name for p in (built_dir / "charts").glob("*.png")}
    expected = {"throughput.png", "latency.png", "failures.png"}
    points = load_run(built_dir).points
    if (points["scenario"] == "slow_db").any():
        expected.add("crossover.png")
    if list(built_dir.glob("points/*/locust_stats_history.csv")):
        expected.add("timeline.png")
    assert expected <= names


def test_charts_are_png_at_150_dpi(built_dir: Path, built: tuple[Path, Path]) -> None:
    for png in (built_dir / "charts").glob("*.png"):
        with Image.open(png) as img:
            assert img.format == "PNG"
            dpi = img.info.get("dpi")
            assert dpi is not None and min(dpi) >= 149.5, (png.name, dpi)
            assert img.width >= 900 and img.height >= 300, (png.name, img.size)


def test_markdown_has_every_verdict_and_links_charts(built_dir: Path, built: tuple[Path, Path]) -> None:
    md = built[1].read_text()
    result = analyse(load_run(built_dir).points)
    verdicts = result.headline["verdict"].tolist()
    assert verdicts
    for text in verdicts:
        assert text in md
    for png in (built_dir / "charts").glob("*.png"):
        assert f"(charts/{png.name})" in md
    assert md.index("## Verdicts") < md.index("## Charts")
    assert not result.invalid.empty  # the fixture has at least one invalid point
    for _, row in result.invalid.iterrows():
        assert row["point_id"] in md and row["invalid_reasons"].split(";")[0] in md


def test_html_opens_with_verdicts_and_is_self_contained(built_dir: Path, built: tuple[Path, Path]) -> None:
    page = built[0].read_text()
    body = page[page.index("<body") :]
    assert body.index('id="verdicts"') < body.index("<img")
    assert 'src="data:image/png;base64,' in page
    assert not re.search(r"""(src|href)=["']?(https?:|//|charts/)""", page)
    assert ".venv/bin/python -m bench run" in page
    for reasons in analyse(load_run(built_dir).points).invalid["invalid_reasons"]:
        assert html.escape(reasons.split(";")[0]) in page


def test_incomplete_run_is_marked_and_text_is_escaped(run_dir: Path) -> None:
    meta_path = run_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    complete = build_report(run_dir)[0].read_text()
    assert "Incomplete run" not in complete
    done = int(meta["points_planned"]) - 1
    meta.update(complete=False, points_done=done, cpu_model="<script>alert(1)</script> & Co")
    meta_path.write_text(json.dumps(meta))
    html_path, md_path = build_report(run_dir)
    page = html_path.read_text()
    notice = f"Incomplete run: {done} of {meta['points_planned']}"
    assert notice in page and notice in md_path.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    assert "<script>alert(1)" not in page


def test_empty_run_still_reports(tmp_path: Path) -> None:
    run_dir = tmp_path / "20250101-000000-empty"
    run_dir.mkdir()
    (run_dir / "meta.json").write_text(
        json.dumps({"run_id": run_dir.name, "complete": False, "command": "x"})
    )
    html_path, _ = build_report(run_dir)
    assert 'id="verdicts"' in html_path.read_text()
    assert not list((run_dir / "charts").glob("*.png"))


def test_report_command_prints_paths(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report_cmd(run_dir)
    out = capsys.readouterr().out
    assert "report.html" in out and "report.md" in out


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "/usr/bin/chromium"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("chromium not found: `make test` installs it (scripts/bootstrap: apt-get install chromium)")


@pytest.mark.browser
def test_chromium_renders_every_chart(tmp_path: Path, built: tuple[Path, Path]) -> None:
    chromium = _chromium()
    url = built[0].resolve().as_uri()
    base = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    dom = subprocess.run(
        [*base, "--dump-dom", url], capture_output=True, text=True, timeout=90, check=True
    ).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body, dom[:500]
    loaded = re.search(r'data-images-loaded="(\d+)"', body.group(0))
    total = re.search(r'data-images-total="(\d+)"', body.group(0))
    assert loaded and total, body.group(0)
    assert int(total.group(1)) > 0 and loaded.group(1) == total.group(1)
    assert 'id="verdicts"' in dom

    shot = tmp_path / "report.png"
    subprocess.run(
        [*base, "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1280,4000", url],
        capture_output=True,
        timeout=90,
        check=True,
    )
    with Image.open(shot) as img:
        assert img.size == (1280, 4000)


def test_machine_speed_comes_from_the_runs_own_measurements(run_dir: Path) -> None:
    data = load_run(run_dir)
    calibration = json.loads((run_dir / "calibration.json").read_text())
    samples = calibration["before"]["samples"] + calibration["after"]["samples"]
    mid = sorted(samples)[len(samples) // 2 - 1 : len(samples) // 2 + 1]
    median = sum(mid) / 2
    text = machine_speed(data, analyse(data.points))
    assert f"timed {len(samples)} times" in text
    assert f"{min(samples) / median:.2f}-{max(samples) / median:.2f}× its median speed" in text
    assert "spread by" in text  # the fixture's read_heavy and slow_db 0 ms points used their whole CPU
    assert "app's CPU in a window" not in text  # the fixture predates the app_cpus_others column
    others = data.points.assign(app_cpus_others=[20.0, 31.0] + [1.0] * (len(data.points) - 2))
    text = machine_speed(replace(data, points=others), analyse(others))
    assert "took at most 31% of a core on the app's CPU in a window (2 points above 15%" in text
    (run_dir / "calibration.json").unlink()
    points = data.points.assign(app_cpu_mean=50.0)
    assert (
        machine_speed(load_run(run_dir), analyse(points))
        == "the machine's speed was not measured in this run"
    )


def test_single_repeats_that_used_the_whole_cpu_get_the_runs_spread(run_dir: Path) -> None:
    """The throughput chart's hollow markers: a CPU-bound single repeat gets ×/÷ the run's pooled spread."""
    table = run_dir / "points.csv"
    rows = table.read_text().splitlines()
    kept = [r for r in rows if not (",read_heavy," in r and "__r2," in r)]  # read_heavy: one repeat each
    assert len(rows) - len(kept) == 4
    table.write_text("\n".join(kept) + "\n")
    spread = analyse(load_run(run_dir).points).spread
    assert spread is not None and spread.groups == 2  # slow_db 0 ms, sync and async
    _html, md = build_report(run_dir)
    caption = next(line for line in md.read_text().splitlines() if line.startswith("Mean requests/s"))
    assert f"dashed bar is ×/÷{spread.factor():.2f}" in caption
    assert f"pooled over {spread.groups} points" in caption
