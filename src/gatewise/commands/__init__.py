"""The command line's subcommands: config, db, identity records, keys and usage.

Each module imports what it needs when its command runs, so ``gatewise --help``
stays fast and the server never loads the CLI's libraries.
"""
