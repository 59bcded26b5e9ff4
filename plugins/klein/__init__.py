"""FLUX.2 [klein] model plumbing shared by the built-in trainer and inference.

Modules here import torch/diffusers/transformers at top level; nothing on the lint path imports them.
"""

import logging

# bitsandbytes' CPU backend warns at import that it cannot fetch an optional 4-bit kernel from the
# hub; klint never uses 4-bit CPU matmuls, and offline the warning only alarms users.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
