"""Upload → prediction latency over HTTP against a running medal (after `make demo`).

Sends 100 real PneumoniaMNIST test images (never imported into the app), upscaled to 512 px
PNGs as a stand-in for full-size radiographs, one request at a time, and prints p50/p95.
Usage: .venv/bin/python scripts/bench_latency.py [--url http://127.0.0.1:5000] [--n 100]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def token() -> str:
    out = subprocess.run(
        [str(ROOT / ".venv/bin/medal"), "tokens", "create", "doctor", "--name", "bench"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().splitlines()[-1]


def images(n: int, size: int) -> list[bytes]:
    with np.load(ROOT / "data/pneumoniamnist/pneumoniamnist_varun19424.npz") as data:
        test = data["test_images"][-n:]  # the end of the test split: not seen by the app
    out = []
    for array in test:
        buffer = io.BytesIO()
        Image.fromarray(array).resize((size, size), Image.Resampling.BICUBIC).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {token()}"}
    session = requests.Session()
    timings: list[float] = []
    pending = 0  # answers that came back before their heat map was made (Grad-CAM runs after the answer)
    for i, data in enumerate(images(args.n, args.size)):
        start = time.perf_counter()
        response = session.post(
            f"{args.url}/api/v1/images", headers=headers, files={"file": (f"bench{i}.png", data, "image/png")}
        )
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code not in (200, 201):
            print(f"request {i} failed: {response.status_code} {response.text}", file=sys.stderr)
            return 1
        if response.status_code == 201:  # 200 = a duplicate already stored: not a fresh prediction
            timings.append(elapsed)
            pending += response.json().get("heatmap_status") == "pending"
    if not timings:
        print("every image was already stored; nothing new was predicted", file=sys.stderr)
        return 1
    q = statistics.quantiles(timings, n=100)
    print(
        f"upload→prediction over {len(timings)} new {args.size}px PNGs: "
        f"p50 {statistics.median(timings):.0f} ms, p95 {q[94]:.0f} ms, max {max(timings):.0f} ms; "
        f"{pending} of {len(timings)} answered before their heat map was ready"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
