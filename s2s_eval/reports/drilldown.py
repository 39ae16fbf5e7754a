"""The per-sample drill-down: a compact JSON payload per table row, embedded as an inert data block.

The page's script builds the drill-down from this payload with `textContent` only, so untrusted text is never
parsed as HTML. The JSON itself is escaped for its `<script type="application/json">` element: `<`, `>` and `&`
become `\\u003c`-style escapes, so no transcript can close the element or open a tag.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from s2s_eval.reports.aggregate import SampleRow
from s2s_eval.reports.media import RunMedia

# Long grader details (a ComplexFuncBench trajectory) are cut to this many characters: the report must stay small.
MAX_DETAIL_CHARS = 2000
MAX_TEXT_CHARS = 4000

_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028",
                 0x2029: "\\u2029"}


def json_script(data: Any) -> Markup:
    """JSON safe to place inside `<script type="application/json">`: no character in it can end the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    return Markup(text.translate(_JSON_ESCAPES))  # escaped above; the block is data, never executed


def _cut(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def _number(value: Any) -> float | None:
    return round(float(value), 1) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in (None, "", [], {})}


class Payload:
    """Builds the rows' payloads, sharing one table of event names (timelines repeat the same dozen names)."""

    def __init__(self, media: Sequence[RunMedia]) -> None:
        self.media = media
        self.events: list[str] = []
        self._event_index: dict[str, int] = {}

    def _event(self, name: str) -> int:
        if name not in self._event_index:
            self._event_index[name] = len(self.events)
            self.events.append(name)
        return self._event_index[name]

    def _timeline(self, timeline: Any) -> list[list[float]]:
        out = []
        for item in timeline if isinstance(timeline, list) else []:
            if isinstance(item, list | tuple) and len(item) >= 2 and _number(item[1]) is not None:
                out.append([self._event(str(item[0])), _number(item[1])])
        return out

    def _dynamics(self, part: Any) -> dict[str, Any] | None:
        """A full-duplex scenario's verdict, its timing facts and verdicts (ms, yes/no), and its events timeline."""
        if not isinstance(part, dict):
            return None
        facts: dict[str, Any] = {}
        for key, value in part.items():
            if key in ("scenario", "verdict", "events") or value is None:  # None: not measured, not shown as 0
                continue
            if isinstance(value, bool):
                facts[key] = "yes" if value else "no"
            else:
                facts[key] = _number(value) if _number(value) is not None else _cut(value, 200)
        return _compact({"scenario": part.get("scenario"), "verdict": _cut(part.get("verdict"), 1000),
                         "facts": _compact(facts), "timeline": self._timeline(part.get("events"))})

    def row(self, row: SampleRow) -> dict[str, Any]:
        """The drill-down of one sample: audio, responses, verdict and reason, grade, errors, timeline, and a
        full-duplex scenario's dynamics."""
        r = row.record
        grade = r.get("grade") or {}
        latency = r.get("latency") or {}
        usage = r.get("usage") or {}
        media = self.media[row.run_index] if row.run_index < len(self.media) else None
        responses = [_compact({"turn": x.get("turn"), "text": _cut(x.get("text"), MAX_TEXT_CHARS),
                               "calls": [_cut(f"{c.get('name')}({_cut(c.get('arguments'), 400) or ''})", 500)
                                         for c in x.get("function_calls") or [] if isinstance(c, dict)]})
                     for x in r.get("responses") or [] if isinstance(x, dict)]
        # One plain response is the row's transcript already: repeat it only when there is more to show.
        if len(responses) == 1 and not responses[0].get("calls"):
            responses = []
        asr = r.get("asr") or {}
        return _compact({
            "out": media.output.get(row.sample_id) if media else None,
            "in": media.input.get(row.sample_id) if media else None,
            "out_note": media.unavailable.get((row.sample_id, "out")) if media else None,
            "in_note": media.unavailable.get((row.sample_id, "in")) if media else None,
            "grade": _compact({"reason": _cut(grade.get("reason"), MAX_TEXT_CHARS),
                               "extracted": _cut(grade.get("extracted"), 400),
                               "metrics": grade.get("metrics") or None,
                               "details": _cut(grade.get("details") or None, MAX_DETAIL_CHARS)}),
            "error": _cut(r.get("error"), 1000),
            "attempt_errors": [_cut(e, 300) for e in r.get("attempt_errors") or []][:10],
            "attempts": r.get("attempts"),
            "responses": responses,
            "trials": [_compact({"correct": t.get("correct"), "reason": _cut(t.get("reason"), 300)})
                       for t in r.get("trials") or [] if isinstance(t, dict)],
            "latency": _compact({k: _number(latency.get(k)) for k in
                                 ("ttfa_ms", "ttft_ms", "total_ms", "output_leading_silence_ms",
                                  "ttfa_voiced_ms")}),
            "tokens": _compact({"in": usage.get("input_tokens"), "out": usage.get("output_tokens")}),
            "cost_usd": r.get("cost_usd"),
            "asr_wer": asr.get("wer"),
            "timeline": self._timeline(r.get("timeline")),
            "dynamics": self._dynamics(r.get("dynamics")),
        })


def payload(rows: Sequence[SampleRow], media: Sequence[RunMedia]) -> dict[str, Any]:
    """Everything the page's script needs: per-row drill-downs (in table order), event names, audio notes."""
    builder = Payload(media)
    samples = [builder.row(row) for row in rows]
    return {"samples": samples, "events": builder.events,
            "notes": [{"in": m.input_note, "out": m.output_note} for m in media]}
