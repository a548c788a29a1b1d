"""The demo: a generated tenant served by the simulator, synced into Azurite by the real CLI.

    python -m devtools.demo [--users 3000] [--seed 1] [--keep]

Runs Check Connectivity, a first sync, a change in the directory and a second sync, then shows
the Employees table. Nothing here needs an Azure account or the internet. With --keep the
simulator and Azurite stay up afterwards and the demo writes the environment the CLI needs to a
file to `source`, so you can run the commands yourself; Ctrl-C stops them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulator.testing import prepare_trust

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000, help="size of the tenant (default 3000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the simulator and Azurite running afterwards (Ctrl-C stops them)",
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="entra-sync-demo-"))
    # Trust first: aiohttp fixes its TLS context when imported, and the simulator imports it.
    ca = prepare_trust(workdir)
    from devtools.azurite import start_azurite
    from simulator import Simulator, World
    from simulator.generator import GeneratorOptions, generate_world

    world = generate_world(GeneratorOptions(users=args.users, seed=args.seed))
    tenant = world["tenants"][0]
    print(f"Entra Employee Sync demo: {tenant['displayName']}, {args.users:,} generated users")
    azurite = start_azurite()
    simulator = Simulator(World.from_dict(world), ca=ca)
    simulator.start()
    try:
        env = {
            **os.environ,
            **simulator.environment(),
            "TABLES_CONNECTION_STRING": azurite.connection_string,
        }
        env.pop("ENTRA_CLIENT_SECRET", None)
        print(f"  Entra ID, Graph and Key Vault simulated at {simulator.base_url}")
        print(f"  Table Storage: Azurite at http://127.0.0.1:{azurite.table_port}")
        print("  The client secret is read from the simulated Key Vault with the managed identity.")

        _step("Check Connectivity", env, "check")
        _step("First sync: everyone in scope is added", env, "sync")

        member = next(
            u for u in tenant["users"] if u.get("jobTitle") and u.get("accountEnabled") is not False
        )
        simulator.patch_user(tenant["id"], member["id"], {"jobTitle": "Head of Signatures"})
        print(f"\n(In the directory, {member['displayName']} becomes Head of Signatures.)")
        _step("Second sync: only the change is written", env, "sync")
        _step("The Employees table (first rows)", env, "employees", head=12)
        if args.keep:
            # The dev server's callback, registered as a redirect URI of the demo's app, so
            # that the README's linking walkthrough works on the first try.
            for host in ("localhost", "127.0.0.1"):
                simulator.add_redirect_uri(env["ENTRA_CLIENT_ID"], _dev_callback(host))
            _keep_running(workdir, {name: env[name] for name in _cli_environment(simulator)})
        else:
            print(
                "\nTry it yourself: `bash scripts/demo.sh --keep` keeps the simulator and "
                "Azurite running after the demo. The simulator and Azurite of this run stop now."
            )
    finally:
        simulator.stop()
        azurite.stop()
    return 0


DEV_SERVER_PORT = 7071  # devtools.devserver's default


def _dev_callback(host: str) -> str:
    return f"http://{host}:{DEV_SERVER_PORT}/api/connect/callback"


def _cli_environment(simulator: object) -> list[str]:
    names = list(simulator.environment())  # type: ignore[attr-defined]
    return [*names, "TABLES_CONNECTION_STRING"]


def _keep_running(workdir: Path, env: dict[str, str]) -> None:
    """Write the CLI's environment to a file to `source`, then wait for Ctrl-C."""
    env_file = workdir / "env.sh"
    env_file.write_text(
        "# Environment of the demo's simulator and Azurite (bash scripts/demo.sh --keep).\n"
        + "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())
    )
    print(
        "\nThe simulator and Azurite keep running. In another shell:\n\n"
        f"  source {env_file}\n"
        f"  {ROOT}/bin/sync-core runs\n"
        f"  {ROOT}/bin/sync-core employees --json | head -c 600\n"
        f"  {ROOT}/bin/sync-core config show\n\n"
        "In that shell, link a tenant and press Sync Now through the development server (it "
        "works the queue; the README's walkthrough):\n\n"
        f"  (cd {ROOT} && .venv/bin/python -m devtools.devserver --port {DEV_SERVER_PORT} &)\n"
        f"  curl -s -X POST http://localhost:{DEV_SERVER_PORT}/api/connect"
        ' -d \'{"account": "me"}\''
        "   # open its consentUrl in a browser: sign in, Accept\n"
        f"  (redirect URI registered: {_dev_callback('localhost')})\n\n"
        f"The environment ({env_file}):\n"
        + "".join(f"  {name}={value}\n" for name, value in env.items())
        + "\nPress Ctrl-C here to stop them.",
        flush=True,
    )
    # Ctrl-C or a plain `kill` ends the wait and the caller stops both. Set explicitly: a shell
    # without job control starts background commands with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping the simulator and Azurite", flush=True)


def _step(title: str, env: dict[str, str], *command: str, head: int | None = None) -> None:
    print(f"\n== {title}\n$ python -m sync_core {' '.join(command)}")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "sync_core", *command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.rstrip().splitlines()
    if head is not None and len(lines) > head + 1:
        lines = [*lines[:head], "...", lines[-1]]
    print("\n".join(lines))
    if result.stderr.strip():
        print(result.stderr.rstrip(), file=sys.stderr)
    print(f"(exit code {result.returncode}, {time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    sys.exit(main())
