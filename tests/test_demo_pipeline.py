"""The demo pipeline end to end on a small slice of the real PneumoniaMNIST data (slow)."""
import io

import numpy as np
import pytest
from PIL import Image

from tests.conftest import api_token
from webapp.config import ROOT
from webapp.extensions import db
from webapp.models import GoldItem, QueryScore
from webapp.models import Image as ImageRow

pytestmark = pytest.mark.slow


@pytest.fixture
def demo_env(home, monkeypatch):
    for key, value in {"MEDAL_MODEL__BACKBONE": "efficientnet_lite0", "MEDAL_IMAGES__SIZE": "64",
                       "MEDAL_TRAINING__MAX_EPOCHS": "3", "MEDAL_TRAINING__AUGMENT": "true",
                       "MEDAL_DEMO__TRAIN_IMAGES": "240", "MEDAL_DEMO__POOL_IMAGES": "60",
                       "MEDAL_DEMO__GOLD_IMAGES": "30"}.items():
        monkeypatch.setenv(key, value)


def test_demo_loads_trains_registers_scores_and_serves(demo_env, app, runner, client):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    registry = app.extensions["medal"].registry
    assert registry.aliases() == {"champion": 1}
    assert db.session.execute(db.select(db.func.count()).select_from(GoldItem)).scalar_one() == 30
    assert db.session.execute(db.select(db.func.count(QueryScore.id)).filter_by(
        strategy="least_confidence")).scalar_one() >= 58  # pixel-identical duplicates are stored once
    assert db.session.execute(db.select(db.func.count(ImageRow.id)).filter_by(split="train")).scalar_one() == 240

    # a real test-split image, never imported, through the API
    with np.load(ROOT / "data/pneumoniamnist/pneumoniamnist_varun19424.npz") as data:
        image = data["test_images"][0]
    buffer = io.BytesIO()
    Image.fromarray(image).resize((256, 256)).save(buffer, format="PNG")
    response = client.post("/api/v1/images", headers=api_token(app, "doctor"),
                           data={"file": (io.BytesIO(buffer.getvalue()), "real.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 201
    prediction = response.get_json()["prediction"]
    assert prediction["model_version"] == 1
    assert set(prediction["probabilities"]) == {"normal", "pneumonia"}
