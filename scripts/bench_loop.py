"""The loop as a hospital runs it, end to end, with an oracle doctor ("new site", "new class").

Everything goes through the platform's own entry points, as it would be checked from outside:
`medal db upgrade` and `medal demo` (the shipped champion v1, its gold set and pool), `medal import`
of a second site, that site's gold set marked by an engineer and read blind by two doctors, then
rounds of doctor labels through the API (`GET /api/v1/review/next`, `POST .../labels`), `medal
train` (the round the worker runs, its gate included), the engineer's decision through the API
(approve when the gate passes, reject otherwise) and `medal score` (the pool re-scored by the new
champion, so that the next batch is served by it).

Scenarios:
  new-site:  site B is made from the test patients the demo leaves unused (Kermany, split by
             patient, never trained on): the same kind of film taken differently (a 12 % crop,
             lower contrast, gamma 1.5, sensor noise), divided by patient into site B's gold set
             (15 films per class), its review pool and held-out films.
  new-class: the first model does not know viral pneumonia: the shipped v1 with its viral row cut
             from the head (learning.model.adapt_head), served by a demo without viral films and
             with two classes configured. `medal classes add viral_pneumonia`, then the unused test
             patients of all three classes arrive as above, untouched: a gold set with 15 viral
             films, a pool and held-out films. (v1's lower blocks were trained with viral films, so
             this is easier than a finding the network never saw.)
  new-class-site: both at once, the shape of the hidden-hospital check in issue 22: the first model
             without viral pneumonia, and the films of all three classes arriving from site B, taken
             differently as in new-site.
After every round the champion and the candidate are scored on the new films held out and on site
A's gold set (films the model never trained on), and compared paired, with patient-level bootstrap
intervals (learning.intervals, as the gate does):
  - a *blocked better* round: the gate rejected a candidate whose held-out accuracy interval
    against the champion lies above zero;
  - a *promoted worse* round: the gate passed a candidate whose interval lies below zero.

With --worker-checks, the worker's quiet checks run between the labels and `medal train`, as they
would while doctors label (`webapp.training.jobs.warm_next_round` until nothing is left to ready:
the trunk activations of the round's films and the gold films), timed apart from the round.

With --full-after, the full fine-tune (`medal train --full`, every layer: what the worker schedules
weekly) follows the rounds on the same labels, gated and judged the same way; --full-on HOME runs
only that step on the MEDAL_HOME a finished run left (one seed).

Run: .venv/bin/python scripts/bench_loop.py [--scenario new-site|new-class|new-class-site] [--seeds 0] [--rounds 5]
     [--strategy random|cold_start|...] [--batch 40] [--worker-checks] [--full-after | --full-on HOME]
Writes docs/benchmarks/loop-<scenario>.json (one record per seed and round); docs/benchmarks.md
quotes it.
Takes about 25 minutes per seed on the 2-core development CPU.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from learning.simulate import other_machine  # noqa: E402

DATA = ROOT / "data/kermany_cxr_train"
SPLIT = ROOT / "models/kermany-split.csv"
CLASSES = ["normal", "bacterial_pneumonia", "viral_pneumonia"]
SITE_B = "site-b"
NEW_CLASS = ("new-class", "new-class-site")  # the first model does not know viral pneumonia
NEW_SITE = ("new-site", "new-class-site")  # the new films are taken differently, at site B
GOLD_PER_CLASS = 15


def medal(env: dict, *args: str) -> tuple[float, str]:
    """Run a `medal` command as a user would; returns (seconds, output)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "from webapp.cli import main; main()", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"medal {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return seconds, done.stdout + done.stderr


def first_site_without(home: Path, missing: str) -> tuple[Path, Path]:
    """The demo's data without one class's films, and v1 with that class cut from its head."""
    from learning.model import adapt_head, load_model, save_model

    data = home / "first-site"
    data.mkdir()
    for name in CLASSES:
        if name != missing:  # one link per film: the importer does not descend into linked folders
            (data / name).mkdir()
            for film in (DATA / name).iterdir():
                (data / name / film.name).symlink_to(film)
    (data / "labels.csv").symlink_to(DATA / "labels.csv")
    v1 = load_model(ROOT / "models/medal-cxr-v1")
    model = home / "first-model"
    save_model(adapt_head(v1, [name for name in CLASSES if name != missing]), model)
    return data, model


