"""klint's built-in FLUX.2 [klein] LoRA trainer (registered in `plugins/__init__.py`)."""
