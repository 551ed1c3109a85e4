"""Where the repository's shipped data and configs live."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
DATA = ROOT / "data"


def resolve(path: str | Path) -> Path:
    """Resolve a config path: absolute as is, else relative to the repo root if it exists there."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    if (ROOT / p).exists():
        return ROOT / p
    return Path.cwd() / p
