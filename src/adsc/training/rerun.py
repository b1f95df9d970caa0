"""What a rerun into an existing output directory may change, and what it must not.

A rerun either resumes (a complete checkpoint is there) or finds a finished run
(``train_summary.json``). Both are only right when the rerun asks for the same result: a resume
with another learning rate would train a mixture of two runs and label it with the new settings;
"nothing to do" for a finished run with another budget would hand back weights that are not the
ones asked for. So every setting but the result-free ones (``config.RESULT_FREE`` and the logging
and data-loading TrainingArguments) must match what the directory was trained with
(``adsc_train_args.json``), and so must the inputs themselves: the data file by its SHA-256, a
local model folder by its config and a sample of each weight file (a full hash of 14 GB on every
start would cost more than it protects against).
"""

from __future__ import annotations

import hashlib
import json
import os

from .config import RESULT_FREE, TrainConfig, result_settings

RUN_ARGS = "adsc_train_args.json"
IDENTITY = "identity"  # key in RUN_ARGS beside the settings
SAMPLE = 1 << 20  # bytes read from each end of a weight file


class RerunRefused(ValueError):
    """A rerun into an output directory that asks for a different result than the one there."""


def _sha256_file(path: str, sample: int | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        if sample is None:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        else:
            size = os.fstat(fh.fileno()).st_size
            digest.update(str(size).encode())
            digest.update(fh.read(sample))
            fh.seek(max(0, size - sample))
            digest.update(fh.read(sample))
    return digest.hexdigest()


def model_identity(model: str) -> dict:
    """A local folder by what is in it; a hub id by its name (no revision is known offline)."""
    if not os.path.isdir(model):
        return {"hub_id": model}
    out = {"path": os.path.realpath(model)}
    config = os.path.join(model, "config.json")
    if os.path.isfile(config):
        out["config_sha256"] = _sha256_file(config)
    weights = sorted(n for n in os.listdir(model) if n.endswith(".safetensors"))
    out["weights_sampled_sha256"] = {n: _sha256_file(os.path.join(model, n), SAMPLE) for n in weights}
    return out


def identity(cfg: TrainConfig) -> dict:
    a = cfg.adsc
    return {
        "model": model_identity(a.model),
        "data_sha256": _sha256_file(a.data) if os.path.isfile(a.data) else None,
        "image_folder": os.path.realpath(a.image_folder) if a.image_folder else None,
    }


def run_record(cfg: TrainConfig, ident: dict) -> dict:
    """What RUN_ARGS holds: the settings ({adsc, compression, training}), plus the identity of the inputs."""
    return {**cfg.to_dict(), IDENTITY: ident}


def differences(cfg: TrainConfig, ident: dict, saved: dict) -> list[str]:
    """'name: old -> new' for each result-deciding setting or input that differs from ``saved``."""
    saved = dict(saved)
    saved_ident = saved.pop(IDENTITY, None)
    mine = cfg.result_settings()
    theirs = result_settings(saved)
    if saved_ident is not None:
        # the inputs are compared by what they are, so a relative and an absolute path of one file agree
        for key in ("model", "data", "image_folder"):
            mine.pop(key, None)
            theirs.pop(key, None)
    # a field only one side has (another transformers version) is not compared
    out = [f"{k}: {_show(theirs[k])} -> {_show(mine[k])}" for k in sorted(set(mine) & set(theirs)) if theirs[k] != mine[k]]
    if saved_ident is not None:
        if saved_ident.get("model") != ident["model"]:
            out.append(f"model: {_show_model(saved_ident.get('model'))} -> {_show_model(ident['model'])}")
        if saved_ident.get("data_sha256") != ident["data_sha256"]:
            out.append(f"data: contents differ (sha256 {str(saved_ident.get('data_sha256'))[:12]}... -> "
                       f"{str(ident['data_sha256'])[:12]}...; {cfg.adsc.data})")
        if saved_ident.get("image_folder") != ident["image_folder"]:
            out.append(f"image_folder: {saved_ident.get('image_folder')} -> {ident['image_folder']}")
    return out


def _show(value) -> str:
    return json.dumps(value)


def _show_model(ident) -> str:
    if not isinstance(ident, dict):
        return str(ident)
    if "hub_id" in ident:
        return ident["hub_id"]
    return f"{ident.get('path')} (config/weights digest {hashlib.sha256(_show(ident).encode()).hexdigest()[:12]})"


def load_saved(out: str) -> dict | None:
    path = os.path.join(out, RUN_ARGS)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as fh:
            saved = json.load(fh)
    except (OSError, ValueError) as err:
        raise RerunRefused(f"{path} cannot be read ({err}); it records how {out} was trained. "
                           "Restore it, or train into a new --output_dir.") from None
    if not isinstance(saved, dict):
        raise RerunRefused(f"{path} must hold a JSON object of settings; restore it, or use a new --output_dir")
    if not isinstance(saved.get("training"), dict):
        raise RerunRefused(f"{path} was written by an older adsc, whose settings are laid out differently; finish "
                           f"{out} with that version, or train into a new --output_dir")
    return saved


def check_rerun(cfg: TrainConfig, ident: dict, out: str, finished: bool, resuming: bool) -> None:
    """Refuse a resume or a finished-run rerun that would not give the result ``cfg`` asks for."""
    if not (finished or resuming):
        return
    saved = load_saved(out)
    if saved is None:
        return  # written by an adsc that kept no settings: nothing to compare against
    diff = differences(cfg, ident, saved)
    if not diff:
        return
    listed = "; ".join(diff)
    state = "holds a finished run" if finished else "holds checkpoints of a run"
    action = ("retraining is not done over a finished run" if finished
              else "resuming would mix two runs and label the result with the new settings")
    raise RerunRefused(
        f"{out} {state} with other settings ({action}): {listed}. "
        f"Rerun with the original settings, train into a new --output_dir, or delete {out} to start over. "
        f"Settings that may differ: {', '.join(sorted(RESULT_FREE))} and the logging ones."
    )
