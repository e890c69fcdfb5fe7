"""Reward models: training and scoring one, the pool of members and its cached stages, the control RM."""
