"""``wxcli stats``: words, activity, speakers, sentiment and the HTML report.

Each command opens the archive, asks :class:`wxcli.stats.queries.Stats` for one set of rows and
hands them to the renderers: terminal charts for ``--format table``, JSON lines or CSV for
scripts.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from wxcli.cli._context import AppContext

SENTIMENT_CAVEAT = (
    "Sentiment comes from snownlp, whose model was trained on shopping reviews, not on chat: "
    "single scores can be wrong, so read them as trends, not verdicts."
)
FORMATS = ("table", "json", "csv")


def _common(top: int | None, formats: Sequence[str] = FORMATS) -> Callable[[Any], Any]:
    """The options every stats command takes."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option(
                "--chat",
                "chats",
                multiple=True,
                help="Chat name or glob (客服*), current or former; repeatable. Default: all.",
            ),
            click.option(
                "--since",
                help="Start: 7d, 12h, 2026-11-01 … (whole local days of [analysis] timezone). "
                "Default: the 30 days up to --until.",
            ),
            click.option(
                "--until", help="End, same forms as --since (its day included). Default: now."
            ),
        ]
        if top is not None:
            options.append(
                click.option(
                    "--top",
                    default=top,
                    show_default=True,
                    type=click.IntRange(1),
                    help="How many rows.",
                )
            )
        options += [
            click.option(
                "--format",
                "fmt",
                type=click.Choice(list(formats)),
                default="table",
                show_default=True,
                help="table: charts for people; json: JSON lines; csv: for spreadsheets.",
            ),
            click.option(
                "--lang",
                type=click.Choice(["zh", "en"]),
                default="zh",
                show_default=True,
                help="Chart labels.",
            ),
            click.option("--db", "db_url", help="Database URL [default: [database] url]."),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return wrap


class _Run:
    """One stats invocation: the archive, the period and the rows' way out."""

    def __init__(
        self,
        app: AppContext,
        chats: tuple[str, ...],
        since: str | None,
        until: str | None,
        fmt: str,
        lang: str,
        db_url: str | None,
    ):
        from wxcli.cli._archive import open_archive
        from wxcli.cli._output import warn
        from wxcli.stats.queries import Stats, period_from
        from wxcli.timeutil import zone

        cfg = app.config
        self.fmt, self.lang = fmt, lang
        self.tz_name = cfg.settings.analysis.timezone
        tz = zone(self.tz_name)
        period = period_from(since, until, tz)
        self.archive = open_archive(app, db_url)
        try:
            self.stats = Stats(
                self.archive,
                period,
                chats,
                negative_threshold=cfg.settings.analysis.negative_threshold,
            )
        except BaseException:
            self.archive.close()
            raise
        made_in = self.stats.analysis_timezone()
        if made_in and made_in != self.tz_name:
            warn(
                f"the counts were made in time zone {made_in}, not {self.tz_name}: "
                "run `wxcli analyze --rebuild` to recount by the configured zone"
            )
        pending = self.stats.pending()
        if pending:
            warn(
                f"{pending:,} messages are not analysed yet and are not in these figures "
                "(run `wxcli analyze`, or keep `wxcli watch` running)"
            )

    def close(self) -> None:
        self.archive.close()

    def console(self) -> Any:
        from wxcli.cli._output import out_console

        return out_console()

    def heading(self, title: str) -> None:
        from rich.text import Text

        s = self.stats
        p = s.period
        last = p.until_day.fromordinal(p.until_day.toordinal() - 1)
        chats = f"{len(s.names)} chats" if s.chat_ids is not None else "all chats"
        line = Text(title, style="bold")
        line.append(f"  {p.since_day} – {last} ({self.tz_name}) · {chats}", style="dim")
        self.console().print(line)

    def rows(self, rows: Sequence[Any], columns: Sequence[str]) -> None:
        """Rows as JSON lines or CSV on stdout (an empty result still gets a CSV header)."""
        from wxcli.stats.render import write_csv, write_json

        out = sys.stdout
        if self.fmt == "json":
            write_json(rows, out)
        else:
            write_csv(rows, out, columns=columns)
        out.flush()

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Any]) -> None:
        from wxcli.stats.render import write_table

        write_table(self.console(), title, columns, rows)

    def nothing(self, what: str = "messages") -> bool:
        """Say so on stderr when the period has no ``what`` (table format only)."""
        click.echo(f"No {what} in this period for these chats.", err=True)
        return True


