"""Experiment configs (``get_config(arg)`` modules, big_vision style).

Each module returns a locked ``ml_collections.ConfigDict``; ``default.py``
holds every field with its comment, dataset configs import it and override.
Load one with ``--config=configs/<name>.py[:variant]`` in the entry points.
"""
