"""The model families the vLLM tests run, each with a mixed batch of requests in its own prompt format."""

from __future__ import annotations

from dataclasses import dataclass

import adsc
from adsc.serving.vllm.demo import IMAGE_MARKERS
from conftest import images

PROMPTS = [  # (prompt, number of images): one, two, none, one after a long text
    ("USER: {image}\nwhat color is the object ? ASSISTANT:", 1),
    ("USER: {image}{image}which image is red ? ASSISTANT:", 2),
    ("USER: is the sky blue or green ? answer with a single word . ASSISTANT:", 0),
    ("USER: a curious user asks a question about the picture . the assistant gives helpful answers . {image}"
     "what shape is there ? ASSISTANT:", 1),
]


@dataclass(frozen=True)
class Family:
    name: str
    image_sizes: tuple | None  # (width, height) of the batch's four images; None: the tower's one size
    configs: dict  # name -> CompressionConfig, each served by its own engine
    ends_in_image: str  # a prompt whose last token is an image token
    image_run_ends_in_text: bool = False  # the run closes with a text token (kept by every stage): served, not refused

    @property
    def fixture(self) -> str:
        return f"{self.name}_dir"

    def requests(self, seed: int = 0):
        """[(vLLM prompt dict, its images)] for PROMPTS, in order."""
        out, pics = [], images(4, seed, self.image_sizes)
        used = 0
        for template, n in PROMPTS:
            item = {"prompt": template.format(image=IMAGE_MARKERS[self.name])}
            if n:
                item["multi_modal_data"] = {"image": pics[used : used + n] if n > 1 else pics[used]}
            out.append((item, pics[used : used + n]))
            used += n
        return out


LLAVA = Family("llava", None, ends_in_image="USER: what is this ? <image>", configs={
    "grid2d-budget": adsc.CompressionConfig(layers=(1, 2, 3), budget=14, vision_tokens=36),
    "stride1d-after": adsc.CompressionConfig(layers=(0, 2), drop_ratio=0.6, vision_tokens=36, pattern="stride1d",
                                             drop_position="after"),
    "random": adsc.CompressionConfig(method="random", layers=(2,), drop_ratio=0.75, vision_tokens=36, seed=4),
})
# LLaVA-NeXT's layouts follow each image (width x height): 48 x 96 (2 x 1 tiles: a 12 x 6 map + 12 newlines), then
# 96 x 48 (1 x 2 tiles: 6 x 12) and 96 x 72 (2 x 2 tiles unpadded to 10 x 12) in one prompt, then 96 x 96 (12 x 12)
LLAVA_NEXT = Family("llava_next", ((48, 96), (96, 48), (96, 72), (96, 96)), ends_in_image=LLAVA.ends_in_image, configs={
    "grid2d-budget": adsc.CompressionConfig(layers=(1, 2, 3), budget=60, vision_tokens=180),
    "stride1d-after": adsc.CompressionConfig(layers=(0, 2), drop_ratio=0.6, vision_tokens=180, pattern="stride1d",
                                             drop_position="after"),
})
# Qwen2-VL's grids follow each image: 4 x 3, then two of 2 x 4 and 3 x 2 in one prompt, then 4 x 4 tokens
QWEN2_VL = Family("qwen2_vl", ((84, 112), (112, 56), (56, 84), (112, 112)),
                  ends_in_image="USER: what is this ? <|vision_start|><|image_pad|>", configs={
    "grid2d-budget": adsc.CompressionConfig(layers=(1, 2, 3), budget=6, vision_tokens=12),
    "stride1d-after": adsc.CompressionConfig(layers=(0, 2), drop_ratio=0.6, vision_tokens=12, pattern="stride1d",
                                             drop_position="after"),
})
QWEN2_5_VL = Family("qwen2_5_vl", QWEN2_VL.image_sizes, ends_in_image=QWEN2_VL.ends_in_image,
                    configs={"grid2d-budget": QWEN2_VL.configs["grid2d-budget"]})  # the same code path: one config
# Mistral 3's grids follow each image (multiples of 16 px, [IMG_BREAK] after each row): 3 x 4, then 2 x 6 and 5 x 3
# in one prompt, then 6 x 6; a prompt ending with [IMG] ends with the run's [IMG_END], a text token
MISTRAL3 = Family("mistral3", ((64, 48), (96, 32), (48, 80), (96, 96)), ends_in_image="USER: what is this ? [IMG]",
                  image_run_ends_in_text=True, configs={
    "grid2d-budget": adsc.CompressionConfig(layers=(1, 2, 3), budget=12, vision_tokens=36),
    "stride1d-after": adsc.CompressionConfig(layers=(0, 2), drop_ratio=0.6, vision_tokens=36, pattern="stride1d",
                                             drop_position="after"),
})
# Idefics3's images split by size (width x height): 32 x 32 into 2 x 2 sub-images + the global one, then 64 x 32
# (1 x 2 + 1) and 24 x 48 (2 x 1 + 1) in one prompt, then 16 x 16 (the global image alone): 4 x 4 tokens each, marker
# text between them; a prompt ending with <image> ends with the run's <fake_token_around_image>, a text token
IDEFICS3 = Family("idefics3", ((32, 32), (64, 32), (24, 48), (16, 16)), ends_in_image="USER: what is this ? <image>",
                  image_run_ends_in_text=True, configs={
    "grid2d-budget": adsc.CompressionConfig(layers=(1, 2, 3), budget=6, vision_tokens=16),
    "stride1d-after": adsc.CompressionConfig(layers=(0, 2), drop_ratio=0.6, vision_tokens=16, pattern="stride1d",
                                             drop_position="after"),
})
# SmolVLM: Idefics3's model and vLLM code path with SmolVLMProcessor: one config
SMOLVLM = Family("smolvlm", IDEFICS3.image_sizes, ends_in_image=IDEFICS3.ends_in_image, image_run_ends_in_text=True,
                 configs={"grid2d-budget": IDEFICS3.configs["grid2d-budget"]})
FAMILIES = {f.name: f for f in (LLAVA, LLAVA_NEXT, QWEN2_VL, QWEN2_5_VL, MISTRAL3, IDEFICS3, SMOLVLM)}
NO_PRUNING = adsc.CompressionConfig(layers=(), drop_ratio=0.0, vision_tokens=36)