def _run(fn: Callable[..., None]) -> Callable[..., None]:
    """Open a :class:`_Run` from the common options and close it afterwards."""

    @functools.wraps(fn)
    def wrapper(
        app: AppContext,
        chats: tuple[str, ...],
        since: str | None,
        until: str | None,
        fmt: str,
        lang: str,
        db_url: str | None,
        **kwargs: Any,
    ) -> None:
        run = _Run(app, chats, since, until, fmt, lang, db_url)
        try:
            fn(run, **kwargs)
        finally:
            run.close()

    return wrapper


@click.group()
def stats() -> None:
    """Reports from the archive: what customers talk about, when, who, and the mood.

    \b
      wxcli stats words                 top words of the last 30 days
      wxcli stats words --chat '客服*' --by week
      wxcli stats activity --since 7d   messages per day and hour, busiest chats
      wxcli stats speakers --chat 'VIP*' top speakers and lurkers
      wxcli stats sentiment             mood per day and chat, most negative messages
      wxcli stats report --html r.html  everything in one self-contained page

    Figures come from counts the analysis worker keeps (`wxcli watch` runs it;
    `wxcli analyze` catches up), so they are instant on millions of messages.
    Days are local days of [analysis] timezone. Sentiment comes from snownlp,
    whose model was trained on shopping reviews: read scores as trends.
    """


@stats.command()
@_common(top=20)
@click.option(
    "--by",
    type=click.Choice(["chat", "day", "week", "sender"]),
    help="The top words of each chat, day, week (from Monday) or sender.",
)
@click.option(
    "--groups",
    type=click.IntRange(1),
    help="With --by: how many chats or senders (the busiest; default 10), days or weeks "
    "(the first; default all).",
)
@click.option("--keywords", is_flag=True, help="Rank by TF-IDF (jieba.analyse) instead of counts.")
@click.pass_obj
@_run
def words(run: _Run, top: int, by: str | None, groups: int | None, keywords: bool) -> None:
    """Top words with counts and their share of all counted words.

    Words are jieba's, after the stopword list (shipped + [analysis]
    stopwords_file), the user dictionary ([analysis] user_dict) and the
    emoji / URL / @mention / number / single-character filters. Our own
    replies are not counted. After changing any of those, run
    `wxcli analyze --rebuild`.
    """
    from wxcli.stats.export import words_rows

    s = run.stats
    if keywords and by:
        raise click.UsageError("--keywords ranks the whole period; it cannot be used with --by")
    if run.fmt != "table":
        out = words_rows(s, top, by, groups, keywords)
        return run.rows(out.rows, out.columns)
    if keywords:
        rows: list[Any] = s.keywords(top)
        if not rows:
            run.nothing("counted words")
            return
        run.heading("Keywords (TF-IDF)")
        return run.table(None, ["word", "weight", "count"], rows)
    if by:
        rows = s.words_by(by, top, groups)
        if not rows:
            run.nothing("counted words")
            return
        from rich.text import Text

        grouped: dict[str, list[Any]] = {}
        for r in rows:
            grouped.setdefault(r.group, []).append(r)
        run.heading(f"Top words by {by}")
        lines = [
            [g, Text("  ".join(f"{w.word} {w.count:,}" for w in ws))] for g, ws in grouped.items()
        ]
        return run.table(None, [by, "words (count)"], lines)
    rows = s.words(top)
    if not rows:
        run.nothing("counted words")
        return
    from wxcli.stats.terminal import words_chart

    run.heading("Top words")
    run.console().print(words_chart(rows, limit=top, lang=run.lang))


