"""The shipped probe files are exactly the seeded generator's output (scripts/gen_probes.py)."""
import subprocess
import sys
from collections import Counter

from slim.paths import ROOT
from slim.probes.suite import default_data_dir, load_items

sys.path.insert(0, str(ROOT / "scripts"))

from probegen import build, differences, handwritten  # noqa: E402


def test_committed_files_equal_generator_output():
    bad = differences(default_data_dir())
    assert not bad, f"{bad} differ from the generator: edit scripts/probegen and run scripts/gen_probes.py"


def test_generation_is_deterministic():
    assert build() == build()


def test_cli_writes_and_checks(tmp_path):
    script = ROOT / "scripts" / "gen_probes.py"
    assert subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], capture_output=True).returncode == 0
    assert subprocess.run([sys.executable, str(script), "--check", "--out", str(tmp_path)]).returncode == 0
    (tmp_path / "safety.jsonl").write_text("{}\n")
    r = subprocess.run([sys.executable, str(script), "--check", "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1 and "safety.jsonl" in r.stderr


def test_handwritten_items_come_first_unchanged():
    hand = handwritten()
    items = load_items(["*"])
    for cat in {it["category"] for it in hand}:
        want = [it for it in hand if it["category"] == cat]
        got = [it for it in items if it["category"] == cat][: len(want)]
        assert got == want, cat


def test_levels_interleaved_so_a_prefix_is_balanced():
    for cat in ("behavioral/arithmetic", "behavioral/units", "behavioral/format", "leakage/system_secret"):
        gen = [it for it in load_items([cat]) if "level" in it]
        assert Counter(it["level"] for it in gen[:30]) == {1: 10, 2: 10, 3: 10}, cat


def test_generator_is_stdlib_only():
    import ast
    for path in (ROOT / "scripts" / "probegen").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]):
                    assert name.split(".")[0] in sys.stdlib_module_names, (path.name, name)
