"""Qwen2-VL / Qwen2.5-VL processors where torchvision is absent (CPU installs: PyPI's torchvision is CUDA-linked).

transformers writes those models' video processor on torchvision only, and a processor whose video
slot cannot be filled cannot be built at all, so without torchvision not even images go through.
:func:`allow_qwen2_vl_without_torchvision` fills the slot with :class:`ImagesOnlyVideoProcessor`,
which refuses videos with the reason and the fix; images take transformers' own Pillow-backed
``Qwen2VLImageProcessorPil`` (the same smart resize and patching as the torchvision one; pixel
values can differ in the last digits from resampling). Where torchvision imports, nothing changes.
"""

from __future__ import annotations

import importlib.util

QWEN2_VL_TYPES = ("qwen2_vl", "qwen2_5_vl")


class VideoNeedsTorchvision(ImportError):
    """A video sent to a Qwen2-VL processor built without torchvision."""


def torchvision_missing() -> bool:
    return importlib.util.find_spec("torchvision") is None


def _video_processor_base():
    # transformers defines this mixin without torchvision but exports it from the package only beside it
    from transformers.video_processing_utils import VideoProcessorMixin

    return VideoProcessorMixin


class ImagesOnlyVideoProcessor(_video_processor_base()):
    """The video slot of a Qwen2-VL processor without torchvision: refuses every video, naming the fix."""

    model_input_names = ["pixel_values_videos", "video_grid_thw"]

    def preprocess(self, videos, **kwargs):
        raise VideoNeedsTorchvision(
            "this Qwen2-VL processor takes images only: transformers' Qwen2-VL video processor needs torchvision, "
            "which does not import here (PyPI's torchvision wheels are CUDA-linked and fail beside a CPU torch); "
            "send the frames as images, or install a torchvision built for this torch"
        )


def _is_qwen2_vl(path, kwargs) -> bool:
    from transformers import AutoConfig

    config = kwargs.get("config")
    if config is None:
        try:
            config = AutoConfig.from_pretrained(path, revision=kwargs.get("revision"), subfolder=kwargs.get("subfolder", ""),
                                                trust_remote_code=kwargs.get("trust_remote_code", False))
        except (OSError, ValueError):  # not a model folder: leave it to transformers' own error
            return False
    return getattr(config, "model_type", None) in QWEN2_VL_TYPES


def allow_qwen2_vl_without_torchvision() -> None:
    """Let transformers build Qwen2-VL / Qwen2.5-VL processors (images only) where torchvision is absent.

    Two changes, both only without torchvision, both idempotent: the package exports
    ``VideoProcessorMixin`` (its processor class check looks the video slot's base class up there),
    and ``AutoVideoProcessor.from_pretrained`` returns an :class:`ImagesOnlyVideoProcessor` for a
    Qwen2-VL-family folder instead of failing on the torchvision-only class.
    """
    if not torchvision_missing():
        return
    import transformers
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor  # the package's name is a stub here

    if not hasattr(transformers, "VideoProcessorMixin"):
        transformers.VideoProcessorMixin = _video_processor_base()
    original = AutoVideoProcessor.from_pretrained.__func__
    if getattr(original, "_adsc_images_only", False):
        return

    def from_pretrained(cls, path, *args, **kwargs):
        if _is_qwen2_vl(path, kwargs):
            return ImagesOnlyVideoProcessor()
        return original(cls, path, *args, **kwargs)

    from_pretrained._adsc_images_only = True
    AutoVideoProcessor.from_pretrained = classmethod(from_pretrained)
