"""The three emergency sentences and the shipped DeepSC that the LDPC and codebook priority tests share."""

import torch

from semguard.registry import build

SENTENCES = ["send 12 ambulances to paris now", "john is trapped on floor three", "the bridge at dover collapsed"]
NAMES = frozenset({"paris", "john", "dover"})


def shipped_deepsc():
    """The shipped DeepSC in eval mode, on one thread (the tests' fixtures wrap it per module)."""
    torch.set_num_threads(1)
    return build("codec", "deepsc", pretrained=True).eval()
