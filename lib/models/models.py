"""Tokenizer and models: a tiny Llama built from a transformers config, or a hub model; optional
4-bit NF4 quantization (bitsandbytes) and LoRA adapters (peft). Weights are saved and loaded
with safetensors only; `trust_remote_code` is never set."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from lib.config import ModelConfig

PAD, EOS = "<pad>", "<|endoftext|>"


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained with `tokenizers` on `texts`."""

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS,
                                   bos_token=EOS)
    fast.padding_side = "left"  # generation pads on the left; training builds its own masks
    return fast


HEADS = ("lm_head", "score", "classifier")


def exact_4bit_on_cpu(model: torch.nn.Module) -> torch.nn.Module:
    """Keep bitsandbytes' float NF4 kernel for CPU inference.

    On CPUs with AVX-512 BF16, bitsandbytes repacks NF4 weights on the first no-grad forward in
    eval mode for a bfloat16 kernel: scores then differ from a training-mode forward by about 1e-2,
    and layers narrower than one quantization block (64 inputs) fail to repack. Which path runs
    would depend on the machine; with this, every machine computes the same thing.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    return model


def lora_targets(model: torch.nn.Module) -> list[str]:
    """Names (last component) of every linear layer of the backbone, the heads excluded: where
    LoRA adapters go, for any architecture (Llama: q/k/v/o/gate/up/down_proj; GPT-NeoX/Pythia:
    query_key_value, dense, dense_h_to_4h, dense_4h_to_h)."""
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                   if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] not in HEADS})


def hub_error(what: str, name: Path | str, err: Exception) -> RuntimeError:
    """One clear message for a model or tokenizer that is neither a local directory nor reachable
    on the Hugging Face hub: what to download and how to point the profile at it."""
    local = f"models/{Path(str(name)).name}"
    return RuntimeError(
        f"could not load the {what} {str(name)!r} ({str(err).splitlines()[0]}). It is neither a "
        f"local directory nor reachable on the Hugging Face hub. On a machine with hub access run "
        f"`hf download {name} --local-dir {local}`, copy {local} here, and pass it as the model: "
        f"overrides={{'model.hub_name': '{local}'}}.")


def load_tokenizer(path: Path | str) -> PreTrainedTokenizerFast:
    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except OSError as err:
        raise hub_error("tokenizer", path, err) from None
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def tiny_llama(cfg: ModelConfig, tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> LlamaForCausalLM:
    """A randomly initialised Llama of `cfg`'s size (no hand-written transformer)."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_length, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id)
    return LlamaForCausalLM(config)


def save_model(model: PreTrainedModel, path: Path) -> None:
    """Config + weights (safetensors) of a causal LM."""
    path.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(path))
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file(state, str(path / "model.safetensors"))


def is_4bit(model: torch.nn.Module) -> bool:
    """Whether the model holds bitsandbytes 4-bit (NF4) layers."""
    return any(type(m).__name__ == "Linear4bit" for m in model.modules())


def from_pretrained(auto_class, path_or_name: Path | str, *, dtype: str = "float32",
                    load_in_4bit: bool = False, double_quant: bool = True, device: str = "cpu",
                    what: str = "model", **kwargs) -> PreTrainedModel:
    """The one way weights are read: `auto_class.from_pretrained` with safetensors only and no
    remote code, optionally quantized to NF4 with bitsandbytes (a QLoRA base, computing in `dtype`,
    with the float kernel on every CPU: `exact_4bit_on_cpu`), on `device`. A model that is neither
    a directory nor on the hub is one clear message (`hub_error`)."""
    torch_dtype = getattr(torch, dtype)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                               bnb_4bit_compute_dtype=torch_dtype,
                               bnb_4bit_use_double_quant=double_quant) if load_in_4bit else None
    try:
        model = auto_class.from_pretrained(
            str(path_or_name), dtype=torch_dtype, quantization_config=quant, use_safetensors=True,
            trust_remote_code=False, device_map={"": device} if quant else None, **kwargs)
    except OSError as err:
        raise hub_error(what, path_or_name, err) from None
    return exact_4bit_on_cpu(model) if quant else model.to(device)


def load_model(path_or_name: Path | str, *, load_in_4bit: bool = False, lora: dict | None = None,
               dtype: str = "float32", device: str = "cpu") -> PreTrainedModel:
    """One loader for the tiny models (a cache directory) and hub models (a name).

    `load_in_4bit` quantizes linear layers to NF4 with bitsandbytes (QLoRA; compute in `dtype`);
    `lora` is a dict of peft `LoraConfig` arguments, e.g. {"r": 8, "lora_alpha": 16}.
    """
    model = from_pretrained(AutoModelForCausalLM, path_or_name, dtype=dtype,
                            load_in_4bit=load_in_4bit, device=device)
    if lora is not None:

        if load_in_4bit:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora))
    return model
