"""The shipped model's training manifest, as `medal demo` registers it: by content where the film is
in the demo's data, by name only where a subset of the data set lacks it (the chat then says it
cannot tell, rather than "not trained on")."""

import hashlib

from webapp.cli.demo import _by_content


def test_a_film_present_is_listed_by_content_and_a_missing_one_by_name(tmp_path):
    (tmp_path / "normal").mkdir()
    (tmp_path / "normal" / "a.jpeg").write_bytes(b"film a")
    assert _by_content(tmp_path, "normal/a.jpeg") == {
        "filename": "normal/a.jpeg",
        "sha256": hashlib.sha256(b"film a").hexdigest(),
    }
    assert _by_content(tmp_path, "viral_pneumonia/b.jpeg") == {"filename": "viral_pneumonia/b.jpeg"}