@stats.command()
@_common(top=10)
@click.option(
    "--view",
    type=click.Choice(["days", "hours", "chats"]),
    help="Rows to print: per chat and day (json/csv default), per chat, weekday and hour, "
    "or busiest chats. Table format without --view shows charts of all three.",
)
@click.pass_obj
@_run
def activity(run: _Run, top: int, view: str | None) -> None:
    """Messages per day and per hour of the week, and the busiest chats.

    --top limits the busiest-chats list (and the chats drawn in the daily
    chart); system messages and recalls are not counted.
    """
    from wxcli.stats.export import activity_rows

    s = run.stats
    if run.fmt != "table":
        out = activity_rows(s, top, view or "days")
        return run.rows(out.rows, out.columns)
    total = s.total_messages()
    if view == "days":
        return run.table("Messages per day", ["day", "chat", "messages"], s.days())
    if view == "hours":
        hour_rows = s.chat_hours()
        return run.table(
            "Messages per weekday (0 = Monday) and hour",
            ["chat", "weekday", "hour", "messages"],
            hour_rows,
        )
    busiest = activity_rows(s, top, "chats").rows
    shown = [[r["chat"], r["messages"], f"{r['share']:.1%}"] for r in busiest]
    if view == "chats":
        return run.table("Busiest chats", ["chat", "messages", "share"], shown)
    if not total:
        run.nothing()
        return
    from rich.panel import Panel

    from wxcli.stats.terminal import TEXT, daily_chart, heatmap_chart

    t = TEXT[run.lang]
    run.heading(f"Activity · {total:,} messages")
    con = run.console()
    panel = functools.partial(Panel, title_align="left", border_style="dim")
    daily = daily_chart(s.days(chats=top), top_chats=top, lang=run.lang)
    con.print(panel(daily, title=t["daily"]))
    con.print(panel(heatmap_chart(s.heatmap(), lang=run.lang), title=t["heatmap"]))
    run.table("Busiest chats", ["chat", "messages", "share"], shown)


@stats.command()
@_common(top=10)
@click.option(
    "--overall", is_flag=True, help="Rank members across all chats instead of within each chat."
)
@click.option("--no-lurkers", is_flag=True, help="Leave out members who never spoke.")
@click.pass_obj
@_run
def speakers(run: _Run, top: int, overall: bool, no_lurkers: bool) -> None:
    """Top speakers of each chat, and lurkers: members in the roster in the
    period who sent nothing. Our own account is left out of both."""
    s = run.stats
    if run.fmt != "table":
        from wxcli.stats.export import speakers_rows

        out = speakers_rows(s, top, overall, not no_lurkers)
        return run.rows(out.rows, out.columns)
    talk = s.speakers(top, per_chat=not overall)
    quiet = [] if no_lurkers else s.lurkers()
    if not talk and not quiet:
        run.nothing("members")
        return
    from wxcli.stats.terminal import TEXT, lurkers_list, speakers_table

    t = TEXT[run.lang]
    con = run.console()
    if overall:
        run.heading(t["speakers"])
        con.print(speakers_table(talk, limit=top, lang=run.lang))
    else:
        rank: dict[str, int] = {}
        lines = []
        for r in talk:
            rank[r.chat] = rank.get(r.chat, 0) + 1
            lines.append([r.chat, rank[r.chat], r.name, r.messages, f"{r.share:.1%}"])
        run.heading(t["speakers"])
        run.table(None, [t["chat"], "#", t["member"], t["messages"], t["share"]], lines)
    if not no_lurkers:
        con.print(f"[bold]{t['lurkers']}[/] [dim]({len(quiet):,})[/]")
        con.print(lurkers_list(quiet, lang=run.lang))


