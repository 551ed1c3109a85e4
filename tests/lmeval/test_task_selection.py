"""lm-eval: a task file runs alone (not every YAML beside it), and lower-is-better metrics
(perplexity-type) are retained as parent/child, so getting worse is a loss."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from tests.conftest import ROOT, TINY, compose


def test_plan_names_the_task_file_and_keys_its_folder():
    from slim.plan import Planner
    plan = Planner(compose(TINY + ["method=q8_0", "probes=full"])).build()
    st = plan.steps["lm_eval:parent"]
    assert st.params["task_files"] == {"task00": "slim_facts.yaml"}
    assert Path(st.files["task00"]) == ROOT / "data" / "lm_eval" / "slim_facts"


def test_step_runs_only_the_named_file(tmp_path, monkeypatch):
    import slim.lmeval.run
    from slim.steps import lm_eval
    seen = {}
    monkeypatch.setattr(slim.lmeval.run, "run_lm_eval",
                        lambda model, tasks, limit, threads=None: seen.setdefault("tasks", tasks) and {})
    folder = tmp_path / "tasks"
    folder.mkdir()
    ctx = SimpleNamespace(params=lm_eval.Params(tasks=["hellaswag"], task_files={"task00": "a.yaml"}),
                          inputs={"task00": str(folder), "model": tmp_path}, threads=1,
                          write_json=lambda name, obj: None)
    lm_eval.run(ctx)
    assert seen["tasks"] == ["hellaswag", str(folder / "a.yaml")]


def test_prepare_tasks_file_beside_another_task(tmp_path):
    from slim.lmeval.run import prepare_tasks
    src = ROOT / "data" / "lm_eval" / "slim_facts"
    d = tmp_path / "two"
    d.mkdir()
    (d / "slim_facts.jsonl").write_text((src / "slim_facts.jsonl").read_text())
    text = (src / "slim_facts.yaml").read_text()
    (d / "a.yaml").write_text(text.replace("task: slim_facts", "task: task_a"))
    (d / "b.yaml").write_text(text.replace("task: slim_facts", "task: task_b"))
    names, _ = prepare_tasks([str(d / "a.yaml")], tmp_path / "work")
    assert names == ["task_a"]
    names, _ = prepare_tasks([str(d)], tmp_path / "work2")
    assert sorted(names) == ["task_a", "task_b"]


def _section(tmp_path, parent: dict, child: dict, hib: dict):
    from slim.report.assemble import lm_eval_section
    dirs = {}
    for role, res in (("p", parent), ("c", child)):
        d = tmp_path / role
        d.mkdir()
        (d / "lm_eval.json").write_text(json.dumps({**res, "_meta": {"higher_is_better": hib}}))
        dirs[role] = SimpleNamespace(entry=SimpleNamespace(data=d))
    plan = SimpleNamespace(evals={"lm_eval_parent": "p", "lm_eval_child": "c"})
    return lm_eval_section(plan, dirs)[0]


def test_lower_is_better_metric_is_gated_the_right_way(tmp_path):
    from slim.probes.gates import evaluate_gates
    le = _section(tmp_path,
                  {"wiki": {"word_perplexity": 20.0, "word_perplexity_stderr": 0.2,
                            "bits_per_byte": 1.0, "bits_per_byte_stderr": 0.01}},
                  {"wiki": {"word_perplexity": 30.0, "word_perplexity_stderr": 0.3,
                            "bits_per_byte": 1.2, "bits_per_byte_stderr": 0.01}},
                  {"wiki": {"word_perplexity": False, "bits_per_byte": False}})
    w = le["wiki/word_perplexity"]
    assert w["higher_is_better"] is False and abs(w["retention"] - 20 / 30) < 1e-9
    res = {g["category"]: g for g in evaluate_gates({}, None, {"lm_eval_floor": 0.9}, lm_eval=le)}
    # under child/parent, a perplexity up 50% "retained" 150% and passed
    assert res["wiki/word_perplexity"]["outcome"] == "fail"
    assert res["wiki/bits_per_byte"]["outcome"] == "fail"


def test_direction_falls_back_to_metric_names(tmp_path):
    le = _section(tmp_path, {"t": {"acc": 0.5, "perplexity": 10.0}},
                  {"t": {"acc": 0.4, "perplexity": 12.0}}, {})
    assert le["t/acc"]["higher_is_better"] is True and abs(le["t/acc"]["retention"] - 0.8) < 1e-9
    assert le["t/perplexity"]["higher_is_better"] is False
