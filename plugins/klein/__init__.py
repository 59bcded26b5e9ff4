"""FLUX.2 [klein] model plumbing shared by the built-in trainer and inference.

Modules here import torch/diffusers/transformers at top level; nothing on the lint path imports them.
"""
