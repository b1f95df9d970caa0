"""Every method on the video families' spans (frames, extra newline tokens): the score-free and
score-based ones equal the unpatched model with their dropped keys masked; ToMe runs and merges."""

import pytest

import adsc

from .families import CASES
from .test_families import compressed, last_layer, masked_reference, model_of

VIDEO_CASES = [c for c in CASES if c.name in ("llava_onevision", "llava_next_video", "qwen2_vl_video")]
METHODS = {
    "random": adsc.CompressionConfig(method="random", layers=(2, 4), drop_ratio=0.5),
    "fastv": adsc.CompressionConfig(method="fastv", layers=(2,), drop_ratio=0.5),
    "pyramiddrop": adsc.CompressionConfig(method="pyramiddrop", layers=(2, 4), drop_ratio=0.5,
                                          options={"positions": "keep"}),  # "renumber" moves positions: no masked reference
}


@pytest.mark.parametrize("case", VIDEO_CASES, ids=[c.name for c in VIDEO_CASES])
def test_methods_on_video_spans_equal_masking(case):
    model, inputs = model_of(case), case.batch(case.samples())
    for name, config in METHODS.items():
        out, trace = compressed(model, config, inputs)
        ref = masked_reference(model, trace, inputs)
        for b in range(out.shape[0]):
            kept = trace.positions(last_layer(model), b)
            kept = kept[inputs["attention_mask"][b, kept].bool()]
            assert (out[b, kept] - ref[b, kept]).abs().max() <= 1e-5, (name, b)
    _, trace = compressed(model, adsc.CompressionConfig(method="tome", layers=(2, 4), drop_ratio=0.5), inputs)
    for b, spans in enumerate(trace.seq.spans):
        counts = trace.vision_tokens(b)
        assert counts[-1] < counts[0] or not spans
