"""xAI Grok Voice events as documented, as pydantic models: the reference for the Grok-shaped server and codec.

Transcribed from the shapes xAI's guide shows (docs.x.ai/docs/guides/voice/agent: session parameters, voices,
client and server event names) with field-level detail from pipecat's `services/xai/realtime/events.py`, which
cites that guide. Sessions are closed (`extra="forbid"`): a GA-only field sent to Grok is a failure here. Server
events allow fields the documentation does not list only inside the response object, which Grok documents loosely.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PcmFormat(_Closed):
    type: Literal["audio/pcm"]
    rate: Literal[8000, 16000, 21050, 24000, 32000, 44100, 48000] = 24000


class G711Format(_Closed):
    type: Literal["audio/pcmu", "audio/pcma"]


Format = PcmFormat | G711Format


class AudioSide(_Closed):
    format: Format | None = None
    transcription: dict[str, Any] | None = None
    speed: float | None = None


class Audio(_Closed):
    input: AudioSide | None = None
    output: AudioSide | None = None


class TurnDetection(_Closed):
    type: Literal["server_vad"] | None = "server_vad"
    threshold: float | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    idle_timeout_ms: int | None = None
    # GA's server_vad also sends these two; Grok's server_vad answers on its own, so they are tolerated as given
    create_response: bool | None = None
    interrupt_response: bool | None = None


class Reasoning(_Closed):
    effort: Literal["none", "high"]


class Session(_Closed):
    instructions: str | None = None
    voice: str | None = None
    turn_detection: TurnDetection | None = None
    audio: Audio | None = None
    reasoning: Reasoning | None = None
    tools: list[dict[str, Any]] | None = None


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: str | None = None


class SessionUpdate(_Event):
    type: Literal["session.update"]
    session: Session


class AudioAppend(_Event):
    type: Literal["input_audio_buffer.append"]
    audio: str


class AudioCommit(_Event):
    type: Literal["input_audio_buffer.commit", "input_audio_buffer.clear", "response.cancel"]


class Content(_Closed):
    type: Literal["input_text", "input_audio", "output_text", "output_audio", "text", "audio"]
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None


class Item(BaseModel):
    model_config = ConfigDict(extra="allow")  # GA adds object/status on the server side
    id: str | None = None
    type: Literal["message", "function_call", "function_call_output"]
    role: Literal["user", "assistant", "system", "tool"] | None = None
    content: list[Content] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None


class ItemCreate(_Event):
    type: Literal["conversation.item.create"]
    previous_item_id: str | None = None
    item: Item


class ResponseParams(_Closed):
    modalities: list[Literal["text", "audio"]] | None = None


class ResponseCreate(_Event):
    type: Literal["response.create"]
    response: ResponseParams | None = None


CLIENT_EVENT = TypeAdapter(Annotated[SessionUpdate | AudioAppend | AudioCommit | ItemCreate | ResponseCreate,
                                     Field(discriminator="type")])


class Usage(_Closed):
    total_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


class Response(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["realtime.response"]
    status: Literal["completed", "in_progress", "incomplete", "cancelled", "failed"]
    status_details: Any = None
    output: list[Item]
    usage: Usage | None = None


class _ServerEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: str


class Conversation(_Closed):
    id: str
    object: Literal["realtime.conversation"]


class ConversationCreated(_ServerEvent):
    type: Literal["conversation.created"]
    conversation: Conversation


class Ping(_ServerEvent):
    type: Literal["ping"]
    timestamp: int


class SessionUpdated(_ServerEvent):
    type: Literal["session.updated"]
    session: Session


class ItemAdded(_ServerEvent):
    type: Literal["conversation.item.added"]
    previous_item_id: str | None = None
    item: Item


class BufferItem(_ServerEvent):
    type: Literal["input_audio_buffer.committed", "input_audio_buffer.speech_started",
                  "input_audio_buffer.speech_stopped"]
    item_id: str
    previous_item_id: str | None = None
    audio_start_ms: int | None = None
    audio_end_ms: int | None = None


class Cleared(_ServerEvent):
    type: Literal["input_audio_buffer.cleared"]


class ResponseLifecycle(_ServerEvent):
    type: Literal["response.created", "response.done"]
    response: Response
    usage: Usage | None = None


class OutputItem(_ServerEvent):
    type: Literal["response.output_item.added", "response.output_item.done"]
    response_id: str
    output_index: int
    item: Item


class ContentPart(_ServerEvent):
    type: Literal["response.content_part.added", "response.content_part.done"]
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    part: dict[str, Any]


class AudioDelta(_ServerEvent):
    type: Literal["response.output_audio.delta", "response.output_audio_transcript.delta"]
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str


class AudioDone(_ServerEvent):
    type: Literal["response.output_audio.done"]
    response_id: str
    item_id: str
    output_index: int
    content_index: int


class TranscriptDone(_ServerEvent):
    type: Literal["response.output_audio_transcript.done"]
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    transcript: str


class Error(_ServerEvent):
    type: Literal["error"]
    error: dict[str, Any]


SERVER_EVENT = TypeAdapter(Annotated[
    ConversationCreated | Ping | SessionUpdated | ItemAdded | BufferItem | Cleared | ResponseLifecycle | OutputItem
    | ContentPart | AudioDelta | AudioDone | TranscriptDone | Error, Field(discriminator="type")])
