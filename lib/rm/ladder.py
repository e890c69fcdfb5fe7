"""The member ladder: which RM configuration each member of a pool gets, from `RMPoolConfig`
alone (no data, no models). WARM Fig. 3's ladder of diversity for members 0–3 (0 vs 1: data
order; 0 vs 2: also the learning rate; 0 vs 3: also dropout and the Baklava init); later members
cycle through the knobs. Every member's seed is `lib.seeds.rm_member_seed`.
"""

from __future__ import annotations

from lib.config import RMConfig, RMPoolConfig
from lib.seeds import rm_member_seed


def pool_steps(cfg: RMPoolConfig, n_prompts: int, corruption: float) -> int:
    """Optimizer steps of every member of a pool that trains on `n_prompts` prompts: `epochs`
    passes (a corrupt pool: `corrupt_epochs`, if set) of `batch_size` prompts each."""
    epochs = cfg.corrupt_epochs if corruption and cfg.corrupt_epochs else cfg.epochs
    return max(1, round(epochs * n_prompts / cfg.batch_size))


def member_config(cfg: RMPoolConfig, i: int, *, steps: int, corruption: float, pool: int, block: int) -> RMConfig:
    """The configuration of member `i` of seeded pool `pool`, which trains `steps` steps on block
    `block` of the training posts with `corruption` of their labels swapped."""
    ladder = {0: (cfg.lrs[0], cfg.dropouts[0], cfg.baklava[0]),
              1: (cfg.lrs[0], cfg.dropouts[0], cfg.baklava[0]),
              2: (cfg.lrs[-1], cfg.dropouts[0], cfg.baklava[0]),
              3: (cfg.lrs[-1], cfg.dropouts[-1], cfg.baklava[-1])}
    lr, dropout, init = ladder.get(i, (cfg.lrs[i % len(cfg.lrs)],
                                       cfg.dropouts[(i // len(cfg.lrs)) % len(cfg.dropouts)],
                                       cfg.baklava[i % len(cfg.baklava)]))
    return RMConfig(seed=rm_member_seed(pool, i), lr=lr, dropout=dropout, init_checkpoint=init,
                    mode=cfg.mode, steps=steps, batch_size=cfg.batch_size, warmup=cfg.warmup,
                    corruption=corruption, train_block=block, checkpoint_steps=(steps // 2,),
                    ema_mu=cfg.ema_mu, lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha)
