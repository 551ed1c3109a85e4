"""Verify a signed build folder.

    python -m slim.verify builds/<name> [--key PUB ...] [--key-dir DIR]

Prints one line per check, ``PASS|FAIL|SKIP <check>: <detail>``, naming the
exact file or report field involved, and exits 0 only if nothing failed.
Trusted keys are the ``--key`` public key files, else every ``*.pub`` in the
key dir (``$SLIM_KEY_DIR`` or ``~/.config/slim/keys``).
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import sys
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
from securesystemslib.signer import Signature

from slim.errors import SlimError
from slim.signing.attest import (ATTESTATION_NAME, PAYLOAD_TYPE, REPORT_NAME, canonical_json,
                                 list_build_files, parent_digest_candidates, read_envelope,
                                 report_predicate, sha256_file, sslib_key)
from slim.signing.keys import key_id, load_public_key, load_trusted_keys

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
Result = tuple[str, str, str]
_MISSING = object()
_MAX_DEPTH = 32


# ---------------------------------------------------------------- helpers

def _short(v: Any, n: int = 60) -> str:
    s = json.dumps(v, sort_keys=True) if v is not _MISSING else "(absent)"
    return s if len(s) <= n else s[: n - 3] + "..."


def _join(prefix: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def first_difference(a: Any, b: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """First path (sorted-key order) where two JSON values differ: (path, a_value, b_value).
    Types are compared strictly (1 != 1.0 != True)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            d = first_difference(a.get(k, _MISSING), b.get(k, _MISSING), _join(prefix, k))
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            d = first_difference(a[i] if i < len(a) else _MISSING, b[i] if i < len(b) else _MISSING,
                                 _join(prefix, i))
            if d:
                return d
        return None
    if type(a) is not type(b) or a != b:
        return (prefix or "(root)", a, b)
    return None


def _normalize_trusted(trusted_keys) -> dict[str, Ed25519PublicKey]:
    if trusted_keys is None:
        return load_trusted_keys()
    if isinstance(trusted_keys, Mapping):
        return {key_id(k): k for k in trusted_keys.values()}
    out: dict[str, Ed25519PublicKey] = {}
    for k in trusted_keys:
        if isinstance(k, Ed25519PublicKey):
            out[key_id(k)] = k
        else:
            pk = load_public_key(k)
            out[key_id(pk)] = pk
    return out


