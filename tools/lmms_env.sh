#!/usr/bin/env bash
# Builds .venv-lmms from scratch: lmms-eval 0.7.3 beside the CPU torch, then adsc (editable).
#
# Why not `pip install "adsc[lmms-eval]"`: lmms-eval declares torchvision (and timm, which needs
# it); PyPI's torchvision is CUDA-linked and fails to import beside the CPU torch ("operator
# torchvision::nms does not exist"), and with no torch pinned pip takes a CUDA torch of several
# GB. lmms-eval's evaluator, task loader and image tasks import neither, so: lmms-eval with
# --no-deps, then its declared requirements minus the ones below. On a GPU machine the plain
# extra works (README, "Evaluation").
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LMMS_VENV:-.venv-lmms}
PY=${PY:-python3}
LMMS_EVAL=${LMMS_EVAL:-lmms-eval==0.7.3}
# Left out of lmms-eval's requirements, with the reason:
#   torch                 the CPU build is installed first, pinned
#   torchvision timm      CUDA-linked wheels from PyPI (timm requires torchvision)
#   av decord qwen-vl-utils yt-dlp   video decoding and download (video tasks only; qwen-vl-utils needs av)
#   wandb pre-commit ruff hf_transfer  logging service, developer tools, hub download speed-up
SKIP='^(torch|torchvision|timm|av|decord|qwen-vl-utils|qwen_vl_utils|yt-dlp|wandb|pre-commit|ruff|hf_transfer|hf-transfer)$'

rm -rf "$VENV"
"$PY" -m venv "$VENV"
pip="$VENV/bin/python -m pip"
# lmms-eval 0.7.3's evaluator patches filelock._api, which filelock 4 no longer has.
printf 'filelock<4\n' >"$VENV/lmms-constraints.txt"
$pip install -q torch==2.13.0  # the local CPU wheel; before anything that could pull a CUDA build
$pip install -q --no-deps "$LMMS_EVAL"
# lmms-eval's own declared requirements (no extras), filtered; read from its installed metadata.
"$VENV/bin/python" - "$SKIP" >"$VENV/lmms-requirements.txt" <<'PY'
import re, sys
from importlib.metadata import requires
from pip._vendor.packaging.requirements import Requirement  # pip's copy: a fresh venv has no packaging
skip = re.compile(sys.argv[1], re.I)
for line in requires("lmms-eval") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue  # an extra's requirement, or not for this platform
    if not skip.match(req.name):
        print(line.split(";")[0].strip())
PY
echo "pip will list the requirements left out above as missing: expected"
$pip install -q -c "$VENV/lmms-constraints.txt" -r "$VENV/lmms-requirements.txt" pytest
$pip install -q -c "$VENV/lmms-constraints.txt" -e .  # adsc and its requirements (transformers >= 5.20); registers `--model adsc`
"$VENV/bin/python" - <<'PY'
import torch, lmms_eval.evaluator  # noqa: F401
from lmms_eval.models import MODEL_REGISTRY_V2
assert "+cpu" in torch.__version__ or not torch.cuda.is_available(), torch.__version__
print("lmms-eval env ready: torch", torch.__version__, "| adsc model:", MODEL_REGISTRY_V2.resolve("adsc").class_path)
PY
