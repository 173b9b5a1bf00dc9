"""Every registered channel, imported (and so registered) at once: the registry loads this module for the
``channel`` family."""

from semguard.channels.awgn import AWGN
from semguard.channels.jakes import Jakes
from semguard.channels.rayleigh import Rayleigh
from semguard.channels.ris import RIS
from semguard.channels.rician import Rician

__all__ = ["AWGN", "RIS", "Jakes", "Rayleigh", "Rician"]
