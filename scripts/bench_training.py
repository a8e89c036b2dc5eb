"""CPU training speed of the shipped network on real radiographs (issue 23, item 5).

    .venv/bin/python scripts/bench_training.py [--steps 10 --repeats 5 --parity-steps 50]

1. Training steps (forward, backward, AdamW step) at batch 16, 224 px, EfficientNet-Lite0 from
   models/medal-cxr-v1, on real Kermany films decoded once: fp32 eager, bf16 autocast
   (torch.autocast("cpu", torch.bfloat16), what Lightning's "bf16-mixed" does on a CPU),
   channels_last, and both. Variants are interleaved repeat by repeat (A B C D A B C D ...) so a
   busy machine slows them alike; each row records the load average around it.
2. Data loading over two epochs: every film decoded once (XrayDataset's uint8 cache) against
   decoded again every epoch (streamed), interleaved the same way.
3. Accuracy: logits of each variant against fp32 on the same films (eval mode), and the same
   `--parity-steps` steps from the same seed in fp32 and in `--parity-variant`, compared by the
   final training loss and by loss and accuracy on held-out films.

Raw rows and the summary go to docs/benchmarks/training_speed.json (--out).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import platform
import statistics
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from learning.data import LabeledImage, XrayDataset  # noqa: E402
from learning.model import XrayNet, load_model  # noqa: E402

DATA = ROOT / "data" / "kermany_cxr_train"
VARIANTS = {  # name -> (bf16 autocast, channels_last)
    "fp32 eager": (False, False),
    "bf16 autocast": (True, False),
    "channels_last": (False, True),
    "bf16 + channels_last": (True, True),
}


def cpu_flags() -> list[str]:
    """The bfloat16 flags this CPU declares (AVX512-BF16, AMX): without them bf16 is emulated."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return sorted(flags & {"avx512_bf16", "amx_bf16"})


