"""Tooling that builds, measures and checks the book; not part of mmlib, not tests."""
