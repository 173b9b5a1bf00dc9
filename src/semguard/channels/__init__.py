"""Wireless channels: AWGN, Rayleigh and Rician block fading, with CSI and equalisation."""

from semguard.channels.awgn import AWGN
from semguard.channels.base import Channel, ChannelState
from semguard.channels.rayleigh import Rayleigh
from semguard.channels.rician import Rician

__all__ = ["AWGN", "Channel", "ChannelState", "Rayleigh", "Rician"]