def labeled_films(names: list[str], limit: int, seed: int) -> list[LabeledImage]:
    """A class-mixed sample of the shipped training films, labelled in the network's class order."""
    with open(DATA / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    order = np.random.default_rng(seed).permutation(len(rows))[:limit]
    return [LabeledImage(str(DATA / rows[i]["filename"]), names.index(rows[i]["label"])) for i in order]


def prepared(net: XrayNet, channels_last: bool) -> XrayNet:
    net = copy.deepcopy(net).train()
    return net.to(memory_format=torch.channels_last) if channels_last else net


def autocast(bf16: bool) -> AbstractContextManager:
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()


def train_steps(
    net: XrayNet, optimizer: torch.optim.Optimizer, batches: list[tuple[torch.Tensor, torch.Tensor]], bf16: bool
) -> float:
    """Runs one step per batch; returns the last step's loss."""
    loss = torch.zeros(())
    for images, targets in batches:
        with autocast(bf16):
            loss = F.cross_entropy(net(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return float(loss.detach())


def load_row(kind: str, name: str, repeat: int, images: int, seconds: float, load_before: float) -> dict:
    return {
        "kind": kind,
        "variant": name,
        "repeat": repeat,
        "images": images,
        "seconds": round(seconds, 4),
        "images_per_s": round(images / seconds, 4),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def bench_steps(net: XrayNet, batches, args) -> list[dict]:
    rows = []
    nets = {name: prepared(net, cl) for name, (_, cl) in VARIANTS.items()}
    optimizers = {name: torch.optim.AdamW(n.parameters(), lr=1e-4) for name, n in nets.items()}
    for repeat in range(args.repeats):
        for name, (bf16, _) in VARIANTS.items():
            load = os.getloadavg()[0]
            if repeat == 0:  # one warm-up per variant: later repeats start warm
                train_steps(nets[name], optimizers[name], batches[: args.warmup], bf16)
            timed = [batches[(args.warmup + i) % len(batches)] for i in range(args.steps)]
            started = time.perf_counter()
            train_steps(nets[name], optimizers[name], timed, bf16)
            row = load_row("train_step", name, repeat, args.steps * args.batch, time.perf_counter() - started, load)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def bench_loading(films: list[LabeledImage], args) -> list[dict]:
    """Two epochs of batches as training draws them (augmented): decoded once, or every epoch."""
    rows = []
    for repeat in range(args.repeats):
        for name, cache in (("decoded once (cache)", True), ("decoded every epoch (streamed)", False)):
            load = os.getloadavg()[0]
            started = time.perf_counter()
            dataset = XrayDataset(films, 224, augment=True, cache=cache)
            delivered = 0
            for _epoch in range(2):
                for images, _ in DataLoader(dataset, batch_size=args.batch, shuffle=True):
                    delivered += len(images)
            row = load_row("loading", name, repeat, delivered, time.perf_counter() - started, load)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


@torch.inference_mode()
def logits_of(net: XrayNet, images: torch.Tensor, bf16: bool, channels_last: bool) -> torch.Tensor:
    model = prepared(net, channels_last).eval()
    with autocast(bf16):
        return model(images).float()


def logit_agreement(net: XrayNet, images: torch.Tensor, labels: torch.Tensor) -> dict:
    reference = logits_of(net, images, False, False)
    out = {}
    for name, (bf16, cl) in VARIANTS.items():
        logits = logits_of(net, images, bf16, cl)
        out[name] = {
            "accuracy": float((logits.argmax(1) == labels).float().mean()),
            "max_abs_logit_diff": float((logits - reference).abs().max()),
            "max_abs_probability_diff": float((logits.softmax(1) - reference.softmax(1)).abs().max()),
            "same_call": float((logits.argmax(1) == reference.argmax(1)).float().mean()),
        }
    return out


def parity(net: XrayNet, batches, held: tuple[torch.Tensor, torch.Tensor], variant: str, steps: int) -> dict:
    """The same steps from the same seed in fp32 and in `variant`; dropout draws match too."""
    out = {}
    for name in ("fp32 eager", variant):
        bf16, cl = VARIANTS[name]
        torch.manual_seed(0)
        model = prepared(net, cl)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        losses = [train_steps(model, optimizer, [batches[i % len(batches)]], bf16) for i in range(steps)]
        model.eval()
        with torch.inference_mode():
            logits = model(held[0]).float()
        out[name] = {
            "final_train_loss": losses[-1],
            "mean_train_loss_last_5": float(np.mean(losses[-5:])),
            "held_out_loss": float(F.cross_entropy(logits, held[1])),
            "held_out_accuracy": float((logits.argmax(1) == held[1]).float().mean()),
        }
    return out


def summarise(rows: list[dict], kind: str, baseline: str) -> dict:
    """Median images/s with [min, max] per variant, and the median of the per-repeat ratios to the
    baseline measured in the same repeat."""
    by_repeat: dict[int, dict[str, float]] = {}
    for row in rows:
        if row["kind"] == kind:
            by_repeat.setdefault(row["repeat"], {})[row["variant"]] = row["images_per_s"]
    names = list(next(iter(by_repeat.values())))
    summary = {}
    for name in names:
        speeds = [r[name] for r in by_repeat.values()]
        ratios = [r[name] / r[baseline] for r in by_repeat.values()]
        summary[name] = {
            "images_per_s_median": round(statistics.median(speeds), 3),
            "images_per_s_min": round(min(speeds), 3),
            "images_per_s_max": round(max(speeds), 3),
            "ratio_to_baseline_median": round(statistics.median(ratios), 3),
            "ratio_to_baseline_min": round(min(ratios), 3),
            "ratio_to_baseline_max": round(max(ratios), 3),
        }
    return summary


def markdown(report: dict) -> str:
    """The tables docs/benchmarks.md quotes, from a report (or its JSON file: --table FILE)."""
    lines = ["| variant | images/s, median [min, max] | ratio to the baseline, median [min, max] |", "|---|---|---|"]
    for kind in ("train_step", "loading"):
        for name, s in report[kind].items():
            lines.append(
                f"| {name} | {s['images_per_s_median']:.2f} [{s['images_per_s_min']:.2f}, {s['images_per_s_max']:.2f}] "
                f"| {s['ratio_to_baseline_median']:.2f} [{s['ratio_to_baseline_min']:.2f}, "
                f"{s['ratio_to_baseline_max']:.2f}] |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "medal-cxr-v1")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loading-images", type=int, default=64)
    parser.add_argument("--parity-steps", type=int, default=50)
    parser.add_argument("--parity-batch", type=int, default=16)
    parser.add_argument("--parity-variant", choices=list(VARIANTS)[1:], default="bf16 + channels_last")
    parser.add_argument("--held-out", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "training_speed.json")
    parser.add_argument("--accuracy-only", action="store_true", help="redo the accuracy checks into --out's report")
    parser.add_argument("--table", type=Path, help="print the tables of an earlier report and stop")
    args = parser.parse_args(argv)
    if args.table:
        report = json.loads(args.table.read_text())
        print(markdown(report))
        return report

    net = load_model(args.model)
    started = time.perf_counter()
    load_start = os.getloadavg()
    films = labeled_films(net.spec.class_names, args.batch * max(args.warmup, args.steps) + args.held_out, args.seed)
    dataset = XrayDataset(films, net.spec.image_size, augment=False, cache=True)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.tensor(dataset.labels)
    train_images, held = images[: -args.held_out], (images[-args.held_out :], labels[-args.held_out :])

    def batches_of(size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [
            (train_images[i : i + size], labels[i : i + size]) for i in range(0, len(train_images) - size + 1, size)
        ]

    agreement = logit_agreement(net, *held)
    print(json.dumps({"logits": agreement}), flush=True)
    parity_result = parity(net, batches_of(args.parity_batch), held, args.parity_variant, args.parity_steps)
    print(json.dumps({"parity": parity_result}), flush=True)
    parity_report = {"variant": args.parity_variant, "steps": args.parity_steps, "batch": args.parity_batch}
    if args.accuracy_only:  # the speed rows of the report already at --out stay as they are
        report = json.loads(args.out.read_text())
        report.update(logits_against_fp32=agreement, parity={**parity_report, **parity_result})
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        return report
    rows = bench_steps(net, batches_of(args.batch), args)
    rows += bench_loading(films[: args.loading_images], args)
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_bf16_flags": cpu_flags(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(),
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_step": summarise(rows, "train_step", "fp32 eager"),
        "loading": summarise(rows, "loading", "decoded every epoch (streamed)"),
        "logits_against_fp32": agreement,
        "parity": {
            "variant": args.parity_variant,
            "steps": args.parity_steps,
            "batch": args.parity_batch,
            **parity_result,
        },
        "duration_s": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=2))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
