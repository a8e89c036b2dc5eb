"""Growing the head for a new class keeps what the model learnt for the old ones."""

import numpy as np
import torch

from learning.model import ModelSpec, XrayNet, adapt_head
from learning.predict import align_probabilities


def _net(names):
    torch.manual_seed(0)
    return XrayNet(ModelSpec("small_cnn", names, 32), pretrained=False).eval()


def test_old_class_logits_are_unchanged_before_fine_tuning():
    net = _net(["normal", "bacterial", "viral"])
    grown = adapt_head(net, ["normal", "bacterial", "viral", "covid_19"])
    x = torch.rand(6, 1, 32, 32)
    with torch.no_grad():
        before, after = net(x), grown(x)
    assert after.shape == (6, 4) and grown.spec.class_names[-1] == "covid_19"
    assert torch.allclose(before, after[:, :3], rtol=0, atol=1e-6)  # same rows: only float rounding
    assert (after[:, 3] <= after[:, :3].min(dim=1).values + 1e-6).all()  # the new class starts unlikely
    assert torch.equal(before.argmax(1), after.argmax(1))


def test_a_renamed_class_keeps_its_row_and_a_removed_one_is_dropped():
    net = _net(["normal", "pneumonia", "other"])
    grown = adapt_head(net, ["pneumonia_any", "normal"], renamed={"pneumonia": "pneumonia_any"})
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        before, after = net(x), grown(x)
    assert torch.allclose(after[:, 0], before[:, 1], atol=1e-6) and torch.allclose(after[:, 1], before[:, 0], atol=1e-6)


def test_probabilities_of_an_older_model_are_aligned_to_the_current_classes():
    probabilities = np.array([[0.7, 0.3], [0.2, 0.8]])
    aligned = align_probabilities(probabilities, ["normal", "pneumonia"], ["normal", "pneumonia", "covid_19"])
    assert aligned.tolist() == [[0.7, 0.3, 0.0], [0.2, 0.8, 0.0]]
