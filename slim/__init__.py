"""slim: compress a language model for named hardware and prove what it cost.

Importing the package makes Hugging Face libraries offline by default so that a
library that reaches for the hub fails at once instead of retrying for a
minute. Set SLIM_HUB_ONLINE=1 (or ``hub_online=true``) to opt in.
"""
import os
from pathlib import Path

__version__ = "0.1.0"

if os.environ.get("SLIM_HUB_ONLINE", "0") not in ("1", "true", "yes"):
    for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent
