"""`adsc serve`: an OpenAI-compatible server answering image chats over loopback, and its refusals."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest
import requests
import torch
from engines import start
from families import FAMILIES
from reference import continuation_logprobs, load_hf

import adsc
from adsc.serving.vllm.demo import DEMO_CONFIGS
from adsc.serving.vllm.settings import ServingConfigError, check_engine
from conftest import images

CONFIG = DEMO_CONFIGS["llava"]  # the LLaVA demo folder's adsc_config.json
SERVE_ARGS = ["--max-model-len", "512", "--block-size", "32", "--dtype", "float32", "--limit-mm-per-prompt",
              '{"image": 2}', "--max-num-batched-tokens", "64", "--host", "127.0.0.1"]


def adsc_serve(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "adsc", "serve", *args], capture_output=True, text=True,
                          env=env, timeout=300, **kw)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    return CONFIG.save_pretrained(tmp_path_factory.mktemp("cfg"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data_url(image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# Qwen2-VL's chat path: checked by hand (docs/serving.md)
@pytest.mark.parametrize("name", ["llava", "llava_next", "mistral3", "idefics3", "smolvlm"])
def test_server_answers_an_image_chat_like_the_hf_engine(request, name):
    """The README's demo: `adsc serve DIR --compression DIR` on the folder `adsc.serving.vllm.demo` writes."""
    family = FAMILIES[name]
    path = request.getfixturevalue(family.fixture)
    config = DEMO_CONFIGS[name]
    assert adsc.CompressionConfig.from_pretrained(path) == config
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
    proc = subprocess.Popen([sys.executable, "-m", "adsc", "serve", path, "--compression", path,
                             *SERVE_ARGS, "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 240
        while time.time() < deadline:
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            try:
                if requests.get(base + "/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        else:
            pytest.fail("server did not come up")
        # LLaVA-NeXT: 2 x 2 tiles, unpadded; Mistral 3: a 5 x 3 grid; Idefics3, SmolVLM: 2 x 1 sub-images + the global one
        image = images(1, seed=5, sizes=family.image_sizes and family.image_sizes[2:])[0]
        body = {"model": path, "max_tokens": 6, "temperature": 0, "logprobs": True, "return_token_ids": True,
                "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(image)}},
                                         {"type": "text", "text": "what color is the object ?"}]}]}
        reply = requests.post(base + "/v1/chat/completions", json=body, timeout=120)
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        choice = answer["choices"][0]
        model, processor = load_hf(path)
        prompt = processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what color is the object ?"}]}])
        # vLLM's chat path adds no BOS of its own: the chat template owns special tokens
        inputs = processor(text=prompt, images=[image], return_tensors="pt", add_special_tokens=False)
        assert answer["prompt_token_ids"] == inputs["input_ids"][0].tolist()
        tokens = choice["token_ids"]
        want, greedy, _ = continuation_logprobs(model, inputs, tokens, config)
        assert tokens == greedy.tolist()
        got = torch.tensor([t["logprob"] for t in choice["logprobs"]["content"]])
        torch.testing.assert_close(got, want, atol=2e-4, rtol=0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.parametrize("config, message", [
    (adsc.CompressionConfig(method="fastv", layers=(2,), budget=20, vision_tokens=36), "needs attention scores"),
    (adsc.CompressionConfig(layers=(3,), budget=4, vision_tokens=36), "cannot be reached"),
])
def test_serve_refuses_settings_before_starting(llava_dir, tmp_path, config, message):
    out = adsc_serve(llava_dir, "--compression", config.save_pretrained(tmp_path))
    assert out.returncode == 2 and message in out.stderr, out.stderr


@pytest.mark.parametrize("flag", [["--enable-prefix-caching"], ["-O3"], ["--speculative-config", "{}"],
                                  ["--pipeline-parallel-size", "2"]])
def test_serve_refuses_wrong_engine_flags(llava_dir, config_file, flag):
    out = adsc_serve(llava_dir, "--compression", config_file, *flag)
    assert out.returncode == 2 and "remove it" in out.stderr, out.stderr


@pytest.mark.parametrize("architecture, model_type, message", [
    ("Gemma3ForConditionalGeneration", "gemma3", "adsc serves"),
    ("LlavaOnevisionForConditionalGeneration", "llava_onevision", "does not serve .* multi-image prompt"),
])
def test_serve_refuses_an_unsupported_architecture(tmp_path, config_file, architecture, model_type, message):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": [architecture], "model_type": model_type}))
    out = adsc_serve(str(tmp_path), "--compression", config_file)
    assert out.returncode == 2 and re.search(message, out.stderr), out.stderr


def test_print_command_is_the_server_line(llava_dir, config_file):
    out = adsc_serve(llava_dir, "--compression", config_file, "--print-command", "--port", "9")
    assert out.returncode == 0 and "vllm.entrypoints.openai.api_server --model" in out.stdout
    assert "--no-enable-prefix-caching" in out.stdout and out.stdout.strip().endswith("--port 9")


@pytest.mark.parametrize("change, fix", [
    ({"enable_prefix_caching": True}, "--no-enable-prefix-caching"),
    ({"enforce_eager": False}, "--enforce-eager"),
])
def test_engine_refuses_settings_that_would_be_wrong(llava_dir, change, fix):
    """A hand-written `vllm serve` line with a wrong flag is refused by the engine itself."""
    from vllm.engine.arg_utils import EngineArgs

    from adsc.serving.vllm import engine_kwargs

    kwargs = engine_kwargs(CONFIG, max_model_len=512, block_size=32, dtype="float32")
    kwargs.update(change)
    vllm_config = EngineArgs(model=llava_dir, **kwargs).create_engine_config()
    with pytest.raises(ServingConfigError, match=fix):
        check_engine(vllm_config)
    with pytest.raises(Exception, match=fix):
        start(llava_dir, CONFIG, **change)


def test_engine_refuses_qwen2_vl_videos_without_torchvision(qwen2_vl_dir):
    """vLLM would profile with dummy videos, which the images-only processor refuses: refused first, with the fix."""
    from vllm.engine.arg_utils import EngineArgs

    from adsc.processors import torchvision_missing
    from adsc.serving.vllm import engine_kwargs

    if not torchvision_missing():
        pytest.skip("with torchvision, Qwen2-VL's videos are served")
    config = adsc.CompressionConfig.from_pretrained(qwen2_vl_dir)
    kwargs = engine_kwargs(config, max_model_len=512, block_size=32, dtype="float32", limit_mm_per_prompt={"image": 2})
    with pytest.raises(ServingConfigError, match='"video": 0'):
        check_engine(EngineArgs(model=qwen2_vl_dir, **kwargs).create_engine_config())
    kwargs["limit_mm_per_prompt"] = {"image": 2, "video": 0}
    check_engine(EngineArgs(model=qwen2_vl_dir, **kwargs).create_engine_config())


@pytest.mark.parametrize("family", ["llava_next", "mistral3", "idefics3", "smolvlm"])
def test_engine_refuses_image_embeddings_where_the_layout_follows_the_size(request, family):
    """Embedding inputs carry no image size, which a LLaVA-NeXT, Mistral 3, Idefics3 or SmolVLM image's layout follows:
    refused."""
    from vllm.engine.arg_utils import EngineArgs

    from adsc.serving.vllm import engine_kwargs

    path = request.getfixturevalue(f"{family}_dir")
    kwargs = engine_kwargs(DEMO_CONFIGS[family], max_model_len=512, block_size=32, dtype="float32", enable_mm_embeds=True)
    with pytest.raises(ServingConfigError, match="drop --enable-mm-embeds"):
        check_engine(EngineArgs(model=path, **kwargs).create_engine_config())
