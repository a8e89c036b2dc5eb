"""Cost of one large upload: seconds and peak memory of POST /api/v1/images for a 36-megapixel PNG.

    .venv/bin/python scripts/bench_upload.py [--side 6000] [--image-size 224]

Runs in a temporary MEDAL_HOME with a small untrained CNN registered as champion (the overlay,
decoding and storing dominate at this size, not the network), and reports the wall time of the
request and how far the process's peak resident memory rose during it (VmHWM).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(field)


def big_png(side: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side]
    pixels = (60 + 90 * np.sin(x / side * 3.1) * np.cos(y / side * 3.1) + 8 * rng.standard_normal((side, side))).clip(
        0, 255
    )
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=6000)
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="medal-bench-upload-"))
    os.environ.update(
        {
            "MEDAL_HOME": str(home),
            "MEDAL_CLASSES": "[normal, pneumonia]",
            "MEDAL_MODEL__BACKBONE": "small_cnn",
            "MEDAL_IMAGES__SIZE": str(args.image_size),
            "MEDAL_GATE__MIN_SENSITIVITY": "{normal: 0.80, pneumonia: 0.85}",
        }
    )
    import torch
    from flask_migrate import upgrade

    from learning.model import ModelSpec, XrayNet
    from registry.client import RunRecord
    from webapp import create_app
    from webapp.auth.tokens import create_token
    from webapp.extensions import db
    from webapp.models import User

    data = big_png(args.side)
    app = create_app({"TESTING": True})
    with app.app_context():
        upgrade()
        user = User(username="doctor", role="doctor")
        user.set_password("bench-password")
        db.session.add(user)
        db.session.commit()
        registry = app.extensions["medal"].registry
        torch.manual_seed(0)
        net = XrayNet(ModelSpec("small_cnn", ["normal", "pneumonia"], args.image_size), pretrained=False).eval()
        registry.set_alias("champion", registry.register(registry.log_run(net, RunRecord(params={}), run_name="b")))
        headers = {"Authorization": f"Bearer {create_token(user)}"}
        client = app.test_client()
        # warm up: the model load and Grad-CAM's first use are not the upload's cost
        small = big_png(300)
        client.post("/api/v1/images", headers=headers, data={"file": (io.BytesIO(small), "w.png")})
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM: the PNG's making is not counted
        before = rss_mb("VmRSS")
        started = time.perf_counter()
        response = client.post("/api/v1/images", headers=headers, data={"file": (io.BytesIO(data), "big.png")})
        seconds = time.perf_counter() - started
        peak = rss_mb("VmHWM")
    report = {
        "pixels": args.side * args.side,
        "png_mb": round(len(data) / 1e6, 1),
        "status": response.status_code,
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before),
        "peak_rise_mb": round(peak - before),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
