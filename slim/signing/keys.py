"""Ed25519 signing keys for build attestations.

Layout of a key dir (default ``$SLIM_KEY_DIR`` or ``~/.config/slim/keys``,
created mode 0700)::

    <name>.key   private key, PEM PKCS8, unencrypted, mode 0600
    <name>.pub   public key, PEM SubjectPublicKeyInfo

The key id is the first 16 hex digits of sha256 over the raw 32-byte public
key. Nothing in this module prints, logs or returns private key bytes to a
caller other than as a ``cryptography`` key object.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
from pathlib import Path
from typing import Iterable, Mapping

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from slim.errors import SlimError
from slim.fileio import atomic_write_bytes

DEFAULT_KEY_NAME = "default"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


# ---------------------------------------------------------------- locations

def default_key_dir() -> Path:
    env = os.environ.get("SLIM_KEY_DIR")
    if env:
        return Path(env).expanduser()
    return Path("~/.config/slim/keys").expanduser()


def resolve_key_dir(key_dir: str | os.PathLike | None = None) -> Path:
    return Path(key_dir).expanduser() if key_dir else default_key_dir()


def _ensure_dir(path: Path) -> Path:
    """Create the key dir with mode 0700 (parents with the umask)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass
        os.chmod(path, 0o700)
    elif not path.is_dir():
        raise SlimError(f"key dir {path} exists and is not a directory")
    return path


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise SlimError(f"invalid key name {name!r}: use letters, digits, '.', '_' or '-'")
    return name


# ---------------------------------------------------------------- key ids

def raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """First 16 hex digits of sha256 of the raw public key bytes."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return hashlib.sha256(raw_public_bytes(pub)).hexdigest()[:16]


def public_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# ---------------------------------------------------------------- file io

def load_private_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    p = Path(path).expanduser()
    if not p.is_file():
        raise SlimError(f"signing key {p} not found (create one with: python -m slim.keys generate)")
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        print(f"warning: private key {p} is readable by others (mode {mode:o}); "
              f"run: chmod 600 {p}", file=sys.stderr)
    try:
        key = serialization.load_pem_private_key(p.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # do not echo the exception: it can quote file content
        raise SlimError(f"{p} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SlimError(f"{p} is not an Ed25519 private key")
    return key


def load_public_key(path: str | os.PathLike) -> Ed25519PublicKey:
    """Load a public key file (PEM). A private key file is accepted too; only its public half is kept."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise SlimError(f"public key {p} not found")
    data = p.read_bytes()
    key = None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        try:
            priv = serialization.load_pem_private_key(data, password=None)
            key = priv.public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise SlimError(f"{p} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SlimError(f"{p} is not an Ed25519 public key")
    return key


def load_trusted_keys(paths: Iterable[str | os.PathLike] | None = None,
                      key_dir: str | os.PathLike | None = None) -> dict[str, Ed25519PublicKey]:
    """Trusted keys by id: the given public key files, else every ``*.pub`` in the key dir."""
    keys: dict[str, Ed25519PublicKey] = {}
    paths = list(paths or [])
    if paths:
        for p in paths:
            k = load_public_key(p)
            keys[key_id(k)] = k
        return keys
    d = resolve_key_dir(key_dir)
    if d.is_dir():
        for p in sorted(d.glob(f"*{PUBLIC_SUFFIX}")):
            try:
                k = load_public_key(p)
            except SlimError as e:
                print(f"warning: skipping {e}", file=sys.stderr)
                continue
            keys[key_id(k)] = k
    return keys


# ---------------------------------------------------------------- operations

def key_paths(name: str = DEFAULT_KEY_NAME, key_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    d = resolve_key_dir(key_dir)
    _check_name(name)
    return d / f"{name}{PRIVATE_SUFFIX}", d / f"{name}{PUBLIC_SUFFIX}"


def public_path_for(private_path: Path) -> Path:
    if private_path.suffix == PRIVATE_SUFFIX:
        return private_path.with_suffix(PUBLIC_SUFFIX)
    return private_path.with_name(private_path.name + PUBLIC_SUFFIX)


def generate_key(name: str = DEFAULT_KEY_NAME, key_dir: str | os.PathLike | None = None,
                 overwrite: bool = False) -> tuple[str, Path, Path]:
    """Create a new key pair. Returns (key_id, private_path, public_path)."""
    priv_path, pub_path = key_paths(name, key_dir)
    _ensure_dir(priv_path.parent)
    if priv_path.exists() and not overwrite:
        raise SlimError(f"key {priv_path} already exists (pass --force to replace it; "
                        f"builds signed with it will then no longer verify)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    atomic_write_bytes(priv_path, pem, 0o600)
    atomic_write_bytes(pub_path, public_pem(key), 0o644)
    return key_id(key), priv_path, pub_path


def ensure_signing_key(key_path: str | os.PathLike | None = None,
                       key_dir: str | os.PathLike | None = None
                       ) -> tuple[Ed25519PrivateKey, str, Path, bool]:
    """Return (private_key, key_id, path, created).

    With ``key_path`` the key must exist. Otherwise the default key of the key
    dir is used, and created on first use (``created`` is then True and the
    caller should say where it was written).
    """
    if key_path:
        p = Path(key_path).expanduser()
        key = load_private_key(p)
        return key, key_id(key), p, False
    priv_path, pub_path = key_paths(DEFAULT_KEY_NAME, key_dir)
    created = False
    if not priv_path.exists():
        # parallel first builds (sweep members) must agree on one key: create under a lock
        from filelock import FileLock
        priv_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with FileLock(str(priv_path) + ".lock"):
            if not priv_path.exists():
                generate_key(DEFAULT_KEY_NAME, key_dir)
                created = True
    key = load_private_key(priv_path)
    if not pub_path.exists():
        atomic_write_bytes(pub_path, public_pem(key), 0o644)
    return key, key_id(key), priv_path, created


def list_keys(key_dir: str | os.PathLike | None = None) -> list[dict]:
    """Keys in the key dir: name, key_id, public path, private path or None."""
    d = resolve_key_dir(key_dir)
    out: list[dict] = []
    if not d.is_dir():
        return out
    names = {p.stem for p in d.glob(f"*{PUBLIC_SUFFIX}")} | {p.stem for p in d.glob(f"*{PRIVATE_SUFFIX}")}
    for name in sorted(names):
        priv, pub = d / f"{name}{PRIVATE_SUFFIX}", d / f"{name}{PUBLIC_SUFFIX}"
        try:
            k = load_public_key(pub) if pub.exists() else load_private_key(priv).public_key()
            kid = key_id(k)
        except SlimError:
            kid = None
        out.append({"name": name, "key_id": kid,
                    "public": str(pub) if pub.exists() else None,
                    "private": str(priv) if priv.exists() else None})
    return out


def export_public(name: str = DEFAULT_KEY_NAME, key_dir: str | os.PathLike | None = None) -> bytes:
    priv, pub = key_paths(name, key_dir)
    if pub.exists():
        return public_pem(load_public_key(pub))
    if priv.exists():
        return public_pem(load_private_key(priv))
    raise SlimError(f"no key named {name!r} in {priv.parent}")


__all__ = [
    "DEFAULT_KEY_NAME", "default_key_dir", "resolve_key_dir", "key_id", "public_pem",
    "raw_public_bytes", "load_private_key", "load_public_key", "load_trusted_keys",
    "key_paths", "generate_key", "ensure_signing_key", "list_keys", "export_public",
    "public_path_for",
]

# Mapping kept for type hints in callers
TrustedKeys = Mapping[str, Ed25519PublicKey]
