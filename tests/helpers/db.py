"""The MariaDB every database test talks to (root, no password, as on the CI machine)."""

from __future__ import annotations

import socket

MYSQL_HOST = "127.0.0.1"
MYSQL_PORT = 3306


def mysql_available() -> bool:
    try:
        with socket.create_connection((MYSQL_HOST, MYSQL_PORT), timeout=1):
            return True
    except OSError:
        return False
