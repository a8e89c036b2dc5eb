"""A round's training step, as the CPU settings change it: precision, memory layout, OpenMP threads.

    .venv/bin/python scripts/bench_round_step.py precision [--steps 20 --repeats 3]
    .venv/bin/python scripts/bench_round_step.py threads [--steps 40 --repeats 2]

The step is what a round spends its training time in (learning.rounds): blocks 12-15, the head
conv and the classifier of the shipped network (models/medal-cxr-v1) on a batch of 32 stored
192 x 7 x 7 activations, cross-entropy, backward, AdamW; BatchNorm keeps the champion's statistics.
The activations are random: the arithmetic does not depend on their values.

- precision: in one process, fp32 and bf16 autocast (torch.autocast("cpu", torch.bfloat16), what
  Lightning's "bf16-mixed" does on a CPU), each in NCHW and channels_last, interleaved repeat by
  repeat so a busy machine slows them alike.
- threads: separate processes, started together, each timing its own steps: one 2-thread process
  alone and two at once, with libgomp's default (threads spin while they wait) and with
  OMP_WAIT_POLICY=PASSIVE (what every `medal` process sets, webapp/cli/__init__.py); and two
  1-thread processes at once.

Writes the raw seconds and the load average to docs/benchmarks/round_step.json (--out), one
section per mode, and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {  # name -> (bf16 autocast, channels_last)
    "fp32 NCHW": (False, False),
    "fp32 channels_last": (False, True),
    "bf16 NCHW": (True, False),
    "bf16 channels_last": (True, True),
}
THREAD_CASES = {  # name -> (processes at once, threads each, OMP_WAIT_POLICY or None for libgomp's default)
    "one 2-thread process alone, spinning": (1, 2, None),
    "one 2-thread process alone, sleeping": (1, 2, "PASSIVE"),
    "two 2-thread processes at once, spinning": (2, 2, None),
    "two 2-thread processes at once, sleeping": (2, 2, "PASSIVE"),
    "two 1-thread processes at once": (2, 1, "PASSIVE"),
}


class RoundStep:
    """The upper part of the shipped network, set up to train as a round does."""

    def __init__(self, model: Path, frozen_blocks: int, batch: int, channels_last: bool) -> None:
        import torch

        from learning.model import load_model
        from learning.trunk import split

        torch.manual_seed(0)
        net = load_model(model)
        self.cut = split(net, frozen_blocks)
        for parameter in net.parameters():
            parameter.requires_grad_(False)
        upper = self.cut.upper_parameters()
        for parameter in upper:
            parameter.requires_grad_(True)
        net.train()
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
        layout = torch.channels_last if channels_last else torch.contiguous_format
        net.to(memory_format=layout)
        self.optimizer = torch.optim.AdamW(upper, lr=1e-4)
        self.x = torch.randn(batch, 192, 7, 7).contiguous(memory_format=layout)
        self.y = torch.randint(0, 3, (batch,))

    def run(self, steps: int, bf16: bool) -> float:
        import torch
        import torch.nn.functional as F

        start = time.perf_counter()
        for _ in range(steps):
            self.optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
                logits = self.cut.logits(self.x)
            F.cross_entropy(logits.float(), self.y).backward()
            self.optimizer.step()
        return time.perf_counter() - start


def bench_precision(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    steps = {name: RoundStep(args.model, args.frozen_blocks, args.batch, nhwc) for name, (_, nhwc) in VARIANTS.items()}
    for name, (bf16, _) in VARIANTS.items():
        steps[name].run(1, bf16)  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    loads = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        for name, (bf16, _) in VARIANTS.items():
            seconds[name].append(round(steps[name].run(args.steps, bf16), 3))
            loads.append(os.getloadavg()[0])
    return {"steps": args.steps, "threads": args.threads, "seconds": seconds, "load_average": [min(loads), max(loads)]}


def bench_threads(args) -> dict:
    rows: dict[str, list[list[float]]] = {name: [] for name in THREAD_CASES}
    loads = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        for name, (processes, threads, policy) in THREAD_CASES.items():
            env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
            if policy:
                env["OMP_WAIT_POLICY"] = policy
            command = [sys.executable, __file__, "child", "--threads", str(threads), "--steps", str(args.steps)]
            children = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
            rows[name].append([float(child.communicate()[0].split()[-1]) for child in children])
            loads.append(os.getloadavg()[0])
    return {"steps": args.steps, "seconds": rows, "load_average": [min(loads), max(loads)]}


def child(args) -> None:
    """One process of the threads mode: its own steps, timed inside it after one warm-up step."""
    import torch

    torch.set_num_threads(args.threads)
    step = RoundStep(args.model, args.frozen_blocks, args.batch, channels_last=True)
    step.run(1, bf16=False)
    print(f"{step.run(args.steps, bf16=False):.3f}")


def table(mode: str, section: dict) -> str:
    lines = [f"{mode}: {section['steps']} steps, load average {section['load_average']}"]
    for name, runs in section["seconds"].items():
        flat = [value for run in runs for value in (run if isinstance(run, list) else [run])]
        lines.append(f"  {name:45s} median {statistics.median(flat):7.2f} s  [{min(flat):.2f}, {max(flat):.2f}]")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["precision", "threads", "child"])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "medal-cxr-v1")
    parser.add_argument("--frozen-blocks", type=int, default=12, help="config.yaml's training.round.frozen_blocks")
    parser.add_argument("--batch", type=int, default=32, help="config.yaml's training.round.batch_size")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run (20 precision, 40 threads)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per variant (3 precision, 2 threads)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (precision and child)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "round_step.json")
    args = parser.parse_args()
    if args.mode == "child":
        child(args)
        return
    args.steps = args.steps or (20 if args.mode == "precision" else 40)
    args.repeats = args.repeats or (3 if args.mode == "precision" else 2)
    if args.mode == "precision":
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as in every medal process; torch is not loaded yet
        section = bench_precision(args)
    else:
        section = bench_threads(args)
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    report[args.mode] = section | {"when": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count()}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(args.mode, section))


if __name__ == "__main__":
    main()
