"""The `phanet` command line: one entry point, one subcommand per module under ``phanet.commands``.

Each command module defines ``register(subparsers)`` which adds its parser and sets ``func`` to a
thin function calling the library. Heavy imports happen inside those functions so that
``phanet --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Thread policy, set before torch (and its OpenMP runtime) loads; a value in the user's environment wins.
# PASSIVE: an OpenMP thread that waits for work sleeps instead of spinning. On a CPU shared with other
# processes a spinning thread burns the time slice its partner thread needs, and training steps get
# several times slower (measured: benchmarks/README.md, "Thread wait policy" and "Contention").
THREAD_ENV_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}
for _key, _value in THREAD_ENV_DEFAULTS.items():
    os.environ.setdefault(_key, _value)

# Order is the order shown in `phanet --help`.
COMMAND_MODULES = (
    "demo",
    "train",
    "evaluate",
    "cv",
    "synth",
    "data",
    "predict",
    "export",
    "average",
    "info",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phanet",
        description="Pose-robust facial expression recognition with PhaNet "
        "(pose-adaptive hierarchical attention network, Liu et al., arXiv:1905.10059).",
        epilog="Run `phanet demo --quick` to see the whole pipeline on built-in synthetic faces.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:  # a listed module that is missing is a broken install: fail loudly
        importlib.import_module(f"phanet.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, KeyError) as err:  # user errors: a clear line, no traceback (-v shows it)
        if args.verbose:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err  # no repr quotes
        print(f"phanet {args.command}: error: {message}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
