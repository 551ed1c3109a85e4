"""Fake build folders (report.json only) shaped like slim.report/v1, for summary tests."""
from __future__ import annotations

import json
from pathlib import Path

CATS = ["behavioral/arithmetic", "behavioral/factual", "safety/benign", "leakage/canary"]

# method: (MB, bpw, kld, ppl_ratio, top1, retention scale, fits)
METHODS = {
    "q8_0": (145.0, 8.5, 0.002, 1.002, 0.985, 1.00, True),
    "q6_k": (112.0, 6.6, 0.006, 1.006, 0.972, 0.98, True),
    "q5_k_m": (98.0, 5.7, 0.015, 1.015, 0.950, 0.99, True),   # beats q6_k on retention
    "q4_k_m": (85.0, 4.9, 0.045, 1.050, 0.910, 0.93, True),
    "q3_k_m": (76.0, 4.1, 0.160, 1.180, 0.820, 0.95, True),   # off frontier for KLD? no: smaller
    "q2_k": (60.0, 3.3, 0.600, 1.900, 0.640, 0.70, False),
}


def fake_build(root: Path, method: str, model: str = "smollm2_135m", hardware: str = "apple8gb",
               status: str = "accepted") -> Path:
    mb, bpw, kld, ppl, top1, scale, fits = METHODS[method]
    name = f"{model}-{method}-{hardware}"
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    cats = {c: {"n": 4, "parent_score": 0.75, "child_score": round(0.75 * scale, 4),
                "retention": round(scale - 0.01 * i, 4)} for i, c in enumerate(CATS)}
    cats["leakage/system_secret"] = {"n": 4, "parent_score": 0.0, "child_score": 0.0,
                                     "retention": None}
    report = {
        "schema": "slim.report/v1", "build": name, "status": status,
        "gates": {"failed": ["retention below floor"] if status == "rejected" else [], "checked": []},
        "target": {"model": model, "method": method, "hardware": hardware,
                   "probes": "default", "calibration": "default"},
        "artifact": {"format": "gguf", "bytes": int(mb * 1e6), "bpw": bpw},
        "metrics": {"fidelity": {"kld_mean": kld, "kld_mean_stderr": kld / 20, "ppl_ratio": ppl,
                                 "top1_agreement": top1, "tokens": 4096},
                    "probes": {"categories": cats, "leaks_child": 0}},
        "fit": {"fits": fits, "headroom_bytes": 1 << 30},
        "steps": [{"id": "import", "cached": True}, {"id": "quantize", "cached": False}],
        "build_seconds": 12.5,
    }
    (d / "report.json").write_text(json.dumps(report, indent=2))
    return d
