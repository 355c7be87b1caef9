"""Starting, resuming and continuing live conversations for a browser that connects."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils import translation

from .. import live, live_registry, selectors, services
from ..journal import Journal
from ..realtime import options
from ..recording.recorder import Recorder, RecordingGone, Store
from ..tools import ToolRegistry
from ..tools.selectors import tools_for_user
from ..upstream import resolve_target, token_provider_for
from .admission import DeploymentSlot, admit_deployment
from .locale import BrowserLocale
from .conversation import LiveConversation, Timing, load_preferences
from .quota import ConversationQuota, admit
from .registry import live_conversations
from .state import RelayCore

logger = logging.getLogger(__name__)

# How long a continue waits for another worker that holds the conversation live to store it and let go: its
# ending may settle a cancelled reply (Timing.cancel_wait_s) and write down words being spoken (final_words_s).
TAKEOVER_WAIT_S = 8.0
TAKEOVER_ASK_EVERY_S = 1.0

class ConversationNotFound(Exception):
    """No such conversation, or not the user's."""

def timing_from_settings() -> Timing:
    """The relay's timings, read at call time so tests can shorten them."""
    return Timing(
        grace_s=settings.RELAY_GRACE_SECONDS,
        connect_timeout_s=settings.REALTIME_CONNECT_TIMEOUT,
        configure_timeout_s=settings.REALTIME_CONNECT_TIMEOUT,
        reconnect_tries=settings.RELAY_RECONNECT_TRIES,
        reconnect_base_s=settings.RELAY_RECONNECT_BASE_SECONDS,
        rollover_margin_s=settings.RELAY_ROLLOVER_MARGIN_SECONDS,
        rollover_deadline_s=min(settings.RELAY_ROLLOVER_MARGIN_SECONDS, 10.0),
    )

async def open_conversation(user: Any, conversation_id: str | None, *, returning: bool = False,
                            locale: BrowserLocale = BrowserLocale()) -> tuple[LiveConversation, str]:
    """Return the conversation this socket serves and how it arrived: new, resumed or continued.

    `returning` says the browser was in this conversation a moment ago and reconnects by itself (rather than
    the user continuing it from the history page): a continuation then answers a turn left unanswered.
    `locale` (checked already) is the browser's: the time zone tools answer in, the language they speak.
    """
    if conversation_id:
        live = live_conversations.get(conversation_id)
        if live is not None:
            if live.owner_id != user.pk:
                raise ConversationNotFound(conversation_id)
            live.locale = locale  # the browser now attached is the one asking
            return live, "resumed"
        ending = live_conversations.ending(conversation_id)
        if ending is not None and ending.owner_id == user.pk:
            # Storing its last writes here: the continuation reads what it stored, so it waits for that.
            await ending.wait_ended()
        return await _continue(user, conversation_id, returning=returning, locale=locale), "continued"
    return await _start(user, locale=locale), "new"

async def load_tools(user: Any) -> ToolRegistry:
    """The tools this user's conversation may call, read once per connection (never per event)."""
    try:
        return await database_sync_to_async(tools_for_user)(user=user)
    except Exception:  # noqa: BLE001 - tools are an extra: a conversation without them beats none at all
        logger.exception("Could not load the tools for user %s; the conversation goes on without them", user.pk)
        return ToolRegistry()

def _tool_setup(registry: ToolRegistry, language: str) -> dict[str, Any]:
    """The core's part of the tools: their declarations, and what the page shows while each runs (in `language`)."""
    with translation.override(language):
        texts = {name: registry.working_text(name) for name in registry.names()}
    return {"tools": registry.declarations(), "tool_texts": texts}

async def _start(user: Any, *, locale: BrowserLocale = BrowserLocale()) -> LiveConversation:
    target = await resolve_target()
    prefs = await load_preferences(user.pk)
    config = options.build_session_config(prefs, target.dialect)
    # The deployment first: a start it refuses must not use up one of the user's new conversations.
    slot = await admit_deployment(target)  # raises DeploymentBusy
    quota = None
    try:
        quota = await admit(user, new=True)  # raises LimitReached: nothing is stored for a refused start
        conversation = await database_sync_to_async(services.conversation_start)(
            user=user, provider=target.provider, deployment=target.deployment, dialect=target.dialect,
            settings=config.as_dict(),
        )
    except BaseException:
        if quota is not None:
            await quota.close()
        await slot.close()
        raise
    tools = await load_tools(user)
    core = RelayCore(dialect=target.dialect, config=config, staff=user.is_staff,
                     seed_token_budget=settings.RELAY_SEED_TOKEN_BUDGET, **_tool_setup(tools, locale.language))
    return _launch(conversation.pk, user, target, core, fresh=True, record=prefs.record, quota=quota, slot=slot,
                   tools=tools, locale=locale)

async def _continue(user: Any, conversation_id: str, *, returning: bool = False,
                    locale: BrowserLocale = BrowserLocale()) -> LiveConversation:
    stored = await database_sync_to_async(selectors.conversation_for_relay)(user=user, conversation_id=conversation_id)
    if stored is None:
        raise ConversationNotFound(conversation_id)
    if stored.open and await _held_elsewhere(stored.id):
        stored = await _after_holder_lets_go(user, stored)
    target = await resolve_target()
    slot = await admit_deployment(target)  # raises DeploymentBusy
    try:
        quota = await admit(user, new=False)  # a continued conversation counts as live, not as a new one
    except BaseException:
        await slot.close()
        raise
    try:
        return await _resume(user, stored, target, quota, slot, returning=returning, locale=locale)
    except BaseException:
        await quota.close()
        await slot.close()
        raise

