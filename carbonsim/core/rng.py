"""Named random streams derived from one seed.

Every random quantity in a run comes from one root ``numpy.random.SeedSequence``; each named stream
(arrivals, service, network, carbon, policy) gets its own child generator. Because the streams are keyed
by name rather than by the order in which they are requested, two runs with the same seed see the same
arrivals, service demands and jitter whatever policy they use (common random numbers), and adding a new
stream later does not shift the existing ones.
"""

from __future__ import annotations

import zlib

import numpy as np

STREAMS = ("arrivals", "service", "network", "carbon", "policy")


def stream(seed: int, name: str) -> np.random.Generator:
    """Returns the generator of the named stream for a root seed.

    Args:
        seed: Root seed of the run (>= 0).
        name: Stream name; any string works, the ones the simulator uses are listed in ``STREAMS``.

    Returns:
        A fresh ``numpy.random.Generator`` (PCG64) whose state depends only on ``seed`` and ``name``.
    """
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, key])))
