"""Model card (README.md with Hugging Face YAML front matter) and Ollama Modelfile.

Both files are written into the build folder before signing: they are signed
subjects like the artifact itself.
"""
from __future__ import annotations

from slim.report.gates import checked_gates, failed_gates, status_line, undecided_gates
from slim.report.headline import HEADLINE_LABEL, headline_retention
from slim.units import fmt_bytes

import json
import os
from pathlib import Path
from typing import Any

from slim.fileio import atomic_write_bytes

CHATML_STOPS = ["<|im_start|>", "<|im_end|>"]
# Ollama (Go template) form of ChatML, the template SmolLM2-Instruct uses.
CHATML_OLLAMA_TEMPLATE = (
    "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n"
)


def _get(d: Any, *path, default=None):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _num(v, spec: str, suffix: str = "") -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return format(v, spec) + suffix
    return "–"


def _pct(v) -> str:
    return _num(v * 100 if isinstance(v, (int, float)) and not isinstance(v, bool) else None, ".1f", "%")


def _y(v: Any) -> str:
    """A YAML scalar: JSON strings/numbers/bools/null are valid YAML."""
    return json.dumps(v, ensure_ascii=False)


def base_model(report: dict) -> str:
    parent = report.get("parent") or {}
    return parent.get("hf_repo") or parent.get("id") or "unknown"


def _relation(report: dict) -> str:
    """As the method YAML declares it (``base_model_relation``)."""
    return str(_get(report, "method", "base_model_relation", default=None) or "quantized")


def _tags(report: dict) -> list[str]:
    fmt = _get(report, "artifact", "format")
    tags = ["slim", fmt, _get(report, "target", "method"), _get(report, "target", "hardware")]
    if _relation(report) == "quantized":
        tags.append("quantized")
    out: list[str] = []
    for t in tags:
        if t and str(t) not in out:
            out.append(str(t))
    return out


