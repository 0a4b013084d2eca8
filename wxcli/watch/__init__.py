"""The long-running sync loop (``wxcli watch``) and its health record."""
