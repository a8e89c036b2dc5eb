"""The `medal` command line: users, tokens, import, train, score."""

from pathlib import Path

import numpy as np
import pytest

from tests import synthetic
from webapp.extensions import db
from webapp.models import ApiToken, Image, User


def test_users_create_with_role(runner):
    result = runner.invoke(args=["users", "create", "carla", "--role", "doctor", "--password", "s3cret-pass"])
    assert result.exit_code == 0, result.output
    user = db.session.execute(db.select(User).filter_by(username="carla")).scalar_one()
    assert user.role == "doctor" and user.check_password("s3cret-pass")
    again = runner.invoke(args=["users", "create", "carla", "--role", "doctor", "--password", "s3cret-pass"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_tokens_create_prints_token_last_and_stores_only_a_hash(runner, client):
    result = runner.invoke(args=["tokens", "create", "doctor"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("medal_")
    assert db.session.execute(db.select(ApiToken).filter_by(token_hash=token)).first() is None
    assert db.session.execute(db.select(ApiToken).filter_by(token_hash=ApiToken.hash(token))).first()
    assert runner.invoke(args=["tokens", "create", "nobody"]).exit_code != 0


def test_import_image_folder_npz_and_dicom(runner, tmp_path):
    folder = tmp_path / "folder"
    for name, label in [("normal", 0), ("pneumonia", 1)]:
        (folder / name).mkdir(parents=True)
        for i in range(3):
            (folder / name / f"{i}.png").write_bytes(
                synthetic.png_bytes(synthetic.radiograph(label, seed=i + 10 * label))
            )
    (folder / "normal" / "broken.png").write_bytes(b"broken")
    result = runner.invoke(args=["import", str(folder), "--split", "train"])
    assert result.exit_code == 0, result.output
    assert "6 imported" in result.output and "1 rejected" in result.output

    images, labels = synthetic.dataset(5, size=28, seed=3)
    npz = tmp_path / "data.npz"
    np.savez(npz, train_images=np.stack(images), train_labels=np.array(labels).reshape(-1, 1))
    result = runner.invoke(args=["import", str(npz), "--split", "pool"])
    assert "5 imported" in result.output

    dicoms = tmp_path / "dicom"
    dicoms.mkdir()
    for i in range(2):
        (dicoms / f"IM{i}").write_bytes(synthetic.dicom_bytes(synthetic.radiograph(1, seed=40 + i)))
    result = runner.invoke(args=["import", str(dicoms), "--format", "dicom"])
    assert "2 imported" in result.output
    train = db.session.execute(db.select(Image).filter_by(split="train")).scalars().all()
    assert sorted({i.reference_label for i in train}) == ["normal", "pneumonia"]
    pool = db.session.execute(db.select(Image).filter_by(split="pool")).scalars().all()
    assert len(pool) == 7 and all(i.reference_label is None for i in pool)


def test_import_refuses_unknown_class_folders(runner, tmp_path):
    (tmp_path / "cancer").mkdir()
    (tmp_path / "cancer" / "a.png").write_bytes(synthetic.png_bytes(synthetic.radiograph(0)))
    result = runner.invoke(args=["import", str(tmp_path), "--split", "train"])
    assert result.exit_code != 0 and "cancer" in result.output


def test_train_then_score(runner, app):
    from tests.conftest import seed_labeled, seed_pool

    seed_labeled(30)
    seed_pool(6)
    result = runner.invoke(args=["train"])
    assert result.exit_code == 0, result.output
    assert "model version 1" in result.output
    result = runner.invoke(args=["score"])
    assert result.exit_code == 0, result.output
    assert "Scored 6 pool images with version 1" in result.output


def test_train_with_too_few_labels_fails_clearly(runner):
    result = runner.invoke(args=["train"])
    assert result.exit_code != 0 and "at least 10" in result.output


def test_import_with_a_manifest_keeps_patients_as_pseudonyms(runner, tmp_path, monkeypatch):
    folder = tmp_path / "site-b"
    rows = ["filename,label,patient_id"]
    for index, (label, patient) in enumerate([(0, "MRN-0001"), (0, "MRN-0001"), (1, "MRN-0002"), (1, "")]):
        name = ["normal", "pneumonia"][label]
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / f"{index}.png").write_bytes(synthetic.png_bytes(synthetic.radiograph(label, seed=40 + index)))
        rows.append(f"{name}/{index}.png,{name},{patient}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    result = runner.invoke(args=["import", str(folder), "--split", "train", "--site", "site-b"])
    assert result.exit_code == 0, result.output
    assert "4 imported" in result.output
    images = db.session.execute(db.select(Image).order_by(Image.id)).scalars().all()
    keys = [image.patient_key for image in images]
    assert keys[0] == keys[1] and keys[0] != keys[2] and keys[3] is None  # no id: its own patient
    assert all(image.site == "site-b" for image in images)
    stored = " ".join(str(vars(image)) for image in images)
    assert "MRN-0001" not in stored and "MRN-0002" not in stored
    from webapp import labelstore

    groups = {
        e.image_id: e.group
        for e in labelstore.imported_examples(runner.app.extensions["medal"].store, ["normal", "pneumonia"])
    }
    assert groups[images[0].id] == groups[images[1].id] != groups[images[2].id]
    assert groups[images[3].id] == f"image:{images[3].id}"


def test_pseudonyms_are_stable_and_depend_on_the_key(app, monkeypatch):
    from webapp.upload.pseudonyms import pseudonym

    first = pseudonym("MRN-0001")
    assert pseudonym("MRN-0001") == first and pseudonym("MRN-0002") != first and "0001" not in first
    monkeypatch.setenv("MEDAL_PSEUDONYM_KEY", "another-installation")
    assert pseudonym("MRN-0001") != first


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_each_web_instance_gets_a_control_socket_of_its_own_under_medal_home(app):
    from gunicorn.config import Config

    from webapp.cli import gunicorn_options

    home = Path(app.config["MEDAL_HOME"])
    options = {port: gunicorn_options("127.0.0.1", port, 2, home, 75) for port in (8001, 8002)}
    for port, settings in options.items():
        config = Config()
        for key, value in settings.items():
            config.set(key, value)  # gunicorn's own names: a misspelt one raises here
        assert config.control_socket == str(home / "run" / f"gunicorn-{port}.ctl")
        assert not config.control_socket_disable


@pytest.mark.slow
def test_two_web_instances_on_one_host_each_keep_their_own_control_socket(app, home, tmp_path):
    """Issue 19: two gunicorn instances shared ~/.gunicorn/gunicorn.ctl, and the second took it over
    (the documented medal-web@PORT units run several on one host)."""
    import os
    import subprocess
    import sys
    import time

    from gunicorn.ctl.client import ControlClient

    user_home = tmp_path / "user"  # gunicorn's default place for the socket, watched here
    env = {**os.environ, "HOME": str(user_home)}
    env.pop("XDG_RUNTIME_DIR", None)
    medal = Path(sys.executable).with_name("medal")
    ports = [_free_port(), _free_port()]
    sockets = {port: home / "run" / f"gunicorn-{port}.ctl" for port in ports}
    logs = [(tmp_path / f"web-{port}.log").open("wb") for port in ports]
    processes = [
        subprocess.Popen(
            [str(medal), "web", "--port", str(port), "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        for port, log in zip(ports, logs)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all(path.is_socket() for path in sockets.values()):
            if time.monotonic() > deadline or any(process.poll() is not None for process in processes):
                raise AssertionError(" | ".join((tmp_path / f"web-{port}.log").read_text()[-800:] for port in ports))
            time.sleep(0.2)
        for port, path in sockets.items():
            with ControlClient(str(path), timeout=10) as control:
                listeners = [entry["address"] for entry in control.send_command("show listeners")["listeners"]]
            assert listeners == [f"http://127.0.0.1:{port}"]  # this instance's socket answers for this instance
        assert not (user_home / ".gunicorn").exists()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=120)  # gunicorn's graceful stop, as systemd asks for it
        for log in logs:
            log.close()
    assert not any(path.exists() for path in sockets.values())  # each removed its own on the way out
