"""report.html renders offline in headless Chromium with every plot decoded."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from dolma_tools.stats.config import StatsConfig
from dolma_tools.stats.runner import run_stats

DEMO_CORPUS = Path(__file__).resolve().parents[2] / "demo" / "corpus" / "documents"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stats_html")
    cfg = StatsConfig(documents=[str(DEMO_CORPUS / "web" / "*.json.gz"), str(DEMO_CORPUS / "speeches" / "*.json.gz")],
                      output=str(out), debug=True, attributes=[])
    cfg.toxicity.max_chars = 500
    run_stats(cfg, progress=False)
    return out


def test_html_is_self_contained(demo_report: Path):
    page = (demo_report / "report.html").read_text()
    report = json.loads((demo_report / "report.json").read_text())
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(images) >= 5 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network
    for heading in ("Summary", "Distributions", "Languages", "URLs", "N-grams", "Duplicates", "Quality and safety"):
        assert f"<h2>{heading}</h2>" in page
    assert report["ngrams"]["1"]["top"][0]["ngram"] in page


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium (apt-get install -y chromium)")
def test_html_renders_in_headless_chromium(demo_report: Path, tmp_path: Path):
    url = (demo_report / "report.html").resolve().as_uri()
    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
                          "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    images = len(re.findall(r"<img ", dom))
    assert images >= 5
    assert f'data-images-loaded="{images}/{images}"' in dom, "some plots did not decode"
    assert dom.count('data-loaded="1"') == images
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                    "--window-size=1200,3000", url], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] == 3000 and pixels.shape[1] == 1200
    assert pixels[..., :3].std() > 0.05  # not a blank page
