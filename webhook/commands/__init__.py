"""One module per `multus-webhook` subcommand; each exposes ``register(subparsers)``."""
