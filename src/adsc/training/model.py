"""Load a supported multimodal model and decide what trains.

LoRA mode (default): LoRA on every linear layer of the language model, the projector fully
trainable (peft ``modules_to_save``), vision encoder and LLM weights frozen. Full mode: the
language model and projector train, the vision encoder stays frozen (as in LLaVA-1.5's
fine-tuning stage). Trainable parameters are kept in float32 even when the frozen rest is
bf16: the optimizer then updates full-precision weights, and autocast runs the maths in bf16.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from .. import loading
from ..adapters import adapter_for, unwrap


def parts(model: nn.Module) -> dict[str, str]:
    """Dotted paths of the llm, projector and vision encoder: the adapter's ``training_parts``."""
    return adapter_for(model).training_parts


def default_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def load_model(name_or_path: str, bf16: bool, attn_implementation: str | None = None):
    """Model from a hub id or a local directory (:func:`adsc.loading.load_model`: safetensors only)."""
    model = loading.load_model(name_or_path, torch.bfloat16 if bf16 else torch.float32, attn_implementation)
    adapter_for(model)  # fail now, with the list of supported models, not mid-training
    return model


def linear_leaf_names(module: nn.Module) -> list[str]:
    return sorted({name.rsplit(".", 1)[-1] for name, m in module.named_modules() if isinstance(m, nn.Linear)})


def prepare(model: nn.Module, mode: str, lora_r: int = 128, lora_alpha: int = 256, lora_dropout: float = 0.05):
    """Freeze / wrap for training. Returns the model to train (a PeftModel in LoRA mode)."""
    p = parts(model)
    llm = model.get_submodule(p["llm"])
    for text_cfg in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        text_cfg.use_cache = False  # a cache is useless in training and clashes with checkpointing
    model.requires_grad_(False)
    if mode == "full":
        model.requires_grad_(True)
        model.get_submodule(p["vision"]).requires_grad_(False)
        model.get_submodule(p["projector"]).requires_grad_(True)  # Qwen2-VL's merger sits inside the vision part
        return _trainable_fp32(model)
    from peft import LoraConfig, get_peft_model

    leaves = linear_leaf_names(llm)
    config = LoraConfig(
        r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        # full-match regex: every linear layer inside the language model, nothing else (not lm_head)
        target_modules=rf"^{re.escape(p['llm'])}\..*\.(?:{'|'.join(map(re.escape, leaves))})$",
        modules_to_save=[p["projector"].rsplit(".", 1)[-1]],
        bias="none",
        task_type=None,  # a plain PeftModel: the multimodal forward signature stays untouched
    )
    peft_model = get_peft_model(model, config)
    return _trainable_fp32(peft_model)


def _trainable_fp32(model: nn.Module) -> nn.Module:
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return model


def projector_param_names(model: nn.Module) -> set[str]:
    """Names (as in ``model.named_parameters()``) of the trainable projector's parameters."""
    leaf = parts(unwrap(model))["projector"].rsplit(".", 1)[-1]
    return {n for n, prm in model.named_parameters() if prm.requires_grad and f".{leaf}." in f".{n}"}


def count_parameters(model: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
