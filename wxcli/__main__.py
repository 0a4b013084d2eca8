"""``python -m wxcli`` is the same as the ``wxcli`` command."""

from wxcli.cli import main

if __name__ == "__main__":
    main()
