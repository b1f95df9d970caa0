"""LLaVA-NeXT on a Mistral decoder with a sliding window on every layer (LLaVA-1.6-Mistral's shape):
the window (24) is shorter than an image's run (192 tokens for a 96 x 96 image), so it cuts through
images and the text after them, and the masked reference keeps it in original positions."""

from adsc.tiny import tiny_llava_next

from . import FamilyCase
from .llava_next import samples

WINDOW = 24

CASE = FamilyCase("llava_next_mistral", build=lambda attn: tiny_llava_next(layers=6, attn=attn, sliding_window=WINDOW),
                  samples=samples)
