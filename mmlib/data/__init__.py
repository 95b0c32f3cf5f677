"""The shapes world: its vocabulary and geometry, captions, questions, scenes, the tasks built
from them, conversations as token sequences, moving clips, and the word tokenizer.
"""
