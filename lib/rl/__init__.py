"""RL policies: the REINFORCE-style loop, its resumable state, the cached runs, WARP's stages."""
