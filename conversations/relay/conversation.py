"""A live conversation: the pure core plus its I/O, which outlives any one browser socket or upstream session.

The consumer attaches a browser to it; the conversation owns the upstream session (and replaces it
before it expires, or when it drops), the journal, and the timers. When the browser leaves without
saying goodbye the conversation waits a grace period for it to come back before it ends.
"""
from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.utils import translation

from .. import selectors, services
from ..journal import Journal, close_timeout
from .. import live_registry
from ..live import Inbox
from ..realtime import options, protocol
from ..realtime.client import RealtimeConnection, RealtimeTarget, UpstreamError, UpstreamRejected, UpstreamUnavailable
from ..realtime.options import Preferences
from ..realtime.protocol import BYTES_PER_MS, BrowserCommand, BrowserMessageError
from ..recording.recorder import Recorder
from ..recording.timeline import Timeline
from ..tools import ToolContext, ToolRegistry, ToolResult
from .effects import (
    JOURNAL_OPS,
    CancelTool,
    ConversationEnded,
    Effect,
    Fatal,
    RunTool,
    SessionEnding,
    SessionReady,
    ToBrowser,
    ToUpstream,
    TurnAdded,
    TurnAudio,
    TurnRecorded,
    UsageRecorded,
)
from .failures import (
    CLOSE_DELETED,
    CLOSE_ENDED_BY_STAFF,
    CLOSE_NORMAL,
    CLOSE_REPLACED,
    CLOSE_SERVER_ERROR,
    CLOSE_THROTTLED,
    CLOSE_UPSTREAM_UNAVAILABLE,
    DEFAULT_RETRY_AFTER_S,
    Failure,
    upstream_failure,
)
from .locale import BrowserLocale
from .registry import LiveRegistry
from .state import RelayCore, SessionFacts

logger = logging.getLogger(__name__)

# Audio kept while no upstream session can take it (switching sessions): at most this much, newest kept.
BUFFER_MAX_BYTES = 10_000 * BYTES_PER_MS
QUIET_KEPT_BYTES = 1_000 * BYTES_PER_MS
# What the browser is told, and the close code, when staff end a conversation; stored as ended, not failed.
ENDED_BY_STAFF = Failure("ended_by_staff", "An administrator ended this conversation.", CLOSE_ENDED_BY_STAFF)
# Another worker continues the conversation (the browser reconnected there): a tab still attached here is replaced.
TAKEN_OVER = Failure("replaced", "This conversation was opened in another window.", CLOSE_REPLACED)
# A session that served this long was healthy: the next drop gets the full set of reconnect tries again.
STABLE_SESSION_S = 30.0


class BrowserLink(Protocol):
    """What a conversation needs from the socket of the browser attached to it."""

    async def send_json(self, message: dict[str, Any]) -> None: ...
    async def send_audio(self, pcm: bytes) -> None: ...
    async def close_with(self, code: int) -> None: ...


@dataclass(frozen=True)
class Timing:
    """How long to wait for what; from settings, shortened by tests."""

    grace_s: float = 20.0
    connect_timeout_s: float = 10.0
    configure_timeout_s: float = 10.0
    reconnect_tries: int = 5
    reconnect_base_s: float = 0.5
    rollover_margin_s: float = 60.0  # replace a session this long before it expires, between turns
    rollover_deadline_s: float = 10.0  # ...and this long before, whatever is going on
    cancel_wait_s: float = 2.0  # how long a cancelled response gets to report its usage
    final_words_s: float = 3.0  # how long an ending waits for words it committed to be written down


class SessionRejected(Exception):
    """The service did not accept the session's configuration: going on would run on its defaults."""

    def __init__(self, fatal: Fatal) -> None:
        super().__init__(fatal.message)
        self.fatal = fatal


