"""``wxcli analyze``."""

from __future__ import annotations

import click

from wxcli.cli._context import AppContext


@click.command()
@click.option("--rebuild", is_flag=True, help="Forget all derived counts and make them again.")
@click.option("--since", help="Recount from this day on (7d, 2026-11-01); implies a rebuild.")
@click.option("--follow", is_flag=True, help="Keep up with new messages until stopped.")
@click.option("--db", "db_url", help="Database URL.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def analyze(
    app: AppContext,
    rebuild: bool,
    since: str | None,
    follow: bool,
    db_url: str | None,
    quiet: bool,
) -> None:
    """Segment and score archived messages into the tables `stats` reads.

    `watch` runs this in a separate process as messages arrive; run it by
    hand to backfill, on another machine sharing the database, or with
    --rebuild after changing [analysis] stopwords_file, user_dict, filters
    or timezone. Sentiment comes from snownlp, whose model was trained on
    shopping reviews: read its scores as trends, not verdicts.
    """
    import signal
    import threading

    from wxcli.analysis.worker import AnalysisWorker
    from wxcli.cli._output import err_console, warn
    from wxcli.store.archive import Archive, open_when_available
    from wxcli.timeutil import parse_when, zone

    stop = threading.Event()
    if follow:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        # Started by watch, perhaps while the database is down: wait for it.
        opened = open_when_available(app.config, app.home, db_url, stop, who="analysis")
        if opened is None:
            return
        archive = opened
    else:
        archive = Archive.from_config(app.config, app.home, db_url)
    cache = app.home / "cache"
    worker = AnalysisWorker(archive, app.config, cache_dir=cache)
    if since:
        when = parse_when(since, zone(app.config.settings.analysis.timezone))
        n = worker.rebuild(since=when)
        if not quiet:
            err_console().print(f"Recounted {n} messages from {since}.")
    elif rebuild:
        worker.rebuild()
    elif worker.outdated() and not quiet:
        warn(
            "the counts were made with other [analysis] settings; "
            "run `wxcli analyze --rebuild` to recount"
        )
    if follow:
        worker.follow(stop)
        return
    pending = worker.pending()
    if quiet or pending == 0:
        n = worker.drain()
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console(),
        ) as bar:
            task = bar.add_task("analysing", total=pending)
            n = worker.drain(on_progress=lambda k: bar.advance(task, k))
    p = worker.progress
    if not quiet:
        err_console().print(
            f"Analysed {p.processed} messages: {p.words} words counted, {p.scored} scored."
        )
    archive.close()
    del n
