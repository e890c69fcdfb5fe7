"""What the papers themselves report for each claim this reproduction tests.

`PAPER_RESULTS` maps a claim id (as in `results/claims.json`) to a short statement of the paper's
own number or qualitative result, with its figure or section, so that `REPORT.md` can show it next
to our measurement. The facts come only from `shared/PAPERS.md` (protocol facts extracted from
WARM, arXiv 2401.12187, and WARP, arXiv 2406.16768); where the notes give no number, the entry says
so or gives the paper's qualitative statement. The `world-*` and `sft-*` claims check the synthetic
world that stands in for the papers' set-up, so they have no paper number of their own.
"""

from __future__ import annotations

PAPER_RESULTS: dict[str, str] = {
    # Set-up checks of the synthetic world (notebook 00).
    "sft-improves-gold":
        "setup check, no paper number: both papers start from an SFT policy (WARM: PaLM SFT 12k steps "
        "on preferred TL;DR summaries; WARP: θ_init ← θ_sft)",
    "sft-spread":
        "setup check, no paper number: WARM's BoN draws N=8 (PaLM) or N=1000 (T5) SFT samples per "
        "prompt, which needs varied SFT samples",
    "world-label-noise":
        "setup check, no paper number: WARM labels TL;DR pairs by RLAIF (PaLM-L, both orders); its "
        "corruption experiments swap 25% of training labels",
    "world-ood-shift":
        "setup check, no paper number: WARM's OOD test set is 92k pairs from PaLM-XS policies at high "
        "temperature; ours, the pre-trained base policy's samples at T = 0.7 on held-out topics",
    "world-overoptimization":
        "setup check, no paper number: over-optimization as in WARM Fig. 1b (RL control reward vs "
        "steps rises, then collapses: reward hacking)",
    "probe-reads-content":
        "setup check, no paper number: WARM's RMs share one linear-probed head on the SFT featurizer "
        "(§4), which presumes features that see the summary's content",
    # The reward models' substrate (notebooks 02, 03): checks, no paper number of their own.
    "rm-no-collapse":
        "setup check: WARM fine-tunes every RM from the shared linear-probed head (LP-FT), which "
        "should not fall below the probe",
    "rm-no-collapse-clean":
        "setup check: the same, for the RMs trained on clean labels, which do not memorize swapped "
        "labels (WARM Fig. 4a's cost of memorization is a fall of its own)",
    # WARM's premises (notebook 02).
    "premise-pretraining-matters":
        "§3 premise: fine-tunes of one shared pre-trained init stay linearly connected; its "
        "limitations: WA needs shared pre-training (PaLM-XXS pre-trained, then SFT)",
    "premise-ens-beats-members":
        "§4 premise: members trained with diverse hyper-parameters make partly different errors, so "
        "averaging reduces variance (WA ≈ ENS to first order)",
    "rm-memorizes-corrupt":
        "Fig. 4a: individual RMs (and ENS) fit the swapped training labels (memorization), which WA "
        "then forgets",
    "rm-beats-bow-proxy":
        "setup check, no paper number: WARM's PaLM-XXS RMs reach ~79–80% on TL;DR-like pairs; no "
        "bag-of-words baseline in the paper",
    "rm-reads-content":
        "setup check, no paper number: BoN with single RMs first raises the control reward (Fig. 6), "
        "so the RMs rank the policy's samples",
    # WARM, notebook 01: linear mode connectivity.
    "warm-barrier-without-shared-init":
        "Limitations: WA needs shared pre-training and architecture; LMC is shown only for RMs "
        "fine-tuned from shared SFT checkpoints (no control number)",
    "warm-lmc":
        "Fig. 3: OOD acc vs λ for 4 pairs of increasing diversity (one run's ckpts, data order, lr, "
        "Baklava): WA ~ ENS > Diag, i.e. LMC holds",
    "warm-wa-approx-ens":
        "Fig. 3: WA ~ ENS along λ for all four pairs (WA ≈ ENS to first order); no tolerance given",
    "warm-wa-geq-ens-lmc":
        "Fig. 3: WA slightly > ENS on OOD",
    # WARM, notebook 02: cost, corruption, M.
    "warm-cost-flat":
        "§3: WA is one model (mean of weights) whatever M, ENS averages M rewards; qualitative, no "
        "timing in the notes",
    "warm-gain-grows-to-ood":
        "Fig. 4/5 (25% corrupt): train-corrupt WA << ENS, train-clean WA <= ENS, ID val WA >~ ENS, "
        "OOD WA >= ENS",
    "warm-less-memorization":
        "Fig. 4a/5: on train-corrupt (accuracy vs the swapped labels = memorization) WA << ENS",
    "warm-m-beats-best-single":
        "Fig. 10: OOD acc vs M=2..10 for selection orders (top-M by OOD acc, φ1 best); the notes "
        "give no number",
    # WARM, notebook 03: best-of-N.
    "bon-single-rm-gap-grows":
        "Fig. 6: BoN control-reward gain vs KL = log N − (N−1)/N; individual RMs gain least; no "
        "proxy–gold gap number in the notes",
    "warm-bon-beats-single-and-ens-clean":
        "Fig. 6: BoN control-reward gain vs φ1: WARM > ENS M=2 > individual RMs, bigger with M=6",
    "warm-bon-beats-single-and-ens-corrupt":
        "Fig. 6: BoN control-reward gain vs φ1: WARM > ENS M=2 > individual RMs, bigger with M=6 "
        "(the notes don't split clean vs 25% corrupt)",
    "warm-bon-more-members-more-gain":
        "Fig. 6: the BoN gain over φ1 is bigger with WARM M=6 than with fewer members",
    "bon-single-rm-rises":
        "Fig. 6: BoN with an individual RM gains control reward over the SFT policy before WARM's "
        "larger gains",
    "warm-bon-beats-ens-equal-n":
        "Fig. 6: at equal N (equal KL), BoN with WARM M=6 beats ENS M=2",
    "warm-bon-wins-vs-phi1":
        "Fig. 7: oracle (PaLM-L) win rates of BoN with WARM; the notes give only WARM vs SFT (up to "
        "92.5%), no number vs φ1",
    "warm-bon-wins-vs-sft":
        "Fig. 7: oracle (PaLM-L) win rate of BoN with WARM vs SFT up to 92.5%",
    # WARM, notebook 04: RL.
    "rl-ens-hacked-before-warm":
        "Fig. 1b/8: control reward rises then collapses (hacking), bigger M delays it; the notes give "
        "no WARM M=2 vs ENS M=2 RL number",
    "rl-single-rm-rises":
        "Fig. 1b: RL against a single RM first raises the control reward, then collapses",
    "rl-single-rm-hacked":
        "Fig. 1b/8: RL against a single RM at the paper's KL coefficient (α 0.003): control reward vs "
        "steps rises, then collapses (reward hacking)",
    "rl-warm-delays-hacking":
        "Fig. 1b/8: bigger M delays the collapse of the control reward (KL α 0.003, clean labels)",
    "rl-warm-delays-hacking-long":  # the β = 0 long runs, in results until they are regenerated
        "Fig. 1b/8: bigger M delays the collapse of the control reward; WARM M=6 @3500 steps beats "
        "φ1 @3000 steps (Fig. 9c)",
    "rl-warm-delays-hacking-corrupt":
        "Fig. 8b: with 25% corrupt labels (KL α 0.01), bigger M delays the collapse of the control "
        "reward",
    "rl-warm-wins-vs-phi1":
        "Fig. 9: oracle win rate of the WARM M=6 policy @3500 steps vs the φ1 policy @3000 steps = "
        "79.4%",
    # WARP, notebook 05.
    "warp-ema-anchor":
        "Fig. 3a/b compare the EMA anchor (β=0.1) with the SFT anchor (β ∈ {0, 1e-4, 1e-3, .01, .1}); "
        "Fig. 14: the EMA matches/beats its policy",
    "warp-iterations-move-front-up":
        "Fig. 4c: iterating (I=5, M=2, η=0.3 point = next init) moves the LITI front; gains shrink "
        "after ~3 iterations",
    "warp-liti-front-dominates":
        "Fig. 4a: LITI η sweep: KL ~ linear/convex in η, reward concave ⇒ front above the diagonal; "
        "Fig. 1b plots it against plain REINFORCE",
    "warp-slerp-beats-lerp":
        "Fig. 3c: SLERP > LERP in reward (T 3k–9k); task vectors near-orthogonal (Ω ~ 90°), LERP "
        "shrinks their norm to ~0.71 at λ=.5",
    "warp-wins-vs-plain-rl":  # the earlier form of warp-wins-at-matched-kl, in results until they are regenerated
        "Final: WARP iter 3 is best side by side vs Mistral/Mixtral (.45/.26/.18); no win rate vs "
        "plain RL in the notes",
    "warp-wins-at-matched-kl":
        "Fig. 1b: WARP's policies lie above plain REINFORCE on the reward vs KL plane; no win rate vs "
        "plain RL at matched KL in the notes",
}
