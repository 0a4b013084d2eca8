"""The archive's tables, built per database by :func:`build_models` (no global binding).

Ids here are *stable*: a chat or person keeps its id across logins even though Web WeChat
gives them new UserNames every time (see ``wxcli.store.identity`` for the matching rules).
Times are naive UTC in the database and timezone-aware UTC in Python.
"""

from __future__ import annotations

import logging
from typing import Any

import peewee as pw

log = logging.getLogger(__name__)


class DateTime6Field(pw.DateTimeField):
    """DATETIME(6) on MySQL (microseconds), DATETIME on SQLite."""

    field_type = "DATETIME6"


class LongTextField(pw.TextField):
    field_type = "LONGTEXT"


def sql_default(value: object) -> list[pw.Node]:
    """A column DEFAULT in SQL too (peewee's defaults live in Python), so bulk inserts can leave
    columns out of a batch where every row holds the default."""
    if isinstance(value, bool):
        return [pw.SQL(f"DEFAULT {int(value)}")]
    if isinstance(value, int):
        return [pw.SQL(f"DEFAULT {value}")]
    return [pw.SQL(f"DEFAULT '{value}'")]


_cut_seen: set[tuple[str, int]] = set()


def fit(value: str, limit: int, what: str) -> str:
    """``value`` cut to a name column's ``limit`` characters — loudly: a name that long is
    beyond anything WeChat allows (nicknames and group names are a few dozen characters), so
    it is kept as far as the indexed column goes and a warning names it, once per value."""
    if len(value) <= limit:
        return value
    key = (what, hash(value))
    if key not in _cut_seen:
        if len(_cut_seen) > 10_000:
            _cut_seen.clear()
        _cut_seen.add(key)
        log.warning("a %s of %d characters was cut to %d: %r…", what, len(value), limit, value[:40])
    return value[:limit]


def has_sql_default(field: pw.Field) -> bool:
    return any("DEFAULT" in getattr(c, "sql", "") for c in field.constraints or ())


def table_settings(db: pw.Database) -> list[str]:
    """InnoDB/utf8mb4 on MySQL (4-byte emoji round-trip); nothing on SQLite."""
    if isinstance(db, pw.MySQLDatabase):
        return ["ENGINE=InnoDB", "DEFAULT CHARSET=utf8mb4", "COLLATE=utf8mb4_unicode_ci"]
    return []


def model_base(db: pw.Database) -> type[pw.Model]:
    """The base model of every archive table: bound to ``db``, snake_case table names, and
    :func:`table_settings` (``build_models`` spells the same class out, so that mypy sees a
    class statement rather than a variable as the base of every model)."""

    class Base(pw.Model):
        class Meta:
            database = db
            legacy_table_names = False
            table_settings = table_settings(db)

    return Base


class ArchiveModels:
    """The archive's model classes for one database, as attributes named like the classes.

    The classes are made per database by :func:`build_models`, never bound globally, so that
    several archives (SQLite and MySQL, several files) work side by side in one process. A
    class made inside a function has no name mypy can use outside it, so the attributes are
    typed ``Any`` — but a misspelt table is still an error, and ``all`` and ``db`` are typed.
    """

    db: pw.Database
    all: list[type[pw.Model]]
    SchemaMigration: Any
    Account: Any
    Chat: Any
    ChatName: Any
    Person: Any
    SessionName: Any
    PersonName: Any
    Membership: Any
    Message: Any
    MediaJob: Any
    RosterEvent: Any
    SyncState: Any
    WorkRange: Any
    MessageScore: Any
    WordCount: Any
    Activity: Any
    SpeakerCount: Any
    AnalysisMeta: Any
    WordDay: Any
    SenderWordCount: Any
    WordWeek: Any
    SpeakerWeek: Any
    ChatDay: Any
    DayHour: Any
    SentimentBin: Any
    SendAudit: Any
    FeedCursor: Any

    def __init__(self, db: pw.Database, classes: list[type[pw.Model]]):
        self.db = db
        self.all = classes
        for cls in classes:
            setattr(self, cls.__name__, cls)


