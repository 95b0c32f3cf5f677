"""The models the chapters train: fusion classifiers, the contrastive dual encoder,
cross-attention, a small GPT and the visual dialogue model on it, the VQ-VAE and the image prior,
the judge, the video classifier, and the article's own model.
"""
