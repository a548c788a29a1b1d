"""Command line: ``generate`` writes a world file, ``serve`` runs a simulator until stopped."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from .certs import CertificateAuthority
from .generator import GeneratorOptions, generate_world
from .world import World, WorldError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write a synthetic world file")
    generate.add_argument("--users", type=int, required=True)
    generate.add_argument("--seed", type=int, default=1)
    generate.add_argument("--out", type=Path, help="file to write (default: standard output)")
    generate.add_argument("--tenant-id")
    generate.add_argument("--client-id")
    generate.add_argument("--client-secret")
    generate.add_argument("--tenant-name", default="Contoso Ltd")
    generate.add_argument(
        "--managers-span", type=int, default=0, help="one manager per N users (0: no managers)"
    )

    serve = commands.add_parser("serve", help="serve a world over HTTPS until stopped")
    serve.add_argument("--world", type=Path, required=True)
    serve.add_argument("--host", default="localhost")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".sim"),
        help="holds ca.pem (reused across runs) and the env file",
    )

    args = parser.parse_args(argv)
    if args.command == "generate":
        return _generate(args)
    return _serve(args)


def _generate(args: argparse.Namespace) -> int:
    if args.users < 0:
        print("--users must be >= 0", file=sys.stderr)
        return 2
    world = generate_world(
        GeneratorOptions(
            users=args.users,
            seed=args.seed,
            tenant_id=args.tenant_id,
            client_id=args.client_id,
            client_secret=args.client_secret,
            tenant_name=args.tenant_name,
            managers_span=max(args.managers_span, 0),
        )
    )
    text = json.dumps(world, indent=1, ensure_ascii=False) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        world = World.load(args.world)
    except (OSError, json.JSONDecodeError, WorldError) as error:
        print(f"cannot load {args.world}: {error}", file=sys.stderr)
        return 2
    ca = CertificateAuthority.load_or_create(args.state_dir)
    # Imported only now: aiohttp must not load before a caller had the chance to trust the CA.
    from .harness import Simulator

    simulator = Simulator(world, ca=ca, host=args.host, port=args.port)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    simulator.start()
    try:
        env_file = args.state_dir / "env"
        env_file.write_text(
            "".join(f"{k}={v}\n" for k, v in simulator.environment().items()), encoding="utf-8"
        )
        env_file.chmod(0o600)  # IDENTITY_HEADER is a shared secret
        print(simulator.base_url, flush=True)
        print(f"settings written to {env_file}", file=sys.stderr, flush=True)
        stopping.wait()
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
