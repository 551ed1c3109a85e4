"""Sign a build folder: in-toto Statement v1 in a DSSE envelope, Ed25519.

The envelope, its pre-authentication encoding and the signature come from
securesystemslib (``dsse.Envelope``, ``CryptoSigner``, ``SSlibKey``); slim only
builds the statement. (in-toto-attestation's Statement is a protobuf message
whose ``Struct`` predicate turns every integer into a float, so the signed
predicate would no longer equal report.json; the statement stays plain JSON.)

The statement's subjects are every file of the build folder except
``report.json`` (which carries the signature block) and the attestation
itself; its predicate is report.json without its ``signature`` field. After
signing, report.json gains::

    "signature": {"signed": true, "key_id": ..., "statement_sha256": ...,
                  "attestation": "attestation.intoto.json"}

so that anyone holding the report can tell which statement it belongs to.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from slim import fileio
from slim.errors import SlimError
from slim.fileio import atomic_write_bytes
from slim.signing.keys import ensure_signing_key, key_id

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slim.dev/report/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
ATTESTATION_NAME = "attestation.intoto.json"
REPORT_NAME = "report.json"
EXCLUDED = frozenset({REPORT_NAME, ATTESTATION_NAME})


# ---------------------------------------------------------------- helpers

def canonical_json(obj: Any) -> str:
    """The readable canonical JSON text (what report.json holds; parent.digest hashes it)."""
    return fileio.canonical_json(obj, indent=2)


def sha256_file(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def files_sha256(root: Path) -> dict[str, str]:
    """sha256 of every file under root (or of root itself when it is a file), by relative path."""
    root = Path(root)
    if root.is_file():
        return {root.name: sha256_file(root)}
    return {p.relative_to(root).as_posix(): sha256_file(p)
            for p in sorted(root.rglob("*")) if p.is_file()}


def parent_digest(files: dict[str, str]) -> str:
    """``parent.digest``: "sha256:" + sha256 of the canonical JSON of ``parent.files``."""
    return "sha256:" + hashlib.sha256(canonical_json(files).encode("utf-8")).hexdigest()


def parent_digest_candidates(files: dict[str, str]) -> set[str]:
    """Digests a verifier accepts for ``parent.files``: canonical (indent=2) and compact JSON."""
    compact = fileio.canonical_json(files)
    return {parent_digest(files), "sha256:" + hashlib.sha256(compact.encode("utf-8")).hexdigest()}


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (securesystemslib's)."""
    return Envelope(payload, payload_type, {}).pae()


def sslib_key(public_key: Ed25519PublicKey) -> SSlibKey:
    """securesystemslib's view of a slim public key, under slim's key id."""
    return SSlibKey.from_crypto(public_key, keyid=key_id(public_key))


def list_build_files(build_dir: str | os.PathLike) -> list[str]:
    """Every regular file under build_dir except report.json and the attestation,
    as sorted relative POSIX paths."""
    root = Path(build_dir)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in filenames:
            p = Path(dirpath) / fn
            rel = p.relative_to(root).as_posix()
            if rel in EXCLUDED or not p.is_file():
                continue
            out.append(rel)
    return sorted(out)


def collect_subjects(build_dir: str | os.PathLike) -> list[dict]:
    root = Path(build_dir)
    return [{"name": rel, "digest": {"sha256": sha256_file(root / rel)}}
            for rel in list_build_files(root)]


def write_report(path: str | os.PathLike, report: dict) -> None:
    fileio.write_json(path, report)


def statement_payload(statement: dict) -> bytes:
    """Bytes of the statement as signed: the compact canonical JSON."""
    return fileio.canonical_json(statement).encode("utf-8")


def report_predicate(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "signature"}


