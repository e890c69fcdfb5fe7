"""RL training throughput (samples/s): lib.rl.rl against TRL's RLOOTrainer, same policy, RM, machine.

    pip install trl==1.16.0    # for this benchmark only; not a requirement of the repository
    python -m benchmarks.rl_throughput [--profile default] [--steps 10]

Both run on-policy REINFORCE with a leave-one-out baseline (RLOO) from the SFT policy against the
same reward model (the pool's RM 0, scored by the same function), with the same prompts per step,
samples per prompt, completion length, temperature, learning rate and KL weight (reference: the
SFT policy), on one CPU process. A sample is one generated completion; the timing covers
generation, reward scoring, the reference and policy passes and the update.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from lib.config import ROOT
from lib.models.policy import policy_for
from lib.pipeline import Pipeline
from lib.report.results import record_benchmark
from lib.rl.rl import Hooks, train_policy
from lib.rl.runs import RLRuns
from lib.rm.control import ControlRM
from lib.rm.pool import RewardModels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer  # imported here: only this benchmark needs TRL

    pl = Pipeline(args.profile, gold_rm=ControlRM)
    rms = RewardModels(pl)
    runs = RLRuns(pl, rms)
    cfg = replace(pl.profile.rl.run, steps=args.steps, eval_every=10 ** 6)
    reward = runs.reward_fn(rms.pool(0.0)[:1])
    per_step = cfg.prompts_per_step * cfg.k

    policy = policy_for(pl.model_path("sft"), cfg)
    start = time.perf_counter()
    train_policy(policy, pl.tokenizer, runs.prompts, reward, cfg,
                 hooks=Hooks(eval_prompts=runs.prompts[:1], desc="lib.rl.rl"))
    ours = args.steps * per_step / (time.perf_counter() - start)

    def proxy(prompts, completions, **kwargs) -> list[float]:
        return [float(r) for r in reward(list(prompts), [c.strip() for c in completions])]

    ds = Dataset.from_dict({"prompt": runs.prompts})
    with tempfile.TemporaryDirectory() as out:
        # TRL loads its reference model from the policy's directory and needs its architecture
        sft_dir = Path(out) / "sft"
        shutil.copytree(pl.model_path("sft"), sft_dir)
        config = json.loads((sft_dir / "config.json").read_text())
        config["architectures"] = ["LlamaForCausalLM"]
        (sft_dir / "config.json").write_text(json.dumps(config))
        model = policy_for(sft_dir, cfg)
        trl_args = RLOOConfig(output_dir=out, per_device_train_batch_size=per_step,
                              num_generations=cfg.k, max_completion_length=cfg.max_new_tokens,
                              temperature=cfg.temperature, top_k=0, top_p=1.0, beta=cfg.beta,
                              learning_rate=cfg.lr, lr_scheduler_type="constant", warmup_steps=0,
                              weight_decay=0.0, max_grad_norm=cfg.grad_clip, max_steps=args.steps,
                              logging_steps=args.steps, save_strategy="no", report_to=[],
                              use_cpu=True, dataloader_num_workers=0, seed=cfg.seed,
                              disable_tqdm=True, gradient_checkpointing=False, bf16=False)
        trainer = RLOOTrainer(model=model, reward_funcs=proxy, args=trl_args, train_dataset=ds,
                              processing_class=pl.tokenizer)
        start = time.perf_counter()
        trainer.train()
        theirs = args.steps * per_step / (time.perf_counter() - start)
    row = record_benchmark(ROOT / "results", name="RL training throughput vs TRL RLOOTrainer",
                           ours=ours, baseline=theirs, unit="samples/s", profile=pl.profile.name)
    print(row, f"torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
