"""Writing ``adsc bench`` results: JSON (everything), a markdown table, a PNG plot."""

from __future__ import annotations

import json
import os


def _ms(stats: dict) -> str:
    return f"{1e3 * stats['median']:.1f} ({100 * stats['spread']:.0f} %)"


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        f"# adsc bench: {env['size']} model, {env.get('gpu', 'CPU')}",
        "",
        f"`{env['command']}`  ",
        f"torch {env['torch']}, transformers {env['transformers']}, python {env['python']}, {env['threads']} threads, "
        f"{env['cpu_count']} cores, load average at start {tuple(round(x, 1) for x in env.get('load_average', ()))}, {env['date']}  ",
        f"pruning layers {env['pruning_layers']}, {env['new_tokens']} generated tokens, {env['warmup']} warm-up + "
        f"{env['trials']} trials per configuration (rotating order); times are medians, (spread) = (max - min) / median; "
        f"ratios are medians of per-round ratios against the full model of the same round; run took {env.get('wall_s', '?')} s wall",
        "",
        "Clock: " + ("wall time after torch.cuda.synchronize()." if "gpu" in env else
                     "this process's CPU time (one torch thread, so it is compute time; wall time, which also counts the "
                     "time other processes held the core, is in its own column and ratio)."),
        "",
    ]
    for run in result["runs"]:
        lines += [
            f"## {run['attn']}, batch {run['batch']}",
            "",
            "| config | prefill ms | prefill wall ms | end-to-end ms | decode tok/s | KV MB | prefill time / full | prefill FLOPs / full "
            "| time/FLOPs | prefill wall / full | e2e time / full | decode tok/s / full | KV / full |"
            + (" peak MB | max batch |" if "peak_bytes" in run["rows"][0] else ""),
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if "peak_bytes" in run["rows"][0] else ""),
        ]
        for r in run["rows"]:
            q = r["ratio"]
            line = (f"| {r['config']} | {_ms(r['prefill_s'])} | {_ms(r['prefill_wall_s'])} | {_ms(r['e2e_s'])} | "
                    f"{r['decode_tokens_per_s']['median']:.1f} ({100 * r['decode_tokens_per_s']['spread']:.0f} %) | "
                    f"{r['kv_bytes'] / 1e6:.2f} | {q['prefill_time']:.3f} | {q['prefill_flops']:.3f} | "
                    f"{q['prefill_time'] / q['prefill_flops']:.2f} | {q['prefill_wall_time']:.3f} | {q['e2e_time']:.3f} | "
                    f"{q['decode_tps']:.2f} | {q['kv']:.3f} |")
            if "peak_bytes" in r:
                line += f" {r['peak_bytes'] / 1e6:.0f} | {r.get('max_batch_in_budget')} |"
            lines.append(line)
        lines.append("")
    if result["skipped"]:
        lines += ["## skipped methods", ""] + [f"- {s['config']}: {s['reason']}" for s in result["skipped"]] + [""]
    lines += ["## targets", ""]
    for t in result["targets"]:
        value = f"{100 * t['value']:+.1f} %" if "overhead" in t["target"] else f"{t['value']:.3f}"
        note = f" ({t['note']})" if t.get("note") else ""
        lines.append(f"- {'MET' if t['met'] else 'MISSED'}: {t['target']}: {value}{note}")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    fig, axes = plt.subplots(len(runs), 2, figsize=(11, 3.6 * len(runs)), squeeze=False)
    for ax_row, run in zip(axes, runs):
        rows = run["rows"]
        labels = [r["config"] for r in rows]
        x = range(len(rows))
        ax = ax_row[0]
        ax.bar([i - 0.2 for i in x], [r["ratio"]["prefill_time"] for r in rows], 0.4, label="prefill time / full")
        ax.bar([i + 0.2 for i in x], [r["ratio"]["prefill_flops"] for r in rows], 0.4, label="prefill FLOPs / full")
        ax.set_title(f"prefill ({run['attn']}, batch {run['batch']})")
        ax = ax_row[1]
        ax.bar([i - 0.2 for i in x], [r["ratio"]["decode_tps"] for r in rows], 0.4, label="decode tok/s / full")
        ax.bar([i + 0.2 for i in x], [r["ratio"]["kv"] for r in rows], 0.4, label="KV bytes / full")
        ax.set_title(f"decode and KV cache ({run['attn']}, batch {run['batch']})")
        for ax in ax_row:
            ax.set_xticks(list(x))
            ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
            ax.axhline(1.0, color="gray", lw=0.8, ls="--")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(result: dict, out_dir: str, with_plot: bool = True) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, "results.json"), "md": os.path.join(out_dir, "results.md")}
    with open(paths["json"], "w") as fh:
        json.dump(result, fh, indent=2)
    with open(paths["md"], "w") as fh:
        fh.write(markdown(result))
    if with_plot:
        paths["png"] = os.path.join(out_dir, "results.png")
        plot(result, paths["png"])
    return paths