@stats.command(epilog=SENTIMENT_CAVEAT)
@_common(top=10)
@click.option(
    "--view",
    type=click.Choice(["days", "chats", "chat-days", "negatives"]),
    help="Rows to print: per day (json/csv default), per chat, per chat and day, or the most "
    "negative messages. Table format without --view shows the trend, the chats and the "
    "negative messages.",
)
@click.pass_obj
@_run
def sentiment(run: _Run, top: int, view: str | None) -> None:
    """Mean and median sentiment (0 negative … 1 positive) per day and chat, the
    share of negative messages ([analysis] negative_threshold), and the most
    negative messages with the `wxcli history` command that shows them.

    snownlp's model was trained on shopping reviews, not on chat: read the
    scores as trends. --top limits the chats and messages listed.
    """
    s = run.stats
    if run.fmt != "table":
        from wxcli.stats.export import sentiment_rows

        out = sentiment_rows(s, top, view or "days")
        return run.rows(out.rows, out.columns)
    day_cols = ["day", "chat", "mean", "median", "negative_share", "messages"]
    chat_cols = ["chat", "mean", "median", "negative_share", "messages"]
    if view in ("days", "chat-days"):
        rows: list[Any] = s.sentiment_days(per_chat=view == "chat-days")
        return run.table("Sentiment per day", day_cols, rows)
    if view == "chats":
        rows = s.sentiment_chats()
        return run.table("Sentiment per chat (lowest mean first)", chat_cols, rows)
    negatives = s.negatives(top)
    from rich.panel import Panel
    from rich.text import Text

    from wxcli.stats.terminal import TEXT, negatives_list, sentiment_chart

    t = TEXT[run.lang]
    con = run.console()
    if view != "negatives":
        days = s.sentiment_days()
        if not days:
            run.nothing("scored messages")
            return
        run.heading("Sentiment")
        chart = sentiment_chart(days, lang=run.lang)
        con.print(Panel(chart, title=t["sentiment"], title_align="left", border_style="dim"))
        run.table("Chats with the lowest mean", chat_cols, s.sentiment_chats()[:top])
    con.print(Text(t["negatives"], style="bold"))
    con.print(negatives_list(negatives, limit=top, lang=run.lang, tz=s.period.tz))
    con.print(Text(SENTIMENT_CAVEAT, style="dim italic"))


@stats.command(epilog=SENTIMENT_CAVEAT)
@_common(top=100, formats=("table", "json"))
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    help="Write one self-contained HTML page here ('-' for stdout).",
)
@click.option("--title", help="The report's title.")
@click.pass_obj
@_run
def report(run: _Run, top: int, html_path: str | None, title: str | None) -> None:
    """Everything in one report: top words and a word cloud, messages per day,
    the weekday × hour heat map, busiest chats, sentiment trend, top speakers,
    lurkers and the most negative messages.

    With --html, one HTML file with inline CSS and SVG (it loads nothing from
    the network: mail it, archive it). Otherwise the report is drawn in the
    terminal, or printed as one JSON document with --format json. --top is
    the number of words in the chart and the cloud.
    """
    default_title = {"zh": "客服群聊报告", "en": "Chat report"}[run.lang]
    rep = run.stats.report(title=title or default_title, top_words=top)
    if html_path:
        from wxcli.stats.html import render_html

        page = render_html(rep, lang=run.lang)
        if html_path == "-":
            sys.stdout.write(page)
            return
        from pathlib import Path

        from wxcli.fileutil import atomic_write_bytes

        path = Path(html_path)
        try:
            # Customer messages: private (0600 whatever the umask) and never half-written.
            if not path.parent.is_dir():  # a typo in the folder is an error, not a new folder
                raise FileNotFoundError(2, "No such file or directory")
            atomic_write_bytes(path, page.encode("utf-8"), mode=0o600)
        except OSError as exc:
            from wxcli.errors import UsageError

            raise UsageError(f"cannot write {html_path}: {exc.strerror}") from None
        click.echo(
            f"Wrote {path} ({len(page.encode('utf-8')) / 1024:,.0f} kB, "
            f"{rep.meta.total_messages:,} messages).",
            err=True,
        )
        return
    if run.fmt == "json":
        import json

        click.echo(json.dumps(rep.to_dict(), ensure_ascii=False))
        return
    from wxcli.stats.terminal import render_report

    render_report(run.console(), rep, lang=run.lang)
