"""The studio's routes over plain HTTP (Starlette's TestClient): numbers from report.json,
verify, downloads, sweeps, read-only mode, form validation, progress from events.jsonl."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from slim.paths import ROOT
from slim.signing.keys import load_trusted_keys
from slim.studio.app import StudioConfig, create_app


def client(builds: Path, allow_builds: bool = False, tmp: Path | None = None) -> TestClient:
    return TestClient(create_app(StudioConfig(builds=builds, trusted=load_trusted_keys(),
                                              allow_builds=allow_builds, state_dir=tmp)))


def reports(builds: Path) -> dict[str, dict]:
    return {d.name: json.loads((d / "report.json").read_text())
            for d in builds.iterdir() if (d / "report.json").is_file()}


def test_api_lists_every_build_with_its_report_numbers(studio_builds):
    reps = reports(studio_builds)
    assert len(reps) == 2
    with client(studio_builds) as c:
        parents = c.get("/api/builds").json()
    assert [p["id"] for p in parents] == ["tiny_llama"]
    got = {v["name"]: v for v in parents[0]["variants"]}
    assert set(got) == set(reps)
    for name, r in reps.items():
        v = got[name]
        assert v["bytes"] == r["artifact"]["bytes"]
        assert v["bpw"] == r["artifact"]["bpw"]
        assert v["size_pct"] == pytest.approx(100 * r["artifact"]["size_vs_parent"]["ratio"])
        assert v["kld"] == r["metrics"]["fidelity"]["kld_mean"]
        assert v["status"] == r["status"] and v["method"] == r["target"]["method"]
        assert v["signature"] == "signed+valid"
        # fit on every tier; on the target tier it is the report's own fit
        tiers = {t["tier"]: t for t in v["tiers"]}
        assert len(tiers) == len(list((ROOT / "conf" / "hardware").glob("*.yaml")))
        if r.get("fit"):
            target = tiers[r["target"]["hardware"]]
            assert target["fits"] == r["fit"]["fits"] and target["total_bytes"] == r["fit"]["total_bytes"]


def test_pages_render(studio_builds):
    name = sorted(reports(studio_builds))[0]
    with client(studio_builds) as c:
        slug = c.get("/api/builds").json()[0]["slug"]
        assert name in c.get("/").text
        page = c.get(f"/parent/{slug}").text
        assert all(n in page for n in reports(studio_builds))
        png = c.get(f"/parent/{slug}/frontier.png")
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
        b = c.get(f"/build/{name}/")
        assert b.status_code == 200
        assert "valid: every check passed" in b.text and "quantize_gguf:0" in b.text
        assert f'href="/build/{name}/model.gguf"' in b.text and f'href="/build/{name}/README.md"' in b.text
        assert c.get(f"/build/{name}/model.gguf").content == (studio_builds / name / "model.gguf").read_bytes()
        assert c.get(f"/build/{name}/retention.png").status_code in (200, 404)
        sweep = c.get("/sweep/2026-01-01_00-00-00/")
        assert sweep.status_code == 200 and all(n in sweep.text for n in reports(studio_builds))
        assert c.get("/sweep/2026-01-01_00-00-00/frontier.png").content[:4] == b"\x89PNG"


@pytest.mark.parametrize("path", ["/build/../etc/", "/build/x/../../etc/passwd", "/build/.staging/",
                                  "/build/{name}/../../../etc/passwd", "/build/{name}/%2e%2e/%2e%2e/x",
                                  "/sweep/../x/", "/parent/nope", "/build/nope/"])
def test_nothing_outside_the_builds_is_served(studio_builds, path):
    name = sorted(reports(studio_builds))[0]
    with client(studio_builds) as c:
        r = c.get(path.format(name=name))
    assert r.status_code == 404


def test_read_only_by_default(studio_builds):
    with client(studio_builds) as c:
        assert c.get("/new").status_code == 403
        r = c.post("/new", data={"model": "tiny_llama"})
        assert r.status_code == 403 and "--allow-builds" in r.text
        assert 'href="/new"' not in c.get("/").text


def test_form_rejects_what_is_not_a_config_choice(studio_builds, tmp_path):
    bad = {"model": "tiny_llama", "method": "q4_k_m; touch /tmp/pwned", "hardware": "apple8gb",
           "probes": "quick", "calibration": "small", "threads": "0"}
    with client(studio_builds, allow_builds=True, tmp=tmp_path) as c:
        form = c.get("/new").text
        assert 'value="tiny_llama"' in form and 'value="llama3_70b"' not in form  # estimate-only
        r = c.post("/new", data=bad)
        assert r.status_code == 400
        assert "method: &#39;q4_k_m; touch /tmp/pwned&#39; is not a choice (conf/method/)" in r.text
        assert "threads: &#39;0&#39; must be a whole number from 1 to" in r.text
        assert c.app.state.launcher.jobs == {}


def test_progress_follows_events_then_the_landed_report(studio_builds, tmp_path):
    """A staging folder with events.jsonl is a running build; when the folder is gone and
    builds/<name>/report.json is newer than the page, the build has landed."""
    builds = tmp_path / "builds"
    builds.mkdir()
    src = studio_builds / sorted(reports(studio_builds))[0]
    name = "tiny-progress"
    stage = builds / ".staging" / f"{name}-{os.getpid()}"
    stage.mkdir(parents=True)
    t0 = time.time()
    events = [{"event": "planned", "step": s, "kind": s.split(":")[0], "key": f"k{i}", "cached": i == 0,
               "why": ["cached" if i == 0 else "no cache entry for this key"], "t": t0}
              for i, s in enumerate(["import_parent", "quantize_gguf:0", "fidelity:child"])]
    events += [{"event": "cache_hit", "step": "import_parent", "key": "k0", "t": t0},
               {"event": "started", "step": "quantize_gguf:0", "key": "k1", "t": t0 + 1}]
    (stage / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + '{"event": "fini')
    with client(builds) as c:
        assert name in c.get("/").text
        st = c.get(f"/api/progress/{name}?after={t0}").json()
        assert st["state"] == "running" and st["total"] == 3 and st["finished"] == 1
        assert [s["state"] for s in st["steps"]] == ["cached", "running", "pending"]
        assert st["running"] == ["quantize_gguf:0"]
        assert c.get(f"/build/{name}/", follow_redirects=False).headers["location"] == f"/progress/{name}"
        # an older report of the same name is not the new build
        shutil.copytree(src, builds / name)
        rep = json.loads((builds / name / "report.json").read_text())
        rep["created"] = "2020-01-01T00:00:00Z"
        (builds / name / "report.json").write_text(json.dumps(rep))
        shutil.rmtree(stage)
        assert c.get(f"/api/progress/{name}?after={t0}").json()["state"] == "unknown"
        rep["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 5))
        (builds / name / "report.json").write_text(json.dumps(rep))
        st = c.get(f"/api/progress/{name}?after={t0}").json()
        assert st["state"] == "done" and st["url"] == f"/build/{name}/"


def test_cli_refuses_a_missing_builds_folder_and_says_where_it_binds(tmp_path):
    r = subprocess.run([sys.executable, "-m", "slim.studio", "--builds", str(tmp_path / "nope")],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "builds folder" in r.stderr and "not found" in r.stderr
    r = subprocess.run([sys.executable, "-m", "slim.studio", "--builds", str(tmp_path), "--port", "0"],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "--port 0 is not a port" in r.stderr
    from slim.studio.browser import StudioServer
    (tmp_path / "b").mkdir()
    with StudioServer(tmp_path / "b") as s:
        out = s.output()
    assert "127.0.0.1" in out and "this machine only" in out and "read-only" in out


def test_a_build_the_cli_would_refuse_is_refused_by_the_form_with_its_message(studio_builds, tmp_path):
    """Choices that exist but do not go together (an fp8 method on a tier without fp8) are
    checked by the CLI's own validator before any process starts."""
    form = {"model": "tiny_llama", "method": "fp8_dynamic", "hardware": "apple8gb",
            "probes": "quick", "calibration": "small", "threads": "1"}
    with client(studio_builds, allow_builds=True, tmp=tmp_path) as c:
        r = c.post("/new", data=form)
        assert r.status_code == 400
        assert "method fp8_dynamic needs capability fp8, which hardware apple8gb" in r.text
        assert c.app.state.launcher.jobs == {}


