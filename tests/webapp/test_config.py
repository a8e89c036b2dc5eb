"""Settings: config.yaml plus MEDAL_* overrides, validated once; a typo stops start-up with a message."""

import pytest

from webapp.config import DEFAULT_CONFIG, SettingsError, load_settings


def _load(tmp_path, **environ):
    return load_settings(DEFAULT_CONFIG, {"MEDAL_HOME": str(tmp_path), **environ})


def test_the_shipped_config_is_valid_and_typed(tmp_path):
    settings = _load(tmp_path)
    assert isinstance(settings.images.size, int) and isinstance(settings.gate.max_drop["accuracy"], float)
    assert settings.gate.policy.auto_promote.enabled is False
    assert settings.home == str(tmp_path)


def test_environment_overrides_are_parsed_as_yaml(tmp_path):
    settings = _load(tmp_path, MEDAL_TRAINING__MAX_EPOCHS="3", MEDAL_GATE__AUTO_PROMOTE__ENABLED="true")
    assert settings.training.max_epochs == 3 and settings.gate.policy.auto_promote.enabled is True
    assert _load(tmp_path).training.devices == 1  # one process unless asked
    assert _load(tmp_path, MEDAL_TRAINING__DEVICES="2").training.devices == 2
    assert _load(tmp_path, MEDAL_TRAINING__DEVICES="auto").training.devices == "auto"


@pytest.mark.parametrize(
    "environ, words",
    [
        ({"MEDAL_TRAINING__MAX_EPOCS": "3"}, ["training.max_epocs", "unknown setting"]),
        ({"MEDAL_TRAINING__MAX_EPOCHS": "three"}, ["training.max_epochs", "'three'", "integer"]),
        ({"MEDAL_ACTIVE_LEARNING__STRATEGY": "smartest"}, ["active_learning", "smartest", "least_confidence"]),
        ({"MEDAL_MODEL__BACKBONE": "vgg"}, ["model.backbone", "'vgg'", "efficientnet_lite0"]),
        ({"MEDAL_GATE__MIN_SENSITIVITY": "{normal: high}"}, ["gate.min_sensitivity.normal", "'high'", "number"]),
        ({"MEDAL_CLASSES": "[normal, normal]"}, ["classes must be distinct"]),
        ({"MEDAL_ACTIVE_LEARNING__RANDOM_SHARE": "1.5"}, ["active_learning.random_share", "1.5", "less than or equal"]),
        ({"MEDAL_TRAINING__DEVICES": "0"}, ["training.devices", "greater than 0", "'auto'"]),
    ],
)
def test_a_bad_key_or_value_names_the_key_the_value_and_what_is_allowed(tmp_path, environ, words):
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, **environ)
    for word in words:
        assert word in str(caught.value)


def test_medal_refuses_to_start_on_bad_settings(tmp_path, monkeypatch):
    import subprocess
    import sys

    environ = {"MEDAL_HOME": str(tmp_path), "MEDAL_SCHEDULER__CHECK_SECONDS": "often", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "webapp.cli", "score"], capture_output=True, text=True, env=environ, timeout=120
    )
    assert done.returncode != 0
    assert "scheduler.check_seconds" in done.stderr and "'often'" in done.stderr


def test_the_gate_policy_comes_from_the_settings_with_auto_promotion_inside(tmp_path):
    from registry.gate import AutoPromotion, GatePolicy

    settings = _load(
        tmp_path,
        MEDAL_CLASSES="[normal, pneumonia]",
        MEDAL_GATE__MIN_GOLD_SIZE="5",
        MEDAL_GATE__MIN_SENSITIVITY="{normal: 0.7}",
        MEDAL_GATE__MAX_DROP="{accuracy: 0.1}",
        MEDAL_GATE__AUTO_PROMOTE="{enabled: true, min_margin: 0.02, min_agreement: 0.8}",
    )
    gate = settings.gate
    assert settings.gate.policy == GatePolicy(
        5, {"normal": 0.7}, {"accuracy": 0.1}, AutoPromotion(True, 0.02, 0.8), gate.min_class_gold, gate.min_site_gold
    )
