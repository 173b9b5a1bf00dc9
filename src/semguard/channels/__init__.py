"""Wireless channels: AWGN, Rayleigh and Rician block fading, time-correlated (Jakes) fading, a
randomly reconfigured RIS, with CSI and equalisation."""

from semguard.channels.awgn import AWGN
from semguard.channels.base import Channel, ChannelState
from semguard.channels.jakes import Jakes
from semguard.channels.rayleigh import Rayleigh
from semguard.channels.ris import RIS
from semguard.channels.rician import Rician

__all__ = ["AWGN", "Channel", "ChannelState", "Jakes", "RIS", "Rayleigh", "Rician"]
