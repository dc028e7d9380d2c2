"""Learning schedulers: the reward and observation, safe checkpoints, and PPO training (extra ``rl``)."""
