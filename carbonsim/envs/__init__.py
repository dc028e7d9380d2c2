"""Gymnasium environments over the simulator (extra ``rl``).

Importing :mod:`carbonsim` registers ``carbonsim/Routing-v0`` when Gymnasium is installed; the environment
class itself lives in :mod:`carbonsim.envs.routing` and is imported only when made.
"""

from __future__ import annotations

ROUTING_ID = "carbonsim/Routing-v0"


def register_envs() -> bool:
    """Registers the environments with Gymnasium; False if Gymnasium is not installed."""
    try:
        import gymnasium
    except ImportError:
        return False
    if ROUTING_ID not in gymnasium.registry:
        gymnasium.register(id=ROUTING_ID, entry_point="carbonsim.envs.routing:RoutingEnv")
    return True


__all__ = ["ROUTING_ID", "register_envs"]
