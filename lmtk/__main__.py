"""``python -m lmtk list [KIND]``: print the registered components."""

from __future__ import annotations

import argparse
import sys

from .registry import RegistryError, list_components


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lmtk", description="lmtk, the latent motion toolkit")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list registered components (built-in and plugins)")
    listing.add_argument("kind", nargs="?", help="one kind, e.g. motion_bases")
    args = parser.parse_args(argv)
    try:
        catalogue = list_components(args.kind)
    except RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for kind, names in catalogue.items():
        print(f"{kind}:")
        for name in names or ["(none)"]:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
