"""sign_build / verify_build on fake build folders: every tamper is caught and named."""
from __future__ import annotations

import base64
import json

import pytest

from slim.errors import SlimError
from slim.signing.attest import canonical_json, pae, parent_digest
from slim.signing.keys import generate_key, load_trusted_keys
from slim.verify import FAIL, PASS, SKIP, main as verify_main, verify_build


def _fails(results):
    return [(c, d) for s, c, d in results if s == FAIL]


def _assert_fail(results, check, *needles):
    bad = _fails(results)
    hits = [(c, d) for c, d in bad if c == check and all(n in d for n in needles)]
    assert hits, f"expected FAIL {check} mentioning {needles}; got failures {bad}"


def test_sign_then_verify_passes(make_build, key_dir):
    d = make_build("q4")
    report = json.loads((d / "report.json").read_text())
    sig = report["signature"]
    assert sig["signed"] is True and len(sig["key_id"]) == 16
    assert sig["attestation"] == "attestation.intoto.json"
    env = json.loads((d / "attestation.intoto.json").read_text())
    assert env["payloadType"] == "application/vnd.in-toto+json"
    stmt = json.loads(base64.b64decode(env["payload"]))
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == "https://slim.dev/report/v1"
    names = [s["name"] for s in stmt["subject"]]
    assert names == sorted(names)
    assert "model.gguf" in names and "README.md" in names and "entry.json" in names and "Modelfile" in names
    assert "report.json" not in names and "attestation.intoto.json" not in names
    assert "signature" not in stmt["predicate"]
    # report.json stays canonical JSON
    assert (d / "report.json").read_text().rstrip("\n") == canonical_json(report)

    results = verify_build(d, load_trusted_keys())
    assert not _fails(results), results
    checks = {c for s, c, _ in results if s == PASS}
    assert {"envelope", "signature", "statement_digest", "report_predicate", "subject_digest",
            "no_extra_files", "artifact_digests", "parent_digest", "parent_dir"} <= checks


def test_dsse_signature_is_over_pae(make_build, key_dir):
    from cryptography.hazmat.primitives import serialization
    d = make_build("q4")
    env = json.loads((d / "attestation.intoto.json").read_text())
    payload = base64.b64decode(env["payload"])
    pub = serialization.load_pem_public_key((key_dir / "default.pub").read_bytes())
    pub.verify(base64.b64decode(env["signatures"][0]["sig"]), pae(env["payloadType"], payload))
    assert pae("t", b"xy") == b"DSSEv1 1 t 2 xy"


def test_flipped_artifact_byte_is_named(make_build, key_dir):
    d = make_build("q4")
    p = d / "model.gguf"
    b = bytearray(p.read_bytes())
    b[100] ^= 0x01
    p.write_bytes(bytes(b))
    _assert_fail(verify_build(d, load_trusted_keys()), "subject_digest", "model.gguf")


def test_edited_report_number_names_field(make_build, key_dir):
    d = make_build("q4")
    r = json.loads((d / "report.json").read_text())
    r["metrics"]["fidelity"]["kld_mean"] = 0.001
    (d / "report.json").write_text(canonical_json(r) + "\n")
    _assert_fail(verify_build(d, load_trusted_keys()), "report_predicate", "metrics.fidelity.kld_mean", "0.001")


def test_altered_envelope_signature_fails(make_build, key_dir):
    d = make_build("q4")
    ap = d / "attestation.intoto.json"
    env = json.loads(ap.read_text())
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[0] ^= 0xFF
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    ap.write_text(json.dumps(env))
    _assert_fail(verify_build(d, load_trusted_keys()), "signature", env["signatures"][0]["keyid"], "does not verify")