async def _held_elsewhere(conversation_id: Any) -> bool:
    """Whether another worker lists the conversation as live (a browser that left it there came back here)."""
    mine = live_registry.heartbeat().worker
    try:
        entries = await asyncio.to_thread(live_registry.live_entries)
    except Exception:  # noqa: BLE001 - Redis away: nobody can be asked anyway
        return False
    return any(e.conversation_id == str(conversation_id) and e.worker != mine for e in entries)

async def _after_holder_lets_go(user: Any, stored: Any) -> Any:
    """Ask the worker holding the conversation to store it and let go, then read it again (with every turn).

    Two live copies would each go on from their own turns: positions would clash and the model would forget
    what was said to the other. A holder that does not answer in time (it died) is not waited for longer.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TAKEOVER_WAIT_S
    asked_at = None
    while loop.time() < deadline:
        # Asked again every second: the Redis layer can lose a message when a receive in the holder's process is
        # cancelled at that moment (django/channels#1683), as it is when the old socket closes. Ending is idempotent.
        if asked_at is None or loop.time() - asked_at >= TAKEOVER_ASK_EVERY_S:
            asked_at = loop.time()
            if not await live.ask_holder_to_let_go(stored.id):
                break
        await asyncio.sleep(0.05)
        if not await database_sync_to_async(selectors.conversation_is_open)(conversation_id=stored.id):
            again = await database_sync_to_async(selectors.conversation_for_relay)(user=user,
                                                                                   conversation_id=stored.id)
            if again is None:
                raise ConversationNotFound(stored.id)
            return again
    logger.warning("Conversation %s: the worker holding it did not let go within %ss; continuing from what is "
                   "stored", stored.id, TAKEOVER_WAIT_S)
    return stored

async def _resume(user: Any, stored: Any, target: Any, quota: ConversationQuota, slot: DeploymentSlot, *,
                  returning: bool = False, locale: BrowserLocale = BrowserLocale()) -> LiveConversation:
    prefs = await load_preferences(user.pk)
    config = options.build_session_config(prefs, target.dialect)
    tools = await load_tools(user)
    core = RelayCore.resume(stored.turns, dialect=target.dialect, config=config, staff=user.is_staff,
                            seed_token_budget=settings.RELAY_SEED_TOKEN_BUDGET, **_tool_setup(tools, locale.language))
    if returning:
        core.answer_unanswered_turn()
    stored_voice = (stored.settings or {}).get("voice")
    if core.voice_fixed and stored_voice and stored_voice in options.voices_for(target.dialect):
        # The assistant keeps the voice it had in this conversation.
        core.config = dataclasses.replace(config, voice=stored_voice)
    await database_sync_to_async(services.conversation_continue)(
        conversation_id=stored.id, settings=core.config.as_dict()
    )
    # New turns go on in the same recording, after what it holds.
    place = await database_sync_to_async(selectors.recording_next_place)(conversation_id=stored.id)
    return _launch(stored.id, user, target, core, fresh=False, record=prefs.record, recording_place=place,
                   quota=quota, slot=slot, tools=tools, locale=locale)

def _launch(
    conversation_id: Any, user: Any, target: Any, core: RelayCore, *, fresh: bool, record: bool,
    recording_place: tuple[int, int] = (0, 0), quota: ConversationQuota | None = None,
    slot: DeploymentSlot | None = None, tools: ToolRegistry | None = None, locale: BrowserLocale = BrowserLocale(),
) -> LiveConversation:
    live = LiveConversation(
        conversation_id=conversation_id,
        owner_id=user.pk,
        owner_name=user.get_username(),
        target=target,
        core=core,
        journal=Journal(conversation_id),
        registry=live_conversations,
        timing=timing_from_settings(),
        token_provider=token_provider_for(target),
        fresh=fresh,
        new_recorder=recorder_factory(conversation_id),
        recording_place=recording_place,
        quota=quota,
        slot=slot,
        tools=tools,
        locale=locale,
    )
    live.start(record=record)
    return live

def chunk_store(conversation_id: Any) -> Store:
    """Store a conversation's recording chunks through the services (called in a recording thread)."""

    def store(seq: int, data: bytes, start_ms: int, duration_ms: int) -> None:
        close_old_connections()  # a thread of our own: drop a connection the database closed meanwhile
        try:
            services.recording_chunk_add(conversation_id=conversation_id, seq=seq, data=data, start_ms=start_ms,
                                         duration_ms=duration_ms)
        except services.ConversationGone:
            raise RecordingGone(conversation_id) from None

    return store

def recorder_factory(conversation_id: Any) -> Any:
    """Make recorders for a conversation, with the chunk and flush lengths from settings."""

    def new_recorder(seq: int, base_ms: int) -> Recorder:
        return Recorder(store=chunk_store(conversation_id), seq=seq, base_ms=base_ms,
                        flush_s=settings.RECORDING_FLUSH_SECONDS, chunk_s=settings.RECORDING_CHUNK_SECONDS)

    return new_recorder
