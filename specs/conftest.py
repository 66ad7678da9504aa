"""Behaviour specs of the document "Introduction to Language Models", run with `pytest specs/`."""
