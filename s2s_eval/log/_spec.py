"""`spec.json`: what a run measured and how, and the one definition of "the same run" (`RunIdentity`).

Resume, merge and compare all ask whether two runs (or a run and a new invocation) measure the same thing. They
ask it here, through `RunIdentity.differences`, and differ only in which facets they tolerate: compare expects the
model to differ, merge and resume expect nothing to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from s2s_eval.hosts import is_loopback
from s2s_eval.log._record import SCHEMA_VERSION


class RunSpec(BaseModel):
    """The run's `spec.json`. Sub-objects owned by other modules (the eval spec, dataset source, TTS facts, judge
    and ASR descriptions, runner settings) are JSON objects; the identity below reads them in one place."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    run_id: str = ""
    started_at: str | None = None
    harness: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    endpoint: str | None = None
    eval: dict[str, Any] = Field(default_factory=dict)
    grader: dict[str, Any] = Field(default_factory=dict)  # {"name", "version"}; empty in version 0
    dataset: dict[str, Any] = Field(default_factory=dict)
    tts: dict[str, Any] | None = None
    perturbation: dict[str, Any] | None = None
    judge: dict[str, Any] = Field(default_factory=lambda: {"configured": False})
    asr: dict[str, Any] = Field(default_factory=lambda: {"configured": False})
    runner: dict[str, Any] = Field(default_factory=dict)
    host: dict[str, Any] = Field(default_factory=dict)
    resumed_at: list[str] = Field(default_factory=list)
    changes: list[dict[str, Any]] = Field(default_factory=list)  # facets a resume was told to accept

    def identity(self) -> RunIdentity:
        return RunIdentity.of(self)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _endpoint(url: str | None) -> str | None:
    """The endpoint as identity sees it: a loopback server's host and port are incidental (a `serve` restarted after
    a crash listens on another free port, and is still the same server), its scheme, path and query are not."""
    if not url or not is_loopback(url):
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://<loopback>{parts.path}" + (f"?{parts.query}" if parts.query else "")


def _backend(value: dict[str, Any]) -> dict[str, Any]:
    """A judge or ASR description without its free-text reason and cache note (versions word them differently)."""
    return {k: v for k, v in value.items() if k not in ("reason", "cache")}


@dataclass(frozen=True)
class Facet:
    """One thing that must match for two runs to be the same measurement."""

    name: str
    label: str  # as compare and merge say it: "input modalities differ"
    flag: str  # what the user changes it with, for resume's message: "--input"
    mixable: bool = True  # may a resume mix it, when told to (--accept-changes)? Never another model or eval.


# Not facets: how a run was scheduled (concurrency, --workers, --shard, retries) changes how fast it went, not what
# it measured; each part of a resumed run records its own in `measurement`.
FACETS = (
    Facet("model", "models", "--model", mixable=False),
    Facet("voice", "output voices", "--voice"),
    Facet("output_modalities", "output modalities", "--output"),
    Facet("endpoint", "endpoints", "--url"),
    Facet("eval", "eval definitions", "--eval (or its YAML)", mixable=False),
    Facet("dataset", "dataset revisions", "--data-dir (the data read)"),
    Facet("input_modality", "input modalities", "--input"),
    Facet("tts", "TTS settings", "the eval's tts settings (or the TTS engine version)"),
    Facet("perturbation", "input perturbations", "the eval's perturb settings"),
    Facet("turn_mode", "turn modes", "--turn-mode"),
    Facet("pace", "paces", "--pace"),
    Facet("protocol", "protocols", "--protocol"),
    Facet("judge", "judges", "the judge settings (S2S_JUDGE_*)"),
    Facet("asr", "ASR backends", "the transcription settings (S2S_ASR_*)"),
    Facet("grader", "graders (name or version)", "the grader (harness version)"),
    Facet("attempts", "attempts per sample (pass@k)", "--attempts"),
)


@dataclass(frozen=True)
class Difference:
    facet: Facet
    mine: Any
    theirs: Any

    @staticmethod
    def show(value: Any) -> str:
        if value is None or value == {} or value == []:
            return "none"
        if isinstance(value, dict):
            return ", ".join(f"{k} {Difference.show(v)}" for k, v in sorted(value.items()) if v is not None)[:160]
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)[:160]

    def describe(self, mine: str, theirs: str) -> str:
        """`--input: audio in the run, text now` (with `mine`="in the run", `theirs`="now")."""
        return f"{self.facet.flag}: {self.show(self.mine)} {mine}, {self.show(self.theirs)} {theirs}"

    def label(self) -> str:
        """`TTS settings differ: base {...} vs new {...}`, naming the keys that differ for objects."""
        a, b = self.mine, self.theirs
        if isinstance(a, dict) and isinstance(b, dict):
            keys = sorted(k for k in {*a, *b} if a.get(k) != b.get(k))
            shown = "; ".join(f"{k}: base {self.show(a.get(k))} vs new {self.show(b.get(k))}" for k in keys[:4])
            return f"{self.facet.label} differ in {', '.join(keys)} ({shown})"
        return f"{self.facet.label} differ: base {self.show(a)} vs new {self.show(b)}"


class RunIdentity(BaseModel):
    """Everything that makes two runs comparable like for like, read from their specs."""

    model_config = ConfigDict(frozen=True)

    model: dict[str, Any]
    voice: str | None
    output_modalities: list[str]
    endpoint: str | None
    eval: dict[str, Any]
    dataset: str | None
    input_modality: str
    tts: dict[str, Any] | None
    perturbation: dict[str, Any] | None
    turn_mode: str | None
    pace: str | None
    protocol: str | None
    judge: dict[str, Any]
    asr: dict[str, Any]
    grader: dict[str, Any]
    attempts: int

    @classmethod
    def of(cls, spec: RunSpec) -> RunIdentity:
        runner, model = spec.runner, spec.model
        return cls(
            model={k: model.get(k) for k in ("name", "model", "provider", "reasoning", "reasoning_effort")},
            voice=model.get("voice"),
            output_modalities=list(model.get("output_modalities") or runner.get("output_modalities") or []),
            endpoint=_endpoint(spec.endpoint),
            eval={k: v for k, v in spec.eval.items() if k != "description"},
            dataset=spec.dataset.get("content_sha256"),
            input_modality=runner.get("input_modality", "audio"),
            tts=spec.tts, perturbation=spec.perturbation,
            turn_mode=runner.get("turn_mode"), pace=runner.get("pace"), protocol=runner.get("protocol"),
            judge=_backend(spec.judge), asr=_backend(spec.asr),
            grader=spec.grader or {"name": spec.eval.get("grader"), "version": None},
            attempts=int(runner.get("trials", 1)),
        )

    def differences(self, other: RunIdentity, *, ignore: tuple[str, ...] = ()) -> list[Difference]:
        """Each facet in which the two differ, in FACETS order, but those named in `ignore`."""
        return [Difference(f, getattr(self, f.name), getattr(other, f.name)) for f in FACETS
                if f.name not in ignore and getattr(self, f.name) != getattr(other, f.name)]
