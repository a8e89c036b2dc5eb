"""Patient-grouped splits never leak a patient into two parts."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learning.data import LabeledImage, patient_split
from learning.train import split_validation


@settings(max_examples=200, deadline=None)
@given(
    groups=st.lists(st.integers(0, 30), min_size=1, max_size=120),
    labels=st.data(),
    shares=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4).filter(lambda s: sum(s) > 0.01),
    seed=st.integers(0, 2**31 - 1),
    stratified=st.booleans(),
)
def test_no_patient_in_two_parts_and_every_image_in_exactly_one(groups, labels, shares, seed, stratified):
    names = [f"part{i}" for i in range(len(shares))]
    stratify = (
        labels.draw(st.lists(st.sampled_from("abc"), min_size=len(groups), max_size=len(groups)))
        if stratified
        else None
    )
    parts = patient_split([f"p{g}" for g in groups], dict(zip(names, shares)), seed, stratify)
    assert set(parts) == set(names)
    every = [index for indices in parts.values() for index in indices]
    assert sorted(every) == list(range(len(groups)))  # each index exactly once
    owner = {}
    for name, indices in parts.items():
        for index in indices:
            assert owner.setdefault(groups[index], name) == name  # a patient stays in one part
    for name, share in zip(names, shares):
        if share == 0:
            assert parts[name] == []


def test_split_is_deterministic_and_near_its_fractions_and_stratified():
    groups = [f"p{i // 2}" for i in range(2000)]  # two images per patient
    labels = ["normal" if (i // 2) % 4 == 0 else "pneumonia" for i in range(2000)]
    fractions = {"train": 0.7, "val": 0.1, "test": 0.2}
    parts = patient_split(groups, fractions, seed=3, stratify=labels)
    assert parts == patient_split(groups, fractions, seed=3, stratify=labels)
    assert parts != patient_split(groups, fractions, seed=4, stratify=labels)
    for name, share in fractions.items():
        assert abs(len(parts[name]) / 2000 - share) < 0.01
        counts = Counter(labels[i] for i in parts[name])
        assert abs(counts["normal"] / len(parts[name]) - 0.25) < 0.02


def test_a_rare_class_reaches_training_first():
    groups = [f"p{i}" for i in range(105)]
    labels = ["common"] * 100 + ["rare"] * 5
    parts = patient_split(groups, {"train": 0.85, "val": 0.15}, seed=0, stratify=labels)
    rare_train = sum(labels[i] == "rare" for i in parts["train"])
    assert rare_train == 4 and len(parts["val"]) == 16


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError):
        patient_split(["a"], {"train": 0.0}, 0)
    with pytest.raises(ValueError):
        patient_split(["a"], {"train": -1.0, "val": 2.0}, 0)
    with pytest.raises(ValueError):
        patient_split(["a", "b"], {"train": 1.0}, 0, stratify=["x"])


def test_fine_tune_validation_split_is_by_patient_when_ids_are_given():
    items = [LabeledImage(f"{i}.png", i % 3, f"patient{i // 4}") for i in range(120)]
    items.append(LabeledImage("lonely.png", 0))  # no id: its own patient
    train, val = split_validation(items, 0.2, seed=1)
    assert len(train) + len(val) == len(items) and val
    assert not {i.group for i in train} & {i.group for i in val}
    assert {i.class_index for i in val} == {0, 1, 2}


def test_without_patient_ids_the_split_stays_stratified_by_image():
    items = [LabeledImage(f"{i}.png", i % 2) for i in range(40)]
    train, val = split_validation(items, 0.25, seed=0)
    assert len(val) == 10 and Counter(i.class_index for i in val) == {0: 5, 1: 5}


def test_the_validation_split_holds_each_sites_classes():
    # 200 replayed films of site A and a new site's first 12: validation must hold both of the
    # new site's classes, or a round would choose its epoch on the old site alone
    items = [LabeledImage(f"a{i}.png", i % 2, f"a-patient{i}", site="a") for i in range(200)]
    items += [LabeledImage(f"b{i}.png", i % 2, f"b-patient{i}", site="b") for i in range(12)]
    train, val = split_validation(items, 0.15, seed=3)
    assert len(train) + len(val) == len(items)
    new_site = Counter(item.class_index for item in val if item.site == "b")
    assert new_site[0] >= 1 and new_site[1] >= 1
    assert Counter(item.class_index for item in train if item.site == "b") == {0: 6 - new_site[0], 1: 6 - new_site[1]}