def read_envelope(path: str | os.PathLike) -> tuple[dict, bytes, dict]:
    """Parse an attestation file. Returns (envelope, payload bytes, statement).
    Raises ValueError with a precise message on any structural problem."""
    try:
        env = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{Path(path).name} is not valid JSON ({e})") from None
    if not isinstance(env, dict):
        raise ValueError(f"{Path(path).name}: envelope is not a JSON object")
    if env.get("payloadType") != PAYLOAD_TYPE:
        raise ValueError(f"{Path(path).name}: payloadType is {env.get('payloadType')!r}, expected {PAYLOAD_TYPE!r}")
    if not isinstance(env.get("payload"), str):
        raise ValueError(f"{Path(path).name}: payload missing")
    try:
        payload = base64.b64decode(env["payload"], validate=True)
    except (ValueError, TypeError):
        raise ValueError(f"{Path(path).name}: payload is not valid base64") from None
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs or not all(isinstance(s, dict) for s in sigs):
        raise ValueError(f"{Path(path).name}: signatures missing or empty")
    try:
        statement = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{Path(path).name}: payload is not JSON ({e})") from None
    if not isinstance(statement, dict):
        raise ValueError(f"{Path(path).name}: statement is not a JSON object")
    if statement.get("_type") != STATEMENT_TYPE:
        raise ValueError(f"{Path(path).name}: statement _type is {statement.get('_type')!r}, expected {STATEMENT_TYPE!r}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise ValueError(f"{Path(path).name}: predicateType is {statement.get('predicateType')!r}, "
                         f"expected {PREDICATE_TYPE!r}")
    subj = statement.get("subject")
    if not isinstance(subj, list) or not all(
            isinstance(s, dict) and isinstance(s.get("name"), str)
            and isinstance(s.get("digest"), dict) and isinstance(s["digest"].get("sha256"), str)
            for s in subj):
        raise ValueError(f"{Path(path).name}: statement subject list is malformed")
    if not isinstance(statement.get("predicate"), dict):
        raise ValueError(f"{Path(path).name}: statement predicate is not an object")
    return env, payload, statement


# ---------------------------------------------------------------- signing

def sign_build(build_dir: str | os.PathLike, private_key_path: str | os.PathLike | None = None,
               key_dir: str | os.PathLike | None = None) -> dict:
    """Sign a build folder; returns the signature block added to report.json.

    Uses ``private_key_path`` if given, else the default key of the key dir,
    created on first use. A caller that wants to announce a new key itself
    calls :func:`ensure_signing_key` first; otherwise a one-line note naming
    the new key's path is printed to stderr here.
    """
    root = Path(build_dir)
    if not root.is_dir():
        raise SlimError(f"build folder {root} not found")
    report_path = root / REPORT_NAME
    if not report_path.is_file():
        raise SlimError(f"{report_path} not found: nothing to sign")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SlimError(f"{report_path} is not valid JSON ({e})") from None
    if not isinstance(report, dict):
        raise SlimError(f"{report_path} is not a JSON object")

    key, kid, key_path, created = ensure_signing_key(private_key_path, key_dir)
    if created:
        print(f"created signing key {kid} at {key_path} (public key beside it)", file=sys.stderr)

    statement = {
        "_type": STATEMENT_TYPE,
        "subject": collect_subjects(root),
        "predicateType": PREDICATE_TYPE,
        "predicate": report_predicate(report),
    }
    payload = statement_payload(statement)
    envelope = Envelope(payload, PAYLOAD_TYPE, {})
    envelope.sign(CryptoSigner(key, sslib_key(key.public_key())))
    atomic_write_bytes(root / ATTESTATION_NAME,
                       (json.dumps(envelope.to_dict(), indent=2) + "\n").encode("utf-8"))

    signature = {
        "signed": True,
        "key_id": kid,
        "statement_sha256": hashlib.sha256(payload).hexdigest(),
        "attestation": ATTESTATION_NAME,
    }
    report = dict(report)
    report["signature"] = signature
    write_report(report_path, report)
    return dict(signature)
