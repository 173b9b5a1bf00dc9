"""semguard: build, attack, defend and certify AI-native semantic communication systems."""

from semguard.registry import available, build

__all__ = ["available", "build", "__version__"]
__version__ = "0.1.0"
