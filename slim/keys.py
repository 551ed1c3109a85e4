"""Manage slim signing keys.

    python -m slim.keys generate [--name NAME] [--dir DIR] [--force]
    python -m slim.keys list [--dir DIR]
    python -m slim.keys export-public [--name NAME] [--dir DIR] [--out FILE]

Private keys never leave the key dir through this command: only key ids,
paths and public keys are printed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from slim.errors import SlimError
from slim.signing.keys import (DEFAULT_KEY_NAME, export_public, generate_key, list_keys,
                               resolve_key_dir)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m slim.keys", description="Manage Ed25519 signing keys.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="create a key pair")
    g.add_argument("--name", default=DEFAULT_KEY_NAME)
    g.add_argument("--dir", default=None, help="key dir (default $SLIM_KEY_DIR or ~/.config/slim/keys)")
    g.add_argument("--force", action="store_true", help="replace an existing key of that name")
    ls = sub.add_parser("list", help="list keys in the key dir")
    ls.add_argument("--dir", default=None)
    e = sub.add_parser("export-public", help="print (or write) a public key")
    e.add_argument("--name", default=DEFAULT_KEY_NAME)
    e.add_argument("--dir", default=None)
    e.add_argument("--out", default=None, help="write to FILE instead of stdout")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "generate":
            kid, priv, pub = generate_key(args.name, args.dir, overwrite=args.force)
            print(f"created key {args.name} (id {kid})")
            print(f"  private: {priv} (mode 0600; keep it secret)")
            print(f"  public:  {pub} (share this to let others verify your builds)")
        elif args.cmd == "list":
            keys = list_keys(args.dir)
            d = resolve_key_dir(args.dir)
            if not keys:
                print(f"no keys in {d} (create one with: python -m slim.keys generate)")
                return 0
            print(f"keys in {d}:")
            w = max(len(k["name"]) for k in keys)
            for k in keys:
                kind = "private+public" if k["private"] and k["public"] else (
                    "private" if k["private"] else "public only")
                print(f"  {k['name']:<{w}}  {k['key_id'] or '(unreadable)':<16}  {kind}")
        elif args.cmd == "export-public":
            pem = export_public(args.name, args.dir)
            if args.out:
                out = Path(args.out).expanduser()
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(pem)
                print(f"wrote public key to {out}")
            else:
                sys.stdout.write(pem.decode("ascii"))
    except SlimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
