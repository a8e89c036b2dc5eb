"""The image + clinical data model where a lab value (CRP) carries the signal the image cannot."""

import numpy as np

from learning import fusion
from learning.metrics import evaluate

CLASSES = ["normal", "bacterial", "viral"]
FIELDS = ["temperature_c", "crp_mg_l", "spo2_pct"]


def studies(n: int, seed: int) -> tuple[fusion.FusionInputs, np.ndarray]:
    """Normal films look normal to the image model; bacterial and viral look alike (0.5/0.5 give or
    take noise) while CRP separates them (high in bacterial). Some values are missing."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    image = np.empty((n, 3))
    for row, label in enumerate(y):
        if label == 0:
            image[row] = [0.8, 0.1, 0.1]
        else:
            split = rng.uniform(0.3, 0.7)
            image[row] = [0.1, 0.9 * split, 0.9 * (1 - split)]
    crp = np.where(y == 1, rng.normal(150, 40, n), np.where(y == 2, rng.normal(20, 10, n), rng.normal(5, 3, n)))
    temperature = rng.normal(38.0, 0.8, n)  # no signal
    spo2 = rng.normal(94, 3, n)  # no signal
    clinical = np.column_stack([temperature, np.clip(crp, 0, 500), spo2])
    clinical[rng.random((n, 3)) < 0.15] = np.nan
    return fusion.FusionInputs(image, clinical), y


def test_fusion_beats_image_only_on_held_out_studies():
    train, y_train = studies(200, seed=1)
    test, y_test = studies(150, seed=2)
    model = fusion.fit(train, y_train, CLASSES, FIELDS)
    fused = evaluate(y_test, model.predict_proba(test), CLASSES)
    image_only = evaluate(y_test, test.image_probabilities, CLASSES)
    assert image_only.accuracy < 0.75  # bacterial vs viral is a coin toss for the image
    assert fused.accuracy > 0.85
    assert fused.accuracy - image_only.accuracy > 0.15
    assert fused.per_class["bacterial"].sensitivity >= 0.7 and fused.per_class["viral"].sensitivity >= 0.7


def test_probabilities_cover_every_class_even_unseen_ones(tmp_path):
    train, y_train = studies(60, seed=3)
    keep = y_train != 2  # no viral study in training
    inputs = fusion.FusionInputs(train.image_probabilities[keep], train.clinical[keep])
    model = fusion.fit(inputs, y_train[keep], CLASSES, FIELDS)
    loaded = fusion.load(fusion.save(model, tmp_path / "m"))
    probabilities = loaded.predict_proba(train)
    assert probabilities.shape == (60, 3) and np.allclose(probabilities.sum(axis=1), 1.0)
    assert np.all(probabilities[:, 2] == 0.0)
    assert np.allclose(probabilities, model.predict_proba(train))


def test_from_rows_marks_missing_values_and_one_class_is_refused():
    inputs = fusion.FusionInputs.from_rows([{"normal": 0.7, "bacterial": 0.3}], [{"crp_mg_l": 12.0}], CLASSES, FIELDS)
    assert inputs.image_probabilities.tolist() == [[0.7, 0.3, 0.0]]
    assert np.isnan(inputs.clinical[0, 0]) and inputs.clinical[0, 1] == 12.0
    try:
        fusion.fit(inputs, np.array([0]), CLASSES, FIELDS)
    except ValueError as error:
        assert "two classes" in str(error)
    else:
        raise AssertionError("a single class was fitted")
