"""Session configuration rendered per dialect, upstream events normalised, browser messages checked."""
import base64

import pytest

from conversations.realtime import protocol
from conversations.realtime.client import GA, PREVIEW
from conversations.realtime.protocol import (
    BrowserMessageError,
    SessionConfig,
    TurnDetection,
    normalize,
    parse_browser_message,
    session_update,
)
from conversations.realtime.schema import SchemaError, validate_client_event

CONFIGS = [
    SessionConfig(instructions="Be brief.", voice="alloy"),
    SessionConfig(voice="verse", transcription_language="de", noise_reduction="far_field", max_output_tokens=300),
    SessionConfig(turn_detection=None, noise_reduction=None),
    SessionConfig(turn_detection=TurnDetection(type="semantic_vad", eagerness="high")),
    SessionConfig(turn_detection=TurnDetection(threshold=0.7, silence_duration_ms=800, prefix_padding_ms=200)),
]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dialect", [GA, PREVIEW])
def test_session_update_validates_against_the_openai_types(config, dialect):
    validate_client_event(session_update(config, dialect), dialect)


def test_ga_session_update_is_rejected_by_the_preview_types():
    with pytest.raises(SchemaError) as info:
        validate_client_event(session_update(SessionConfig(), GA), PREVIEW)
    assert info.value.code == "unknown_parameter"


def test_preview_session_update_is_rejected_by_the_ga_types():
    with pytest.raises(SchemaError):
        validate_client_event(session_update(SessionConfig(), PREVIEW), GA)


def test_ga_session_nests_audio_settings_and_has_no_temperature():
    session = session_update(SessionConfig(voice="marin", speed=1.2), GA)["session"]
    assert session["type"] == "realtime"
    assert session["audio"]["output"] == {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.2}
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert "temperature" not in session


def test_preview_session_is_flat_with_temperature():
    session = session_update(SessionConfig(temperature=0.9), PREVIEW)["session"]
    assert session["voice"] == "alloy"
    assert session["input_audio_format"] == "pcm16"
    assert session["temperature"] == 0.9
    assert "type" not in session


def test_push_to_talk_sends_null_turn_detection():
    assert session_update(SessionConfig(turn_detection=None), GA)["session"]["audio"]["input"]["turn_detection"] is None
    assert session_update(SessionConfig(turn_detection=None), PREVIEW)["session"]["turn_detection"] is None


@pytest.mark.parametrize("dialect", [GA, PREVIEW])
def test_built_client_events_validate(dialect):
    for event in [
        protocol.user_text_item("hello"),
        protocol.assistant_text_item("hi there", dialect),
        protocol.truncate_item("item_abc", 1200),
        protocol.RESPONSE_CREATE,
        protocol.RESPONSE_CANCEL,
        protocol.INPUT_COMMIT,
        protocol.INPUT_CLEAR,
    ]:
        validate_client_event(event, dialect)


def test_audio_append_is_built_without_json_dumps_but_is_valid_json():
    import json

    pcm = bytes(range(256)) * 4
    text = '{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(pcm).decode() + '"}'
    event = json.loads(text)
    validate_client_event(event, GA)
    assert base64.b64decode(event["audio"]) == pcm


def test_session_config_round_trips_through_a_dict():
    config = SessionConfig(voice="ash", turn_detection=TurnDetection(type="semantic_vad", eagerness="low"))
    assert SessionConfig.from_dict(config.as_dict()) == config
    ptt = SessionConfig(turn_detection=None)
    assert SessionConfig.from_dict(ptt.as_dict()) == ptt


# --- normalisation of both dialects ----------------------------------------------------------


@pytest.mark.parametrize("name", ["response.audio.delta", "response.output_audio.delta"])
def test_audio_deltas_of_both_dialects_become_raw_pcm(name):
    pcm = b"\x01\x02" * 100
    message, audio = normalize({"type": name, "item_id": "item_1", "delta": base64.b64encode(pcm).decode()})
    assert message == {"type": "audio", "item_id": "item_1"}
    assert audio == pcm


@pytest.mark.parametrize("name", ["response.audio_transcript.delta", "response.output_audio_transcript.delta"])
def test_assistant_transcript_deltas_of_both_dialects(name):
    message, _ = normalize({"type": name, "item_id": "i", "delta": "Hel"})
    assert message == {"type": "transcript", "role": "assistant", "item_id": "i", "delta": "Hel"}


@pytest.mark.parametrize(
    "name,field", [("response.audio_transcript.done", "transcript"), ("response.output_audio_transcript.done", "transcript"),
                   ("response.text.done", "text"), ("response.output_text.done", "text")]
)
def test_assistant_transcript_done_of_both_dialects(name, field):
    message, _ = normalize({"type": name, "item_id": "i", field: "Hello."})
    assert message == {"type": "transcript_done", "role": "assistant", "item_id": "i", "text": "Hello."}