def new_films(home: Path, used: set[str], seed: int, transform: bool) -> dict[str, list[dict]]:
    """Write the new films (test patients the demo did not use, made different where `transform`)
    as PNG folders with manifests; returns gold, pool and held-out rows {path, sha256, label,
    patient}."""
    rows = [r for r in csv.DictReader(SPLIT.open()) if r["part"] == "test"]
    by_patient: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        raw = (DATA / row["filename"]).read_bytes()
        if hashlib.sha256(raw).hexdigest() in used:
            continue
        by_patient[row["patient_id"]].append(row)
    rng = np.random.default_rng(seed)
    patients = sorted(by_patient)
    rng.shuffle(patients)
    parts: dict[str, list[dict]] = {"gold": [], "pool": [], "held_out": []}
    gold_count: dict[str, int] = defaultdict(int)
    for index, patient in enumerate(patients):
        films = by_patient[patient]
        kinds = {f["filename"].split("/")[0] for f in films}  # a patient may have bacterial and viral films
        first = next(iter(kinds))
        if len(kinds) == 1 and gold_count[first] < GOLD_PER_CLASS:
            part = "gold"
            gold_count[first] += len(films)
        else:
            part = "pool" if index % 2 == 0 else "held_out"
        for film in films:
            label = film["filename"].split("/")[0]  # each film's own class, never its patient's first
            image = np.asarray(PILImage.open(DATA / film["filename"]).convert("L"))
            changed = PILImage.fromarray(other_machine(image, rng) if transform else image)
            target = home / "site-b" / part / film["filename"].replace(".jpeg", ".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            changed.save(buffer, format="PNG")
            target.write_bytes(buffer.getvalue())
            parts[part].append(
                {
                    "path": str(target),
                    "relative": target.relative_to(home / "site-b" / part).as_posix(),
                    "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
                    "label": label,
                    "patient": patient,
                }
            )
    for part in ("gold", "pool"):
        with (home / "site-b" / part / "manifest.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["filename", "label", "patient_id"])
            for film in parts[part]:
                writer.writerow([film["relative"], film["label"], film["patient"]])
    return parts


def evaluate(net, films: list[dict]) -> np.ndarray:
    """Probabilities in CLASSES' order (a class the model does not know: 0)."""
    from learning.predict import align_probabilities, score_pool

    probabilities = score_pool(net, [f["path"] for f in films]).probabilities
    return align_probabilities(probabilities, net.spec.class_names, CLASSES)


def summary(truth: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> dict:
    predicted = probabilities.argmax(1)
    recall = {
        name: float((predicted[truth == i] == i).mean()) for i, name in enumerate(class_names) if (truth == i).any()
    }
    present = [i for i in range(len(class_names)) if (truth == i).any()]
    auc = float(
        np.mean(
            [roc_auc_score(truth == i, probabilities[:, i]) for i in present if 0 < (truth == i).sum() < len(truth)]
        )
    )
    old = np.isin(truth, [0, 1])  # normal against bacterial pneumonia: the classes v1 knew in both scenarios
    old_auc = float(roc_auc_score(truth[old] == 1, probabilities[old, 1] / probabilities[old, :2].sum(1).clip(1e-9)))
    return {
        "accuracy": float((predicted == truth).mean()),
        "macro_auc": auc,
        "normal_vs_bacterial_auc": old_auc,
        "recall": recall,
    }


def paired(truth, candidate, champion, class_names, patients) -> dict:
    from learning.intervals import paired_bootstrap

    comparison = paired_bootstrap(truth, candidate, champion, class_names, patients, resamples=1000)
    return {key: comparison.metrics[key].to_dict() for key in ("accuracy", "macro_auc") if key in comparison.metrics}


@dataclass
class Champion:
    version: int
    new: np.ndarray  # its probabilities on the new films held out
    site_a: np.ndarray  # and on site A's gold films


@dataclass
class Hospital:
    """One bench hospital: its MEDAL_HOME, the app on it, and what the oracle doctor knows."""

    seed: int
    env: dict
    app: Any
    parts: dict[str, list[dict]]  # the new films: gold, pool, held_out
    site_a_gold: list[dict]
    headers: dict[str, dict[str, str]]
    labels: int  # the doctor's labels outside the gold set, so far

    @cached_property
    def truth_of(self) -> dict[str, str]:
        return {f["sha256"]: f["label"] for f in self.parts["pool"] + self.parts["gold"]}

    @cached_property
    def truth_new(self) -> np.ndarray:  # the new films held out
        return np.array([CLASSES.index(f["label"]) for f in self.parts["held_out"]])

    @cached_property
    def truth_site_a(self) -> np.ndarray:  # site A's gold films
        return np.array([CLASSES.index(f["label"]) for f in self.site_a_gold])

    def scores(self, version: int) -> Champion:
        """A registered version's probabilities on the new films held out and on site A's gold films."""
        from webapp.services import services

        with self.app.app_context():
            net = services().registry.load(version)
        return Champion(version, evaluate(net, self.parts["held_out"]), evaluate(net, self.site_a_gold))


def _environment(home: Path, seed: int, args: argparse.Namespace) -> dict:
    env = os.environ | {
        "MEDAL_HOME": str(home),
        "MEDAL_DEMO__POOL_IMAGES": str(args.site_a_pool),
        "MEDAL_TRAINING__SEED": str(seed),
        "PYTHONPATH": str(ROOT),
    }
    if args.strategy:
        env["MEDAL_ACTIVE_LEARNING__STRATEGY"] = args.strategy
    if args.scenario in NEW_CLASS:
        env["MEDAL_CLASSES"] = json.dumps(CLASSES[:2])
    return env


def _open(seed: int, env: dict, parts: dict[str, list[dict]], fresh: bool) -> Hospital:
    """The app on env's MEDAL_HOME, with the doctors' tokens and site A's gold films; on a fresh
    home the engineer marks the new gold films and two doctors read them."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("MEDAL_")})
    from webapp import create_app
    from webapp.auth.tokens import create_token
    from webapp.extensions import db
    from webapp.gold import goldset
    from webapp.models import Image, Label, User
    from webapp.services import services

    app = create_app()
    with app.app_context():
        user = {
            name: db.session.execute(db.select(User).filter_by(username=name)).scalar_one()
            for name in ("doctor", "doctor2", "engineer")
        }
        gold_shas = [f["sha256"] for f in parts["gold"]]
        gold_ids = list(db.session.execute(db.select(Image.id).where(Image.sha256.in_(gold_shas))).scalars())
        truth_of = {f["sha256"]: f["label"] for f in parts["gold"]}
        if fresh:
            marked = goldset.mark(gold_ids, user["engineer"])
            assert not marked.refused, marked.refused
            for image in db.session.execute(db.select(Image).where(Image.id.in_(gold_ids))).scalars():
                for reader in (user["doctor"], user["doctor2"]):
                    goldset.record_read(reader, image.id, truth_of[image.sha256], CLASSES)
        site_a_gold = [
            {
                "path": str(services().store.path(image.path)),
                "label": image.reference_label,
                "patient": image.patient_key or str(image.id),
            }
            for image in db.session.execute(
                db.select(Image).where(Image.is_gold.is_(True), Image.id.not_in(gold_ids))
            ).scalars()
        ]
        doctor_labels = db.select(db.func.count(Label.id)).join(Image, Image.id == Label.image_id)
        labels = db.session.scalar(doctor_labels.where(Label.user_id == user["doctor"].id, Image.is_gold.is_(False)))
        headers = {name: {"Authorization": f"Bearer {create_token(user[name])}"} for name in ("doctor", "engineer")}
    site_a_gold = [f for f in site_a_gold if f["label"] in CLASSES]
    return Hospital(seed, env, app, parts, site_a_gold, headers, labels or 0)


def set_up(seed: int, args: argparse.Namespace) -> Hospital:
    """A hospital in a fresh MEDAL_HOME: the demo, the new films imported, their gold set read, the
    pool scored by the champion."""
    home = Path(tempfile.mkdtemp(prefix=f"medal-{args.scenario}-{seed}-"))
    env = _environment(home, seed, args)
    new_class = args.scenario in NEW_CLASS
    new_site = args.scenario in NEW_SITE
    if new_class:
        data, model = first_site_without(home, "viral_pneumonia")
        env |= {"MEDAL_DEMO__DATA": str(data), "MEDAL_DEMO__MODEL": str(model)}
    medal(env, "db", "upgrade")
    seconds, _ = medal(env, "demo")
    print(f"[seed {seed}] demo loaded in {seconds:.0f} s", flush=True)
    medal(env, "users", "create", "doctor2", "--role", "doctor", "--password", "doctor2-loop-bench")
    if new_class:
        medal(env, "classes", "add", "viral_pneumonia")
    os.environ.update({k: v for k, v in env.items() if k.startswith("MEDAL_")})
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Image

    with create_app().app_context():
        used = set(db.session.execute(db.select(Image.sha256)).scalars())
    parts = new_films(home, used, seed, transform=new_site)
    print(f"[seed {seed}] new films: " + ", ".join(f"{k} {len(v)}" for k, v in parts.items()), flush=True)
    site = SITE_B if new_site else "guangzhou-pediatric"  # the new class alone comes to the demo's own site
    for part in ("gold", "pool"):
        medal(env, "import", str(home / "site-b" / part), "--split", "pool", "--site", site)
    hospital = _open(seed, env, parts, fresh=True)
    medal(env, "score")  # the new pool joins the queue, scored by the champion
    return hospital


def reopen(home: Path, seed: int, args: argparse.Namespace) -> Hospital:
    """The hospital a finished run left in home, as it stands."""
    return _open(seed, _environment(home, seed, args), films_written(home), fresh=False)


def run_seed(seed: int, args: argparse.Namespace) -> list[dict]:
    """Set a hospital up and run the rounds (and the full fine-tune after them with --full-after);
    with --full-on HOME, only the full fine-tune, on a home a run left."""
    hospital = reopen(args.full_on, seed, args) if args.full_on else set_up(seed, args)
    client = hospital.app.test_client()
    models = client.get("/api/v1/models", headers=hospital.headers["engineer"]).get_json()
    champion = hospital.scores(models["aliases"]["champion"])
    records: list[dict] = []
    if args.full_on is None:
        start = {
            "new": summary(hospital.truth_new, champion.new, CLASSES),
            "site_a": summary(hospital.truth_site_a, champion.site_a, CLASSES),
        }
        records.append({"seed": seed, "round": 0, "labels": 0, "champion": champion.version, **start})
        print(
            f"[seed {seed}] round 0: new films accuracy {start['new']['accuracy']:.3f}, "
            f"viral recall {start['new']['recall'].get('viral_pneumonia', 0):.2f}, "
            f"site A {start['site_a']['accuracy']:.3f}",
            flush=True,
        )
    rounds = [] if args.full_on else list(range(1, args.rounds + 1))
    full_after = args.full_after or args.full_on is not None
    for number in rounds + ([args.rounds + 1] if full_after else []):  # --full-on: the run had --rounds rounds
        record, champion = one_round(
            hospital, client, number, number > args.rounds, champion, args.batch, args.worker_checks
        )
        records.append(record)
    return records


WORKER_CHECKS = """
from webapp import create_app
from webapp.training import jobs
app = create_app()
jobs.bind(app)
films = 0
with app.app_context():
    while warmed := jobs.warm_next_round():
        films += warmed
print("readied", films)
"""


def worker_checks(env: dict) -> tuple[float, int]:
    """The worker's quiet checks until the next round's films are all readied: (seconds, films)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WORKER_CHECKS], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the worker's checks failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, int(done.stdout.split()[-1])


def one_round(
    hospital: Hospital, client, number: int, full: bool, champion: Champion, batch: int, checks: bool = False
):
    """The doctor labels a batch through the API (none before the full fine-tune), `medal train`
    (--full), the gate, the engineer's decision; the record and the champion after it."""
    from webapp.extensions import db
    from webapp.models import Image

    truth_b, truth_a = hospital.truth_new, hospital.truth_site_a
    truth_of, headers, seed = hospital.truth_of, hospital.headers, hospital.seed
    served_b = 0
    label_started = time.perf_counter()
    for _ in range(0 if full else batch):
        served = client.get("/api/v1/review/next", headers=headers["doctor"]).get_json()
        if served.get("image") is None:
            break
        image_id = served["image"]["id"]
        with hospital.app.app_context():
            image = db.session.get(Image, image_id)
            assert image is not None, image_id
            truth = truth_of.get(image.sha256) or image.reference_label
            served_b += image.sha256 in truth_of
        if truth is None:  # a site A pool film: its label is the dataset's, by its bytes
            truth = _site_a_label(image.sha256)
        answer = client.post(
            f"/api/v1/images/{image_id}/labels",
            headers=headers["doctor"],
            json={"label": truth, "prediction_id": served["prediction"]["id"]},
        )
        assert answer.status_code == 201, answer.get_json()
        hospital.labels += 1
    label_seconds = time.perf_counter() - label_started
    readied = worker_checks(hospital.env) if checks and not full else None
    train_seconds, out = medal(hospital.env, "train", *(["--full"] if full else []))
    models = client.get("/api/v1/models", headers=headers["engineer"]).get_json()
    candidate = models["aliases"].get("candidate")
    if candidate is None:
        raise SystemExit(f"round {number} left no candidate:\n{out[-3000:]}")
    report = client.get(f"/api/v1/models/{candidate}/gate", headers=headers["engineer"]).get_json()
    passed = bool(report.get("passed"))
    scored = hospital.scores(candidate)
    patients_b = [f["patient"] for f in hospital.parts["held_out"]]
    patients_a = [f["patient"] for f in hospital.site_a_gold]
    record = {
        "seed": seed,
        "round": number,
        "kind": "full" if full else "round",
        "labels": hospital.labels,
        "served_new": served_b,
        "candidate": candidate,
        "champion_before": champion.version,
        "gate_passed": passed,
        "gate_verdict": report.get("verdict"),
        "gate_better": report.get("better"),
        "gate_failures": report.get("failures", []),
        "seconds": {"labeling": round(label_seconds, 1), "train_and_gate": round(train_seconds, 1)},
        "readied_between": None if readied is None else {"seconds": round(readied[0], 1), "films": readied[1]},
        "candidate_new": summary(truth_b, scored.new, CLASSES),
        "candidate_site_a": summary(truth_a, scored.site_a, CLASSES),
        "vs_champion_new": paired(truth_b, scored.new, champion.new, CLASSES, patients_b),
        "vs_champion_site_a": paired(truth_a, scored.site_a, champion.site_a, CLASSES, patients_a),
    }
    difference = record["vs_champion_new"]["accuracy"]["difference"]
    record["better_by_interval"] = difference["low"] is not None and difference["low"] > 0
    record["worse_by_interval"] = difference["high"] is not None and difference["high"] < 0
    decision = "approve" if passed else "reject"
    reason = "the gate passed" if passed else "the gate failed"
    answer = client.post(
        f"/api/v1/models/{candidate}/{decision}",
        headers=headers["engineer"],
        json={"reason": reason, "override": False},
    )
    assert answer.status_code == 200, answer.get_json()
    if passed:
        champion = scored
        record["seconds"]["rescore"] = round(medal(hospital.env, "score")[0], 1)
    record["champion_after"] = champion.version
    record["champion_new"] = summary(truth_b, champion.new, CLASSES)
    record["champion_site_a"] = summary(truth_a, champion.site_a, CLASSES)
    was = record["vs_champion_new"]["accuracy"]["champion"]["value"]
    print(
        f"[seed {seed}] {'full fine-tune' if full else 'round'} {number}: {hospital.labels} labels ({served_b} new), "
        f"train+gate {train_seconds:.0f} s, gate {'passed' if passed else 'failed'}; new films accuracy "
        f"{record['candidate_new']['accuracy']:.3f} (champion {was:.3f}), viral recall "
        f"{record['candidate_new']['recall'].get('viral_pneumonia', 0):.2f}, "
        f"site A {record['candidate_site_a']['accuracy']:.3f}; better by interval {record['better_by_interval']}, "
        f"worse {record['worse_by_interval']}" + "".join(f"\n  gate: {why}" for why in record["gate_failures"]),
        flush=True,
    )
    return record, champion


def films_written(home: Path) -> dict[str, list[dict]]:
    """The new films a run wrote under home/site-b, read back: {path, sha256, label, patient} per part."""
    patient_of = {row["filename"].rsplit(".", 1)[0]: row["patient_id"] for row in csv.DictReader(SPLIT.open())}
    parts: dict[str, list[dict]] = {}
    for part in ("gold", "pool", "held_out"):
        films = sorted((home / "site-b" / part).rglob("*.png"))
        parts[part] = [
            {
                "path": str(film),
                "sha256": hashlib.sha256(film.read_bytes()).hexdigest(),
                "label": film.parent.name,
                "patient": patient_of[f"{film.parent.name}/{film.stem}"],
            }
            for film in films
        ]
    return parts


_LABELS: dict[str, str] = {}


def _site_a_label(sha256: str) -> str | None:
    if not _LABELS:
        for path in DATA.rglob("*.jpeg"):
            _LABELS[hashlib.sha256(path.read_bytes()).hexdigest()] = path.parent.name
    return _LABELS.get(sha256)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["new-site", "new-class", "new-class-site"], default="new-site")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--strategy", help="the queue's strategy (default: config.yaml's), e.g. random, cold_start")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--site-a-pool", type=int, default=200, help="the demo's pool of site A films")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--full-after", action="store_true", help="after the rounds, run `medal train --full` and judge it the same way"
    )
    parser.add_argument("--full-on", type=Path, help="only the full fine-tune, on the MEDAL_HOME a finished run left")
    parser.add_argument(
        "--worker-checks", action="store_true", help="the worker's quiet checks ready the round's films before it"
    )
    args = parser.parse_args()
    suffix = f"-{args.strategy}" if args.strategy else ""
    args.out = args.out or ROOT / f"docs/benchmarks/loop-{args.scenario}{suffix}.json"
    records: list[dict] = []
    for seed in (int(s) for s in args.seeds.split(",")):
        records += run_seed(seed, args)
        args.out.write_text(json.dumps({"settings": vars(args), "records": records}, indent=1, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
