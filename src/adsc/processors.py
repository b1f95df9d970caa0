"""Processors with a video slot where torchvision is absent (CPU installs: PyPI's torchvision is CUDA-linked).

transformers writes the video processors of Qwen2-VL / Qwen2.5-VL, Qwen3-VL, InternVL,
LLaVA-OneVision, LLaVA-NeXT-Video and SmolVLM on torchvision only, and a processor whose video
slot cannot be filled cannot be built at all, so without torchvision not even images go through.
:func:`allow_images_only_without_torchvision` fills the slot with :class:`ImagesOnlyVideoProcessor`,
which refuses videos with the reason and the fix; images take transformers' own Pillow-backed
image processors (the same resizing and patching as the torchvision ones; pixel values can differ
in the last digits from resampling). Where torchvision imports, nothing changes.
"""

from __future__ import annotations

import importlib.util
import json
import os

# The processors whose only torchvision-bound part is the video slot: config.model_type -> (processor class, the
# family's name in messages). The processor class finds the family in a folder without config.json (a LoRA output).
IMAGES_ONLY_FAMILIES = {
    "qwen2_vl": ("Qwen2VLProcessor", "Qwen2-VL"), "qwen2_5_vl": ("Qwen2_5_VLProcessor", "Qwen2.5-VL"),
    "qwen3_vl": ("Qwen3VLProcessor", "Qwen3-VL"), "qwen3_vl_moe": ("Qwen3VLProcessor", "Qwen3-VL"),
    "internvl": ("InternVLProcessor", "InternVL"),
    "llava_onevision": ("LlavaOnevisionProcessor", "LLaVA-OneVision"),
    "llava_next_video": ("LlavaNextVideoProcessor", "LLaVA-NeXT-Video"), "smolvlm": ("SmolVLMProcessor", "SmolVLM"),
}
_BY_PROCESSOR = dict(IMAGES_ONLY_FAMILIES.values())


class VideoNeedsTorchvision(ImportError):
    """A video sent to a processor built without torchvision."""


def torchvision_missing() -> bool:
    return importlib.util.find_spec("torchvision") is None


def _video_processor_base():
    # transformers defines this mixin without torchvision but exports it from the package only beside it
    from transformers.video_processing_utils import VideoProcessorMixin

    return VideoProcessorMixin


class ImagesOnlyVideoProcessor(_video_processor_base()):
    """The video slot of a processor without torchvision: refuses every video, naming the fix.

    ``family`` only words the refusal; it is not saved (a loaded slot is rebuilt from the folder's config)."""

    model_input_names = ["pixel_values_videos", "video_grid_thw"]
    # frame sampling settings some processors read for every chat (SmolVLM's apply_chat_template); unset
    num_frames = None
    fps = None

    def __init__(self, family: str = "Qwen2-VL", **kwargs):
        super().__init__(**kwargs)
        self._family = family

    def to_dict(self):
        return {k: v for k, v in super().to_dict().items() if k != "_family"}

    def preprocess(self, videos, **kwargs):
        raise VideoNeedsTorchvision(
            f"this {self._family} processor takes images only: transformers' {self._family} video processor needs "
            "torchvision, which does not import here (PyPI's torchvision wheels are CUDA-linked and fail beside a CPU "
            "torch); send the frames as images, or install a torchvision built for this torch"
        )


def _images_only_family(path, kwargs) -> str | None:
    """The family name of a model folder / hub id whose video slot needs filling, else None.

    From the model's config; a folder with processor files only (a LoRA training output, whose
    config lives with the base model) is known by the processor class it saved."""
    from transformers import AutoConfig

    config = kwargs.get("config")
    if config is None:
        try:
            config = AutoConfig.from_pretrained(path, revision=kwargs.get("revision"), subfolder=kwargs.get("subfolder", ""),
                                                trust_remote_code=kwargs.get("trust_remote_code", False))
        except (OSError, ValueError):  # no model config: the saved processor class, else transformers' own error
            return _BY_PROCESSOR.get(_saved_processor_class(os.path.join(str(path), kwargs.get("subfolder", ""))))
    return IMAGES_ONLY_FAMILIES.get(getattr(config, "model_type", None), (None, None))[1]


def _saved_processor_class(folder: str) -> str | None:
    try:
        with open(os.path.join(folder, "processor_config.json")) as fh:
            return json.load(fh).get("processor_class")
    except (OSError, ValueError):
        return None


def allow_images_only_without_torchvision() -> None:
    """Let transformers build the processors of :data:`IMAGES_ONLY_FAMILIES` (images only) where torchvision is absent.

    Two changes, both only without torchvision, both idempotent: the package exports
    ``VideoProcessorMixin`` (its processor class check looks the video slot's base class up there),
    and ``AutoVideoProcessor.from_pretrained`` returns an :class:`ImagesOnlyVideoProcessor` for a
    folder of one of those families instead of failing on the torchvision-only class.
    """
    if not torchvision_missing():
        return
    import transformers
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor  # the package's name is a stub here

    if not hasattr(transformers, "VideoProcessorMixin"):
        transformers.VideoProcessorMixin = _video_processor_base()
    _allow_pixtral_processor()
    original = AutoVideoProcessor.from_pretrained.__func__
    if getattr(original, "_adsc_images_only", False):
        return

    def from_pretrained(cls, path, *args, **kwargs):
        family = _images_only_family(path, kwargs)
        if family is not None:
            return ImagesOnlyVideoProcessor(family)
        return original(cls, path, *args, **kwargs)

    from_pretrained._adsc_images_only = True
    AutoVideoProcessor.from_pretrained = classmethod(from_pretrained)


def _allow_pixtral_processor() -> None:
    """Mistral 3's PixtralProcessor without torchvision (images only already: it has no video slot).

    transformers declares the class torchvision-only because its module imports one sizing helper
    from the torchvision image processor's module -- used only to count tokens ahead
    (``_get_num_multimodal_tokens``); the Pillow image processor's module defines the same
    functions. That module stands in for the torchvision one (which cannot import here anyway),
    and the real class replaces the package's placeholder, so ``AutoProcessor`` finds it.
    """
    import sys

    import transformers.models.pixtral as pixtral
    from transformers.models.pixtral import image_processing_pil_pixtral as pil

    # the whole Pillow module stands in: other importers (vLLM's Pixtral / LLaVA modules) take its
    # other helpers (``_num_image_tokens``) from the torchvision module too
    sys.modules.setdefault("transformers.models.pixtral.image_processing_pixtral", pil)
    from transformers.models.pixtral.processing_pixtral import PixtralProcessor

    pixtral.PixtralProcessor = PixtralProcessor


allow_qwen2_vl_without_torchvision = allow_images_only_without_torchvision  # the name the vLLM plugin and its docs use


def images_only_video_slot(family: str):
    """The video processor a tiny processor builder of ``family`` gets here: an images-only slot without torchvision
    (after :func:`allow_images_only_without_torchvision`), else None (the builder makes transformers' own)."""
    if not torchvision_missing():
        return None
    allow_images_only_without_torchvision()
    return ImagesOnlyVideoProcessor(family)
