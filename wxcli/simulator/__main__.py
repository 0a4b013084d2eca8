"""``python -m wxcli.simulator`` — the same as ``wxcli sim``."""

import sys

from wxcli.cli import main

if __name__ == "__main__":
    main(["sim", *sys.argv[1:]])
