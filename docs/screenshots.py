"""Make docs/report-succeeded.png and docs/report-failed.png: the two runs of `make demo` (the research
agent under `agenttrace run --objective examples/objective.toml`, then the same with the model
cutting its answer short), recorded in a temporary folder, their reports written by
`agenttrace report`, and each shot in headless Chromium (tests/browser.py: Debian's Chromium, driven
by Playwright, no network).

    .venv/bin/python docs/screenshots.py [--out docs] [--width 1280] [--height 1400]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from browser import chromium, open_report, recorded_page  # noqa: E402  (the tests' own browser)

BIN = Path(sys.executable).parent
DEMO = ["--objective", "examples/objective.toml", "--", "python", "examples/research_agent.py"]


def agenttrace(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "agenttrace"), *args], cwd=cwd, env=env, capture_output=True, text=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=1400)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # `python` is this venv's, as in `make demo`
    with tempfile.TemporaryDirectory(prefix="agenttrace-screenshots-") as tmp:
        work = Path(tmp)
        shutil.copytree(REPO / "examples", work / "examples", ignore=shutil.ignore_patterns("__pycache__"))
        store = str(work / ".agenttrace")
        pages: dict[str, Path] = {}
        for extra, expected in (([], 0), (["--model", "fake-truncating"], 1)):
            (work / "demo-answer.md").unlink(missing_ok=True)
            done = agenttrace(
                "run", "--store", store, *DEMO, "--report", "demo-answer.md", *extra, cwd=work, env=env
            )
            if done.returncode != expected:
                sys.exit(
                    f"screenshots: a demo run exited {done.returncode}, not {expected}: {done.stderr[-800:]}"
                )
            verdict = json.loads(
                agenttrace("audit", "last", "--store", store, "--json", cwd=work, env=env).stdout
            )
            html = work / f"report-{verdict['state']}.html"
            done = agenttrace(
                "report", verdict["run_id"], "--store", store, "-o", str(html), cwd=work, env=env
            )
            if done.returncode != 0:
                sys.exit(f"screenshots: agenttrace report failed: {done.stderr.strip()}")
            pages[verdict["state"]] = html
        args.out.mkdir(parents=True, exist_ok=True)
        with chromium() as browser:
            for state, html in sorted(pages.items()):
                with recorded_page(browser, viewport={"width": args.width, "height": args.height}) as (
                    page,
                    rec,
                ):
                    open_report(page, html)
                    if rec.remote() or rec.errors:
                        sys.exit(f"screenshots: {html.name}: requests {rec.remote()}, errors {rec.errors}")
                    target = args.out / f"report-{state}.png"
                    page.screenshot(path=str(target))
                    print(target)


if __name__ == "__main__":
    main()
