"""Evaluation: metrics, the reading accuracy of the dialogue model, robustness to a missing
modality, and diagnostics of gradients during training.
"""
