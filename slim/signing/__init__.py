"""Signing and verification of build folders (DESIGN §6)."""
from slim.signing.attest import (ATTESTATION_NAME, PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE,
                                 canonical_json, collect_subjects, pae, parent_digest, sha256_file,
                                 sign_build)
from slim.signing.keys import (default_key_dir, ensure_signing_key, generate_key, key_id,
                               load_public_key, load_trusted_keys)

__all__ = [
    "ATTESTATION_NAME", "PAYLOAD_TYPE", "PREDICATE_TYPE", "STATEMENT_TYPE", "canonical_json",
    "collect_subjects", "pae", "parent_digest", "sha256_file", "sign_build", "default_key_dir",
    "ensure_signing_key", "generate_key", "key_id", "load_public_key", "load_trusted_keys",
]
