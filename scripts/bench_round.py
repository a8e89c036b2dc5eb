"""What a fine-tuning round costs on real radiographs at 224 px: the full fine-tune against a round
on stored trunk activations, with a cold and a warm activation store.

    .venv/bin/python scripts/bench_round.py [--labels 500] [--replay 500] [--frozen-blocks 12]

Starts from the shipped model (models/medal-cxr-v1), takes `--labels` films of its unseen test
patients as the doctors' labels and `--replay` films of its training patients as replay, and
times: a round with an empty store (every trunk activation computed), the same round again (all
read), and re-scoring `--pool` films from stored activations. Writes the raw figures to
docs/benchmarks/round.json and prints a table. `--full` also times one epoch of the full
fine-tune on the same images for the ratio (slow on a CPU).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from learning.data import LabeledImage  # noqa: E402
from learning.model import load_model  # noqa: E402
from learning.rounds import RoundSpec, fine_tune_round  # noqa: E402
from learning.train import TrainSpec, fine_tune  # noqa: E402
from learning.trunk import ActivationStore, activations, split  # noqa: E402


def items(part: str, n: int, names: list[str], seed: int) -> list[LabeledImage]:
    data = ROOT / "data" / "kermany_cxr_train"
    labels = {row["filename"]: row for row in csv.DictReader(open(data / "labels.csv"))}
    rows = [row for row in csv.DictReader(open(ROOT / "models" / "kermany-split.csv")) if row["part"] == part]
    chosen = np.random.default_rng(seed).choice(len(rows), min(n, len(rows)), replace=False)
    return [
        LabeledImage(
            str(data / rows[i]["filename"]), names.index(labels[rows[i]["filename"]]["label"]), rows[i]["patient_id"]
        )
        for i in sorted(chosen)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "medal-cxr-v1")
    parser.add_argument("--labels", type=int, default=500)
    parser.add_argument("--replay", type=int, default=500)
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--frozen-blocks", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=16, help="config.yaml's training.round.max_epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="also one epoch of the full fine-tune")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "round.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net = load_model(args.model)
    names = net.spec.class_names
    doctors = items("test", args.labels, names, seed=1)
    replay = items("train", args.replay, names, seed=2)
    store_dir = Path(tempfile.mkdtemp(prefix="medal-trunk-"))
    store = ActivationStore(store_dir)
    rows: dict = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "labels": len(doctors),
        "replay": len(replay),
        "frozen_blocks": args.frozen_blocks,
        "epochs": args.epochs,
    }

    def round_once() -> dict:
        started = time.monotonic()
        result = fine_tune_round(
            RoundSpec(
                net=net,
                teacher=net,
                train=doctors,
                replay=replay,
                store=store,
                frozen_blocks=args.frozen_blocks,
                max_epochs=args.epochs,
                patience=args.epochs,
            )
        )
        return {
            "seconds": round(time.monotonic() - started, 1),
            "activations_computed": result.activations_computed,
            "epochs": result.epochs_run,
            "best_val_auc": round(result.best_val_auc, 4),
        }

    rows["cold_round"] = round_once()
    key = split(net, args.frozen_blocks).key()
    stored_bytes = store.size_bytes(key)
    rows["store_bytes_per_image"] = round(stored_bytes / (len(doctors) + len(replay)))
    rows["store_mb_per_10000_images"] = round(rows["store_bytes_per_image"] * 10000 / 1e6, 1)
    rows["warm_round"] = round_once()

    pool = items("test", args.pool, names, seed=3)
    paths = [item.path for item in pool]
    trunk = split(net, args.frozen_blocks)
    started = time.monotonic()
    cold = activations(trunk, paths, store)
    rows["pool_trunk_seconds"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    stored = activations(trunk, paths, store)
    net.eval()
    with torch.inference_mode():
        probabilities = torch.cat([trunk.logits(chunk.float()).softmax(1) for chunk in stored.values.split(64)])
    warm = time.monotonic() - started
    rows["pool"] = len(pool)
    rows["pool_computed"] = cold.computed
    rows["rescore_warm_seconds"] = round(warm, 2)
    rows["rescore_images_per_s"] = round(len(pool) / warm, 1)
    rows["rescore_5000_seconds_projected"] = round(5000 * warm / len(pool), 1)
    rows["memory_mb_per_10000_images_float16"] = round(stored.values[0].numel() * 2 * 10000 / 1e6, 1)
    rows["pool_probabilities_sum_check"] = round(float(probabilities.sum()) / len(pool), 4)

    if args.full:
        started = time.monotonic()
        fine_tune(
            TrainSpec(model=net.spec, train=[*doctors, *replay], init_from=net, max_epochs=1, batch_size=16, patience=1)
        )
        rows["full_fine_tune_one_epoch_seconds"] = round(time.monotonic() - started, 1)
    rows["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    shutil.rmtree(store_dir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
