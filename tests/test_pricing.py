"""Prices of whole GA `response.done` usages, each rate checked where two rates of a model differ.

gpt-realtime bills cached text and cached audio alike ($0.40 / 1M), so only a model whose two cached rates differ
(gpt-realtime-mini: text $0.06, audio $0.30) shows which one cached audio is billed at; likewise an image rate is
only checked by usage with uncached *and* cached image tokens. Expected figures are worked out by hand below.
"""

from __future__ import annotations

from typing import Any

import pytest
from openai import BaseModel
from openai.types.realtime import RealtimeResponseUsage

from s2s_eval import pricing


def ga_usage(text: int = 0, audio: int = 0, image: int = 0, cached_text: int = 0, cached_audio: int = 0,
             cached_image: int = 0, text_out: int = 0, audio_out: int = 0) -> dict[str, Any]:
    """A complete GA usage object, validated by the SDK's type (no field it does not know), as the runner sees it."""
    inputs, outputs = text + audio + image, text_out + audio_out
    raw = {"total_tokens": inputs + outputs, "input_tokens": inputs, "output_tokens": outputs,
           "input_token_details": {"text_tokens": text, "audio_tokens": audio, "image_tokens": image,
                                   "cached_tokens": cached_text + cached_audio + cached_image,
                                   "cached_tokens_details": {"text_tokens": cached_text, "audio_tokens": cached_audio,
                                                             "image_tokens": cached_image}},
           "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out}}
    usage = RealtimeResponseUsage.model_validate(raw)
    assert not _extra_fields(usage), _extra_fields(usage)
    return usage.model_dump()


def _extra_fields(model: BaseModel) -> list[str]:
    """Fields the SDK type does not declare (it accepts them silently), at any depth."""
    extra = list(model.model_extra or {})
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            extra += [f"{name}.{e}" for e in _extra_fields(value)]
    return extra


# A long cached conversation: most of the prompt (instructions, earlier turns, their audio) hits the cache.
CACHED_TURN = ga_usage(text=1200, cached_text=1024, audio=2500, cached_audio=2048, text_out=150, audio_out=900)


def test_gpt_realtime_mini_bills_cached_audio_at_its_own_rate_not_the_cached_text_rate() -> None:
    price = pricing.price_for("gpt-realtime-mini")
    assert (price.text_cached, price.audio_cached) == (0.06, 0.30)  # the two cached rates this test tells apart
    # uncached text  (1200 - 1024) = 176 × $0.60 =   105.60
    # cached text             1024 × $0.06 =    61.44
    # uncached audio (2500 - 2048) = 452 × $10.00 = 4,520.00
    # cached audio            2048 × $0.30 =   614.40  (at the cached text rate it would be 122.88)
    # text out                 150 × $2.40 =   360.00
    # audio out                900 × $20.00 = 18,000.00
    #                                  total 23,661.44 per 1M tokens = $0.02366144
    assert pricing.cost_usd(CACHED_TURN, price) == pytest.approx(0.02366144, rel=1e-9)


def test_gpt_realtime_bills_the_same_cached_turn() -> None:
    price = pricing.price_for("gpt-realtime")
    # uncached text 176 × $4 = 704; cached text 1024 × $0.40 = 409.6; uncached audio 452 × $32 = 14,464;
    # cached audio 2048 × $0.40 = 819.2; text out 150 × $16 = 2,400; audio out 900 × $64 = 57,600
    # total 76,396.8 per 1M tokens = $0.0763968
    assert pricing.cost_usd(CACHED_TURN, price) == pytest.approx(0.0763968, rel=1e-9)


@pytest.mark.parametrize(("model", "usd"), [
    # uncached image (1500 - 500) = 1000 × $0.80 = 800; cached image 500 × $0.08 = 40; total 840 → $0.00084
    ("gpt-realtime-mini", 0.00084),
    # uncached image 1000 × $5.00 = 5,000; cached image 500 × $0.50 = 250; total 5,250 → $0.00525
    ("gpt-realtime", 0.00525),
])
def test_uncached_image_tokens_are_billed_at_the_image_input_rate(model: str, usd: float) -> None:
    usage = ga_usage(image=1500, cached_image=500)
    assert pricing.cost_usd(usage, pricing.price_for(model)) == pytest.approx(usd, rel=1e-9)


def test_an_image_turn_with_text_and_audio_adds_every_part() -> None:
    price = pricing.price_for("gpt-realtime-mini")
    usage = ga_usage(text=300, cached_text=256, audio=100, image=765, cached_image=512, text_out=40, audio_out=200)
    # uncached text 44 × $0.60 = 26.4; cached text 256 × $0.06 = 15.36; audio 100 × $10 = 1,000;
    # uncached image (765 - 512) = 253 × $0.80 = 202.4; cached image 512 × $0.08 = 40.96;
    # text out 40 × $2.40 = 96; audio out 200 × $20 = 4,000; total 5,381.12 per 1M tokens = $0.00538112
    assert pricing.cost_usd(usage, price) == pytest.approx(0.00538112, rel=1e-9)
