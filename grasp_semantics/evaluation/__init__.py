"""Evaluation: contact, part and grasp metrics of a model and its baselines on synthetic
scenes, scene-question scores, and pictures of predictions."""