def build_models(db: pw.Database) -> ArchiveModels:
    """Model classes bound to ``db``."""
    mysql = isinstance(db, pw.MySQLDatabase)
    # Words compare byte for byte on MySQL (utf8mb4_unicode_ci would merge words such as rare
    # CJK characters, or Latin case variants, into one key).
    word_collation = "utf8mb4_bin" if mysql else None

    class Base(pw.Model):
        class Meta:
            database = db
            legacy_table_names = False
            table_settings = table_settings(db)

    class SchemaMigration(Base):
        name = pw.CharField(max_length=100, primary_key=True)
        applied_at = DateTime6Field()

    class Account(Base):
        uin = pw.BigIntegerField(unique=True)
        nickname = pw.CharField(max_length=255, default="")
        created_at = DateTime6Field()

    class Chat(Base):
        """A conversation: group, friend, official account, special account, or self."""

        account = pw.ForeignKeyField(Account, backref="chats", on_delete="CASCADE")
        kind = pw.CharField(max_length=16)  # group | friend | official | special | self
        name = pw.CharField(max_length=255, default="")  # current name (group topic / remark)
        nickname = pw.CharField(max_length=255, default="")
        remark = pw.CharField(max_length=255, default="")
        # The column is WeChat's "alias" (the WeChat id); it hides Model.alias(), unused here.
        alias = pw.CharField(max_length=64, default="")  # type: ignore[assignment]
        permanent_id = pw.CharField(max_length=80, default="", index=True)  # wxid/…@chatroom
        user_name = pw.CharField(max_length=140, default="")  # session UserName last seen
        session_sid = pw.CharField(max_length=64, default="")  # …and the login it belongs to
        encry_chat_room_id = pw.CharField(max_length=80, default="")
        owner_name = pw.CharField(max_length=255, default="")
        member_count = pw.IntegerField(default=0)
        member_sig = LongTextField(default="")  # sorted member names, for matching after login
        first_seen = DateTime6Field()
        last_seen = DateTime6Field()

        class Meta:
            indexes = ((("account", "user_name"), False), (("account", "kind", "name"), False))

    class ChatName(Base):
        """Every name a chat has had (renames are recorded with their time)."""

        chat = pw.ForeignKeyField(Chat, backref="names", on_delete="CASCADE")
        name = pw.CharField(max_length=255)
        since = DateTime6Field()

    class Person(Base):
        """Anyone who spoke or was listed: friends, officials, group members."""

        account = pw.ForeignKeyField(Account, backref="people", on_delete="CASCADE")
        nickname = pw.CharField(max_length=255, default="")
        remark = pw.CharField(max_length=255, default="")
        # The column is WeChat's "alias" (the WeChat id); it hides Model.alias(), unused here.
        alias = pw.CharField(max_length=64, default="")  # type: ignore[assignment]
        permanent_id = pw.CharField(max_length=80, default="", index=True)
        is_friend = pw.BooleanField(default=False)
        is_self = pw.BooleanField(default=False)
        sex = pw.SmallIntegerField(default=0)
        province = pw.CharField(max_length=64, default="")
        city = pw.CharField(max_length=64, default="")
        first_seen = DateTime6Field()
        last_seen = DateTime6Field()

        class Meta:
            indexes = ((("account", "remark"), False), (("account", "nickname"), False))

    class SessionName(Base):
        """Which stable person a login's UserName was (so a restarted watch matches at once)."""

        sid = pw.CharField(max_length=64)
        user_name = pw.CharField(max_length=140)
        person = pw.ForeignKeyField(Person, on_delete="CASCADE")

        class Meta:
            indexes = ((("sid", "user_name"), True),)

    class PersonName(Base):
        person = pw.ForeignKeyField(Person, backref="names", on_delete="CASCADE")
        kind = pw.CharField(max_length=16)  # nickname | remark | display
        name = pw.CharField(max_length=255)
        chat = pw.ForeignKeyField(Chat, null=True, on_delete="CASCADE")  # for display names
        since = DateTime6Field()

    class Membership(Base):
        chat = pw.ForeignKeyField(Chat, backref="memberships", on_delete="CASCADE")
        person = pw.ForeignKeyField(Person, backref="memberships", on_delete="CASCADE")
        display_name = pw.CharField(max_length=255, default="")
        active = pw.BooleanField(default=True)
        joined_at = DateTime6Field()
        left_at = DateTime6Field(null=True)

        class Meta:
            indexes = ((("chat", "person"), True),)

    class Message(Base):
        account = pw.ForeignKeyField(Account, on_delete="CASCADE")
        msg_id = pw.CharField(max_length=32)
        chat = pw.ForeignKeyField(Chat, on_delete="CASCADE")
        chat_name = pw.CharField(
            max_length=255, default="", constraints=sql_default("")
        )  # name at the time
        chat_kind = pw.CharField(max_length=16)
        sender = pw.ForeignKeyField(Person, null=True, on_delete="SET NULL")
        sender_name = pw.CharField(
            max_length=255, default="", constraints=sql_default("")
        )  # name at the time
        is_self = pw.BooleanField(default=False, constraints=sql_default(False))
        kind = pw.CharField(max_length=16)
        msg_type = pw.IntegerField()
        app_msg_type = pw.IntegerField(default=0, constraints=sql_default(0))
        # LONGTEXT on MySQL: a TEXT column (64 KB) would cut long messages.
        text = LongTextField(default="")
        mentions = LongTextField(default="")  # JSON list of names
        mentions_me = pw.BooleanField(default=False, constraints=sql_default(False))
        title = LongTextField(default="")  # a link's or file's title: any length
        url = LongTextField(default="")
        file_name = LongTextField(default="")
        file_size = pw.BigIntegerField(null=True)
        created_at = DateTime6Field()
        received_at = DateTime6Field()
        revoked = pw.BooleanField(default=False, constraints=sql_default(False))
        revoked_at = DateTime6Field(null=True)
        recall_of = pw.CharField(
            max_length=32, default="", constraints=sql_default("")
        )  # for 10002: the MsgId recalled
        media_status = pw.CharField(
            max_length=8, default="", constraints=sql_default("")
        )  # '' none | pending | done | failed
        media_url = pw.TextField(default="")
        media_key = pw.CharField(max_length=255, default="", constraints=sql_default(""))
        media_sha256 = pw.CharField(max_length=64, default="", constraints=sql_default(""))
        media_size = pw.BigIntegerField(null=True)
        media_type = pw.CharField(max_length=64, default="", constraints=sql_default(""))
        media_error = pw.CharField(max_length=255, default="", constraints=sql_default(""))
        raw = LongTextField(null=True)

        class Meta:
            indexes = (
                (("account", "msg_id"), True),
                (("chat", "created_at"), False),
                (("created_at",), False),
            )

    class MediaJob(Base):
        """A media download still to do (only media messages get one, so the message table
        carries no queue index that every text message would pay for)."""

        message = pw.ForeignKeyField(Message, primary_key=True, on_delete="CASCADE")
        status = pw.CharField(max_length=8, default="pending")  # pending | working
        attempts = pw.SmallIntegerField(default=0)
        next_at = DateTime6Field()

        class Meta:
            indexes = ((("status", "next_at"), False),)

    class RosterEvent(Base):
        account = pw.ForeignKeyField(Account, on_delete="CASCADE")
        chat = pw.ForeignKeyField(Chat, on_delete="CASCADE")
        msg_id = pw.CharField(max_length=32, default="")
        kind = pw.CharField(max_length=16)  # join | invite | leave | remove | rename | other
        actor = pw.CharField(max_length=255, default="")
        subject = pw.CharField(max_length=255, default="")
        new_name = pw.CharField(max_length=255, default="")
        source = pw.CharField(max_length=16, default="system")  # system message | roster diff
        created_at = DateTime6Field()

        class Meta:
            indexes = ((("chat", "created_at"), False),)

    class SyncState(Base):
        """The sync position, committed with the messages it delivered."""

        account = pw.ForeignKeyField(Account, primary_key=True, on_delete="CASCADE")
        sid = pw.CharField(max_length=64, default="")
        sync_key = pw.TextField(default="")
        updated_at = DateTime6Field()

    class WorkRange(Base):
        """Analysis work done, as ranges of message rowids (several workers claim ranges)."""

        kind = pw.CharField(max_length=16)
        start_id = pw.BigIntegerField()
        end_id = pw.BigIntegerField()
        claimed_by = pw.CharField(max_length=64, default="")
        claimed_at = DateTime6Field()
        done = pw.BooleanField(default=False)

        class Meta:
            indexes = ((("kind", "start_id"), True),)

    class MessageScore(Base):
        message = pw.ForeignKeyField(Message, primary_key=True, on_delete="CASCADE")
        sentiment = pw.DoubleField(index=True)  # DOUBLE: MySQL FLOAT is single precision

    class WordCount(Base):
        """Words per chat and local day (pre-aggregated for `stats words`)."""

        chat = pw.ForeignKeyField(Chat, on_delete="CASCADE")
        day = pw.DateField()
        word = pw.CharField(max_length=64, collation=word_collation)
        count = pw.IntegerField(default=0)

        class Meta:
            primary_key = pw.CompositeKey("chat", "day", "word")
            indexes = ((("day", "word"), False),)

    class Activity(Base):
        """Messages per chat, local day and hour, with sentiment sums (stats activity)."""

        chat = pw.ForeignKeyField(Chat, on_delete="CASCADE")
        day = pw.DateField()
        hour = pw.SmallIntegerField()
        messages = pw.IntegerField(default=0)
        scored = pw.IntegerField(default=0)
        sentiment_sum = pw.DoubleField(default=0.0)
        negative = pw.IntegerField(default=0)

        class Meta:
            primary_key = pw.CompositeKey("chat", "day", "hour")
            indexes = ((("day",), False),)

    class SpeakerCount(Base):
        chat = pw.ForeignKeyField(Chat, on_delete="CASCADE")
        person = pw.ForeignKeyField(Person, on_delete="CASCADE")
        day = pw.DateField()
        messages = pw.IntegerField(default=0)

        class Meta:
            primary_key = pw.CompositeKey("chat", "person", "day")
            indexes = ((("day",), False),)

    class AnalysisMeta(Base):
        key = pw.CharField(max_length=64, primary_key=True)
        value = pw.TextField(default="")

    # -- roll-ups for `wxcli stats` (migration 0002) ---------------------------------------
    # Plain integer ids rather than foreign keys: these rows are derived (the worker can make
    # them again at any time), and a foreign key would cost a lookup and an extra index on
    # every upsert. Words compare byte for byte on MySQL (utf8mb4_unicode_ci would merge
    # words such as rare CJK characters into one key). Without a rowid, SQLite stores the
    # rows in key order, as InnoDB does, so a range of the key is read without lookups.
    class WordDay(Base):
        """Words per local day over all chats: what `stats words` reads without --chat."""

        day = pw.DateField()
        word = pw.CharField(max_length=64, collation=word_collation)
        count = pw.IntegerField(default=0)

        class Meta:
            primary_key = pw.CompositeKey("day", "word")
            without_rowid = not mysql

    class SenderWordCount(Base):
        """Words per sender, chat and local day (`stats words --by sender`)."""

        person = pw.IntegerField(column_name="person_id")
        day = pw.DateField()
        chat = pw.IntegerField(column_name="chat_id")
        word = pw.CharField(max_length=64, collation=word_collation)
        count = pw.IntegerField(default=0)

        class Meta:
            primary_key = pw.CompositeKey("person", "day", "chat", "word")
            without_rowid = not mysql

    class WordWeek(Base):
        """Words per chat and local week (``week`` is its Monday); ``chat`` 0 holds all chats
        together. A long period reads its whole weeks here and only the days at its ends from
        ``word_day`` / ``word_count``."""

        chat = pw.IntegerField(column_name="chat_id")
        week = pw.DateField()
        word = pw.CharField(max_length=64, collation=word_collation)
        count = pw.IntegerField(default=0)

        class Meta:
            primary_key = pw.CompositeKey("chat", "week", "word")
            without_rowid = not mysql

    class SpeakerWeek(Base):
        """Messages per chat, sender and local week (Monday): ``speaker_count`` by weeks."""

        week = pw.DateField()
        chat = pw.IntegerField(column_name="chat_id")
        person = pw.IntegerField(column_name="person_id")
        messages = pw.IntegerField(default=0)

        class Meta:
            primary_key = pw.CompositeKey("week", "chat", "person")
            without_rowid = not mysql

    class ChatDay(Base):
        """``activity`` without the hours: messages, counted words and sentiment sums per chat
        and local day."""

        day = pw.DateField()
        chat = pw.IntegerField(column_name="chat_id")
        messages = pw.IntegerField(default=0)
        words = pw.IntegerField(default=0)
        scored = pw.IntegerField(default=0)
        sentiment_sum = pw.DoubleField(default=0.0)
        negative = pw.IntegerField(default=0)

        class Meta:
            primary_key = pw.CompositeKey("day", "chat")
            without_rowid = not mysql

    class DayHour(Base):
        """Messages per local day and hour over all chats (the heat map without --chat)."""

        day = pw.DateField()
        hour = pw.SmallIntegerField()
        messages = pw.IntegerField(default=0)

        class Meta:
            primary_key = pw.CompositeKey("day", "hour")
            without_rowid = not mysql

    class SentimentBin(Base):
        """How many scored messages fell in each 0.01-wide sentiment bin, per chat and local
        day; ``chat`` 0 holds all chats together. Medians come from these (to ±0.005)."""

        chat = pw.IntegerField(column_name="chat_id")
        day = pw.DateField()
        bin = pw.SmallIntegerField()
        count = pw.IntegerField(default=0)

        class Meta:
            primary_key = pw.CompositeKey("chat", "day", "bin")
            without_rowid = not mysql

    class SendAudit(Base):
        """One REST API send (or refusal): app, recipient, kind, result, MsgID, time."""

        at = DateTime6Field(index=True)
        profile = pw.CharField(max_length=64, default="")
        app = pw.CharField(max_length=64, default="")
        app_id = pw.CharField(max_length=64, default="")
        kind = pw.CharField(max_length=16, default="")
        to_name = pw.CharField(max_length=255, default="")
        to_user = pw.CharField(max_length=140, default="")
        result = pw.CharField(max_length=16, default="")  # sent | failed | refused
        msg_id = pw.CharField(max_length=32, default="")
        error = pw.TextField(default="")
        via = pw.CharField(max_length=32, default="")
        remote = pw.CharField(max_length=64, default="")
        detail = pw.TextField(default="")  # the rest of the record, as JSON

    class FeedCursor(Base):
        """Where one feed sink stands: the last message and roster event it acknowledged.

        Written only after the sink confirmed a batch, so a crash re-sends (at least once)."""

        name = pw.CharField(max_length=64, primary_key=True)
        message_id = pw.BigIntegerField(default=0)
        roster_id = pw.BigIntegerField(default=0)
        delivered = pw.BigIntegerField(default=0)  # messages acknowledged, ever
        updated_at = DateTime6Field()
        parked_at = DateTime6Field(null=True)  # refused (4xx): delivery stops until resumed
        parked_reason = pw.TextField(default="")

    classes: list[type[pw.Model]] = [
        SchemaMigration,
        Account,
        Chat,
        ChatName,
        Person,
        SessionName,
        PersonName,
        Membership,
        Message,
        MediaJob,
        RosterEvent,
        SyncState,
        WorkRange,
        MessageScore,
        WordCount,
        Activity,
        SpeakerCount,
        AnalysisMeta,
        SendAudit,
        WordDay,
        SenderWordCount,
        WordWeek,
        SpeakerWeek,
        ChatDay,
        DayHour,
        SentimentBin,
        FeedCursor,
    ]
    return ArchiveModels(db, classes)


#: Sentiment bins of ``sentiment_bin``: scores 0..1 in steps of 1/SENTIMENT_BINS.
SENTIMENT_BINS = 100


def sentiment_bin(score: float) -> int:
    """The ``sentiment_bin.bin`` a score falls in (1.0 goes to the top bin)."""
    return min(max(int(score * SENTIMENT_BINS), 0), SENTIMENT_BINS - 1)


def model_fields(model: Any) -> list[str]:
    return [f.name for f in model._meta.sorted_fields]
