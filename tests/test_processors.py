"""Processors where torchvision is absent (Qwen2-VL and the other families): images go through, videos are refused."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from adsc.processors import ImagesOnlyVideoProcessor, VideoNeedsTorchvision, torchvision_missing
from adsc.tiny import IMAGE_TOKEN, tiny_qwen2_vl, tiny_qwen2_vl_processor

pytestmark = pytest.mark.skipif(not torchvision_missing(), reason="with torchvision, transformers' own video processor is used")
PROMPT = "what <|vision_start|><|image_pad|><|vision_end|> is it ?"
IMAGE = Image.new("RGB", (60, 40), (200, 30, 30))


def test_a_saved_processor_loads_back_and_takes_images_only(tmp_path):
    from transformers import AutoProcessor

    image = Image.fromarray((torch.rand(112, 84, 3, generator=torch.Generator().manual_seed(0)) * 255).byte().numpy())
    built = tiny_qwen2_vl_processor()
    model = tiny_qwen2_vl()
    model.config.architectures = ["Qwen2VLForConditionalGeneration"]
    model.config.save_pretrained(tmp_path)  # the folder's config tells the video slot it is Qwen2-VL's
    built.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded.video_processor, ImagesOnlyVideoProcessor)
    want, got = built(text=PROMPT, images=[image], return_tensors="pt"), loaded(text=PROMPT, images=[image], return_tensors="pt")
    assert got["image_grid_thw"].tolist() == [[1, 8, 6]] and int((got["input_ids"] == 31).sum()) == 12
    for key in want:
        torch.testing.assert_close(got[key], want[key])
    with pytest.raises(VideoNeedsTorchvision, match="send the frames as images"):
        loaded(text="<|vision_start|><|video_pad|><|vision_end|>", videos=[[image, image]])


def test_a_processor_saved_without_the_model_config_loads_back(tmp_path):
    """Regression: a LoRA training output holds the processor files but no config.json (the config stays with
    the base model), so the video slot could not tell its family and the merge export failed without torchvision."""
    from adsc.loading import load_processor

    tiny_qwen2_vl_processor().save_pretrained(tmp_path)
    loaded = load_processor(str(tmp_path))
    assert isinstance(loaded.video_processor, ImagesOnlyVideoProcessor)
    assert "_family" not in (tmp_path / "processor_config.json").read_text()  # wording only, not a setting


@pytest.mark.parametrize("family", ["internvl", "qwen3_vl", "llava_onevision", "llava_next_video", "mistral3"])
def test_every_family_processor_loads_back_and_takes_images(family, tmp_path):
    """InternVL, Qwen3-VL, LLaVA-OneVision and LLaVA-NeXT-Video processors get the images-only video slot; Mistral 3's
    PixtralProcessor (torchvision-only by declaration, for one sizing helper) is imported with the Pillow one."""
    from adsc.loading import load_processor
    from tests.families_io import FAMILIES, save_family

    save_family(family, str(tmp_path))
    loaded, built = load_processor(str(tmp_path)), FAMILIES[family][1]()
    assert type(loaded) is type(built)
    if hasattr(built, "video_processor"):
        assert isinstance(loaded.video_processor, ImagesOnlyVideoProcessor)
        with pytest.raises(VideoNeedsTorchvision, match="install a torchvision built for this torch"):
            loaded.video_processor([[IMAGE, IMAGE]])
    marker = FAMILIES[family][2]
    want = built(text=[f"what {marker} is it ?"], images=[IMAGE], return_tensors="pt")
    got = loaded(text=[f"what {marker} is it ?"], images=[IMAGE], return_tensors="pt")
    assert set(got) == set(want) and int((got["input_ids"] == IMAGE_TOKEN).sum()) > 0
    for key in want:
        torch.testing.assert_close(got[key], want[key])
