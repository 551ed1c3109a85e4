"""``python -m slim.studio [--port N] [--builds DIR] [--allow-builds] [--host H]``."""
from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

import slim  # noqa: F401  (offline defaults before any HF import)
from slim.errors import SlimError

LOCAL = ("127.0.0.1", "localhost", "::1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m slim.studio",
                                 description="Local web pages over builds/: variants per parent, "
                                             "reports, lineage, sweeps and builds in progress.")
    ap.add_argument("--builds", default="builds", help="builds folder (default ./builds)")
    ap.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--allow-builds", action="store_true",
                    help="add a form that starts builds (off: the studio is read-only)")
    ap.add_argument("--key", action="append", default=[], metavar="PUB",
                    help="trusted public key file for verify (repeatable)")
    ap.add_argument("--key-dir", default=None,
                    help="key dir for trusted keys (default $SLIM_KEY_DIR or ~/.config/slim/keys)")
    return ap.parse_args(argv)


def _is_local(host: str) -> bool:
    if host in LOCAL:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    builds = Path(args.builds).expanduser().resolve()
    if not builds.is_dir():
        if args.allow_builds:
            builds.mkdir(parents=True)
        else:
            print(f"slim.studio: error: builds folder {builds} not found (build something first, "
                  f"or pass --builds DIR)", file=sys.stderr)
            return 2
    if not 0 < args.port < 65536:
        print(f"slim.studio: error: --port {args.port} is not a port (1-65535)", file=sys.stderr)
        return 2
    try:
        from slim.signing.keys import load_trusted_keys
        trusted = load_trusted_keys(args.key, args.key_dir)
    except SlimError as e:
        print(f"slim.studio: error: {e}", file=sys.stderr)
        return 2
    import uvicorn

    from slim.studio.app import StudioConfig, create_app
    app = create_app(StudioConfig(builds=builds, trusted=trusted, allow_builds=args.allow_builds))
    host_url = f"[{args.host}]" if ":" in args.host else args.host
    reach = ("this machine only" if _is_local(args.host)
             else "ANY machine that can reach this address: reports and artifacts are served "
                  "without a login")
    mode = "builds allowed from the form" if args.allow_builds else "read-only"
    print(f"slim studio: http://{host_url}:{args.port}/  builds {builds}  ({mode}; bound to "
          f"{args.host}: {reach}; {len(trusted)} trusted key(s))", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
