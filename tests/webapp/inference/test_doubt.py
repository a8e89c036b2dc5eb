"""A prediction reads "uncertain between X and Y" when its top two classes are close or its top is low."""

import pytest

from webapp.config import DoubtSettings
from webapp.inference.doubt import read

RULE = DoubtSettings(margin=0.10, below=0.50)


def test_close_top_two_read_as_doubt_between_them():
    call = read({"normal": 0.31, "bacterial_pneumonia": 0.33, "viral_pneumonia": 0.36}, RULE)
    assert call.uncertain and call.between == ("viral_pneumonia", "bacterial_pneumonia")


def test_a_low_top_reads_as_doubt_even_when_the_runner_up_is_far():
    call = read({"a": 0.45, "b": 0.20, "c": 0.18, "d": 0.17}, RULE)
    assert call.between == ("a", "b")


@pytest.mark.parametrize(("top", "second"), [(0.80, 0.15), (0.55, 0.44)])
def test_a_clear_call_names_one_class(top, second):
    call = read({"normal": 1 - top - second, "bacterial_pneumonia": top, "viral_pneumonia": second}, RULE)
    assert (call.top, call.uncertain, call.between) == ("bacterial_pneumonia", False, None)


def test_no_probabilities_is_an_error():
    with pytest.raises(ValueError):
        read({}, RULE)


def test_the_call_reads_in_display_names():
    def shown(name: str) -> str:
        return {"viral_pneumonia": "Viral pneumonia", "bacterial_pneumonia": "Bacterial pneumonia"}.get(name, name)

    doubtful = read({"normal": 0.31, "bacterial_pneumonia": 0.33, "viral_pneumonia": 0.36}, RULE)
    assert doubtful.words(shown) == "Uncertain between Viral pneumonia and Bacterial pneumonia"
    assert read({"viral_pneumonia": 0.9, "normal": 0.1}, RULE).words(shown) == "Viral pneumonia"
