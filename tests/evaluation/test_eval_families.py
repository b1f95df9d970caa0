"""Evaluation on every family the engine supports beyond LLaVA-1.5: the real loading path, the
family's own processor outputs (image_sizes, image_grid_thw) through compressed generation."""

import json
import os

import pytest
from eval_fixtures import OPTIONS

import adsc
from adsc import tiny, tiny_gemma3, tiny_internvl, tiny_llava_video, tiny_qwen3_vl
from adsc.evaluation.generation import load_model
from adsc.evaluation.model_facts import reference_vision_tokens
from adsc.evaluation.run import evaluate

FAMILIES = {  # name -> (model builder, processor builder, image marker of the chat template the test gives it)
    "llava_next": (tiny.tiny_llava_next, tiny.tiny_llava_next_processor, None),  # adsc's default LLaVA prompt
    "qwen2_vl": (tiny.tiny_qwen2_vl, tiny.tiny_qwen2_vl_processor, tiny.QWEN_IMAGE),
    "gemma3": (tiny_gemma3.tiny_gemma3, tiny_gemma3.tiny_gemma3_processor, None),  # its builder gives Gemma's template
    "qwen3_vl": (tiny_qwen3_vl.tiny_qwen3_vl, tiny_qwen3_vl.tiny_qwen3_vl_processor, tiny.QWEN_IMAGE),
    "internvl": (tiny_internvl.tiny_internvl, tiny_internvl.tiny_internvl_processor, "<IMG_CONTEXT>"),
    "llava_onevision": (tiny_llava_video.tiny_llava_onevision, tiny_llava_video.tiny_llava_onevision_processor, None),
    "llava_next_video": (tiny_llava_video.tiny_llava_next_video, tiny_llava_video.tiny_llava_next_video_processor, None),
}
CONFIG = adsc.CompressionConfig(layers=(2, 4), drop_ratio=0.5)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def saved(request, tmp_path_factory):
    build_model, build_processor, marker = FAMILIES[request.param]
    path = str(tmp_path_factory.mktemp(request.param))
    build_model(layers=6, seed=3).save_pretrained(path)
    processor = build_processor()
    if marker is not None:  # the prompt needs the family's image markers: hub processors carry a chat template
        processor.chat_template = tiny.tiny_chat_template(marker)
    processor.save_pretrained(path)
    return path


def test_compressed_evaluation_runs_on_the_familys_own_inputs(saved, data_root, tmp_path):
    model, processor = load_model(saved, "float32", "cpu")
    out = str(tmp_path / "run")
    count, exact = reference_vision_tokens(model.config)  # a fixed grid (Gemma 3) is the reference, as adsc eval sets it
    config = CONFIG.replace(vision_tokens=count) if exact else CONFIG
    results = evaluate(model, processor, ["pope", "sqa"], data_root, out, compression=config, model_name="tiny",
                       batch_size=3, max_new_tokens=2, progress=False, benchmark_options=OPTIONS)
    assert set(results["benchmarks"]) == {"pope", "sqa"}
    # every image is halved twice on its own grid: the measured average is well below the full count
    assert 0 < results["measured_average"] < results["vision_tokens"]
    with open(os.path.join(out, "results.json")) as fh:
        assert json.load(fh)["compression"]["layers"] == [2, 4]
