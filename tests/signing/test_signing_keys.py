from __future__ import annotations

import stat

import pytest

from slim.errors import SlimError
from slim.keys import main as keys_main
from slim.signing.keys import (ensure_signing_key, export_public, generate_key, key_id, list_keys,
                               load_public_key)


def test_generate_modes_and_id(key_dir):
    kid, priv, pub = generate_key()
    assert priv == key_dir / "default.key" and pub == key_dir / "default.pub"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert b"PRIVATE KEY" in priv.read_bytes() and b"PUBLIC KEY" in pub.read_bytes()
    assert len(kid) == 16 and kid == key_id(load_public_key(pub))
    with pytest.raises(SlimError):
        generate_key()                       # no silent overwrite
    kid2, _, _ = generate_key(overwrite=True)
    assert kid2 != kid


def test_key_id_is_sha256_of_raw_public_key(key_dir):
    import hashlib
    from cryptography.hazmat.primitives import serialization
    kid, _, pub = generate_key()
    raw = load_public_key(pub).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert kid == hashlib.sha256(raw).hexdigest()[:16]


def test_ensure_signing_key_creates_once(key_dir):
    k1, id1, p1, created1 = ensure_signing_key()
    k2, id2, p2, created2 = ensure_signing_key()
    assert created1 and not created2 and id1 == id2 and p1 == p2
    assert stat.S_IMODE(p1.stat().st_mode) == 0o600
    _, id3, _, created3 = ensure_signing_key(key_path=p1)
    assert id3 == id1 and not created3
    with pytest.raises(SlimError):
        ensure_signing_key(key_path=key_dir / "missing.key")


def test_cli_never_prints_private_material(key_dir, capsys, tmp_path):
    assert keys_main(["generate", "--name", "ci"]) == 0
    assert keys_main(["list"]) == 0
    assert keys_main(["export-public", "--name", "ci"]) == 0
    out = capsys.readouterr().out
    priv = (key_dir / "ci.key").read_text()
    body = "".join(l for l in priv.splitlines() if "-----" not in l)
    assert body not in out and "PRIVATE KEY-----" not in out
    assert "PUBLIC KEY" in out and "ci" in out
    assert keys_main(["export-public", "--name", "ci", "--out", str(tmp_path / "ci.pub")]) == 0
    assert (tmp_path / "ci.pub").read_bytes() == export_public("ci")
    assert [k["name"] for k in list_keys()] == ["ci"]
    assert keys_main(["export-public", "--name", "nope"]) == 2
    assert keys_main(["generate", "--name", "../escape"]) == 2
