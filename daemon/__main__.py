import sys

from daemon.cli.entry import entry

sys.exit(entry())
