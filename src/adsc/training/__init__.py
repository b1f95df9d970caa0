"""Fine-tuning a multimodal model to work under vision-token compression (SPEC section 2).

    from adsc.training import TrainConfig, train, load_trained
    train(TrainConfig(model="llava-hf/llava-1.5-7b-hf", data="llava_v1_5_mix665k.json",
                      image_folder="data/", output_dir="runs/adsc192"))
    model = load_trained("runs/adsc192")   # base + adapter + compression, ready to generate
"""

from .config import CURRICULA, TrainConfig
from .export import load_trained
from .run import train

__all__ = ["CURRICULA", "TrainConfig", "load_trained", "train"]
