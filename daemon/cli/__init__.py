"""The `pasd` command line, as a package: `entry` (the console script), `main` (the parser and the
dispatch), one module per group of commands, and `args`/`output` that every command uses.

This module stays empty so that `pasd start` (daemon/cli/entry.py) imports nothing it does not need.
"""
