"""Where does the word of a rendered string get lost? Linear probes along the path to the answer.

For a model that cannot read (TextVQA at chance), this tells which stage drops the word:
- ``tower``: the vision tower's features, averaged over the patches a string covers;
- ``projector``: the same for the projector's outputs (what the language model receives);
- ``answer`` (one per layer): the hidden state at the position that predicts the first answer of
  a reading drill ("What does the red text say?"), i.e. what the language model gathered there.
Each probe is a linear classifier over the 38 words, fitted on a training dataset and scored on
held-out scenes (chance 1/38). The numbers docs/testbed.md quotes come from
``python3 -m adsc_testbed.readout MODEL TRAIN HELDOUT``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from .facts import GRID, PATCH
from .formats.instruct import DRILL_FILES
from .probe import load_for_probing
from .warmup import NO_WORD, PatchData, _patch_features
from .world import VOCAB


@torch.no_grad()
def string_features(model, processor, root: str, n: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"tower" | "projector": (features (S, D), word index (S,))}, one row per string of the first ``n`` images."""
    data = PatchData(root, processor, GRID, PATCH, words=True)
    rows: dict[str, tuple[list, list]] = {"tower": ([], []), "projector": ([], [])}
    for i in range(min(n, len(data))):
        pixels, words = data[i]
        tower = _patch_features(model.model.vision_tower, pixels[None].to(model.device))[0]
        projected = model.model.multi_modal_projector(tower)
        for word in sorted(set(words.tolist()) - {NO_WORD}):
            for name, feats in (("tower", tower), ("projector", projected)):
                rows[name][0].append(feats[words.to(feats.device) == word].mean(0).cpu())
                rows[name][1].append(word)
    return {name: (torch.stack(x), torch.tensor(y)) for name, (x, y) in rows.items()}


@torch.no_grad()
def answer_states(model, processor, root: str, n: int, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden states (layers + 1, R, D), word index (R,)) at the position predicting each reading drill's first answer."""
    from adsc.training.data import IGNORE, Collator, Encoder  # lazy: adsc.training imports the Trainer and peft
    from adsc.training.records import load_json, parse_records  # lazy: as above

    records, _ = parse_records(load_json(f"{root}/train/{DRILL_FILES['drill_read']}"), skip_malformed=False)
    records = records[:n]
    encoder = Encoder.for_model(model, processor, "chat_template", 4096, f"{root}/train", pad_to_square=False)
    collate = Collator(processor.tokenizer.pad_token_id)
    states, words = [], []
    for start in range(0, len(records), batch_size):
        chunk = records[start:start + batch_size]
        batch = collate([encoder(r) for r in chunk])
        batch.pop("adsc_meta")
        labels = batch.pop("labels")
        out = model(**{k: v.to(model.device) for k, v in batch.items()}, output_hidden_states=True)
        before_answer = (labels != IGNORE).int().argmax(1) - 1  # labels are unshifted: token t-1 predicts token t
        rows = torch.arange(len(chunk))
        states.append(torch.stack([h[rows, before_answer.to(h.device)].cpu() for h in out.hidden_states]))
        words += [VOCAB.index(r.rounds[0][1].strip().upper()) for r in chunk]
    return torch.cat(states, 1), torch.tensor(words)


def linear_probe(x_train, y_train, x_test, y_test, steps: int = 500, seed: int = 0) -> float:
    """Held-out accuracy of a linear classifier over the words (inputs standardised on the training rows)."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-5
    torch.manual_seed(seed)
    probe = torch.nn.Linear(x_train.shape[1], len(VOCAB))
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
    with torch.enable_grad():
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(probe((x_train - mean) / std), y_train)
            loss = loss + 1e-4 * probe.weight.pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return (probe((x_test - mean) / std).argmax(1) == y_test).float().mean().item()


def word_readout(model, processor, train: str, heldout: str, n_images: int = 1500, n_heldout: int = 200,
                 n_drills: int = 1200) -> dict:
    """{"tower", "projector": accuracy, "answer": [accuracy per layer, embeddings first], "chance", counts}."""
    model.eval()
    fit, test = string_features(model, processor, train, n_images), string_features(model, processor, heldout, n_heldout)
    result = {name: linear_probe(*fit[name], *test[name]) for name in ("tower", "projector")}
    h_fit, y_fit = answer_states(model, processor, train, n_drills)
    h_test, y_test = answer_states(model, processor, heldout, n_heldout)
    result["answer"] = [linear_probe(h_fit[layer], y_fit, h_test[layer], y_test) for layer in range(h_fit.shape[0])]
    result.update(chance=1 / len(VOCAB), heldout_strings=len(test["tower"][1]), heldout_drills=len(y_test))
    return result


def table(result: dict) -> str:
    rows = ["| where | held-out word accuracy |", "|---|---|",
            f"| vision tower (mean over a string's patches) | {100 * result['tower']:.1f} % |",
            f"| projector output (same) | {100 * result['projector']:.1f} % |"]
    rows += [f"| answer position, {'embeddings' if i == 0 else f'after layer {i}'} | {100 * acc:.1f} % |"
             for i, acc in enumerate(result["answer"])]
    return "\n".join(rows) + (f"\n\n(linear probes over the {len(VOCAB)} words, chance {100 * result['chance']:.1f} %; "
                              f"{result['heldout_strings']} held-out strings, "
                              f"{result['heldout_drills']} held-out reading drills)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m adsc_testbed.readout", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a testbed model folder (e.g. adsc_testbed/checkpoint)")
    parser.add_argument("train", help="a generated dataset to fit the probes on (e.g. runs/testbed_cpu/data)")
    parser.add_argument("heldout", help="a generated dataset to score them on (e.g. runs/testbed_cpu/heldout)")
    parser.add_argument("--out", help="write the results here as JSON")
    args = parser.parse_args(argv)
    result = word_readout(*load_for_probing(args.model), args.train, args.heldout)
    print(table(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