def test_a_failed_build_shows_as_failed(tmp_path):
    """No staging folder, no new report, and the events a failed build leaves in builds/.logs/."""
    builds = tmp_path / "builds"
    (builds / ".logs").mkdir(parents=True)
    t0 = time.time()
    ev = [{"event": "planned", "step": "quantize_gguf:0", "kind": "quantize_gguf", "key": "k", "cached": False,
           "why": ["no cache entry for this key"], "t": t0},
          {"event": "started", "step": "quantize_gguf:0", "key": "k", "t": t0},
          {"event": "failed", "step": "quantize_gguf:0", "key": "k", "reason": "step_failed", "t": t0 + 1}]
    (builds / ".logs" / "tiny-x-20260101-000000.events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in ev))
    with client(builds) as c:
        st = c.get(f"/api/progress/tiny-x?after={t0 - 1}").json()
    assert st["state"] == "failed" and [s["state"] for s in st["steps"]] == ["failed"]
    assert st["steps"][0]["why"] == "step_failed"


def test_pages_load_nothing_from_outside(studio_builds, tmp_path):
    """No CDN: every script, stylesheet and image a page references is served by the studio."""
    import re
    name = sorted(reports(studio_builds))[0]
    with client(studio_builds, allow_builds=True, tmp=tmp_path) as c:
        slug = c.get("/api/builds").json()[0]["slug"]
        for url in ["/", f"/parent/{slug}", f"/build/{name}/", "/sweep/2026-01-01_00-00-00/",
                    f"/progress/{name}", "/new"]:
            html = c.get(url).text
            refs = re.findall(r'<(?:script|link|img)\b[^>]*?(?:src|href)="([^"]+)"', html)
            assert refs, url
            for ref in refs:
                assert not re.match(r"^(https?:)?//", ref), (url, ref)
                assert c.get(ref if ref.startswith("/") else url.rstrip("/") + "/" + ref).status_code == 200, (url, ref)
