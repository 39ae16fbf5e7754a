"""How the questions were put to each model, and accuracy across it: perturbation level, modality, voice.

A run's condition comes from its records (`perturbation`, `modality`), falling back to its `spec.json`; runs of
one model that differ only in condition are a sweep or an ablation, not a history. Everything here is read from the
journal, like the rest of the report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from s2s_eval.graders.summary import summarise
from s2s_eval.reports import charts, charts_latency, stats

SPEECH = "audio→audio"
TEXT = "text→text"


@dataclass(frozen=True)
class Condition:
    """What the model heard and how it answered: modality (`input→output`) and the perturbation, if any."""

    modality: str = SPEECH
    perturbation: str | None = None  # kind: noise, rate, telephone, packet_loss
    level: float | None = None
    unit: str = ""
    detail: str = ""  # e.g. the noise colour

    def describe(self) -> str:
        parts = [self.modality]
        if self.perturbation:
            level = "" if self.level is None else f" {self.level:g}"
            unit = f" {self.unit}" if self.unit and self.level is not None else ""
            detail = f" ({self.detail})" if self.detail else ""
            parts.append(f"{self.perturbation}{detail}{level}{unit}")
        return " · ".join(parts)


@dataclass(frozen=True)
class VoiceAccuracy:
    voice: str
    graded: int
    correct: int
    accuracy: float | None


def condition_of(records: Sequence[dict[str, Any]], spec: dict[str, Any]) -> Condition:
    """The condition of a run's records: the first record that says, else the run's spec."""
    modality = next((r["modality"] for r in records if isinstance(r.get("modality"), dict)), None)
    if modality:
        mode = f"{modality.get('input') or 'audio'}→{modality.get('output') or 'audio'}"
    else:
        runner = spec.get("runner") or {}
        outputs = runner.get("output_modalities") or (spec.get("model") or {}).get("output_modalities") or ["audio"]
        mode = f"{runner.get('input_modality') or 'audio'}→{'+'.join(outputs)}"
    facts = next((r["perturbation"] for r in records if isinstance(r.get("perturbation"), dict)), None)
    facts = facts or (spec.get("perturbation") if isinstance(spec.get("perturbation"), dict) else None)
    if not facts or mode.startswith("text"):  # typed questions are never perturbed
        return Condition(mode)
    level = facts.get("level")
    return Condition(mode, str(facts.get("kind") or "perturbed"),
                     float(level) if isinstance(level, int | float) and not isinstance(level, bool) else None,
                     str(facts.get("unit") or ""), str(facts.get("noise") or ""))


def by_voice(records: Sequence[dict[str, Any]]) -> list[VoiceAccuracy]:
    """Accuracy per voice that spoke the questions (records without a voice are left out), by voice name; empty
    unless two or more voices did (a voice mix), so a one-voice run is not summarised twice."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if isinstance(record.get("voice"), str):
            grouped[record["voice"]].append(record)
    if len(grouped) < 2:
        return []
    out = []
    for voice in sorted(grouped):
        summary = summarise(grouped[voice])
        out.append(VoiceAccuracy(voice, summary["graded"], summary["correct"], summary["accuracy"]))
    return out


def level_sections(groups: Sequence[Any], colours: dict[str, str]) -> list[dict[str, Any]]:
    """Per eval and perturbation kind swept over two or more levels: a chart and a table of accuracy per level.

    `groups` are `aggregate.Group`s; a series is one model (by name) at one modality, its points the levels.
    """
    swept: dict[tuple[str, str, str], dict[tuple[str, str], dict[float, Any]]] = defaultdict(lambda: defaultdict(dict))
    for g in groups:
        c = g.condition
        if c.perturbation and c.level is not None:
            swept[(g.eval, c.perturbation, c.unit)][(g.name, c.modality)][c.level] = g  # the last run given per level
    sections = []
    for (eval_name, kind, unit), series in swept.items():
        if max(len(levels) for levels in series.values()) < 2:
            continue
        several_modalities = len({modality for _, modality in series}) > 1
        named = {(f"{name} · {modality}" if several_modalities else name, name): levels
                 for (name, modality), levels in series.items()}
        lines = [(label, colours[name], [(level, g.summary["accuracy"], g.accuracy_ci)
                                         for level, g in sorted(levels.items())])
                 for (label, name), levels in named.items()]
        descending = unit == "dB SNR"  # cleanest first: high SNR, then lower
        order = sorted({level for levels in series.values() for level in levels}, reverse=descending)
        rows = [{"level": level, "cells": [_cell(levels.get(level)) for levels in named.values()]} for level in order]
        axis = f"{kind} ({unit})" if unit else kind
        chart = charts_latency.level_chart(lines, axis, f"{eval_name}: accuracy vs {axis}", descending=descending)
        sections.append({"eval": eval_name, "kind": kind, "axis": axis, "labels": [label for label, _ in named],
                         "rows": rows, "uri": charts.data_uri(chart)})
    return sections


def modality_rows(groups: Sequence[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """When the runs differ in modality: per model and eval, accuracy at each modality and the speech gap.

    The gap is text→text accuracy minus audio→audio accuracy (percentage points), the cost of hearing and
    speaking over reading and writing the same items. Perturbed runs are left out: they measure something else.
    """
    clean = [g for g in groups if not g.condition.perturbation]
    modalities = sorted({g.condition.modality for g in clean}, key=lambda m: (m != SPEECH, m != TEXT, m))
    if len(modalities) < 2:
        return [], []
    table: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for g in clean:
        table[(g.name, g.eval)][g.condition.modality] = g  # the last run given of each modality
    rows = []
    for (name, eval_name), cells in table.items():
        speech, text = cells.get(SPEECH), cells.get(TEXT)
        gap = None
        if speech and text and speech.summary["accuracy"] is not None and text.summary["accuracy"] is not None:
            gap = text.summary["accuracy"] - speech.summary["accuracy"]
        rows.append({"name": name, "eval": eval_name, "gap": gap,
                     "cells": [_cell(cells.get(m)) for m in modalities]})
    return modalities, rows


def _cell(group: Any) -> dict[str, Any] | None:
    if group is None:
        return None
    s = group.summary
    return {"accuracy": s["accuracy"], "correct": s["correct"], "graded": s["graded"]}


def voice_rows(groups: Sequence[Any]) -> list[dict[str, Any]]:
    """Accuracy per voice for every group whose questions were spoken by two or more voices (a voice mix)."""
    rows = []
    for g in groups:
        for v in g.voices:  # empty unless a voice mix
            ci = stats.proportion_ci(v.correct, v.graded)
            rows.append({"label": g.label, "eval": g.eval, "voice": v.voice, "accuracy": v.accuracy,
                         "correct": v.correct, "graded": v.graded, "ci": ci})
    return rows
