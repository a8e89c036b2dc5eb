"""The machine learning core: data, models, training, prediction, strategies, explanations."""
