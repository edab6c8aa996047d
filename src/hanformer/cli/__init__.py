"""The `hanformer` command line. Each module here registers one command (group).

A command module defines `ORDER` (its place in `--help`) and `register(subparsers)`,
which adds its parser and sets `func` to a handler taking the parsed arguments.
Handlers only parse arguments and call the matching public Python function, so the CLI
and the Python API stay mirrors of each other.
"""
