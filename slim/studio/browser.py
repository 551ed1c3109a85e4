"""Running the studio for a browser: a server subprocess on a free port, and headless
Chromium through selenium (Debian's ``chromium`` and ``chromium-driver``). Used by the
tests and by scripts/studio_screenshots.py."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from slim.paths import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StudioServer:
    """``python -m slim.studio`` in a subprocess; ``url`` once it answers."""

    def __init__(self, builds: Path, *args: str, env: dict | None = None, timeout: float = 60) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(builds).parent / f"studio-{self.port}.log"
        self._fh = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "slim.studio", "--builds", str(builds), "--port", str(self.port), *args],
            stdout=self._fh, stderr=subprocess.STDOUT, cwd=str(ROOT), env=dict(os.environ, **(env or {})))
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(self.url + "/static/studio.css", timeout=2).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"studio did not start: {self.log.read_text()[-2000:]}")
                time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._fh.close()

    def __enter__(self) -> "StudioServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def chromium_paths() -> tuple[str | None, str | None]:
    """(browser, driver): Debian's /usr/bin/chromium and /usr/bin/chromedriver, else PATH."""
    return (shutil.which("chromium") or shutil.which("chromium-browser"),
            shutil.which("chromedriver"))


def headless_chromium(width: int = 1440, height: int = 1000):
    """A selenium WebDriver on headless Chromium (no sandbox: CI runs as root)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    browser, driver = chromium_paths()
    if not (browser and driver):
        raise RuntimeError("chromium and chromedriver not found: apt-get install -y chromium chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              f"--window-size={width},{height}", "--hide-scrollbars"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


def full_page_screenshot(driver, path: Path, width: int = 1440, max_height: int = 6000) -> None:
    """PNG of the whole page: the window is resized to the document's height first."""
    driver.set_window_size(width, 800)  # measure at a small height: a tall window pads the page
    time.sleep(0.2)
    h = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.set_window_size(width, min(int(h) + 40, max_height))
    time.sleep(0.3)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    from PIL import Image  # (matplotlib's dependency) 256 colours: a third of the bytes, same text
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(256)
    small.save(path, optimize=True)
