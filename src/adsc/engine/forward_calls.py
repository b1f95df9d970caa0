"""A module's instance ``forward`` that adsc's parts share: the engine's work before and after
the module (the multimodal core, the decoder layers), around its own ``forward`` or, for a
decoder layer, the compiled prefill's (:mod:`.regions`).

Why not forward hooks: a module with any hook takes ``nn.Module``'s slow call path, about 8 us a
module on the CPU, and a decode step calls every decoder layer: that was most of what the engine
added to a small model's decode step (docs/efficiency.md, "Host time"). A callable in the
instance's ``forward`` costs a Python call. It runs where a pre-hook would: after the module's
own hooks (a user's pre-hook sees the model's arguments, not the engine's), and outside
transformers' gradient checkpointing, which wraps the class's ``forward``.

One object per module; whoever comes first installs it: the engine (:func:`adsc.compress`) fills
``before`` / ``after`` / ``failed``, :func:`adsc.compile_prefill` fills ``prefill``, in either
order. The last one to leave puts back what was there before (another library's wrapper, e.g.
accelerate's, or the class's ``forward``).
"""

from __future__ import annotations

from torch import nn


class ForwardCall:
    """``module.forward`` while adsc is attached: ``before(args, kwargs) -> (args, kwargs)``, then
    ``prefill`` (when set) or the forward that was there, then ``after(output) -> output``;
    ``failed()`` when any of them raised (then the error goes on)."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.saved = module.__dict__.get("forward")  # an instance forward someone else installed, or None
        self.own = module.forward
        self.before = self.after = self.failed = self.prefill = None

    def __call__(self, *args, **kwargs):
        try:  # free in Python 3.11+ unless it raises
            if self.before is not None:
                args, kwargs = self.before(args, kwargs)
            out = (self.prefill or self.own)(*args, **kwargs)
            return out if self.after is None else self.after(out)
        except BaseException:
            if self.failed is not None:
                self.failed()
            raise

    @classmethod
    def of(cls, module: nn.Module) -> ForwardCall:
        """The module's ForwardCall, installed now if it has none."""
        current = module.__dict__.get("forward")
        if isinstance(current, cls):
            return current
        call = cls(module)
        module.forward = call
        return call

    @staticmethod
    def find(module: nn.Module) -> ForwardCall | None:
        current = module.__dict__.get("forward")
        return current if isinstance(current, ForwardCall) else None

    def release(self) -> None:
        """Put back the forward that was there once no part uses this one. A wrapper installed
        over this one later (it calls this one) is left in place; this one then passes through."""
        unused = self.before is None and self.after is None and self.failed is None and self.prefill is None
        if unused and self.module.__dict__.get("forward") is self:
            if self.saved is None:
                del self.module.forward
            else:
                self.module.forward = self.saved
