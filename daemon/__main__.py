import sys

from daemon.launch import entry

sys.exit(entry())
