"""klint: make a FLUX.2 [klein] character-LoRA dataset right before a GPU hour is spent."""

__version__ = "0.1.0"