def render_model_card(report: dict, key_id: str | None = None, build_path: str | None = None) -> str:
    name = report.get("build") or "build"
    parent = report.get("parent") or {}
    target = report.get("target") or {}
    art = report.get("artifact") or {}
    fid = _get(report, "metrics", "fidelity", default={}) or {}
    cats = _get(report, "metrics", "probes", "categories", default={}) or {}
    status = report.get("status") or "unknown"
    failed = failed_gates(report)
    retention = headline_retention(report)
    fmt = art.get("format") or "?"

    fm = ["---", f"base_model: {_y(base_model(report))}", f"base_model_relation: {_relation(report)}"]
    if parent.get("license"):
        fm.append(f"license: {_y(parent['license'])}")
    fm.append("pipeline_tag: text-generation")
    fm.append("tags:")
    fm += [f"- {_y(t)}" for t in _tags(report)]
    fm.append("---")

    L = fm + ["", f"# {name}", ""]
    size_mb = fmt_bytes(art.get("bytes"))
    L.append(f"**{target.get('model') or parent.get('id')}** compressed with **{target.get('method')}** "
             f"for **{target.get('hardware')}**: {size_mb} ({_num(art.get('bpw'), '.2f')} bits per weight, "
             f"{fmt}), {HEADLINE_LABEL} **{_pct(retention)}**, mean KLD vs parent "
             f"**{_num(fid.get('kld_mean'), '.4f')}**. Status: **{status}**.")
    L.append("")
    if failed:
        L.append(f"> Rejected: failed gate(s): {', '.join(f'`{g}`' for g in failed)}.")
        L.append("")
    elif status == "inconclusive":
        L.append(f"> Inconclusive: no gate failed, but these were not decided: "
                 f"{', '.join(f'`{g}`' for g in undecided_gates(report))}.")
        L.append("")
    elif status == "ungated":
        L.append("> Ungated: the probe suite has no gates, so nothing judged this build.")
        L.append("")

    L += ["## Lineage", "",
          f"- parent: `{parent.get('id')}`" + (f" ({parent['hf_repo']})" if parent.get("hf_repo") else ""),
          f"- parent digest: `{parent.get('digest')}`"]
    if parent.get("build"):
        L.append(f"- parent build: `{parent['build']}`")
    if parent.get("provenance"):
        L.append(f"- provenance: {parent['provenance']}")
    L += [f"- probes: `{target.get('probes')}`", ""]

    L += ["## Size", "", "| file | bytes | sha256 |", "|---|---:|---|"]
    for fn, meta in sorted((art.get("files") or {}).items()):
        meta = meta if isinstance(meta, dict) else {}
        L.append(f"| `{fn}` | {meta.get('bytes', '–')} | `{str(meta.get('sha256', '–'))[:16]}…` |")
    L.append(f"| **total** | {art.get('bytes', '–')} | {_num(art.get('bpw'), '.2f')} bpw |")
    tt = art.get("tensor_types") or {}
    if tt:
        L += ["", "Tensor types: " + ", ".join(f"{k} × {v}" for k, v in sorted(tt.items()))]
    L.append("")

    L += ["## Fidelity vs parent", "", "| metric | value |", "|---|---:|",
          f"| perplexity (parent) | {_num(fid.get('ppl_parent'), '.3f')} |",
          f"| perplexity (this build) | {_num(fid.get('ppl_child'), '.3f')} |",
          f"| perplexity ratio | {_num(fid.get('ppl_ratio'), '.4f')} |",
          f"| mean KLD | {_num(fid.get('kld_mean'), '.5f')}"
          + (f" ± {_num(fid.get('kld_mean_stderr'), '.5f')}" if fid.get("kld_mean_stderr") is not None else "") + " |",
          f"| KLD p99 | {_num(fid.get('kld_p99'), '.4f')} |",
          f"| top-1 agreement | {_pct(fid.get('top1_agreement'))} |",
          f"| mean Δp | {_num(fid.get('delta_p_mean'), '+.4f')} |",
          f"| tokens scored | {fid.get('tokens', '–')} |", ""]
    kvm = fid.get("kv_cache") or {}
    if kvm:
        vp, vf = kvm.get("vs_parent") or {}, kvm.get("vs_f16_kv") or {}
        L += [f"With a {kvm.get('type')} KV cache (as deployed; the table above is f16 KV): mean "
              f"KLD vs parent **{_num(vp.get('kld_mean'), '.5f')}** ± "
              f"{_num(vp.get('kld_mean_stderr'), '.5f')}, PPL ratio {_num(vp.get('ppl_ratio'), '.4f')}, "
              f"top-1 {_pct(vp.get('top1_agreement'))}; against this build with f16 KV: KLD "
              f"{_num(vf.get('kld_mean'), '.5f')} ± {_num(vf.get('kld_mean_stderr'), '.5f')}.", ""]
    run = report.get("run") or {}
    if run.get("kv_cache") and fmt == "gguf":
        kv, ctx = run["kv_cache"], run.get("context_length")
        fa = " -fa on" if run.get("flash_attn") else ""
        L += ["## Run", "",
              f"Sized for {target.get('hardware')} with a **{kv}** KV cache"
              + (f" at {ctx} tokens of context" if ctx else "") + f" (from `{run.get('kv_cache_from')}`).",
              "", "```",
              f"llama-server -m model.gguf" + (f" -c {ctx}" if ctx else "") + f" -ctk {kv} -ctv {kv}{fa}",
              ("OLLAMA_FLASH_ATTENTION=1 " if run.get("flash_attn") else "")
              + f"OLLAMA_KV_CACHE_TYPE={kv} ollama serve   # Ollama: server-wide, see Modelfile",
              "```", ""]

    if cats:
        L += ["## Probe retention by category", "",
              "| category | n | parent | this build | delta | retention |", "|---|---:|---:|---:|---:|---:|"]
        for c in sorted(cats):
            v = cats[c] if isinstance(cats[c], dict) else {}
            L.append(f"| {c} | {v.get('n', '–')} | {_num(v.get('parent_score'), '.3f')} | "
                     f"{_num(v.get('child_score'), '.3f')} | {_num(v.get('delta'), '+.3f')} | "
                     f"{_pct(v.get('retention'))} |")
        leaks = _get(report, "metrics", "probes", "leaks_child")
        if leaks is not None:
            L += ["", f"Canary leaks in this build's outputs: {leaks}."]
        L.append("")

    if fmt == "onnx":
        L += run_with_onnxruntime_genai(report)
    L += ["## Status", "", f"**{status_line(report)}**", ""]
    checked = checked_gates(report)
    if checked:
        L += ["Gates checked: " + ", ".join(f"`{g}`" for g in checked), ""]

    bp = build_path or f"builds/{name}"
    L += ["## Verify", "",
          "`report.json` is wrapped in an in-toto statement (DSSE, Ed25519) in `attestation.intoto.json` "
          "whose subjects are every file of this folder, this card included. Check the signature, every "
          "file digest and the link to the parent with:", "",
          "```", f"python -m slim.verify {bp} --key <signer-public-key.pub>", "```", ""]
    if key_id:
        L += [f"Signing key id: `{key_id}` (first 16 hex of sha256 of the raw Ed25519 public key).", ""]
    return "\n".join(L)


