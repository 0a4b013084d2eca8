"""The login ``watch`` is using: its client, its normaliser, and the sync position it saves.

The network position (what the server has delivered) runs ahead of the committed one (what
the writer stored or durably spooled). Only the committed position is ever written to the
session file, so a crash re-delivers rather than loses; this module is the one place that
rule lives.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable

from wxcli.client import ClientConfig, WebWeChatClient
from wxcli.config import Config
from wxcli.protocol.models import SyncKey
from wxcli.session import SessionState, SessionStore
from wxcli.watch.context import WatchContext
from wxcli.watch.normalize import Normalizer

log = logging.getLogger(__name__)

ClientFactory = Callable[[SessionState], WebWeChatClient]


def plain_client(config: Config) -> ClientFactory:
    """A client from ``[wechat]`` (the CLI passes ``wxcli.account.make_client`` instead, which
    also says where a bad setting came from)."""

    def make(state: SessionState) -> WebWeChatClient:
        cc = ClientConfig.from_config(config)
        cc.desktop_mode = state.desktop_mode
        return WebWeChatClient(cc, state=state)

    return make


def key1(key: SyncKey) -> int:
    """The first counter of a sync key: how far a position is (keys only grow)."""
    for k, v in key:
        if k == 1:
            return v
    return -1


class LiveSession:
    """The current login; :meth:`adopt` replaces it after a relogin."""

    def __init__(self, ctx: WatchContext, make_client: ClientFactory):
        self.ctx = ctx
        self.make_client = make_client
        self.store = SessionStore(ctx.paths)
        self.state: SessionState | None = None
        self.client: WebWeChatClient | None = None
        self.normalizer: Normalizer | None = None
        self.media_enabled = False
        self._committed: SyncKey = ()
        self._dirty = False
        self._last_save = 0.0

    def adopt(self, state: SessionState) -> None:
        """Use ``state`` from now on: a new client and a normaliser over its contacts."""
        data = self.ctx.config.data
        client = self.make_client(state)
        media_kinds = {"image", "emoji"}
        if data["media"]["voice"]:
            media_kinds.add("voice")
        if data["media"]["video"]:
            media_kinds.add("video")
        if data["media"]["files"]:
            media_kinds.add("file")
        self.state = state
        self.client = client
        self.normalizer = Normalizer(
            state.contacts,
            state.user_name,
            fetch_contacts=client.batch_get_contacts,
            keep_raw=bool(data["database"]["store_raw"]),
            media_kinds=frozenset(media_kinds) if self.media_enabled else frozenset(),
        )
        self.ctx.health.sid_hint = state.sid[:4]
        self.ctx.health.session_code = 0

    def resume_from(self, candidates: Iterable[SyncKey]) -> None:
        """Start from the furthest of the session's key and ``candidates`` (positions stored
        in the archive or the spool for this login)."""
        st = self.state
        assert st is not None
        best = max([st.sync_key, *candidates], key=key1)
        if best and best != st.sync_key:
            log.info("resuming from the stored sync position")
            st.sync_key = best
            st.sync_check_key = best
        self._committed = st.sync_key

    def reset_position(self) -> None:
        """A new login starts from its own key (called with the writer drained)."""
        assert self.state is not None
        self._committed = self.state.sync_key

    def committed(self, key: SyncKey) -> None:
        """The writer stored (or durably spooled) everything up to ``key``."""
        with self.ctx.lock:
            self._committed = key
            self._dirty = True

    def mark_dirty(self) -> None:
        with self.ctx.lock:
            self._dirty = True

    def lost(self, code: int) -> None:
        """WeChat ended this login: say so in the session file, which is kept (not deleted):
        push login needs its cookies."""
        if self.state is not None:
            self.state.alive = False
            self.state.ended_code = code
        self.save(force=True)

    def save(self, force: bool = False) -> None:
        """Write the session file with the committed position, at most every
        ``[watch] session_save_seconds`` unless ``force``."""
        if not self._dirty and not force:
            return
        interval = float(self.ctx.config.settings.watch.session_save_seconds)
        now = time.monotonic()
        if not force and now - self._last_save < interval:
            return
        st = self.state
        if st is None or self.client is None:
            return
        with self.ctx.lock:
            st.cookies = self.client.export_cookies()
            # Never save the network position: only what is committed (or spooled).
            committed = self._committed or st.sync_key
            snapshot = dataclasses.replace(st, sync_key=committed, sync_check_key=committed)
            try:
                ok = self.store.update(snapshot)
            except OSError as exc:
                log.warning("could not save the session file: %s", exc)
                return
        if not ok:
            log.warning(
                "the session file holds another login (or was logged out); not overwriting it"
            )
        self._last_save = now
        self._dirty = False
