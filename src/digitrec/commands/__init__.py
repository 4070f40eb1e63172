"""One module per `digitrec` subcommand, each with `register(subparsers)`; cli.py finds them all."""
