"""Fine-tunes across processes (Lightning DDP): the launcher, each rank's entry point, and the
sampler that shares an epoch's draws among the ranks.

Lightning's own `ddp` launcher starts the other ranks by running the parent's command line again,
which would be `medal worker` or pytest; `ddp_spawn` pickles the trainer into processes forked from
a threaded web worker. Here the parent (the worker, `medal train --full`, scripts/train_first_model.py)
writes the run spec to a private folder and starts `python -m learning.distributed FOLDER` once per
rank, with the variables torchrun would set. Every rank runs learning.train.fit, the code a single
process runs, on CPUs (gloo) and on GPUs (nccl, one per rank) alike; rank 0 alone writes the result,
and its progress lines, which the parent reads back.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils.data import Sampler

if TYPE_CHECKING:
    from learning.train import TrainResult, TrainSpec

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent  # the folder `learning` is imported from
SPEC_FILE, RESULT_FILE, PROGRESS_FILE = "spec.pt", "result.pt", "progress.jsonl"
# variables of an enclosing launcher (torchrun, a SLURM job) that must not leak into our ranks
FOREIGN = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "NODE_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
)


class RankShard(Sampler[int]):
    """One rank's share of another sampler's draws. Every rank draws the same sequence (the wrapped
    sampler is seeded alike on each) and keeps positions rank, rank + world, ... With `pad` the
    sequence is first wrapped round to a multiple of world, so that every rank takes as many
    batches as the others: DDP synchronises each step, and a rank with one batch more would wait
    for ever. Without it (validation) each draw is on exactly one rank."""

    def __init__(self, sampler: Sampler[int], rank: int, world: int, pad: bool = True):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in a world of {world}")
        self.sampler, self.rank, self.world, self.pad = sampler, rank, world, pad

    def __iter__(self) -> Iterator[int]:
        draws = list(self.sampler)
        if self.pad and draws and len(draws) % self.world:
            extra = self.world - len(draws) % self.world
            draws += [draws[i % len(draws)] for i in range(extra)]
        return iter(draws[self.rank :: self.world])

    def __len__(self) -> int:
        total = len(self.sampler)  # type: ignore[arg-type]
        if self.pad:
            return -(-total // self.world)
        return len(range(self.rank, total, self.world))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rank_env(rank: int, world: int, port: int, threads: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in FOREIGN}
    env.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        NODE_RANK="0",
        LOCAL_RANK=str(rank),
        OMP_NUM_THREADS=str(threads),
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]),
    )
    return env


class _Progress:
    """Rank 0's progress events, one JSON line each, forwarded to the caller's callback as they come."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def forward(self, report) -> None:
        if report is None or not self.path.exists():
            return
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            report(json.loads(line))


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def launch(spec: TrainSpec, world: int) -> TrainResult:
    """Run `spec` (its train and val parts already fixed) as `world` DDP processes and return rank 0's
    result. A rank that fails stops the others, and its log's tail is in the error."""
    threads = max(1, torch.get_num_threads() // world)  # the parent's share of the cores, divided
    with tempfile.TemporaryDirectory(prefix="medal-ddp-") as folder:
        run = Path(folder)
        # the caller's progress callback stays here: rank 0 writes its events to a file instead
        torch.save({"spec": replace(spec, progress=None), "threads": threads}, run / SPEC_FILE)
        port = _free_port()
        logs = [run / f"rank-{rank}.log" for rank in range(world)]
        processes: list[subprocess.Popen] = []
        progress = _Progress(run / PROGRESS_FILE)
        log.info("fine-tune as %d processes (DDP, %d threads each)", world, threads)
        try:
            for rank in range(world):
                with open(logs[rank], "wb") as output:
                    processes.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "learning.distributed", str(run)],
                            env=_rank_env(rank, world, port, threads),
                            cwd=ROOT,
                            stdin=subprocess.DEVNULL,
                            stdout=output,
                            stderr=subprocess.STDOUT,
                        )
                    )
            while any(process.poll() is None for process in processes):
                progress.forward(spec.progress)
                failed = [rank for rank, process in enumerate(processes) if process.poll() not in (None, 0)]
                if failed:
                    break
                time.sleep(0.2)
            progress.forward(spec.progress)
        finally:
            _stop(processes)
        codes = [process.returncode for process in processes]
        for rank, code in enumerate(codes):
            if code != 0:
                raise RuntimeError(
                    f"rank {rank} of {world} of the fine-tune exited with {code}; its log ends:\n{_tail(logs[rank])}"
                )
        if not (run / RESULT_FILE).exists():
            raise RuntimeError(
                f"the fine-tune's {world} processes ended without a result; rank 0's log:\n{_tail(logs[0])}"
            )
        result: TrainResult = torch.load(run / RESULT_FILE, weights_only=False)  # our own file, from our rank 0
    return result


def _exit_with_parent() -> None:
    """A rank whose launcher died (the worker killed mid-run) stops instead of training on alone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    """One rank: `python -m learning.distributed FOLDER`, with LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and
    MASTER_PORT set (by `launch`, or by torchrun on one node)."""
    import torch.distributed as dist

    from learning.train import fit

    logging.basicConfig(level=logging.INFO, format="%(asctime)s rank %(process)d %(name)s: %(message)s")
    _exit_with_parent()
    run = Path((argv if argv is not None else sys.argv[1:])[0])
    payload = torch.load(run / SPEC_FILE, weights_only=False)  # written by `launch` into a private folder
    torch.set_num_threads(payload["threads"])
    world = int(os.environ["WORLD_SIZE"])
    spec = payload["spec"]
    if int(os.environ.get("RANK", os.environ["LOCAL_RANK"])) == 0:  # torchrun sets RANK; `launch` is one node
        events = open(run / PROGRESS_FILE, "a")

        def report(event: dict) -> None:
            events.write(json.dumps(event) + "\n")
            events.flush()

        spec = replace(spec, progress=report)
    result = fit(spec, world)
    if result is not None:  # rank 0: the only writer
        torch.save(result, run / f"{RESULT_FILE}.part")
        os.replace(run / f"{RESULT_FILE}.part", run / RESULT_FILE)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
