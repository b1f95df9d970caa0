"""Synthetic testbed: procedural scenes, benchmark-like question families, official file formats.

    from adsc_testbed import TestbedConfig, generate
    generate("out", TestbedConfig(seed=0, num_images=50, num_train=500))

See docs/testbed.md for the families, the layout on disk and the format details matched.
"""

from .dataset import BENCHMARKS, TestbedConfig, generate
from .scene import Obj, Scene, Text, sample_scene
from .world import GridSpec, SceneConfig, default_world

__all__ = ["BENCHMARKS", "TestbedConfig", "generate", "Obj", "Scene", "Text", "sample_scene",
           "GridSpec", "SceneConfig", "default_world"]
