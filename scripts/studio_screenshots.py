"""Screenshots of the studio's pages (PNG, headless Chromium) for docs/studio/.

    python scripts/studio_screenshots.py --builds DIR [--out docs/studio] [--build NAME] [--sweep ID]

Starts ``python -m slim.studio`` over DIR, opens the first parent's page, a build page (the
named one, else the parent's first) and a sweep page (the named one, else the newest), and
saves each as a full-page PNG.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from selenium.webdriver.common.by import By

from slim.studio.browser import StudioServer, full_page_screenshot, headless_chromium


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builds", required=True)
    ap.add_argument("--out", default="docs/studio")
    ap.add_argument("--build", default=None, help="build for the build page (default: the first listed)")
    ap.add_argument("--sweep", default=None, help="sweep id (default: the newest)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    with StudioServer(Path(a.builds)) as s:
        d = headless_chromium()
        try:
            d.get(s.url + "/")
            d.get(d.find_element(By.CSS_SELECTOR, "a.parent-link").get_attribute("href"))
            time.sleep(1.0)  # the frontier plot
            full_page_screenshot(d, out / "parent.png")
            build = a.build or d.find_element(By.CSS_SELECTOR, "tr[data-build]").get_attribute("data-build")
            d.get(f"{s.url}/build/{build}/")
            full_page_screenshot(d, out / "build.png")
            d.get(s.url + "/")
            sweep = (f"{s.url}/sweep/{a.sweep}/" if a.sweep else
                     d.find_element(By.CSS_SELECTOR, "#sweeps a").get_attribute("href"))
            d.get(sweep)
            time.sleep(1.0)
            full_page_screenshot(d, out / "sweep.png")
        finally:
            d.quit()
    print(f"wrote {out}/parent.png, build.png, sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
