"""RM training throughput (pairs/s): lib.rm.rm against TRL's RewardTrainer, same model, data, machine.

    pip install trl==1.16.0    # for this benchmark only; not a requirement of the repository
    python -m benchmarks.rm_throughput [--profile default] [--steps 40]

Both train the same sequence-classification model (SFT featurizer + shared head) with the
Bradley–Terry loss on the same training pairs and learning rate, on one CPU process, with as many
pairs per step (ours: all the pairs of `batch_size` prompts, each prompt encoded once; TRL: that
many chosen/rejected pairs, each sequence encoded whole). Tokenization is excluded from both.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from lib.config import ROOT
from lib.pipeline import Pipeline
from lib.report.results import record_benchmark
from lib.rm.control import ControlRM
from lib.rm.pool import RewardModels
from lib.rm.rm import reward_model_from, train_reward_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    from trl import RewardConfig, RewardTrainer  # imported here: only this benchmark needs TRL

    pl = Pipeline(args.profile, gold_rm=ControlRM)
    rms = RewardModels(pl)
    cfg = rms.member(0)
    cfg = cfg.__class__(**{**cfg.__dict__, "steps": args.steps, "checkpoint_steps": ()})
    train = rms.pairs.train_pairs(0.0)
    pairs = rms.pairs.pairset("train-0.0")
    lm_path, head = pl.model_path("sft"), rms.head(0.0)

    model = reward_model_from(lm_path, head)
    start = time.perf_counter()
    history = train_reward_model(model, pairs, cfg, desc="lib.rm.rm")
    # pairs per second: ours trains on every pair of `batch_size` prompts per step
    ours = sum(history["pairs"]) / (time.perf_counter() - start)
    per_step = round(sum(history["pairs"]) / args.steps)

    from lib.world.data import prompts_of
    prompts = prompts_of(train)
    chosen = [p + " " + (s1 if c else s0) for p, s0, s1, c in
              zip(prompts, train["summary_0"], train["summary_1"], train["choice"])]
    rejected = [p + " " + (s0 if c else s1) for p, s0, s1, c in
                zip(prompts, train["summary_0"], train["summary_1"], train["choice"])]
    from datasets import Dataset
    ds = Dataset.from_dict({"chosen": chosen, "rejected": rejected})
    model = reward_model_from(lm_path, head)
    with tempfile.TemporaryDirectory() as out:
        trl_args = RewardConfig(output_dir=out, per_device_train_batch_size=per_step,
                                max_steps=args.steps, learning_rate=cfg.lr, lr_scheduler_type="constant",
                                warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
                                logging_steps=args.steps, save_strategy="no", report_to=[],
                                use_cpu=True, dataloader_num_workers=0, seed=cfg.seed,
                                max_length=pl.profile.model.max_length, disable_tqdm=True,
                                center_rewards_coefficient=None, gradient_checkpointing=False,
                                bf16=False)
        trainer = RewardTrainer(model=model, args=trl_args, train_dataset=ds,
                                processing_class=pl.tokenizer)
        start = time.perf_counter()
        trainer.train()
        theirs = args.steps * per_step / (time.perf_counter() - start)
    row = record_benchmark(ROOT / "results", name="RM training throughput vs TRL RewardTrainer",
                           ours=ours, baseline=theirs, unit="pairs/s", profile=pl.profile.name)
    print(row, f"torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
