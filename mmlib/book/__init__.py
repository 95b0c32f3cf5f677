"""What the book's pages use: showing mmlib's source, block diagrams, readable figures, and
printing measured numbers with their seed bands.
"""
