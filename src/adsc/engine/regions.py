"""A compiled prefill by regional compilation: every decoder layer's ``forward`` is compiled, with
static shapes; the engine's work between layers (selection, gathers, masks, the final scatter)
stays eager, in its layer steps, which the layer's :class:`~.forward_calls.ForwardCall` runs
before the compiled ``forward``.

Why regions and not the whole prefill: the engine plans each stage on the host (a stage's width,
the widest sample's kept tokens, is a Python int that sizes every tensor after it), and the
vision tower, embedding merge and mask building of the model run once per prefill. A whole-model
graph would break at every stage, or need the plan passed in as tensors of data-dependent size.
A decoder layer is where the time is (the repeated block: 90 %+ of a prefill's FLOPs) and it has
one input shape per stage, so compiling it costs one graph per layer and stage width, reused by
every later prompt of that shape.

transformers' attention reads ``self.layer_idx`` to pick its cache layer, so dynamo specialises
on it: one graph per decoder layer (not per distinct width) for each prompt shape. Graphs of
layers in one stage are the same code, which inductor's FX graph cache compiles once. All the
layers' graphs sit in one code object's cache (the class's ``forward``), so the recompile limit
is raised to hold them (``remove()`` puts it back).

Only multi-token inference forwards take the compiled path (``hidden.shape[1] > 1``, no autograd):
a one-token decode step runs the layer as before, eagerly or inside the graph transformers'
compiled ``generate`` builds for it (a compiled function met while compiling is traced through).
"""

from __future__ import annotations

import torch
from torch import nn

from ..adapters import adapter_for, unwrap
from .forward_calls import ForwardCall
from .hooks import cache_kwarg, is_stage_cache

_GRAPHS_PER_LAYER = 16  # prompt shapes x cache states each layer may hold compiled graphs for


class CompiledPrefill:
    """Returned by :func:`adsc.compile_prefill`. ``enabled = False`` runs the layers eagerly again
    (the compiled graphs are kept); ``remove()`` restores every layer's own ``forward`` and
    dynamo's recompile limits as they were."""

    def __init__(self, layers: nn.ModuleList, compile_kwargs: dict):
        self.layers = layers
        self.enabled = True
        self._calls = []
        for index, layer in enumerate(layers):
            call = ForwardCall.of(layer)  # shared with the engine's layer steps, which run before it
            original = call.own  # bound to the layer: guards see that layer's weights as inputs
            compiled = torch.compile(original, dynamic=False, **compile_kwargs)
            call.prefill = self._dispatch(index, original, compiled)
            self._calls.append(call)
        limit = _GRAPHS_PER_LAYER * len(layers)
        config = torch._dynamo.config
        self._limits_before = (config.recompile_limit, config.accumulated_recompile_limit)
        config.recompile_limit = max(config.recompile_limit, limit)
        config.accumulated_recompile_limit = max(config.accumulated_recompile_limit, limit)
        self._limits_set = (config.recompile_limit, config.accumulated_recompile_limit)

    def _dispatch(self, index: int, original, compiled):
        def forward(*args, **kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            if (not self.enabled or hidden.shape[1] == 1 or torch.is_grad_enabled()
                    or torch.compiler.is_compiling()):
                return original(*args, **kwargs)
            cache = cache_kwarg(kwargs)
            allocates = is_stage_cache(cache) and not cache.layers[index].is_initialized
            out = compiled(*args, **kwargs)
            if allocates:  # its buffers were made inside the graph, where they cannot be marked static
                cache.mark_static(index)
            if index == 0 and is_stage_cache(cache):  # the graph ran no Python: tell it its prefill is in
                cache.prefilled = True
            return out

        return forward

    def remove(self) -> None:
        for call in self._calls:
            call.prefill = None
            call.release()
        config = torch._dynamo.config
        # put back unless someone (another compiled prefill) set them since
        if self._calls and (config.recompile_limit, config.accumulated_recompile_limit) == self._limits_set:
            config.recompile_limit, config.accumulated_recompile_limit = self._limits_before
        self._calls.clear()


def compile_prefill(model: nn.Module, backend="inductor", mode: str | None = None, fullgraph: bool = True,
                    options: dict | None = None) -> CompiledPrefill:
    """Compile every decoder layer of ``model`` for prefills (multi-token forwards, inference only),
    compressed or not, before or after :func:`adsc.compress`. ``backend`` / ``mode`` / ``options``
    go to ``torch.compile`` (``mode="reduce-overhead"`` is untested and likely unsafe here: the cache
    tensors a prefill writes would be outputs of a CUDA graph, overwritten at its next replay);
    ``fullgraph=True`` makes a graph break inside a layer an error instead of a silent slowdown."""
    layers = adapter_for(model).decoder_layers(unwrap(model))
    if any(getattr(ForwardCall.find(layer), "prefill", None) is not None for layer in layers):
        raise RuntimeError("this model's prefill is compiled already: call .remove() on the CompiledPrefill first")
    given = dict(mode=mode, options=options)  # torch.compile refuses both at once, even as None
    return CompiledPrefill(layers, dict(backend=backend, fullgraph=fullgraph, **{k: v for k, v in given.items() if v}))
