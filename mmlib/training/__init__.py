"""Training: the loop and its options, batches and history, the optimizers, pretraining and
fine-tuning recipes, checkpoints, data-parallel runs under torchrun, and profiling.
"""
