"""Eval specs (`evals/<name>.yaml`): which dataset, how it is spoken, what the model is told, how it is graded."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from s2s_eval import registry
from s2s_eval.datasets.perturb import Perturbation
from s2s_eval.speech.tts import TTSSettings


class DuplexSpec(BaseModel):
    """Full-duplex evals (`turn_taking`): the caller streams audio in real time for the whole scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_pause_ms: int = Field(default=2000, gt=0)  # the longest mid-utterance pause a model must wait through
    grace_ms: int = Field(default=2000, ge=0)  # quiet time after the last activity before a scenario ends
    max_scenario_s: float = Field(default=90.0, gt=0)  # a scenario still running after this fails (timeout)


class EvalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    adapter: str
    grader: str
    categories: list[str] = []
    source: dict[str, str] = {}
    subset: str | None = None  # a subset the adapter defines (MultiChallenge: audio, all); None = the adapter's default
    instructions: str = ""
    tts: TTSSettings = TTSSettings()
    # "official": the dataset's published recordings instead of TTS (Big Bench Audio: source.official_audio).
    audio_source: Literal["tts", "official"] = "tts"
    perturb: Perturbation | None = None  # applied on top of every spoken clip (the `sweep` command sets its level)
    # Multi-turn evals: prior user turns are replayed as spoken audio items ("audio") or as text; prior assistant
    # turns are always text (a client cannot create assistant audio).
    history_user: Literal["audio", "text"] = "audio"
    max_tool_rounds: int = Field(default=16, ge=0)  # function-call rounds per turn before the runner stops answering
    duplex: DuplexSpec | None = None  # set: each sample is one full-duplex scenario (runners/duplex.py)

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def load_eval(name: str) -> EvalSpec:
    """Load `evals/<name>.yaml`."""
    return registry.load("evals", name, EvalSpec, "eval")
