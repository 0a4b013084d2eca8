"""What tests share: fake servers that speak real protocols over sockets (``servers``: webhook
receiver and SMTP; ``oss_server``; ``tcpproxy``/``tlsproxy`` to cut or delay a connection),
the CLI in-process or as a process (``cli``), a running ``watch`` (``watch``), logins and
images for sends (``send``), simulator helpers, MariaDB (``db``), ``wait_until`` (``waiting``),
the analysed archive the stats tests know by heart (``known_archive``) and ``msg()``
(``messages``).

Fixtures that pytest must find stay in ``tests/conftest.py``; plain functions and classes live
here, so a test imports them by name instead of from another test module."""