def _safe_rel(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name


def _lookup(mapping: Mapping[str, Any], name: str) -> tuple[str | None, Any]:
    """Find ``name`` in a map of build-relative paths, also as ``model/<name>``
    (a compressed-tensors artifact lives under model/) or without that prefix."""
    for cand in (name, f"model/{name}", name[len("model/"):] if name.startswith("model/") else None):
        if cand is not None and cand in mapping:
            return cand, mapping[cand]
    return None, None


# ---------------------------------------------------------------- verification

def verify_build(path: str | os.PathLike, trusted_keys=None, *, check_parent: bool = True,
                 _seen: frozenset = frozenset()) -> list[Result]:
    """Verify a build folder. Returns [(status, check, detail)], status in PASS/FAIL/SKIP.

    ``trusted_keys``: {key_id: Ed25519PublicKey}, or an iterable of public
    keys / public key file paths, or None for every key in the default key dir.
    ``check_parent=False`` skips the parent dir and parent build checks (fast).
    """
    root = Path(path)
    if not root.is_dir():
        raise SlimError(f"build folder {root} not found")
    trusted = _normalize_trusted(trusted_keys)
    res: list[Result] = []
    add = lambda status, check, detail: res.append((status, check, detail))  # noqa: E731

    # -- report.json
    report: dict | None = None
    rp = root / REPORT_NAME
    if not rp.is_file():
        add(FAIL, "report", f"{REPORT_NAME} missing in {root}")
    else:
        try:
            report = json.loads(rp.read_text(encoding="utf-8"))
            if not isinstance(report, dict):
                raise ValueError("not a JSON object")
            add(PASS, "report", f"{REPORT_NAME} parses (schema {report.get('schema')!r})")
        except (ValueError, UnicodeDecodeError) as e:
            report = None
            add(FAIL, "report", f"{REPORT_NAME} is not valid JSON ({e})")

    # -- envelope
    statement = payload = env = None
    ap = root / ATTESTATION_NAME
    if not ap.is_file():
        add(FAIL, "envelope", f"{ATTESTATION_NAME} missing: the build is unsigned")
    else:
        try:
            env, payload, statement = read_envelope(ap)
            add(PASS, "envelope", f"{ATTESTATION_NAME} is a DSSE envelope with an in-toto Statement v1")
        except ValueError as e:
            add(FAIL, "envelope", str(e))

    # -- signature
    signer: str | None = None
    if env is None:
        add(SKIP, "signature", f"no readable {ATTESTATION_NAME}")
    elif not trusted:
        add(FAIL, "signature", "no trusted public keys (pass --key FILE or put *.pub in the key dir)")
    else:
        message = Envelope(payload, PAYLOAD_TYPE, {}).pae()
        seen_ids: list[str] = []
        bad_sig: list[str] = []
        for s in env["signatures"]:
            kid = str(s.get("keyid", ""))
            seen_ids.append(kid or "(no keyid)")
            try:
                sig = base64.b64decode(s.get("sig", ""), validate=True)
            except (binascii.Error, ValueError, TypeError):
                bad_sig.append(kid)
                continue
            candidates = [trusted[kid]] if kid in trusted else list(trusted.values())
            for pk in candidates:
                key = sslib_key(pk)
                try:
                    key.verify_signature(Signature(key.keyid, sig.hex()), message)
                    signer = key.keyid
                    break
                except (UnverifiedSignatureError, VerificationError):
                    continue
            if signer:
                break
            if kid in trusted:
                bad_sig.append(kid)
        if signer:
            add(PASS, "signature", f"{ATTESTATION_NAME} signed by trusted key {signer}")
        elif bad_sig:
            add(FAIL, "signature", f"{ATTESTATION_NAME}: signature by key {', '.join(bad_sig)} does not verify "
                                   f"(the envelope payload or signature was altered)")
        else:
            add(FAIL, "signature", f"{ATTESTATION_NAME} signed by key {', '.join(seen_ids)}, which is not trusted "
                                   f"(trusted: {', '.join(sorted(trusted))})")

    # -- report.json <-> statement
    if report is not None and payload is not None:
        sig_block = report.get("signature")
        if not isinstance(sig_block, dict) or not sig_block.get("signed"):
            add(FAIL, "statement_digest", f"{REPORT_NAME} has no signature block (signature.signed is not true)")
        else:
            want = sig_block.get("statement_sha256")
            got = hashlib.sha256(payload).hexdigest()
            if want == got:
                add(PASS, "statement_digest", f"{REPORT_NAME} signature.statement_sha256 matches the signed statement")
            else:
                add(FAIL, "statement_digest", f"{REPORT_NAME} signature.statement_sha256 is {_short(want)}, "
                                              f"signed statement is {got}")
            env_ids = {str(s.get("keyid")) for s in env["signatures"]}
            if sig_block.get("key_id") not in env_ids:
                add(FAIL, "signature_block", f"{REPORT_NAME} signature.key_id {_short(sig_block.get('key_id'))} "
                                             f"is not a signer in {ATTESTATION_NAME} ({', '.join(sorted(env_ids))})")
        pred = statement["predicate"]
        mine = report_predicate(report)
        if canonical_json(mine) == canonical_json(pred):
            add(PASS, "report_predicate", f"{REPORT_NAME} (without signature) equals the signed predicate")
        else:
            d = first_difference(mine, pred)
            if d is None:  # canonical text differs only in float/int spelling
                add(FAIL, "report_predicate", f"{REPORT_NAME} differs from the signed predicate")
            else:
                where, a, b = d
                add(FAIL, "report_predicate", f"{REPORT_NAME} field {where} is {_short(a)}, signed value is {_short(b)}")
    elif report is not None:
        add(SKIP, "report_predicate", f"no readable {ATTESTATION_NAME} to compare {REPORT_NAME} with")

    # -- files
    present = list_build_files(root)
    disk: dict[str, str] = {}

    def digest_of(rel: str) -> str:
        if rel not in disk:
            disk[rel] = sha256_file(root / rel)
        return disk[rel]

    subjects: dict[str, str] = {}
    if statement is not None:
        n_ok = 0
        for s in statement["subject"]:
            name, want = s["name"], s["digest"]["sha256"]
            if not _safe_rel(name):
                add(FAIL, "subject_digest", f"subject name {name!r} escapes the build folder")
                continue
            subjects[name] = want
            p = root / name
            if not p.is_file():
                add(FAIL, "subject_present", f"{name} is a signed subject but is missing from {root}")
                continue
            got = digest_of(name)
            if got != want:
                add(FAIL, "subject_digest", f"{name} sha256 is {got}, signed {want}")
            else:
                n_ok += 1
        if n_ok == len(statement["subject"]):
            add(PASS, "subject_digest", f"all {n_ok} signed files match their sha256")
        extra = [rel for rel in present if rel not in subjects]
        for rel in extra:
            add(FAIL, "no_extra_files", f"{rel} is in the build folder but not a signed subject")
        if not extra:
            add(PASS, "no_extra_files", f"no unsigned files in {root}")
    else:
        add(SKIP, "subject_digest", f"no readable {ATTESTATION_NAME}; file digests not checked against a statement")

    # -- artifact block of the report
    if report is not None:
        art = report.get("artifact") or {}
        files = art.get("files") if isinstance(art, dict) else None
        if not isinstance(files, dict) or not files:
            add(FAIL, "artifact_digests", f"{REPORT_NAME} artifact.files is missing or empty")
        else:
            bad = 0
            for name in sorted(files):
                meta = files[name] if isinstance(files[name], dict) else {}
                want = meta.get("sha256")
                if statement is not None:
                    subj, sd = _lookup(subjects, name)
                    if subj is None:
                        add(FAIL, "artifact_digests", f"{REPORT_NAME} artifact.files.{name} is not a signed subject")
                        bad += 1
                        continue
                    if sd != want:
                        add(FAIL, "artifact_digests", f"{REPORT_NAME} artifact.files.{name}.sha256 is {_short(want)}, "
                                                      f"signed subject {subj} is {sd}")
                        bad += 1
                        continue
                rel, _ = _lookup({r: None for r in present}, name)
                if rel is None:
                    add(FAIL, "artifact_digests", f"artifact file {name} named in {REPORT_NAME} is missing from {root}")
                    bad += 1
                    continue
                if statement is None and digest_of(rel) != want:
                    add(FAIL, "artifact_digests", f"{rel} sha256 is {digest_of(rel)}, {REPORT_NAME} "
                                                  f"artifact.files.{name}.sha256 is {_short(want)}")
                    bad += 1
                    continue
                size = (root / rel).stat().st_size
                if "bytes" in meta and meta["bytes"] != size:
                    add(FAIL, "artifact_digests", f"{rel} is {size} bytes, {REPORT_NAME} "
                                                  f"artifact.files.{name}.bytes is {_short(meta['bytes'])}")
                    bad += 1
            if not bad:
                add(PASS, "artifact_digests", f"{REPORT_NAME} artifact.files ({len(files)}) agree with the signed files")

    # -- parent link
    if report is not None:
        res.extend(_verify_parent(root, report, trusted, check_parent, _seen | {root.resolve()}))
    return res


def _verify_gguf_lineage(root: Path, want: str | None) -> list[Result]:
    """A GGUF carries its parent's digest in metadata (slim.parent.digest): it must be the report's."""
    gg = root / "model.gguf"
    if not gg.is_file():
        return []
    try:
        from slim.models.gguf_header import read_gguf_header
        got = read_gguf_header(gg, {"slim.parent.digest"})[0].get("slim.parent.digest")
    except SlimError as e:  # a corrupt GGUF already fails subject_digest; say why here too
        return [(FAIL, "gguf_lineage", f"model.gguf metadata unreadable: {e}")]
    if got is None:
        return [(FAIL, "gguf_lineage", "model.gguf has no slim.parent.digest metadata key")]
    if got != want:
        return [(FAIL, "gguf_lineage", f"model.gguf slim.parent.digest is {_short(got)}, "
                                       f"{REPORT_NAME} parent.digest is {_short(want)}")]
    return [(PASS, "gguf_lineage", "model.gguf metadata slim.parent.digest matches parent.digest")]


def _verify_onnx_lineage(root: Path, want: str | None) -> list[Result]:
    """An ONNX build carries its parent's digest in model.onnx metadata_props
    (slim.parent.digest): it must be the report's."""
    folder = root / "model"
    if not (folder / "genai_config.json").is_file():
        return []
    from slim.models.onnx_folder import model_file, read_lineage
    name = f"model/{model_file(folder).name}"
    try:
        got = read_lineage(folder).get("slim.parent.digest")
    except (SlimError, ImportError) as e:   # a corrupt graph already fails subject_digest
        return [(FAIL, "onnx_lineage", f"{name} metadata unreadable: {e}")]
    if got is None:
        return [(FAIL, "onnx_lineage", f"{name} has no slim.parent.digest metadata_props key")]
    if got != want:
        return [(FAIL, "onnx_lineage", f"{name} slim.parent.digest is {_short(got)}, "
                                       f"{REPORT_NAME} parent.digest is {_short(want)}")]
    return [(PASS, "onnx_lineage", f"{name} metadata_props slim.parent.digest matches "
                                   f"parent.digest")]


def _verify_parent(root: Path, report: dict, trusted: dict, check_parent: bool,
                   seen: frozenset) -> list[Result]:
    res: list[Result] = []
    add = lambda status, check, detail: res.append((status, check, detail))  # noqa: E731
    parent = report.get("parent")
    if not isinstance(parent, dict):
        add(FAIL, "parent_digest", f"{REPORT_NAME} has no parent block")
        return res
    pfiles = parent.get("files")
    if not isinstance(pfiles, dict) or not all(isinstance(v, str) for v in pfiles.values()):
        add(FAIL, "parent_digest", f"{REPORT_NAME} parent.files is missing or not a map of path -> sha256")
        return res
    if parent.get("digest") in parent_digest_candidates(pfiles):
        add(PASS, "parent_digest", f"parent.digest matches parent.files ({len(pfiles)} files)")
    else:
        add(FAIL, "parent_digest", f"{REPORT_NAME} parent.digest {_short(parent.get('digest'))} is not the sha256 "
                                   f"of parent.files ({sorted(parent_digest_candidates(pfiles))[0]})")
    res.extend(_verify_gguf_lineage(root, parent.get("digest")))
    res.extend(_verify_onnx_lineage(root, parent.get("digest")))

    if not check_parent:
        add(SKIP, "parent_dir", "parent checks not requested")
        return res

    # parent dir (the HF folder the build started from)
    pdir = parent.get("dir")
    if not pdir:
        add(SKIP, "parent_dir", f"{REPORT_NAME} parent.dir is not set")
    elif not Path(pdir).is_dir():
        add(SKIP, "parent_dir", f"parent dir {pdir} no longer exists; parent.files not re-hashed")
    else:
        bad = 0
        for rel in sorted(pfiles):
            p = Path(pdir) / rel
            if not _safe_rel(rel):
                add(FAIL, "parent_dir", f"parent.files name {rel!r} escapes the parent dir")
                bad += 1
            elif not p.is_file():
                add(FAIL, "parent_dir", f"{p} (parent.files.{rel}) is missing")
                bad += 1
            else:
                got = sha256_file(p)
                if got != pfiles[rel]:
                    add(FAIL, "parent_dir", f"{p} sha256 is {got}, parent.files.{rel} is {pfiles[rel]}")
                    bad += 1
        if not bad:
            add(PASS, "parent_dir", f"{len(pfiles)} files in {pdir} match parent.files")

    # parent build (a signed build this one was made from)
    pbuild = parent.get("build")
    if not pbuild:
        add(SKIP, "parent_build", f"{REPORT_NAME} parent.build is not set (parent is a source model)")
        return res
    pb = root.parent / str(pbuild)
    if not _safe_rel(str(pbuild)) or not pb.is_dir():
        add(FAIL, "parent_build", f"parent build {pbuild} (parent.build) not found at {pb}")
        return res
    if pb.resolve() in seen:
        add(FAIL, "parent_build", f"parent.build {pbuild} forms a lineage cycle")
        return res
    if len(seen) > _MAX_DEPTH:
        add(FAIL, "parent_build", f"lineage deeper than {_MAX_DEPTH} builds at {pbuild}")
        return res
    nested = verify_build(pb, trusted, check_parent=True, _seen=seen)
    failed = [(c, d) for s, c, d in nested if s == FAIL]
    for s, c, d in nested:
        res.append((s, f"parent[{pbuild}].{c}", d))
    if failed:
        c, d = failed[0]
        add(FAIL, "parent_build", f"parent build {pbuild} does not verify ({len(failed)} failure(s); first: {c}: {d})")
    else:
        add(PASS, "parent_build", f"parent build {pbuild} verifies")

    # its artifact is what this build says it started from
    try:
        prep = json.loads((pb / REPORT_NAME).read_text(encoding="utf-8"))
        pfiles_art = {k: (v or {}).get("sha256") for k, v in prep["artifact"]["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        add(FAIL, "parent_link", f"{pb / REPORT_NAME} has no readable artifact.files")
        return res
    bad = 0
    matched = set()
    for rel in sorted(pfiles):
        k, sha = _lookup(pfiles_art, rel)
        if k is None:
            add(FAIL, "parent_link", f"parent.files.{rel} is not an artifact file of parent build {pbuild}")
            bad += 1
        elif sha != pfiles[rel]:
            add(FAIL, "parent_link", f"parent.files.{rel} is {pfiles[rel]}, parent build {pbuild} "
                                     f"artifact.files.{k}.sha256 is {_short(sha)}")
            bad += 1
        else:
            matched.add(k)
    for k in sorted(set(pfiles_art) - matched):
        if _lookup(pfiles, k)[0] is None:
            add(FAIL, "parent_link", f"parent build {pbuild} artifact file {k} is not in parent.files")
            bad += 1
    if not bad:
        add(PASS, "parent_link", f"parent.files match the artifact of parent build {pbuild}")
    return res


def failed(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if r[0] == FAIL]


def signature_state(path: str | os.PathLike, trusted_keys=None) -> tuple[str, str]:
    """Quick state for listings: ("signed+valid" | "signed+INVALID" | "unsigned" |
    "signed (no trusted keys)", first failure detail).
    Checks signature, report binding and file digests; not the parent link."""
    root = Path(path)
    if not (root / ATTESTATION_NAME).is_file():
        return "unsigned", ""
    try:
        trusted = _normalize_trusted(trusted_keys)
        if not trusted:
            return "signed (no trusted keys)", "no trusted public keys to check the signature with"
        results = verify_build(root, trusted, check_parent=False)
    except SlimError as e:
        return "signed+INVALID", str(e)
    bad = failed(results)
    if bad:
        return "signed+INVALID", f"{bad[0][1]}: {bad[0][2]}"
    return "signed+valid", ""


# ---------------------------------------------------------------- CLI

def _resolve_build_arg(arg: str) -> Path:
    p = Path(arg).expanduser()
    if p.is_dir():
        return p
    alt = Path("builds") / arg
    if not p.is_absolute() and alt.is_dir():
        return alt
    raise SlimError(f"build folder {p} not found")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m slim.verify",
                                 description="Verify a signed build: signature, every file digest, parent link.")
    ap.add_argument("build", help="build folder, e.g. builds/<name>")
    ap.add_argument("--key", action="append", default=[], metavar="PUB",
                    help="trusted public key file (repeatable); default: every *.pub in the key dir")
    ap.add_argument("--key-dir", default=None, help="key dir (default $SLIM_KEY_DIR or ~/.config/slim/keys)")
    ap.add_argument("--no-parent", action="store_true", help="skip the parent dir and parent build checks")
    args = ap.parse_args(argv)
    try:
        root = _resolve_build_arg(args.build)
        trusted = load_trusted_keys(args.key, args.key_dir)
        if not trusted:
            from slim.signing.keys import resolve_key_dir
            raise SlimError(f"no trusted public keys: pass --key FILE or put *.pub files in "
                            f"{resolve_key_dir(args.key_dir)}")
        results = verify_build(root, trusted, check_parent=not args.no_parent)
    except SlimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for status, check, detail in results:
        print(f"{status} {check}: {detail}")
    bad = failed(results)
    n_pass = sum(1 for r in results if r[0] == PASS)
    n_skip = sum(1 for r in results if r[0] == SKIP)
    if bad:
        print(f"NOT VERIFIED {root}: {len(bad)} check(s) failed")
        return 1
    print(f"VERIFIED {root}: {n_pass} passed, {n_skip} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
