"""Statistics over the archive: report queries fill :mod:`wxcli.stats.model`, and the renderers
turn that model into tables, JSON lines, CSV, terminal charts and a self-contained HTML report."""
