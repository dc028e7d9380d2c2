"""Gymnasium environments over the simulator (extra ``rl``).

Importing :mod:`carbonsim` registers ``carbonsim/Routing-v0`` (routing requests) and ``carbonsim/Shifting-v0``
(deferring and placing batch jobs) when Gymnasium is installed; the environment classes live in
:mod:`carbonsim.envs.routing` and :mod:`carbonsim.envs.shifting` and are imported only when made.
"""

from __future__ import annotations

ROUTING_ID = "carbonsim/Routing-v0"
SHIFTING_ID = "carbonsim/Shifting-v0"


def register_envs() -> bool:
    """Registers the environments with Gymnasium; False if Gymnasium is not installed."""
    try:
        import gymnasium
    except ImportError:
        return False
    if ROUTING_ID not in gymnasium.registry:
        gymnasium.register(id=ROUTING_ID, entry_point="carbonsim.envs.routing:RoutingEnv")
    if SHIFTING_ID not in gymnasium.registry:
        gymnasium.register(id=SHIFTING_ID, entry_point="carbonsim.envs.shifting:ShiftingEnv")
    return True


__all__ = ["ROUTING_ID", "SHIFTING_ID", "register_envs"]
