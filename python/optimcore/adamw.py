"""optimcore.AdamW: torch.optim.AdamW (Adam with decoupled weight decay) on the C++ core.

The rule is Adam's (csrc/include/optimcore/adam.hpp, decoupled_weight_decay=True), as in torch,
where AdamW is a subclass of Adam: torch's AdamW constructor and __setstate__ set the flag.
"""

from __future__ import annotations

import torch

from .adam import Adam

__all__ = ["AdamW"]


class AdamW(Adam, torch.optim.AdamW):
    """Implements AdamW: ``torch.optim.AdamW`` with the update on optimcore's compiled core
    (see ``optimcore.Adam`` for the options optimcore adds)."""
