#!/usr/bin/python3
"""A GNU Radio flowgraph standing in for ``semguard channel``'s channel: ZeroMQ in, gain, AWGN, ZeroMQ out.

    zeromq.pull_source (gr_complex) -> blocks.multiply_const_cc(gain) -> blocks.add_cc <- analog.noise_source_c
                                                                              |
                                                                    zeromq.push_sink (gr_complex)

Run it with the system interpreter that has GNU Radio (Debian: ``/usr/bin/python3``), next to
``semguard channel --gnuradio-out tcp://127.0.0.1:P1 --gnuradio-in tcp://127.0.0.1:P2``::

    /usr/bin/python3 examples/gnuradio/awgn_channel.py --source tcp://127.0.0.1:P1 --sink tcp://127.0.0.1:P2 --n0 0.1

The pull source connects to the emulator's bound PUSH (``--gnuradio-out``); the push sink binds the
address the emulator's PULL connects to (``--gnuradio-in``).  ``noise_source_c(GR_GAUSSIAN, a)`` has
total complex power ``a**2`` (``a**2 / 2`` per real dimension), so ``a = sqrt(N0)``.  The adder runs
at the pull source's pace (the noise source is infinite), so the flowgraph emits exactly one output
sample per input sample, which is what the emulator's reassembly by sample count needs.  It runs until
SIGTERM/SIGINT or ``--max-runtime`` seconds; only loopback addresses are accepted.
"""

import argparse
import math
import signal
import sys
import threading

from gnuradio import analog, blocks, gr, zeromq


def _loopback(addr: str) -> str:
    if not addr.startswith("tcp://127.0.0.1:"):
        raise argparse.ArgumentTypeError(f"expected tcp://127.0.0.1:PORT (loopback only), got {addr!r}")
    return addr


def _non_negative(text: str) -> float:
    x = float(text)
    if not math.isfinite(x) or x < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return x


class AwgnChannel(gr.top_block):
    def __init__(self, source: str, sink: str, n0: float, gain: complex, seed: int, hwm: int) -> None:
        super().__init__("semguard_awgn_channel")
        src = zeromq.pull_source(gr.sizeof_gr_complex, 1, source, 100, False, hwm)
        mul = blocks.multiply_const_cc(gain)
        noise = analog.noise_source_c(analog.GR_GAUSSIAN, math.sqrt(n0), seed)
        add = blocks.add_cc()
        snk = zeromq.push_sink(gr.sizeof_gr_complex, 1, sink, 100, False, hwm)
        self.connect(src, mul, (add, 0))
        self.connect(noise, (add, 1))
        self.connect(add, snk)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=_loopback, required=True, help="the emulator's --gnuradio-out (PUSH, bound there)")
    p.add_argument("--sink", type=_loopback, required=True, help="bound here; the emulator's --gnuradio-in")
    p.add_argument("--n0", type=_non_negative, default=0.01, help="noise power per complex sample")
    p.add_argument("--gain-re", type=float, default=1.0, help="channel gain, real part")
    p.add_argument("--gain-im", type=float, default=0.0, help="channel gain, imaginary part")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--hwm", type=int, default=256, help="ZeroMQ high-water mark (messages)")
    p.add_argument("--max-runtime", type=_non_negative, default=300.0, help="seconds before it stops by itself")
    args = p.parse_args()
    tb = AwgnChannel(args.source, args.sink, args.n0, complex(args.gain_re, args.gain_im), args.seed, args.hwm)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    tb.start()
    print("flowgraph running", flush=True)
    done.wait(args.max_runtime)
    tb.stop()
    tb.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
