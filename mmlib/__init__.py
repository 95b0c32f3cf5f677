"""mmlib: the code that the book "Multimodal Models, Hands-On" teaches.

Small, flat modules, one idea each. Chapters import from here and never paste a copy.
"""

from mmlib.device import device_report, get_device
from mmlib.seed import book_seed, seed_everything

__all__ = ["book_seed", "device_report", "get_device", "seed_everything"]
__version__ = "0.1.0"
