"""Opening the archive for read commands (history, stats), with the demo fallback."""

from __future__ import annotations

from wxcli.cli._context import AppContext
from wxcli.cli._output import warn


def open_archive(app: AppContext, db_url: str | None = None):
    """The configured archive; before any real archive exists, the one `wxcli demo` made."""
    from wxcli.errors import UsageError
    from wxcli.store.archive import Archive

    configured = db_url or app.config.settings.database.url
    if not configured and not app.paths.default_db.exists():
        demo_db = app.home / "demo" / "wxcli.db"
        if demo_db.exists():
            warn(f"no archive yet; showing the demo archive ({demo_db})")
            return Archive(f"sqlite:///{demo_db}", app.home)
        raise UsageError(
            "the archive is empty: run `wxcli watch` (or `wxcli demo` to try it) first"
        )
    return Archive.from_config(app.config, app.home, db_url)
