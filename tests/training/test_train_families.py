"""`adsc train` on the families beyond LLaVA-1.5: the adapter tells training the parts to train,
the prompt format and the reference token count; the family's own processor outputs
(image_sizes, image_grid_thw) go through the collator into the compressed forward."""

from __future__ import annotations

import math
import os

import pytest
import torch
from fixtures import make_dataset
from PIL import Image
from tests.families_io import FAMILIES, params, save_family
from transformers import TrainerCallback

import adsc
from adsc import tiny
from adsc.evaluation.generation import Generator, load_model
from adsc.training import TrainConfig, train
from adsc.training.data import IGNORE, Encoder
from adsc.training.export import MERGED, load_trained
from adsc.training.records import parse_record

# images of several sizes and shapes in one batch: tile / sub-image counts and canvases differ between samples
SIZES = {"red": (60, 40), "green": (40, 60), "blue": (100, 100), "yellow": (30, 30)}


class Dropped(TrainerCallback):
    """Whether a training step ran with vision tokens dropped at the pruning layers."""

    def __init__(self):
        self.seen = []

    def on_step_end(self, args, state, control, model=None, **kw):
        trace = adsc.get_handle(model).last_trace
        if trace is not None:
            self.seen += [trace.vision_tokens(b) for b in range(trace.batch_size)]


@pytest.mark.parametrize("family", params())
def test_lora_training_runs_compressed_on_the_familys_inputs(family, tmp_path):
    model_dir = save_family(family, str(tmp_path / "model"))
    data, images = make_dataset(str(tmp_path), n=8, sizes=SIZES)
    probe = Dropped()
    cfg = TrainConfig.from_settings(
        model=model_dir, data=data, image_folder=images, output_dir=str(tmp_path / "out"),
        layers=(2, 4), budget=40, vision_tokens=100,
        curriculum="direct", global_batch_size=4, per_device_train_batch_size=4, max_steps=2, lora_r=4, lora_alpha=8,
        learning_rate=1e-3, warmup_steps=0.0, dataloader_num_workers=0, save_steps=100, logging_steps=1, merge=True,
    )
    summary = train(cfg, callbacks=[probe])
    assert summary["steps"] == 2 and all(math.isfinite(x) for x in summary.get("losses", [0.0]))
    with_images = [counts for counts in probe.seen if counts[0] > 0]
    assert with_images and all(c[-1] < c[0] for c in with_images)  # compressed in training, image by image
    assert os.path.exists(os.path.join(cfg.output_dir, "adapter_model.safetensors"))
    _merged_equals_adapter(cfg.output_dir)


def _merged_equals_adapter(out: str) -> None:
    """The merge export loads back (model and processor, as evaluation loads them) and computes what
    the base model with the trained adapter computes."""
    merged_dir = os.path.join(out, MERGED)
    merged, processor = load_model(merged_dir, "float32", "cpu")
    ids = processor.tokenizer("what color is the image ?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want = load_trained(out, compressed=False)(input_ids=ids).logits
        torch.testing.assert_close(merged(input_ids=ids).logits, want, rtol=1e-4, atol=1e-4)


# LLaVA-1.5 besides: the family whose template "auto" is vicuna_v1
WITH_LLAVA = {**FAMILIES, "llava": (tiny.tiny_llava, tiny.tiny_llava_processor, "<image>")}


@pytest.mark.parametrize("template", ["auto", "vicuna_v1", "chat_template"])
@pytest.mark.parametrize("family", [*params(), "llava"])
def test_a_training_sample_writes_the_image_as_the_familys_chat_template_does(family, template, tmp_path):
    """Regression: --template vicuna_v1 wrote ``processor.image_token`` for the image, so Qwen2/3-VL samples had
    ``<|image_pad|>`` without the vision start / end tokens around it: trained on a format neither the hub's chat
    template nor evaluation's default prompt writes. Now the sample holds the processor's expansion of the chat
    template's image exactly (wrapper tokens included), with as many image tokens as evaluation's prompt gets,
    and only the answer is supervised."""
    build_model, build_processor, marker = WITH_LLAVA[family]
    model, processor = build_model(layers=2), build_processor()
    if marker is not None:
        processor.chat_template = tiny.tiny_chat_template(marker)
    Image.new("RGB", (40, 56), (90, 140, 200)).save(tmp_path / "blue.png")
    image = Image.open(tmp_path / "blue.png").convert("RGB")
    record = parse_record({"id": "a", "image": "blue.png", "conversations": [
        {"from": "human", "value": "<image>\nwhat is it ?"}, {"from": "gpt", "value": "blue"}]}, 0)
    encoder = Encoder.for_model(model, processor, template, 4096, str(tmp_path), pad_to_square=False)
    assert encoder.template == template if template != "auto" else ("vicuna_v1" if family == "llava" else "chat_template")
    ids, labels = (encoder(record)[k].tolist() for k in ("input_ids", "labels"))

    segment = processor(text=[_chat_template_image(processor)], images=[image], add_special_tokens=False,
                        return_tensors="pt")["input_ids"][0].tolist()
    assert any(ids[i : i + len(segment)] == segment for i in range(len(ids))), "the image is not the template's"
    generator = Generator(model, processor)  # evaluation's prompt: the chat template
    evaluated = generator.encode([generator.prompt("what is it ?", True)], [image])["input_ids"]
    assert ids.count(generator.image_token_id) == int((evaluated == generator.image_token_id).sum()) > 0
    supervised = [i for i, label in enumerate(labels) if label != IGNORE]
    answer = processor.tokenizer("blue", add_special_tokens=False)["input_ids"]
    assert [ids[i] for i in supervised[: len(answer)]] == answer and len(supervised) <= len(answer) + 1  # + end of turn
    assert supervised == list(range(supervised[0], supervised[0] + len(supervised))) and all(
        labels[i] == ids[i] for i in supervised)


def _chat_template_image(processor) -> str:
    """The text the processor's chat template writes for an image: its render with an image less the one without."""
    def render(content):
        return processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False)

    with_image, without = render([{"type": "image"}, {"type": "text", "text": "x"}]), render([{"type": "text", "text": "x"}])
    start = next(i for i, (a, b) in enumerate(zip(with_image, without)) if a != b)
    return with_image[start : len(with_image) - len(without) + start]
