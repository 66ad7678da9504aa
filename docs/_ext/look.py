"""Looks at the built documentation in a real browser: headless Chromium renders pages, saves screenshots and dumps
the DOM it built (scripts run), for ``make docs`` and for ``tests/test_docs.py``.

    python docs/_ext/look.py build/docs    # reads build/docs/html, writes build/docs/*.png and *.dom.html
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# The pages looked at: the index, one reference page, and a search (its results come from the search index).
PAGES = {
    "index": "index.html",
    "reference-api": "reference/api.html",
    "search": "search.html?q=assert_close",
}
INSTALL = "apt-get install chromium"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise SystemExit(f"headless Chromium is missing: {INSTALL} (make docs installs it as root)")
    return found


def look(html: Path, out: Path) -> dict[str, tuple[Path, Path]]:
    """Each page's screenshot and rendered DOM, written under ``out``."""
    browser = chromium()
    out.mkdir(parents=True, exist_ok=True)
    found = {}
    for name, page in PAGES.items():
        path, _, query = page.partition("?")
        url = (html / path).resolve().as_uri() + (f"?{query}" if query else "")
        common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,900"]
        shot, dom = out / f"{name}.png", out / f"{name}.dom.html"
        subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
        done = subprocess.run(
            [*common, "--virtual-time-budget=5000", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        dom.write_text(done.stdout, encoding="utf-8")
        found[name] = (shot, dom)
    return found


if __name__ == "__main__":
    where = Path(sys.argv[1] if len(sys.argv) > 1 else "build/docs")
    for name, (shot, dom) in look(where / "html", where).items():
        print(f"docs: {name}: {shot} ({shot.stat().st_size} bytes), {dom}")
