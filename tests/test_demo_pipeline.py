"""The demo end to end on the real radiographs in the repo and the shipped first model (slow)."""

import csv
import io

import pytest
from PIL import Image

from tests.conftest import api_token
from webapp.config import ROOT
from webapp.extensions import db
from webapp.models import GoldItem, QueryScore
from webapp.models import Image as ImageRow

pytestmark = pytest.mark.slow
DEMO = {
    "MEDAL_CLASSES": "[normal, bacterial_pneumonia, viral_pneumonia]",
    "MEDAL_GATE__MIN_SENSITIVITY": "{normal: 0.5}",
    "MEDAL_MODEL__BACKBONE": "efficientnet_lite0",
    "MEDAL_IMAGES__SIZE": "224",
    "MEDAL_DEMO__TRAIN_IMAGES": "120",
    "MEDAL_DEMO__POOL_IMAGES": "40",
    "MEDAL_DEMO__GOLD_IMAGES": "30",
}


@pytest.fixture
def demo_env(home, monkeypatch):
    for key, value in DEMO.items():
        monkeypatch.setenv(key, value)


def test_demo_registers_the_shipped_model_on_unseen_patients_and_serves(demo_env, app, runner, client):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    registry = app.extensions["medal"].registry
    assert registry.aliases() == {"champion": 1}
    info = registry.versions()[0]
    assert info.tags["source"] == "shipped"
    gold = db.session.execute(db.select(db.func.count()).select_from(GoldItem)).scalar_one()
    assert gold >= 30  # whole patients: a few more than asked
    assert (
        db.session.execute(db.select(db.func.count(QueryScore.id)).filter_by(strategy="least_confidence")).scalar_one()
        >= 40
    )

    # the pool and the gold set are patients the first model never trained on
    with (ROOT / "models/kermany-split.csv").open() as handle:
        split = list(csv.DictReader(handle))
    trained_patients = {row["patient_id"] for row in split if row["part"] in ("train", "val")}
    tested = {row["filename"]: row["patient_id"] for row in split if row["part"] == "test"}
    assert not trained_patients & set(tested.values())
    keys = {
        image.patient_key for image in db.session.execute(db.select(ImageRow).where(ImageRow.split == "pool")).scalars()
    }
    train_keys = {
        image.patient_key
        for image in db.session.execute(db.select(ImageRow).where(ImageRow.split == "train")).scalars()
    }
    assert keys and not keys & train_keys

    # a real radiograph of an unseen patient that the demo did not import, non-square, through the API
    imported = {image.sha256 for image in db.session.execute(db.select(ImageRow)).scalars()}
    import hashlib

    name = next(
        n
        for n in sorted(tested)
        if hashlib.sha256((ROOT / "data/kermany_cxr_train" / n).read_bytes()).hexdigest() not in imported
    )
    wide = Image.open(ROOT / "data/kermany_cxr_train" / name).convert("L").resize((320, 224))
    buffer = io.BytesIO()
    wide.save(buffer, format="PNG")
    response = client.post(
        "/api/v1/images",
        headers=api_token(app, "doctor"),
        data={"file": (io.BytesIO(buffer.getvalue()), "real.png"), "site": "ward-3"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    prediction = response.get_json()["prediction"]
    assert prediction["model_version"] == 1
    assert set(prediction["probabilities"]) == {"normal", "bacterial_pneumonia", "viral_pneumonia"}
