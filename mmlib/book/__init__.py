"""What the book's pages use: showing mmlib's source, block diagrams, readable figures, the charts
the chapters repeat (:mod:`mmlib.book.charts`), and printing measured numbers with their seed bands.
"""
