"""The from-scratch maths of chapter 4: a reverse-mode autodiff engine over NumPy, layers and the
update rule on it, and gradients checked against PyTorch's.
"""
