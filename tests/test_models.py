import torch

from lib.config import ModelConfig
from lib.models.models import load_model, save_model, tiny_llama, train_tokenizer

TEXTS = ["SUBREDDIT: r/dogs\nTITLE: my dog ate a sock\nPOST: last week my dog ate a sock .\n"
         "TL;DR: my dog ate a sock ."] * 20
CFG = ModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_length=64)


def test_tokenizer_round_trips_the_prompt_format(tmp_path):
    tok = train_tokenizer(TEXTS, 300)
    ids = tok(TEXTS[0], add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == TEXTS[0]
    assert tok.pad_token == "<pad>" and tok.eos_token == "<|endoftext|>"


def test_save_load_round_trip_with_safetensors(tmp_path):
    tok = train_tokenizer(TEXTS, 300)
    model = tiny_llama(CFG, tok, seed=0)
    save_model(model, tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))  # never pickled weights
    again = load_model(tmp_path)
    x = torch.randint(0, len(tok), (2, 10))
    with torch.no_grad():
        assert torch.allclose(model(x).logits, again(x).logits, atol=1e-6)


def test_qlora_step_on_cpu_lowers_the_loss(tmp_path):
    tok = train_tokenizer(TEXTS, 300)
    save_model(tiny_llama(CFG, tok, seed=0), tmp_path)
    model = load_model(tmp_path, load_in_4bit=True,
                       lora={"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]})
    kinds = {type(m).__name__ for m in model.modules()}
    assert "Linear4bit" in kinds  # bitsandbytes NF4 base layers
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    batch = tok(TEXTS[:4], return_tensors="pt")["input_ids"]
    opt = torch.optim.AdamW(trainable, lr=1e-2)
    before = model(input_ids=batch, labels=batch).loss
    before.backward()
    opt.step()
    with torch.no_grad():
        after = model(input_ids=batch, labels=batch).loss
    assert after < before


def test_lora_targets_are_the_backbone_linears_of_any_architecture():
    from transformers import GPTNeoXConfig, GPTNeoXForSequenceClassification

    from lib.config import ModelConfig
    from lib.models.models import lora_targets, tiny_llama, train_tokenizer

    tok = train_tokenizer(["a tiny text", "another one"], 60)
    llama = tiny_llama(ModelConfig(vocab_size=60, hidden_size=16, num_layers=1, num_heads=2,
                                   intermediate_size=32), tok)
    assert lora_targets(llama) == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                          "up_proj", "down_proj"])
    neox = GPTNeoXForSequenceClassification(GPTNeoXConfig(
        vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=1))
    assert lora_targets(neox) == ["dense", "dense_4h_to_h", "dense_h_to_4h", "query_key_value"]
