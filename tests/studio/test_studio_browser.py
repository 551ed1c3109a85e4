"""The studio in a real browser: ``python -m slim.studio`` in a subprocess, pages driven by
headless Chromium (selenium). Numbers are read off the rendered page and compared with each
build's report.json."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from slim.paths import ROOT
from slim.studio.browser import StudioServer
from tests.studio.conftest import TINY_CLI


def reports(builds: Path) -> dict[str, dict]:
    return {d.name: json.loads((d / "report.json").read_text())
            for d in builds.iterdir() if (d / "report.json").is_file()}


def cell(row, col: str) -> str:
    return row.find_element(By.CSS_SELECTOR, f'td[data-col="{col}"]').text.strip()


def open_parent(browser, url: str) -> None:
    browser.get(url + "/")
    browser.find_element(By.CSS_SELECTOR, "a.parent-link").click()
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.variants")))


def test_parent_page_lists_every_build_with_its_report_numbers(studio_builds, browser):
    reps = reports(studio_builds)
    with StudioServer(studio_builds) as s:
        open_parent(browser, s.url)
        rows = browser.find_elements(By.CSS_SELECTOR, "table.variants:not(.tiers) tbody tr")
        assert sorted(r.get_attribute("data-build") for r in rows) == sorted(reps)
        for row in rows:
            r = reps[row.get_attribute("data-build")]
            a, fid = r["artifact"], r["metrics"]["fidelity"]
            assert cell(row, "method") == r["target"]["method"]
            assert cell(row, "hardware") == r["target"]["hardware"]
            assert cell(row, "size") == f"{a['bytes'] / 1e6:.1f} MB"
            assert cell(row, "size_pct") == f"{100 * a['size_vs_parent']['ratio']:.1f}%"
            assert cell(row, "bpw") == f"{a['bpw']:.2f}"
            assert cell(row, "kld").startswith(f"{fid['kld_mean']:.5f}")
            assert cell(row, "status") == r["status"]
            assert cell(row, "signature") == "signed+valid"
            if r.get("fit"):
                assert cell(row, "fits") == ("yes" if r["fit"]["fits"] else "no")
        # sortable: size ascending, then descending
        th = browser.find_elements(By.CSS_SELECTOR, "table.variants:not(.tiers) thead th")[3]
        th.click()
        sizes = [reps[r.get_attribute("data-build")]["artifact"]["bytes"] for r in
                 browser.find_elements(By.CSS_SELECTOR, "table.variants:not(.tiers) tbody tr")]
        assert sizes == sorted(sizes)
        th.click()
        sizes = [reps[r.get_attribute("data-build")]["artifact"]["bytes"] for r in
                 browser.find_elements(By.CSS_SELECTOR, "table.variants:not(.tiers) tbody tr")]
        assert sizes == sorted(sizes, reverse=True)
        # the frontier plot loaded (an <img> with a decoded size)
        w = browser.execute_script("return document.getElementById('frontier').naturalWidth")
        assert w > 100
        # every tier has a fit column
        tiers = browser.find_elements(By.CSS_SELECTOR, "table.tiers thead th.tier")
        assert len(tiers) == len(list((ROOT / "conf" / "hardware").glob("*.yaml")))


def test_tampered_build_shows_invalid(studio_builds, browser, tmp_path):
    builds = tmp_path / "builds"
    builds.mkdir()
    good, bad = sorted(reports(studio_builds))
    shutil.copytree(studio_builds / good, builds / good)
    shutil.copytree(studio_builds / bad, builds / bad)
    art = builds / bad / "model.gguf"
    data = bytearray(art.read_bytes())
    data[len(data) // 2] ^= 0x01
    art.write_bytes(bytes(data))
    with StudioServer(builds) as s:
        open_parent(browser, s.url)
        sig = {r.get_attribute("data-build"): cell(r, "signature") for r in
               browser.find_elements(By.CSS_SELECTOR, "table.variants:not(.tiers) tbody tr")}
        assert sig == {good: "signed+valid", bad: "signed+INVALID"}
        browser.get(f"{s.url}/build/{bad}/")
        assert browser.find_element(By.ID, "signature").text == "signed+INVALID"
        assert browser.find_element(By.ID, "verify-result").text.startswith("INVALID")
        failed = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#verify tr.bad")]
        assert any("model.gguf" in f for f in failed), failed
        browser.get(f"{s.url}/build/{good}/")
        assert browser.find_element(By.ID, "verify-result").text == "valid: every check passed"


def _wait_for_staging(builds: Path, proc, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not any((builds / ".staging").glob("*/events.jsonl")):
        assert proc.poll() is None, "the build exited before it started"
        assert time.time() < deadline, "no staging folder appeared"
        time.sleep(0.1)


def _follow_to_report(browser, name: str, timeout: float = 300) -> None:
    def landed_or_failed(d):
        if f"/build/{name}/" in d.current_url:
            return True
        st = d.find_elements(By.ID, "progress-state")
        assert not (st and st[0].text == "failed"), \
            d.find_element(By.ID, "log").get_attribute("textContent")
        return False
    WebDriverWait(browser, timeout).until(landed_or_failed)
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "report")))
    assert browser.find_element(By.ID, "build-name").text == name
    assert name in browser.find_element(By.ID, "report").text
    assert browser.find_element(By.ID, "signature").text == "signed+valid"


def test_running_build_shows_progress_then_its_report(studio_builds, browser, tmp_path):
    builds = tmp_path / "builds"
    shutil.copytree(studio_builds, builds)
    log = open(tmp_path / "build.log", "wb")
    # a calibration seed no earlier run used: calibration, imatrix, quantize and the child's
    # measurements miss the cache, so the build is still running when the page opens
    seed = f"calibration.seed={random.randrange(1, 2**31)}"
    proc = subprocess.Popen([sys.executable, "-m", "slim", *TINY_CLI, "method=q5_k_m", seed, f"paths.builds={builds}"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, SLIM_NO_PROGRESS="1"))
    try:
        with StudioServer(builds) as s:
            _wait_for_staging(builds, proc)
            browser.get(s.url + "/")
            link = browser.find_element(By.CSS_SELECTOR, "#in-progress a")
            name = link.text
            assert name == "tiny_llama-q5_k_m-apple8gb-probes_quick-calib_small"
            link.click()
            WebDriverWait(browser, 10).until(EC.url_contains(f"/progress/{name}"))
            # live: the step table fills from events.jsonl while the build runs
            WebDriverWait(browser, 30).until(
                lambda d: d.find_element(By.ID, "progress-state").text == "running"
                and len(d.find_elements(By.CSS_SELECTOR, "#steps tbody tr")) > 0)
            count = browser.find_element(By.ID, "progress-count").text
            done, total = (int(x) for x in count.split(" / "))
            assert total >= 5 and done < total, count
            _follow_to_report(browser, name)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert (builds / name / "report.json").is_file()


def test_form_starts_a_build_and_the_page_follows_it(studio_builds, browser, tmp_path):
    builds = tmp_path / "builds"
    shutil.copytree(studio_builds, builds)
    with StudioServer(builds, "--allow-builds") as s:
        assert "builds allowed" in s.output()
        browser.get(s.url + "/")
        browser.find_element(By.ID, "nav-new").click()
        picks = dict(a.split("=", 1) for a in TINY_CLI)
        picks["method"] = "q4_0"
        for field in ("model", "method", "probes", "calibration"):
            Select(browser.find_element(By.ID, f"field-{field}")).select_by_value(picks[field])
        Select(browser.find_element(By.ID, "field-hardware")).select_by_value("apple8gb")
        t = browser.find_element(By.ID, "field-threads")
        t.clear()
        t.send_keys(picks["threads"])
        browser.find_element(By.ID, "start-build").click()
        name = "tiny_llama-q4_0-apple8gb-probes_quick-calib_small"
        WebDriverWait(browser, 30).until(EC.url_contains(f"/progress/{name}"))
        # "starting" until the build's process has composed its config and made its staging
        # folder (tens of seconds on a loaded machine), then running, then the report
        WebDriverWait(browser, 300).until(
            lambda d: "/build/" in d.current_url
            or d.find_element(By.ID, "progress-state").text in ("running", "done", "failed"))
        if "/progress/" in browser.current_url:
            assert browser.find_element(By.ID, "progress-state").text != "failed", \
                browser.find_element(By.ID, "log").get_attribute("textContent")
        _follow_to_report(browser, name)
    rep = json.loads((builds / name / "report.json").read_text())
    assert rep["target"] == {**rep["target"], "method": "q4_0", "model": "tiny_llama", "probes": "quick"}
