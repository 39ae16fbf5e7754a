"""openai-agents (which validates every server event strictly) runs a tool-calling session on the server."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.openai_realtime import OpenAIRealtimeWebSocketModel

from s2s_eval.server.app import ServerConfig, running
from tests.servers import write_script
from tests.test_server_sdk import SERVER_EVENT

FINAL = "It is sunny and 21 degrees in Paris."


async def test_agents_session_with_a_function_tool(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        calls.append(city)
        return json.dumps({"city": city, "temp_c": 21})

    script = write_script(tmp_path / "script.jsonl", [{"sample_id": "*", "responses": [
        {"text": "Let me check.", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"text": FINAL}]}])
    raw: list[dict[str, Any]] = []
    problems: list[str] = []
    transcripts: list[str] = []
    caplog.set_level(logging.ERROR, logger="openai.agents")
    async with running(ServerConfig(port=0, engine="scripted", script=script)) as (_, url):
        runner = RealtimeRunner(RealtimeAgent(name="weather", instructions="Use the tool.", tools=[get_weather]),
                                model=OpenAIRealtimeWebSocketModel(),
                                config={"model_settings": {"model_name": "gpt-realtime", "voice": "marin"}})
        session = await runner.run(model_config={"url": f"{url}?model=gpt-realtime", "headers": {}})
        async with session:
            await session.send_message("What's the weather in Paris?")
            async with asyncio.timeout(30):
                async for event in session:
                    if event.type == "raw_model_event":
                        data = event.data
                        if data.type in ("error", "exception"):
                            problems.append(repr(data))
                        elif data.type == "raw_server_event":
                            raw.append(data.data)
                            if data.data["type"] == "response.output_audio_transcript.done":
                                transcripts.append(data.data["transcript"])
                    elif event.type == "error":
                        problems.append(repr(event))
                    if FINAL in transcripts and event.type == "agent_end":
                        break

    assert problems == []
    assert [r.message for r in caplog.records if "validate" in r.message.lower()] == []
    assert calls == ["Paris"]
    assert transcripts == ["Let me check.", FINAL]
    for event in raw:  # and our own strict check over every frame the agent received
        SERVER_EVENT.validate_python(event)
    kinds = [e["type"] for e in raw]
    assert "response.function_call_arguments.done" in kinds
    first_done = next(e for e in raw if e["type"] == "response.done")["response"]
    assert [item["type"] for item in first_done["output"]] == ["message", "function_call"]
    call = first_done["output"][1]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