class _Fatal(Exception):
    """The conversation must end with this failure."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def backoff_delays(tries: int, base_s: float, *, first_immediate: bool) -> list[float]:
    """Exponential backoff with full jitter: base·2ⁿ scaled by a random 0.5–1 factor."""
    delays = []
    for attempt in range(tries):
        if attempt == 0 and first_immediate:
            delays.append(0.0)
            continue
        step = base_s * 2 ** (attempt - (1 if first_immediate else 0))
        delays.append(step * random.uniform(0.5, 1.0))
    return delays


class LiveConversation:
    """One conversation while it is live: the core, the current upstream session, the journal and the browser."""

    def __init__(
        self,
        *,
        conversation_id: Any,
        target: RealtimeTarget,
        core: RelayCore,
        journal: Journal,
        registry: LiveRegistry,
        timing: Timing,
        token_provider: Any = None,
        owner_id: Any = None,
        owner_name: str = "",
        fresh: bool = True,
        new_recorder: Callable[[int, int], Recorder] | None = None,
        recording_place: tuple[int, int] = (0, 0),
        quota: Any = None,
        slot: Any = None,
        tools: ToolRegistry | None = None,
        locale: BrowserLocale = BrowserLocale(),
    ) -> None:
        self.conversation_id = str(conversation_id)
        # The tools the core declared (None: none), the user's time zone and language they answer in, and the
        # calls running now.
        self.tools = tools
        self.locale = locale
        self._tool_tasks: dict[str, asyncio.Task[None]] = {}
        # Results that came while no session could take them (switching sessions): given to the next one.
        self._tool_results: list[tuple[str, ToolResult]] = []
        self.owner_id = owner_id
        self.owner_name = owner_name
        self.target = target
        self.core = core
        self.journal = journal
        self.registry = registry
        self.timing = timing
        self.token_provider = token_provider
        self.fresh = fresh  # a new conversation: discarded if it ends before anything was said
        self.link: BrowserLink | None = None
        self.attach_mode = "new"  # how the attached browser arrived: new, resumed, continued
        self.upstream: RealtimeConnection | None = None
        self.ready = False
        self.ended = False
        self.failure: Failure | None = None
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        # Microphone audio the current session has not committed yet: a session that drops while the user speaks
        # loses its input buffer with it, so this is sent again to the next one (bounded like `_buffer`).
        self._uncommitted: deque[bytes] = deque()
        self._uncommitted_bytes = 0
        # The service heard speech start and has not committed it yet (server VAD): that audio is still only ours.
        self._awaiting_commit = False
        # The audio of the last turn the session committed, until its reply is done: a session that drops before
        # answering it takes the turn along, and the next one is given this audio to answer (RelayCore.seed).
        self._turn_audio: dict[str, bytes] = {}
        self._replayed_ms = 0  # uncommitted speech queued for the next session: it commits it as a turn of its own
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._grace: asyncio.TimerHandle | None = None
        self._rollover_timers: list[asyncio.TimerHandle] = []
        self._rollover_wanted = False
        self._rollover_due = asyncio.Event()
        self._overdue: asyncio.TimerHandle | None = None
        self._response_settled = asyncio.Event()
        self._final_words: asyncio.Event | None = None  # set when the words the ending committed are written down
        self._sessions_opened = 0
        self._activated_at = 0.0
        self._failed_reconnects = 0  # consecutive: a session that drops again at once does not reset it
        # The recording (None while recording is off): `_timeline` is its loop-side half, read per frame.
        self._new_recorder = new_recorder
        self._recording_place = recording_place  # (next chunk number, ms) where recording goes on
        self.recorder: Recorder | None = None
        self._timeline: Timeline | None = None
        self.quota = quota  # relay/quota.py's ConversationQuota, or None (no limits, as in tests of the core)
        self._limit_reached: Failure | None = None  # a limit was reached: end once the current reply is done
        # relay/admission.py's DeploymentSlot, or None: this conversation's share of the deployment's sessions.
        # A rollover's second session uses the same slot (it lasts seconds and the conversation was admitted).
        self.slot = slot
        self._inbox = Inbox(conversation_id=self.conversation_id, owner_id=owner_id, on_deleted=self.deleted,
                            on_end_by_staff=self.ended_by_staff, on_taken_over=self.taken_over)
        self._listing: live_registry.LiveEntry | None = None
        self._ending: asyncio.Future[None] | None = None  # the ending, once it started (see `end`)
        self._ended_from: asyncio.Task[Any] | None = None  # the task that started it

    # --- Lifecycle -------------------------------------------------------------------------------

    def start(self, *, record: bool = False) -> None:
        """Open the upstream session in the background; `ready` reaches the browser when it is configured."""
        self.journal.start()
        if record:
            self._start_recording()
        self.registry.add(self.conversation_id, self)
        self._inbox.start()
        if self.quota is not None:
            self.quota.start(deployment=self.target.deployment, warn=self._to_browser, stop=self._over_limit)
        self._listing = live_registry.heartbeat().add(
            conversation_id=self.conversation_id, user_id=self.owner_id, username=self.owner_name,
            deployment=self.target.deployment)
        if self.slot is not None:
            self.slot.start()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"relay-{self.conversation_id}")

    async def attach(self, link: BrowserLink, *, mode: str) -> None:
        """Attach a browser socket (replacing another tab's), and bring it up to date."""
        previous, self.link, self.attach_mode = self.link, link, mode
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        if previous is not None and previous is not link:
            with contextlib.suppress(Exception):
                await previous.close_with(CLOSE_REPLACED)
        if self.core.items:
            await self._to_browser(self.core.history())
        if self.ready:
            await self._to_browser(self._ready_message())

    async def detach(self, link: BrowserLink, code: int) -> None:
        """The browser's socket closed: Stop ends the conversation, anything else starts the grace period."""
        if self.link is not link or self.ended:
            return
        self.link = None
        if code == CLOSE_NORMAL:
            await self.end()
            return
        if self._timeline is not None:
            self._timeline.silence_assistant()  # nobody hears what is still playing
        self._carry_out_soon(self.core.browser_left())
        loop = asyncio.get_running_loop()
        self._grace = loop.call_later(self.timing.grace_s, lambda: self._spawn(self.end()))
        logger.info("Conversation %s: browser left (code %s); waiting %ss for it", self.conversation_id, code,
                    self.timing.grace_s)

    async def end(self, failure: Failure | None = None, *, by: str = "user", farewell: Failure | None = None) -> None:
        """End the conversation once: settle a running reply, store everything, close upstream and the browser.

        `by` is who ended it, as stored: "user", "staff" or "system" (a failure always counts as "system").
        `farewell` is what an attached browser is told when the ending is not a failure.
        The ending runs in a task of its own: a caller that is cancelled (the server cutting a socket's
        handler at shutdown) does not cut it short, and every later caller waits for the same ending.
        """
        if self._ending is None:
            if self.ended:
                return
            self.ended = True
            self.failure = self.failure or failure
            self._ended_from = asyncio.current_task()
            self._ending = asyncio.ensure_future(self._finish(failure, by, farewell))
        await asyncio.shield(self._ending)

    async def wait_ended(self) -> None:
        """Wait until an ending that started has done what it could (it may have been cut short)."""
        if self._ending is not None:
            await asyncio.wait({self._ending})

    def cut_short(self) -> asyncio.Future[None] | None:
        """Stop an ending that takes too long (the server's shutdown bound); its journal names what it lost."""
        ending = self._ending
        if ending is not None and not ending.done():
            ending.cancel()
        return ending

    async def _finish(self, failure: Failure | None, by: str, farewell: Failure | None) -> None:
        try:
            await self._finish_steps(failure, by, farewell)
        except asyncio.CancelledError:
            # The server gave up waiting (shutdown): whatever is still queued is named, not dropped quietly.
            self.journal.give_up("the server stopped before they could be stored")
            raise

    async def _finish_steps(self, failure: Failure | None, by: str, farewell: Failure | None) -> None:
        for handle in (self._grace, self._overdue, *self._rollover_timers):
            if handle is not None:
                handle.cancel()
        # A Stop cancels a running tool as the user's own doing; any other end interrupts it.
        await self._end_tools(cancelled=failure is None and by == "user")
        if failure is None and self.upstream is not None and self.core.session.response_id is not None:
            # Stop mid-reply: give the cancelled response a moment to report the tokens it used.
            self._response_settled.clear()
            with contextlib.suppress(Exception):
                await self._carry_out(self.core.browser_left(), self.upstream)
                await asyncio.wait_for(self._response_settled.wait(), self.timing.cancel_wait_s)
        if failure is None and self.ready and self.upstream is not None:
            await self._keep_last_words(self.upstream)
        if self._supervisor is not None and self._supervisor is not self._ended_from:
            # (A supervisor that is ending the conversation itself waits for this, and stops after it.)
            await _cancel_until_done(self._supervisor, self.conversation_id)
        await self._close_upstream()
        for op in self.core.finish():
            self.journal.put(op)  # type: ignore[arg-type]
            self._count(op)
        # A limit ends a conversation that went well: stored as ended (by the system), with the reason.
        failed = self.failure is not None and self.failure is not self._limit_reached
        ended_by = "system" if self.failure is not None else by
        self.journal.put(ConversationEnded(failed=failed, error=self.failure.message if self.failure else "",
                                           ended_by=ended_by))
        # All at once, so the end takes as long as the slowest (each bounded; with the database away the
        # recording and the journal wait JOURNAL_CLOSE_TIMEOUT_SECONDS), which the shutdown allows for.
        closing = [self._stop_recording(timeout=close_timeout()), self.journal.close()]
        if self.quota is not None:
            closing.append(self.quota.close())
        if self.slot is not None:
            closing.append(self.slot.close())
        await asyncio.gather(*closing)
        if self.failure is not None and self.fresh and not self.core.items:
            await _discard(self.conversation_id)
        self.registry.remove(self.conversation_id, self)
        if self._listing is not None:
            live_registry.heartbeat().remove(self._listing)
        link, self.link = self.link, None
        if link is not None:
            farewell = self.failure or farewell or (ENDED_BY_STAFF if ended_by == "staff" else None)
            if farewell is not None:
                message = protocol.error_message(farewell.code, farewell.message, fatal=True)
                if farewell.retry_after_s is not None:
                    message["retry_after_s"] = farewell.retry_after_s
                if farewell is self._limit_reached and self.quota is not None and self.quota.reached:
                    message = self.quota.reached.browser_message("error")
                await _quietly(link.send_json(message))
            await _quietly(link.close_with(farewell.close_code if farewell else CLOSE_NORMAL))
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        await self._inbox.close()
        logger.info("Conversation %s ended%s", self.conversation_id, f": {self.failure.code}" if self.failure else "")

    async def _keep_last_words(self, conn: RealtimeConnection) -> None:
        """Before the session goes, the service commits speech it heard and writes down every turn it took.

        This is what keeps the words of a user whose socket closed just after speaking (server VAD had not
        ended the turn, or had and not yet written it down) when the conversation moves to another worker:
        that worker reads them as stored, and answers them. Bounded by `final_words_s`; the session keeps
        relaying its events meanwhile.
        """
        effects = self.core.commit_unfinished_speech(self._uncommitted_bytes // BYTES_PER_MS)
        if not effects and self.core.final_words_settled():
            return
        self._final_words = settled = asyncio.Event()
        try:
            await self._carry_out(effects, conn)
            if not self.core.final_words_settled():
                await asyncio.wait_for(settled.wait(), self.timing.final_words_s)
        except (UpstreamError, TimeoutError) as exc:
            logger.warning("Conversation %s: the words spoken as it ended were not written down in time (%s)",
                           self.conversation_id, type(exc).__name__)
        else:
            if self.upstream is not conn:  # the session dropped meanwhile (see `_deactivate`)
                logger.warning("Conversation %s: the session ended before the words spoken as it ended were written "
                               "down", self.conversation_id)
        finally:
            self._final_words = None

    async def deleted(self) -> None:
        """The conversation was deleted (in any window, through any worker): end it and write nothing more."""
        self.journal.abandon()
        recorder, self.recorder, self._timeline = self.recorder, None, None
        if recorder is not None:
            recorder.abandon()
        await self.end(Failure("conversation_deleted", "This conversation was deleted in another window.", CLOSE_DELETED))

    async def taken_over(self) -> None:
        """Another worker continues this conversation (its browser reconnected there): store everything, let go.

        That worker waits for this end to be stored before it reads the turns, so none is lost or doubled.
        """
        logger.info("Conversation %s: continued by another worker; letting go", self.conversation_id)
        await self.end(by="system", farewell=TAKEN_OVER)

    async def ended_by_staff(self, staff: str) -> None:
        """Staff ended the conversation (or suspended its user): cut a running reply as Stop does, store it, say so."""
        logger.info("Conversation %s is being ended by staff member %s", self.conversation_id, staff or "(unknown)")
        await self.end(by="staff")

    # --- Browser side ----------------------------------------------------------------------------

    async def audio_in(self, pcm: bytes) -> None:
        """Relay one microphone frame: check it, gate it, send it (or keep it while sessions switch)."""
        try:
            protocol.check_audio_frame(pcm)
        except BrowserMessageError as exc:
            await self._to_browser(protocol.error_message(exc.code, str(exc)))
            return
        if not self.core.on_browser_audio(len(pcm)):
            return
        timeline = self._timeline
        if timeline is not None:
            timeline.user(pcm)
        upstream = self.upstream
        if upstream is None or not self.ready:
            self._keep(pcm)
            return
        with contextlib.suppress(UpstreamError):  # the supervisor sees the drop and reconnects
            await upstream.send_audio(pcm)
        self._hold_uncommitted(pcm)

    async def command(self, command: BrowserCommand) -> None:
        """Carry out one browser command."""
        if not self.ready or self.upstream is None:
            await self._to_browser(protocol.error_message(
                "not_ready", "The conversation is still connecting; try again in a moment."))
            return
        if command.type == "apply_settings":
            prefs = await load_preferences(self.owner_id)
            effects = self.core.apply_config(options.build_session_config(prefs, self.target.dialect))
            await self._set_recording(prefs.record)
            for effect in effects:
                if isinstance(effect, ToBrowser) and effect.message.get("type") == "settings_applied":
                    effect.message["recording"] = self.recorder is not None  # the relay's, not the core's
        else:
            effects = self.core.on_browser(command)
        await self._carry_out(effects, self.upstream)
        if self.core.session.pending_create and self._overdue is None:
            self._overdue = asyncio.get_running_loop().call_later(self.timing.cancel_wait_s, self._pending_overdue)

    def _pending_overdue(self) -> None:
        self._overdue = None
        if self.upstream is not None:
            self._carry_out_soon(self.core.pending_create_overdue())

    # --- Upstream side ---------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Keep an upstream session serving the conversation until it ends; every failure ends it cleanly."""
        try:
            try:
                conn, facts = await self._open()
            except UpstreamError as exc:
                raise _Fatal(self._failure_of(exc)) from exc
            while True:
                await self._activate(conn, facts)
                outcome = await self._serve(conn, facts)
                if isinstance(outcome, tuple):
                    conn, facts = outcome  # planned rollover: already open and seeded
                    self._forget_uncommitted()  # between turns: nothing was being said
                    self._awaiting_commit = False
                    # The session served until it was replaced on schedule: the service is reachable again, so
                    # the next drop gets every reconnect try (short sessions never reach STABLE_SESSION_S).
                    self._failed_reconnects = 0
                    continue
                logger.info("Conversation %s: upstream session ended (%s); opening another", self.conversation_id, outcome)
                await self._deactivate()
                conn, facts = await self._reconnect(first_immediate=outcome in ("expired", "closed"))
        except asyncio.CancelledError:
            raise
        except SessionRejected as exc:
            f = exc.fatal
            await self.end(Failure(f.code, f.message, f.close_code))
        except _Fatal as exc:
            await self.end(exc.failure)
        except Exception:  # noqa: BLE001 - whatever went wrong, the conversation is torn down and stored
            logger.exception("Conversation %s: the relay failed", self.conversation_id)
            await self.end(Failure("internal_error", "Something went wrong on the server. Your conversation is saved; "
                                   "reload the page to continue it.", CLOSE_SERVER_ERROR))

    async def _open(self) -> tuple[RealtimeConnection, SessionFacts]:
        """Open a session, wait until it confirms our settings, and seed it with the conversation so far."""
        try:
            conn = await RealtimeConnection.open(
                self.target, token_provider=self.token_provider, timeout=self.timing.connect_timeout_s
            )
        except UpstreamRejected as exc:
            if exc.status == 429 and self.slot is not None:  # over the deployment's quota: slow admission down
                self.slot.throttled(exc.retry_after_s if exc.retry_after_s is not None else DEFAULT_RETRY_AFTER_S)
            raise
        try:
            facts, effects = self.core.open_session()
            await self._carry_out(effects, conn)
            events = conn.events()
            try:
                async with asyncio.timeout(self.timing.configure_timeout_s):
                    async for event in events:
                        result = self.core.on_upstream(event, facts)
                        # Only the session's own facts matter yet: the browser hears about it once it is ready.
                        await self._carry_out([e for e in result if not isinstance(e, ToBrowser)], conn)
                        if any(isinstance(e, SessionReady) for e in result):
                            break
                    else:
                        raise UpstreamUnavailable("The realtime service closed the session while it was being set up.")
            finally:
                await events.aclose()
            await self._carry_out(self.core.seed(facts, self._turn_audio), conn)
            self._turn_audio = {}
        except TimeoutError:
            await _close_quietly(conn)
            raise UpstreamUnavailable("The realtime service did not confirm the session settings in time.") from None
        except BaseException:
            await _close_quietly(conn)
            raise
        self._sessions_opened += 1
        return conn, facts

    async def _activate(self, conn: RealtimeConnection, facts: SessionFacts) -> None:
        """Make `conn` the conversation's session: send audio kept meanwhile, tell the browser, plan the rollover."""
        renewed = self._sessions_opened > 1
        self._activated_at = time.monotonic()
        self.upstream = conn
        self.core.switch_to(facts)
        if self._timeline is not None:
            self._timeline.session_started()
        await self._flush_to(conn)
        if self._replayed_ms:
            replayed, self._replayed_ms = self._replayed_ms, 0
            await self._carry_out(self.core.end_replayed_turn(replayed), conn)
        self._rollover_wanted = False
        self._rollover_due.clear()
        self._plan_rollover(facts)
        await self._to_browser(self._ready_message())
        if renewed:
            await self._to_browser({"type": "note", "code": "session_renewed",
                                    "message": "Reconnected to the voice service; the assistant still knows the conversation."})
        await self._give_waiting_results()

    async def _flush_to(self, conn: RealtimeConnection) -> None:
        """Send the audio kept while no session could take it, in order, then let frames flow straight through."""
        while self._buffer:
            pcm = self._buffer.popleft()
            self._buffered -= len(pcm)
            with contextlib.suppress(UpstreamError):
                await conn.send_audio(pcm)
            self._hold_uncommitted(pcm)
        self.ready = True  # no await since the buffer emptied: no frame can overtake the kept ones

    def _hold_uncommitted(self, pcm: bytes) -> None:
        """Remember audio sent to the session until it commits it (newest kept past the limit)."""
        self._uncommitted.append(pcm)
        self._uncommitted_bytes += len(pcm)
        # While nobody speaks only the last second is worth keeping (the service's prefix padding is 300 ms).
        # Speech the service has not committed yet is kept whole, up to the limit, also after it stopped.
        limit = BUFFER_MAX_BYTES if self._awaiting_commit else QUIET_KEPT_BYTES
        while self._uncommitted_bytes > limit:
            self._uncommitted_bytes -= len(self._uncommitted.popleft())

    def _forget_uncommitted(self) -> None:
        self._uncommitted.clear()
        self._uncommitted_bytes = 0

    async def _deactivate(self) -> None:
        """The current session is gone: cut what it was doing, keep what was said (and what was being said)."""
        self.ready = False
        if self._awaiting_commit and self._uncommitted:
            # The user was speaking (or had just stopped, and the service had not committed it yet): the utterance
            # went down with the session's input buffer. Send it to the next session first, before what arrived
            # meanwhile, so the service hears the whole turn.
            self._buffer.extendleft(reversed(self._uncommitted))
            self._buffered += self._uncommitted_bytes
            while self._buffered > BUFFER_MAX_BYTES:
                self._buffered -= len(self._buffer.pop())  # over the limit: the newest go (silence, mostly)
            self._replayed_ms = self._uncommitted_bytes // BYTES_PER_MS
            logger.info("Conversation %s: the session dropped while the user spoke; sending the %d ms heard so far "
                        "to the next one", self.conversation_id, self._replayed_ms)
        self._forget_uncommitted()
        self._awaiting_commit = False
        for op in self.core.finish():
            self.journal.put(op)  # type: ignore[arg-type]
        await self._close_upstream()
        if self._final_words is not None:
            self._final_words.set()  # the ending waits for this session's words no longer: it is gone

    async def _serve(self, conn: RealtimeConnection, facts: SessionFacts) -> str | tuple[RealtimeConnection, SessionFacts]:
        """Relay the session's events until it ends (returns why) or a planned rollover replaced it."""
        reader = asyncio.create_task(self._read(conn, facts), name=f"upstream-{self.conversation_id}")
        due: asyncio.Task[Any] | None = None
        try:
            while True:
                due = asyncio.create_task(self._rollover_due.wait())
                done, _ = await asyncio.wait({reader, due}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    return reader.result()
                self._rollover_due.clear()
                # Between turns: open the next session while this one keeps relaying its last events.
                self.ready = False
                try:
                    new = await self._open()
                except UpstreamError as exc:  # a rejected configuration is not one: it ends the conversation
                    logger.warning("Conversation %s: rollover failed (%s); keeping the current session",
                                   self.conversation_id, exc)
                    await self._flush_to(conn)
                    self._rollover_timers.append(asyncio.get_running_loop().call_later(5.0, self._rollover_due.set))
                    continue
                try:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await reader
                    await _close_quietly(conn)
                except BaseException:
                    # Cancelled (the conversation is ending) before the new session took over: nothing else holds
                    # it, so it is closed here, or it would stay open upstream (and billed) until it expires.
                    _abort_quietly(new[0])
                    raise
                logger.info("Conversation %s: rolled over to a new session before expiry", self.conversation_id)
                return new
        finally:
            # Both, whichever way this ends (cancelled with the conversation too): no task is left pending.
            for task in (reader, due):
                if task is not None and not task.done():
                    task.cancel()

    async def _read(self, conn: RealtimeConnection, facts: SessionFacts) -> str:
        """Relay one session's events; returns how it ended: expired, closed or dropped."""
        core = self.core
        try:
            async for event in conn.events():
                kind = event.get("type")
                if type(kind) is str and kind in protocol.AUDIO_DELTA_TYPES:
                    # The hot path: decode once, count, forward as one binary frame.
                    delta, item_id = event.get("delta"), event.get("item_id")
                    if type(delta) is not str or type(item_id) is not str:
                        continue  # not an audio delta the service would send
                    try:
                        # a2b_base64 takes the str as it is; b64decode would first copy it into bytes.
                        pcm = binascii.a2b_base64(delta)
                    except ValueError:
                        continue
                    core.on_audio(item_id, len(pcm), facts)
                    link = self.link
                    if link is not None and pcm:
                        try:
                            await link.send_audio(pcm)
                        except Exception:  # noqa: BLE001 - a socket closing under us; detach handles it
                            pass
                        timeline = self._timeline
                        if timeline is not None:  # recorded as it plays: only what a browser was sent
                            start_ms = timeline.assistant(item_id, pcm)
                            if start_ms is not None:
                                self.journal.put(TurnRecorded(item_id, start_ms))
                    continue
                if kind == "rate_limits.updated" and self.slot is not None:  # rare: once per response
                    self.slot.rate_limits(event)
                if kind == "input_audio_buffer.committed" or kind == "input_audio_buffer.cleared":
                    committed = event.get("item_id")
                    if kind == "input_audio_buffer.committed" and type(committed) is str and self._uncommitted:
                        self._turn_audio = {committed: b"".join(self._uncommitted)}
                    self._forget_uncommitted()  # the service has it now (or dropped it on purpose)
                    self._awaiting_commit = False
                elif kind == "input_audio_buffer.speech_started":
                    self._awaiting_commit = True
                elif kind == "response.done":
                    self._turn_audio = {}  # the turn was answered (or the reply failed, and says so)
                if kind == "input_audio_buffer.speech_started" and self._timeline is not None:
                    item_id, start = event.get("item_id"), event.get("audio_start_ms")
                    if type(item_id) is str and type(start) is int:
                        self._timeline.speech_started(item_id, start)
                effects = core.on_upstream(event, facts)
                if effects and await self._carry_out(effects, conn):
                    return "expired"
                if self._final_words is not None and core.final_words_settled():
                    self._final_words.set()
                if self._rollover_wanted:
                    self._check_rollover()
        except UpstreamUnavailable:
            return "dropped"
        return "closed"

    async def _reconnect(self, *, first_immediate: bool) -> tuple[RealtimeConnection, SessionFacts]:
        """Open a new session after the last one ended, with backoff; out of tries ends the conversation."""
        if time.monotonic() - self._activated_at >= STABLE_SESSION_S:
            self._failed_reconnects = 0
        delays = backoff_delays(self.timing.reconnect_tries, self.timing.reconnect_base_s, first_immediate=first_immediate)
        last: UpstreamError | None = None
        for attempt, delay in enumerate(delays[self._failed_reconnects:], start=self._failed_reconnects + 1):
            self._failed_reconnects = attempt
            if isinstance(last, UpstreamRejected) and last.status == 429:
                # The service said how long it needs: retrying sooner only earns another 429.
                delay = max(delay, last.retry_after_s if last.retry_after_s is not None else DEFAULT_RETRY_AFTER_S)
            await self._to_browser({"type": "reconnecting", "attempt": attempt, "delay_ms": int(delay * 1000)})
            await asyncio.sleep(delay)
            try:
                return await self._open()
            except UpstreamRejected as exc:
                if exc.status != 429 and exc.status is not None and exc.status < 500:
                    raise _Fatal(self._failure_of(exc)) from exc  # credentials or configuration: retrying won't help
                last = exc
            except UpstreamError as exc:
                last = exc
            logger.warning("Conversation %s: reconnect %d/%d failed: %s", self.conversation_id, attempt, len(delays), last)
        failure = Failure(
            "upstream_lost",
            "The connection to the voice service was lost and could not be restored. Your conversation is saved: "
            "press Start to continue it.",
            CLOSE_UPSTREAM_UNAVAILABLE,
        )
        raise _Fatal(failure) from last

    def _plan_rollover(self, facts: SessionFacts) -> None:
        """Replace the session before it expires: between turns from the margin on, at the deadline whatever happens."""
        for handle in self._rollover_timers:
            handle.cancel()
        self._rollover_timers = []
        if facts.expires_at is None:
            return
        loop = asyncio.get_running_loop()
        remaining = facts.expires_at - time.time()
        # Short sessions (tests, odd deployments) still get half their life before a rollover is wanted.
        soft = max(remaining - self.timing.rollover_margin_s, remaining * 0.5, 0.0)
        hard = max(remaining - self.timing.rollover_deadline_s, remaining * 0.8, 0.0)
        self._rollover_timers = [loop.call_later(soft, self._want_rollover), loop.call_later(hard, self._rollover_due.set)]

    def _want_rollover(self) -> None:
        self._rollover_wanted = True
        self._check_rollover()

    def _check_rollover(self) -> None:
        # Not while ending: the session is finishing the conversation's last words (`_keep_last_words`).
        if self._rollover_wanted and self.ready and not self.ended and self.core.idle():
            self._rollover_wanted = False
            self._rollover_due.set()

    # --- Effects -----------------------------------------------------------------------------------

    async def _carry_out(self, effects: Sequence[Effect], conn: RealtimeConnection | None) -> bool:
        """Carry out the core's effects in order; returns True when upstream said the session is over."""
        ending = False
        for effect in effects:
            if isinstance(effect, ToBrowser):
                await self._to_browser(effect.message)
                if effect.message["type"] == "response_done":
                    self._response_settled.set()
                    if self._limit_reached is not None:  # the reply is finished: now the limit ends it
                        self._spawn(self.end(self._limit_reached))
            elif isinstance(effect, ToUpstream):
                if conn is not None:
                    await conn.send(effect.event)
            elif isinstance(effect, JOURNAL_OPS):
                self.journal.put(effect)  # type: ignore[arg-type]
                self._count(effect)
                if self._timeline is not None:
                    self._mark_recording(effect)
            elif isinstance(effect, RunTool):
                self._start_tool(effect)
            elif isinstance(effect, CancelTool):
                task = self._tool_tasks.pop(effect.call_id, None)
                if task is not None:
                    task.cancel()  # its output was given as cancelled; the thread it runs in finishes unheard
            elif isinstance(effect, SessionEnding):
                ending = True
            elif isinstance(effect, Fatal):
                raise SessionRejected(effect)
        return ending

    # --- Tools --------------------------------------------------------------------------------------

    def _start_tool(self, run: RunTool) -> None:
        """Run a call in a task of its own: never awaited on the audio path or by the upstream reader."""
        if self.ended or run.call_id in self._tool_tasks:
            return
        task = asyncio.create_task(self._run_tool(run), name=f"tool-{self.conversation_id}-{run.name}")
        self._tool_tasks[run.call_id] = task

    async def _run_tool(self, run: RunTool) -> None:
        context = ToolContext(user_id=self.owner_id, conversation_id=self.conversation_id,
                              time_zone=self.locale.time_zone)
        try:
            if self.tools is None:
                raise LookupError("no tools in this conversation")
            # The summary the page shows is written in the user's language (the registry takes this task's
            # context, and so its language, into the tool's thread too).
            with translation.override(self.locale.language):
                result = await self.tools.run(run.name, run.arguments, context)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the registry never raises, but a broken tool must not end the conversation
            logger.exception("Conversation %s: tool %s failed outside the registry", self.conversation_id, run.name)
            result = ToolResult(output='{"error": "internal_error", "message": "The tool failed."}', ok=False,
                                summary="The tool failed.")
        if self._tool_tasks.get(run.call_id) is asyncio.current_task():
            del self._tool_tasks[run.call_id]
        await self._tool_finished(run.call_id, result)

    async def _tool_finished(self, call_id: str, result: ToolResult) -> None:
        """Give a result to the core; while sessions switch it waits for the next one, which knows the call."""
        if self.ended:
            return
        if not self.ready or self.upstream is None:
            self._tool_results.append((call_id, result))
            return
        effects = self.core.tool_finished(call_id, result.output, ok=result.ok, summary=result.summary)
        with contextlib.suppress(UpstreamError):  # the session dropped: the next one is seeded with the output
            await self._carry_out(effects, self.upstream)

    async def _give_waiting_results(self) -> None:
        results, self._tool_results = self._tool_results, []
        for call_id, result in results:
            await self._tool_finished(call_id, result)

    async def _end_tools(self, *, cancelled: bool) -> None:
        """The conversation ends: running calls are stopped and stored (cancelled or interrupted), their tasks awaited."""
        tasks = list(self._tool_tasks.values())  # (carrying out a CancelTool drops its task from the dict)
        # Results that waited for a session are kept as they came; the model will not hear them now.
        effects: list[Effect] = []
        for call_id, result in self._tool_results:
            effects += self.core.tool_finished(call_id, result.output, ok=result.ok, summary=result.summary)
        self._tool_results.clear()
        effects += self.core.cancel_tools() if cancelled else self.core.end_tools()
        with contextlib.suppress(UpstreamError):
            await self._carry_out([e for e in effects if not isinstance(e, ToUpstream)], None)
        self._tool_tasks = {}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- Limits -----------------------------------------------------------------------------------

    def _count(self, effect: Any) -> None:
        """Count audio and cost towards the owner's limits (in the background: never waits on Redis)."""
        if self.quota is not None and isinstance(effect, (UsageRecorded, TurnAudio)):
            self.quota.count(effect)

    async def _over_limit(self, verdict: Any) -> None:
        """A limit was reached: end now if idle, else once the current reply is done (never mid-sentence)."""
        self._limit_reached = Failure("limit_reached", verdict.message, CLOSE_THROTTLED)
        if self.ended:
            return
        if self.core.session.response_id is None:
            self._spawn(self.end(self._limit_reached))
            return
        await self._to_browser(verdict.browser_message(
            "limit_warning", reached=True,
            message=verdict.message + " The conversation ends after this reply."))

    # --- Recording ---------------------------------------------------------------------------------

    def _mark_recording(self, effect: Effect) -> None:
        """Keep the recording in step with the conversation: where user turns start, where replies were cut."""
        timeline = self._timeline
        assert timeline is not None
        if isinstance(effect, TurnAdded) and effect.role == "user":
            self.journal.put(TurnRecorded(effect.item_id, timeline.user_item_ms(effect.item_id)))
        elif isinstance(effect, TurnAudio) and effect.interrupted:
            timeline.cut(effect.item_id, effect.audio_ms)

    def _start_recording(self) -> None:
        if self._new_recorder is None or self.recorder is not None:
            return
        self.recorder = self._new_recorder(*self._recording_place)
        self.recorder.start()
        self._timeline = self.recorder.timeline

    async def _stop_recording(self, timeout: float | None = None) -> None:
        """Finish the recording: everything placed is mixed, encoded and stored before this returns (or `timeout`)."""
        recorder, self.recorder, self._timeline = self.recorder, None, None
        if recorder is not None:
            await (recorder.close() if timeout is None else recorder.close(timeout))
            self._recording_place = recorder.next_place()

    async def _set_recording(self, on: bool) -> None:
        """Turn recording on or off while the conversation goes on (the user changed the setting)."""
        if on:
            self._start_recording()
        else:
            await self._stop_recording()

    def _carry_out_soon(self, effects: Sequence[Effect]) -> None:
        if effects:
            self._spawn(self._carry_out_quietly(effects))

    async def _carry_out_quietly(self, effects: Sequence[Effect]) -> None:
        with contextlib.suppress(UpstreamError):
            await self._carry_out(effects, self.upstream)

    async def _to_browser(self, message: dict[str, Any]) -> None:
        link = self.link
        if link is not None:
            await _quietly(link.send_json(message))

    def _keep(self, pcm: bytes) -> None:
        """Hold audio while no session can take it, dropping the oldest past the limit."""
        self._buffer.append(pcm)
        self._buffered += len(pcm)
        while self._buffered > BUFFER_MAX_BYTES:
            self._buffered -= len(self._buffer.popleft())

    def _ready_message(self) -> dict[str, Any]:
        return {
            "type": "ready",
            "conversation_id": self.conversation_id,
            "provider": self.target.provider,
            "dialect": self.target.dialect,
            "deployment": self.target.deployment,
            "sample_rate": protocol.SAMPLE_RATE,
            "settings": options.browser_settings(self.core.config),
            "resumed": self.attach_mode == "resumed",
            "continued": self.attach_mode == "continued",
            "recording": self.recorder is not None,
            # Today's use against the owner's limits, for the meter (None: limits are not counted here).
            "usage": self.quota.summary() if self.quota is not None else None,
        }

    def _failure_of(self, exc: UpstreamError) -> Failure:
        logger.warning("Conversation %s upstream failed: %s %s", self.conversation_id, exc, exc.detail)
        return upstream_failure(exc, self.target.deployment, staff=self.core.staff)

    async def _close_upstream(self) -> None:
        self.ready = False
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            await _close_quietly(upstream)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


async def _cancel_until_done(task: asyncio.Task[Any], conversation_id: str, every_s: float = 0.5) -> None:
    """Cancel the relay's task until it has stopped.

    A cancellation can be swallowed on its way down (asyncio.wait_for on Python 3.11, gh-86296; redis-py while it
    connects): the soak once saw a conversation that had ended keep relaying, and its end wait for it for ever.
    """
    tries = 0
    while not task.done():
        tries += 1
        task.cancel()
        await asyncio.wait({task}, timeout=every_s)
    if tries > 1:
        logger.warning("Conversation %s: the relay task took %d cancellations to stop", conversation_id, tries)
    if not task.cancelled():
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()


async def _close_quietly(conn: RealtimeConnection) -> None:
    """Close a session; one that does not close in time, or whose closing is cancelled, is aborted."""
    try:
        await asyncio.wait_for(conn.close(), 2.0)
    except asyncio.CancelledError:
        _abort_quietly(conn)
        raise
    except Exception:  # noqa: BLE001 - a service still streaming (its frames unread) never finishes the handshake
        _abort_quietly(conn)


def _abort_quietly(conn: RealtimeConnection) -> None:
    with contextlib.suppress(Exception):
        conn.abort()  # nothing may be left open upstream (and billing)


async def _quietly(awaitable: Any) -> None:
    """Send to a browser that may have gone already."""
    with contextlib.suppress(Exception):
        await awaitable


async def load_preferences(user_id: Any) -> Preferences:
    """The user's saved settings."""
    return await database_sync_to_async(selectors.preferences_for_user_id)(user_id=user_id)



async def _discard(conversation_id: str) -> None:
    """Remove a new conversation that never got going, so no empty failed row is left behind."""
    with contextlib.suppress(Exception):
        await database_sync_to_async(services.conversation_discard)(conversation_id=conversation_id)
