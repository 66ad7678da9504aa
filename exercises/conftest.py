"""Exercises: make each test pass by replacing ___ with what the model really does.

Run `pytest exercises/`; hints appear for every blank, and the last line says what to do next.
"""
