"""CLI subcommands; each module has ``register(subparsers)``. See :mod:`phanet.cli`."""