def run_with_onnxruntime_genai(report: dict) -> list[str]:
    """How to run an ONNX build: plain onnxruntime-genai, the model's own chat template."""
    art = report.get("artifact") or {}
    ep = art.get("execution_provider") or "cpu"
    return ["## Run with onnxruntime-genai", "",
            f"`model/` is an onnxruntime-genai folder (`genai_config.json`, `model.onnx` + "
            f"`model.onnx.data`, tokenizer, chat template) exported for the **{ep}** execution "
            f"provider by onnxruntime-genai's model builder"
            + (f" ({art.get('precision')}, block {art.get('block_size')})"
               if art.get("block_size") else "") + ".", "",
            "```python",
            "import json, onnxruntime_genai as og   # pip install onnxruntime-genai",
            "model = og.Model(\"model\")",
            "tok = og.Tokenizer(model)",
            "messages = [{\"role\": \"user\", \"content\": \"What is the capital of France?\"}]",
            "prompt = tok.apply_chat_template(json.dumps(messages), add_generation_prompt=True)",
            "params = og.GeneratorParams(model)",
            "params.set_search_options(max_length=256, do_sample=False)",
            "gen = og.Generator(model, params)",
            "ids = tok.encode(prompt)",
            "gen.append_tokens(ids)",
            "while not gen.is_done():",
            "    gen.generate_next_token()",
            "print(tok.decode(gen.get_sequence(0)[len(ids):]))",
            "```", ""]


def write_model_card(build_dir: str | os.PathLike, report: dict, key_id: str | None = None) -> Path:
    """Write ``README.md`` (HF model card) into build_dir; returns its path."""
    root = Path(build_dir)
    path = root / "README.md"
    atomic_write_bytes(path, render_model_card(report, key_id=key_id,
                                               build_path=f"builds/{root.name}").encode("utf-8"))
    return path


def _stops_for(report: dict, chat_template: str | None) -> list[str]:
    text = (chat_template or "") + " " + str(_get(report, "parent", "chat_template", default="") or "")
    if "<|im_start|>" in text or _get(report, "parent", "chat_format") == "chatml":
        return list(CHATML_STOPS)
    return []


def render_modelfile(report: dict, gguf_name: str = "model.gguf", chat_template: str | None = None,
                     stop: list[str] | None = None) -> str:
    """Ollama Modelfile text. ``chat_template`` may be an Ollama (Go) template, used as is,
    or a Jinja chat template, used only to recognise ChatML."""
    stops = list(stop) if stop is not None else _stops_for(report, chat_template)
    lines = [f"# {report.get('build')}: {_get(report, 'target', 'method')} of "
             f"{_get(report, 'parent', 'hf_repo') or _get(report, 'parent', 'id')} "
             f"for {_get(report, 'target', 'hardware')}, built by slim",
             f"# parent digest {_get(report, 'parent', 'digest')}; verify with python -m slim.verify",
             f"FROM ./{gguf_name}"]
    template = None
    if chat_template and "{%" not in chat_template and "{{" in chat_template:
        template = chat_template                    # already an Ollama Go template
    elif stops == CHATML_STOPS:
        template = CHATML_OLLAMA_TEMPLATE
    if template:
        lines.append(f'TEMPLATE """{template}"""')
    for s in stops:
        lines.append(f"PARAMETER stop {json.dumps(s)}")
    run = report.get("run") or {}
    if run.get("context_length"):
        lines.append(f"PARAMETER num_ctx {int(run['context_length'])}")
    if run.get("kv_cache"):
        # Ollama has no Modelfile parameter for the KV cache type: the server sets it for all
        # models (OLLAMA_KV_CACHE_TYPE, with OLLAMA_FLASH_ATTENTION=1 for a quantized cache)
        lines.append(f"# KV cache: {run['kv_cache']} (sized and measured with it); Ollama sets it "
                     f"server-wide: " + ("OLLAMA_FLASH_ATTENTION=1 " if run.get("flash_attn") else "")
                     + f"OLLAMA_KV_CACHE_TYPE={run['kv_cache']} ollama serve")
    return "\n".join(lines) + "\n"


def write_modelfile(build_dir: str | os.PathLike, report: dict, gguf_name: str = "model.gguf",
                    chat_template: str | None = None, stop: list[str] | None = None) -> Path:
    """Write an Ollama ``Modelfile`` next to a GGUF artifact; returns its path."""
    path = Path(build_dir) / "Modelfile"
    atomic_write_bytes(path, render_modelfile(report, gguf_name, chat_template, stop).encode("utf-8"))
    return path
