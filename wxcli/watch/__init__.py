"""``wxcli watch``: the long-running archive of one profile (see :mod:`wxcli.watch.loop` for
how its parts — live session, sync loop, writer, workers, relogin — fit together)."""
