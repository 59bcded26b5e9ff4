"""Exporter backends: turn a klint `TrainJob` into another trainer's own configs, dataset layout and commands.

Each module is registered by import string in `plugins/__init__.py`; nothing here imports torch.
"""
