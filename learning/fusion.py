"""The image + clinical data model: a scikit-learn pipeline over the image model's class probabilities
and the numeric clinical fields (missing values imputed, with missing-value indicators)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    # scikit-learn and joblib load when a fusion model is fitted or read, not with every page that
    # imports this module (0.8 s of every `medal` command's start)
    from sklearn.pipeline import Pipeline

PIPELINE_FILE = "pipeline.joblib"
SPEC_FILE = "spec.json"


@dataclass(frozen=True)
class FusionInputs:
    """Rows of studies: the image model's probabilities (n, classes) and the clinical values
    (n, fields), NaN where a study lacks a value."""

    image_probabilities: np.ndarray
    clinical: np.ndarray

    @classmethod
    def from_rows(
        cls,
        probabilities: Sequence[Mapping[str, float]],
        clinical: Sequence[Mapping[str, float | None]],
        class_names: Sequence[str],
        fields: Sequence[str],
    ) -> FusionInputs:
        image = np.array(
            [[float(row.get(name, 0.0)) for name in class_names] for row in probabilities], dtype=np.float64
        )
        values = np.array([[_number(row.get(name)) for name in fields] for row in clinical], dtype=np.float64)
        return cls(image.reshape(len(probabilities), len(class_names)), values.reshape(len(clinical), len(fields)))

    def matrix(self) -> np.ndarray:
        return np.hstack([self.image_probabilities, self.clinical])


@dataclass
class FusionModel:
    """A fitted pipeline; `predict_proba` answers over every class of the image model, in its order
    (a class no training study carried gets probability 0)."""

    pipeline: Pipeline
    class_names: list[str]
    fields: list[str]

    def predict_proba(self, inputs: FusionInputs) -> np.ndarray:
        raw = self.pipeline.predict_proba(inputs.matrix())
        out = np.zeros((raw.shape[0], len(self.class_names)))
        for column, index in enumerate(self.pipeline.classes_):
            out[:, int(index)] = raw[:, column]
        return out

    def spec(self) -> dict:
        steps = [type(step).__name__ for _, step in self.pipeline.steps]
        return {"kind": "image+clinical", "class_names": self.class_names, "fields": self.fields, "steps": steps}


def fit(
    inputs: FusionInputs, y: np.ndarray, class_names: Sequence[str], fields: Sequence[str], seed: int = 0
) -> FusionModel:
    """Fit on doctor labels `y` (indices into class_names). Needs at least two distinct labels."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y, dtype=int)
    if len(np.unique(y)) < 2:
        raise ValueError("the image + clinical data model needs studies of at least two classes")
    pipeline = make_pipeline(
        # a missing lab value is itself informative (a test not ordered), hence the indicators
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000, C=1.0, random_state=seed),
    )
    pipeline.fit(inputs.matrix(), y)
    return FusionModel(pipeline, list(class_names), list(fields))


def save(model: FusionModel, directory: Path) -> Path:
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model.pipeline, directory / PIPELINE_FILE)
    (directory / SPEC_FILE).write_text(json.dumps(model.spec(), indent=1))
    return directory


def load(directory: Path) -> FusionModel:
    """A model saved by `save` (from this installation's own registry: joblib files are trusted code)."""
    import joblib

    spec = json.loads((directory / SPEC_FILE).read_text())
    return FusionModel(joblib.load(directory / PIPELINE_FILE), list(spec["class_names"]), list(spec["fields"]))


def _number(value: float | None) -> float:
    """A missing clinical value is NaN: the pipeline imputes it and marks it missing."""
    return np.nan if value is None else float(value)