def test_altered_payload_fails_signature_and_digest(make_build, key_dir):
    d = make_build("q4")
    ap = d / "attestation.intoto.json"
    env = json.loads(ap.read_text())
    stmt = json.loads(base64.b64decode(env["payload"]))
    stmt["predicate"]["status"] = "rejected"
    env["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    ap.write_text(json.dumps(env))
    res = verify_build(d, load_trusted_keys())
    _assert_fail(res, "signature", "does not verify")
    _assert_fail(res, "statement_digest", "statement_sha256")
    _assert_fail(res, "report_predicate", "status")


def test_deleted_subject_is_named(make_build, key_dir):
    d = make_build("q4")
    (d / "events.jsonl").unlink()
    _assert_fail(verify_build(d, load_trusted_keys()), "subject_present", "events.jsonl", "missing")


def test_deleted_artifact_is_named(make_build, key_dir):
    d = make_build("q4")
    (d / "model.gguf").unlink()
    res = verify_build(d, load_trusted_keys())
    _assert_fail(res, "subject_present", "model.gguf")
    _assert_fail(res, "artifact_digests", "model.gguf")


def test_extra_file_is_named(make_build, key_dir):
    d = make_build("q4")
    (d / "model").mkdir()
    (d / "model" / "backdoor.bin").write_bytes(b"x")
    _assert_fail(verify_build(d, load_trusted_keys()), "no_extra_files", "model/backdoor.bin")


def test_untrusted_key_names_key_id(make_build, key_dir, tmp_path):
    d = make_build("q4")
    kid = json.loads((d / "report.json").read_text())["signature"]["key_id"]
    other_id, _, other_pub = generate_key("other", tmp_path / "other_keys")
    res = verify_build(d, load_trusted_keys([other_pub]))
    _assert_fail(res, "signature", kid, "not trusted")
    # the CLI: exit 1 and a FAIL line naming the key
    assert verify_main([str(d), "--key", str(other_pub)]) == 1


def test_resigned_by_attacker_key_is_untrusted(make_build, key_dir, tmp_path):
    from slim.signing.attest import sign_build
    d = make_build("q4")
    trusted = load_trusted_keys()
    (d / "model.gguf").write_bytes(b"GGUF evil")
    r = json.loads((d / "report.json").read_text())
    r["artifact"]["files"]["model.gguf"] = {"bytes": 9, "sha256": __import__("hashlib").sha256(b"GGUF evil").hexdigest()}
    (d / "report.json").write_text(canonical_json(r))
    evil_id, evil_priv, _ = generate_key("evil", tmp_path / "evil")
    sign_build(d, private_key_path=evil_priv)
    _assert_fail(verify_build(d, trusted), "signature", evil_id, "not trusted")


def test_unsigned_build_fails(make_build, key_dir):
    d = make_build("raw", sign=False)
    generate_key("default", key_dir)
    _assert_fail(verify_build(d, load_trusted_keys()), "envelope", "attestation.intoto.json missing")


def test_parent_dir_tampered_is_named(make_build, key_dir):
    d = make_build("q4")
    p = make_build.parent_dir / "model.safetensors"
    p.write_bytes(p.read_bytes()[:-1] + b"\x00")
    _assert_fail(verify_build(d, load_trusted_keys()), "parent_dir", "model.safetensors")


def test_parent_dir_gone_is_skipped(make_build, key_dir):
    import shutil
    d = make_build("q4")
    shutil.rmtree(make_build.parent_dir)
    res = verify_build(d, load_trusted_keys())
    assert not _fails(res)
    assert any(s == SKIP and c == "parent_dir" and "no longer exists" in det for s, c, det in res)


def test_parent_digest_mismatch(make_build, key_dir):
    from slim.signing.attest import sign_build
    d = make_build("q4", sign=False)
    r = json.loads((d / "report.json").read_text())
    r["parent"]["digest"] = "sha256:" + "0" * 64
    (d / "report.json").write_text(canonical_json(r))
    sign_build(d)
    _assert_fail(verify_build(d, load_trusted_keys()), "parent_digest", "parent.digest")
    assert parent_digest(r["parent"]["files"]).startswith("sha256:")


def test_parent_build_chain_passes(make_build, key_dir):
    make_build("wanda50", gguf=False, method="wanda50")
    c = make_build("wanda50_q4", parent_build="wanda50")
    res = verify_build(c, load_trusted_keys())
    assert not _fails(res), _fails(res)
    assert any(s == PASS and ch == "parent_build" for s, ch, _ in res)
    assert any(s == PASS and ch == "parent_link" for s, ch, _ in res)
    assert any(ch.startswith("parent[wanda50].") for _, ch, _ in res)


def test_broken_parent_build_attestation_fails_child(make_build, key_dir):
    p = make_build("wanda50", gguf=False, method="wanda50")
    c = make_build("wanda50_q4", parent_build="wanda50")
    ap = p / "attestation.intoto.json"
    env = json.loads(ap.read_text())
    env["signatures"][0]["sig"] = base64.b64encode(b"\x00" * 64).decode()
    ap.write_text(json.dumps(env))
    res = verify_build(c, load_trusted_keys())
    _assert_fail(res, "parent_build", "wanda50", "signature")
    _assert_fail(res, "parent[wanda50].signature", "does not verify")
    assert verify_main([str(c)]) == 1


def test_parent_build_artifact_mismatch(make_build, key_dir):
    from slim.signing.attest import sign_build
    make_build("wanda50", gguf=False, method="wanda50")
    c = make_build("wanda50_q4", parent_build="wanda50", sign=False)
    r = json.loads((c / "report.json").read_text())
    r["parent"]["files"]["model/model.safetensors"] = "f" * 64
    r["parent"]["digest"] = parent_digest(r["parent"]["files"])
    r["parent"]["dir"] = None
    (c / "report.json").write_text(canonical_json(r))
    sign_build(c)
    _assert_fail(verify_build(c, load_trusted_keys()), "parent_link", "model/model.safetensors")


def test_cli_pass_output_and_exit_code(make_build, key_dir, capsys):
    d = make_build("q4")
    assert verify_main([str(d)]) == 0
    out = capsys.readouterr().out
    for line in out.strip().splitlines()[:-1]:
        assert line.split(" ", 1)[0] in ("PASS", "FAIL", "SKIP"), line
    assert "PASS signature:" in out and "VERIFIED" in out


def test_cli_user_errors_are_one_line(tmp_path, key_dir, capsys):
    assert verify_main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: build folder") and "Traceback" not in err
    (tmp_path / "b").mkdir()
    assert verify_main([str(tmp_path / "b")]) == 2   # no trusted keys in the empty key dir
    assert "no trusted public keys" in capsys.readouterr().err
    with pytest.raises(SlimError):
        verify_build(tmp_path / "nope", {})


def test_sign_missing_build_raises(tmp_path, key_dir):
    from slim.signing.attest import sign_build
    with pytest.raises(SlimError):
        sign_build(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SlimError):
        sign_build(tmp_path / "empty")


def test_compressed_tensors_subjects_under_model(make_build, key_dir):
    d = make_build("gptq", gguf=False, method="gptq_w4")
    res = verify_build(d, load_trusted_keys())
    assert not _fails(res), _fails(res)
    (d / "model" / "config.json").write_text('{"x": 1}')
    _assert_fail(verify_build(d, load_trusted_keys()), "subject_digest", "model/config.json")


def test_envelope_verifies_with_securesystemslib(make_build, key_dir):
    """The envelope is standard DSSE: securesystemslib's own Envelope.verify accepts it,
    and rejects it once one payload byte changes."""
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    from slim.signing.keys import key_id
    d = make_build("q4")
    env = json.loads((d / "attestation.intoto.json").read_text())
    pub = serialization.load_pem_public_key((key_dir / "default.pub").read_bytes())
    key = SSlibKey.from_crypto(pub, keyid=key_id(pub))
    accepted = Envelope.from_dict(json.loads(json.dumps(env))).verify([key], 1)
    assert list(accepted) == [key_id(pub)]
    forged = json.loads(json.dumps(env))
    payload = bytearray(base64.b64decode(forged["payload"]))
    payload[-2] ^= 1
    forged["payload"] = base64.b64encode(bytes(payload)).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(forged).verify([key], 1)
