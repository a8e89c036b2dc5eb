"""What a run trains: a round once there is a champion, the full fine-tune on request or when a
round cannot cut the network; either way with its operating point."""

import pytest

from tests.conftest import change_settings
from webapp.training import runs


def test_a_run_with_a_champion_is_a_round_and_ships_its_operating_point(trained_app):
    first = runs.run(runs.enqueue("test"))
    assert first.status == "succeeded", first.error
    assert first.kind == "round" and first.metrics["kind"] == "round"
    point = first.metrics["operating_point"]
    assert len(point["offsets"]) == 2 and set(point["sensitivity_after"]) <= {"normal", "pneumonia"}
    full = runs.run(runs.enqueue("cli", kind="full"))
    assert full.status == "succeeded", full.error
    assert full.kind == "full" and full.metrics["kind"] == "full"
    assert full.parent_version == first.parent_version  # no promotion in between: the same champion


def test_a_cut_that_does_not_fit_the_backbone_runs_in_full(trained_app):
    change_settings(trained_app, {"training": {"round": {"frozen_blocks": 99}}})
    run = runs.run(runs.enqueue("test"))
    assert run.status == "succeeded", run.error
    assert run.kind == "round" and run.metrics["kind"] == "full"


def test_pruning_keeps_the_activations_of_aliased_trunks_only(trained_app):
    import numpy as np

    from learning.trunk import split
    from webapp.services import services
    from webapp.training import recipe

    settings, registry = services().settings, services().registry
    first = runs.run(runs.enqueue("test"))  # a round: the champion's trunk activations are stored
    assert first.status == "succeeded", first.error
    store = recipe.activation_store(settings)
    champion = registry.load(registry.aliases()["champion"])
    kept = split(champion, settings.training.round.frozen_blocks).key()
    assert [k for k in store.keys()] == [kept[:32]]
    stale = "f" * 64  # a trunk no aliased version has any more (e.g. before a full fine-tune)
    store.put(stale, "ab" * 32, np.zeros((2, 2, 2), dtype=np.float32))
    assert recipe.prune_activations(settings, registry) == 1
    assert store.keys() == [kept[:32]] and store.size_bytes(kept) > 0
    assert recipe.prune_activations(settings, registry) == 0


@pytest.mark.slow
def test_a_full_fine_tune_on_two_processes_is_registered_like_one(trained_app):
    """The worker's and `medal train --full`'s path with training.devices: 2 on the CPU (gloo, DDP)."""
    from webapp.services import services

    change_settings(trained_app, {"training": {"devices": 2, "accelerator": "cpu"}})
    full = runs.run(runs.enqueue("cli", kind="full"))
    assert full.status == "succeeded", full.error
    assert full.metrics["kind"] == "full" and "operating_point" in full.metrics
    registry = services().registry
    params = registry.client.get_run(full.mlflow_run_id).data.params
    assert params["world_size"] == "2" and params["cfg_devices"] == "2"
    assert registry.load(full.model_version).spec.class_names == ["normal", "pneumonia"]


def test_between_rounds_the_worker_readies_the_next_rounds_activations(trained_app):
    """A few films per quiet check, the round's films and then the gold films, until all are
    stored: the round that follows computes none, and the gate reads the gold films' too."""
    from learning.trunk import content_hash, split
    from tests.conftest import seed_gold
    from webapp import labelstore
    from webapp.services import services
    from webapp.training import jobs, recipe

    seed_gold(6)
    change_settings(trained_app, {"training": {"round": {"warm_per_check": 7}}})
    settings, registry = services().settings, services().registry
    examples, _ = runs.training_set(settings)
    gold = labelstore.gold_examples(services().store)
    films = {content_hash(example.path) for example in (*examples, *gold)}
    assert len(films) > 7 * 2  # so that the checks below take several passes

    jobs.bind(trained_app)
    assert jobs.tick() == {"warmed": 7}  # a quiet check: nothing to train or score
    counts = [7]
    while warmed := jobs.warm_next_round():
        counts.append(warmed)
    assert counts[:-1] == [7] * (len(counts) - 1) and sum(counts) == len(films)

    champion = registry.load(registry.aliases()["champion"])
    key = split(champion, settings.training.round.frozen_blocks).key()
    store = recipe.activation_store(settings)
    assert all(store.has(key, digest) for digest in films)
    run = runs.run(runs.enqueue("test"))
    assert run.status == "succeeded", run.error
    params = registry.client.get_run(run.mlflow_run_id).data.params
    assert params["kind"] == "round" and params["activations_computed"] == "0"


def test_nothing_is_readied_without_a_champion(app):
    from tests.conftest import seed_labeled
    from webapp.training import jobs

    seed_labeled(12)
    assert jobs.warm_next_round() == 0  # the first run is a full fine-tune: there is no trunk to store for


def test_nothing_is_readied_when_switched_off(trained_app):
    from webapp.training import jobs

    change_settings(trained_app, {"training": {"round": {"warm_per_check": 0}}})
    assert jobs.warm_next_round() == 0
    change_settings(trained_app, {"training": {"round": {"warm_per_check": 3}}})
    assert jobs.warm_next_round() == 3  # the same app has films to ready once it is on


def test_a_film_gone_from_disk_leaves_the_quiet_check_standing(trained_app, caplog):
    """The round will name the missing film; readying only warns, and the check does its other work."""
    import os

    from webapp.services import services
    from webapp.training import jobs

    examples, _ = runs.training_set(services().settings)
    os.unlink(examples[0].path)
    jobs.bind(trained_app)
    assert jobs.tick() == {}
    assert "could not compute the next round's trunk activations" in caplog.text