def test_user_transcription_completed():
    message, _ = normalize(
        {"type": "conversation.item.input_audio_transcription.completed", "item_id": "u1", "content_index": 0, "transcript": "Hi"}
    )
    assert message == {"type": "transcript_done", "role": "user", "item_id": "u1", "text": "Hi"}


@pytest.mark.parametrize("name", ["conversation.item.created", "conversation.item.added"])
def test_user_items_of_both_dialects(name):
    event = {"type": name, "previous_item_id": "p", "item": {"id": "u1", "type": "message", "role": "user",
             "content": [{"type": "input_audio", "transcript": None}]}}
    message, _ = normalize(event)
    assert message == {"type": "user_item", "item_id": "u1", "previous_item_id": "p", "text": ""}


def test_typed_user_item_carries_its_text():
    event = {"type": "conversation.item.created", "item": {"id": "u2", "type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "typed"}]}}
    assert normalize(event)[0]["text"] == "typed"


def test_function_call_output_items_are_not_shown():
    # (function_call items are read as calls: tests/test_protocol_tools.py)
    event = {"type": "conversation.item.created", "item": {"id": "o", "type": "function_call_output", "call_id": "c"}}
    assert normalize(event) == (None, None)


def test_response_done_usage_is_flattened():
    usage = {"total_tokens": 30, "input_tokens": 20, "output_tokens": 10,
             "input_token_details": {"cached_tokens": 4, "text_tokens": 5, "audio_tokens": 15},
             "output_token_details": {"text_tokens": 2, "audio_tokens": 8}}
    message, _ = normalize({"type": "response.done", "response": {"id": "r", "status": "completed", "usage": usage}})
    assert message["status"] == "completed"
    # No cached split reported: the 4 cached tokens are shared as the input is (5 text, 15 audio).
    assert message["usage"] == protocol.Usage(5, 15, 4, 2, 8, 20, 10, 30, 1, 3)


def test_errors_keep_their_code():
    message, _ = normalize({"type": "error", "error": {"type": "invalid_request_error", "code": "cannot_update_voice", "message": "No."}})
    assert message["type"] == "upstream_error" and message["code"] == "cannot_update_voice"


def test_unknown_events_are_dropped():
    assert normalize({"type": "rate_limits.updated", "rate_limits": []}) == (None, None)
    assert normalize({"type": "something.new"}) == (None, None)


# --- browser allowlist -------------------------------------------------------------------------


def test_browser_truncate_is_parsed():
    command = parse_browser_message('{"type":"truncate","item_id":"item_1","audio_end_ms":1234.6}')
    assert (command.type, command.item_id, command.audio_end_ms) == ("truncate", "item_1", 1234)


@pytest.mark.parametrize(
    "raw,code",
    [
        ("not json", "invalid_json"),
        ("[1,2]", "invalid_message"),
        ('{"type":"session.update","session":{}}', "unknown_type"),
        ('{"type":"input_audio_buffer.append","audio":"AAAA"}', "unknown_type"),
        ('{"type":"truncate","audio_end_ms":5}', "invalid_item_id"),
        ('{"type":"truncate","item_id":"i","audio_end_ms":-1}', "invalid_audio_end_ms"),
        ('{"type":"truncate","item_id":"i","audio_end_ms":true}', "invalid_audio_end_ms"),
        ('{"type":"text","text":"   "}', "empty_text"),
        ('{"type":"text","text":"' + "x" * 4001 + '"}', "text_too_long"),
    ],
)
def test_browser_messages_outside_the_allowlist_are_refused(raw, code):
    with pytest.raises(BrowserMessageError) as info:
        parse_browser_message(raw)
    assert info.value.code == code


def test_audio_frames_must_be_whole_pcm16_samples_and_at_most_a_second():
    protocol.check_audio_frame(bytes(1920))
    with pytest.raises(BrowserMessageError):
        protocol.check_audio_frame(bytes(1921))
    with pytest.raises(BrowserMessageError):
        protocol.check_audio_frame(bytes(48_002))


@pytest.mark.parametrize("kind,field", [("response.output_audio_transcript.done", "transcript"),
                                        ("conversation.item.input_audio_transcription.completed", "transcript"),
                                        ("response.output_audio_transcript.delta", "delta")])
def test_nul_and_half_surrogate_pairs_from_upstream_become_replacement_characters(kind, field):
    """What the model says is stored: text PostgreSQL or UTF-8 cannot hold would lose the whole turn."""
    message, _ = protocol.normalize({"type": kind, "item_id": "item_1", field: "a\x00b\ud800c"})
    assert message["delta" if field == "delta" else "text"] == "a\ufffdb\ufffdc"
