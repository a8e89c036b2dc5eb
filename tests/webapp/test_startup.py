"""Every `medal` command starts by building the app: what it imports there, each command pays.
Training's libraries load with the run that trains, not with the app (docs/benchmarks.md, "Start-up")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# what only training, tests of significance and the fusion model need: `medal --help` took 10.2 s
# while building the app loaded them, 6.4 s since they load in the functions that use them
TRAINING_ONLY = ("pytorch_lightning", "lightning_fabric", "torchmetrics", "torchvision", "sklearn", "scipy.stats")
CHARTS_ONLY = ("matplotlib",)  # 0.4 s more: it loads with the first chart a page draws
REGISTRY_ONLY = ("mlflow",)  # about 2 s more: it loads with the registry's first call

PROBE = """
import json, sys
from webapp import create_app
create_app()
print(json.dumps(sorted(name for name in {names} if name in sys.modules)))
"""


def _run(code: str, home) -> subprocess.CompletedProcess:
    environ = {"MEDAL_HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=300)


def test_building_the_app_leaves_the_training_libraries_unloaded(tmp_path):
    done = _run(PROBE.format(names=repr(TRAINING_ONLY + CHARTS_ONLY + REGISTRY_ONLY)), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_app_still_reaches_them_when_a_run_trains(tmp_path):
    """The probe above can fail: the same process, once it imports the recipe's training, has them."""
    code = PROBE.replace("create_app()", "create_app()\nfrom learning import rounds, train").format(
        names=repr(TRAINING_ONLY[:3])
    )
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == sorted(TRAINING_ONLY[:3])


def test_the_first_chart_loads_matplotlib(tmp_path):
    """The probe above can fail for matplotlib too: a page's first chart loads it."""
    chart = "create_app()\nfrom webapp import charts\nassert charts.stacked_bars(dict(), []).startswith('<?xml')"
    done = _run(PROBE.replace("create_app()", chart).format(names=repr(CHARTS_ONLY)), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == list(CHARTS_ONLY)


def test_the_registrys_first_call_loads_mlflow(tmp_path):
    """The probe above can fail for MLflow too: the registry reaches it when it is first asked."""
    call = (
        "app = create_app()\nfrom webapp.services import services\n"
        "with app.app_context():\n    assert services().registry.aliases() == dict()"
    )
    done = _run(PROBE.replace("create_app()", call).format(names=repr(REGISTRY_ONLY)), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == list(REGISTRY_ONLY)
