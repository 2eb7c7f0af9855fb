#!/usr/bin/env python3
"""bf16-stored models trained in fp32 (issue 12, defect 1): TRL 1.16 SFTTrainer, 3 steps.

Hugging Face checkpoints are stored in bf16; TRL on CPU loads them in fp32 and trains and saves fp32.
For the Llama-3.2-1B and Gemma-2B configs of ../shared/models/configs, shrunk (2 layers, hidden 32,
vocab 128; the architecture's quirks kept: llama3 RoPE scaling and tied embeddings, Gemma's MQA,
head_dim * heads != hidden, (1 + w) norms, scaled embeddings), this script

1. builds a random-init model (init as model_ref.py's init_tiny), rounds it to bf16 and saves it with
   save_pretrained in bf16 to tests/fixtures/models/<name>/ (model.safetensors holds BF16 tensors);
2. loads it back in fp32 (dtype=torch.float32, as TRL does on CPU) and trains 3 optimizer steps with
   SFTTrainer on pre-tokenized data (sft_ref.py's tiny_data; sequential batches of 2, no accumulation,
   lr 1e-3 constant, weight decay 0.01, clipping 1.0);
3. writes tests/fixtures/trl/<case>/ like sft_ref.py (data.jsonl, config.json, expected.json with
   the logged steps, batches.jsonl) plus update.safetensors: final weight - initial weight for every
   parameter, fp32.

usage: bf16_ref.py
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trl_common as C  # noqa: E402
from sft_ref import tiny_data  # noqa: E402

MODELS = os.path.join(C.ROOT, "tests", "fixtures", "models")
SHRINK = {
    # name: (shared config, overrides)
    "tiny-llama32-bf16": ("llama-3.2-1b.json", dict(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=128, bos_token_id=1, eos_token_id=2,
        pad_token_id=0, rope_scaling={"rope_type": "llama3", "factor": 32.0, "high_freq_factor": 4.0,
                                      "low_freq_factor": 1.0, "original_max_position_embeddings": 64})),
    "tiny-gemma-bf16": ("gemma-2b.json", dict(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=128, bos_token_id=1, eos_token_id=2,
        pad_token_id=0, hidden_act="gelu_pytorch_tanh")),
}
CASE = {"tiny-llama32-bf16": "sft_bf16_llama32", "tiny-gemma-bf16": "sft_bf16_gemma"}
HP = dict(learning_rate=1e-3, per_device_train_batch_size=2, gradient_accumulation_steps=1, max_grad_norm=1.0,
          weight_decay=0.01, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, seed=42, max_steps=3,
          truncation_mode="keep_start", loss_type="nll", shuffle_dataset=False, dataset_text_field="text",
          completion_only_loss=False, packing=False, max_length=24, lr_scheduler_type="constant", warmup_steps=0)


def build(name):
    from transformers import AutoConfig, AutoModelForCausalLM

    src, over = SHRINK[name]
    with open(os.path.join(C.SHARED, "models", "configs", src)) as f:
        d = json.load(f)
    d.pop("hidden_activation", None)  # Gemma: transformers 5 reads hidden_act only
    d.update(over)
    d["torch_dtype"] = "float32"
    model_type = d.pop("model_type")
    cfg = AutoConfig.for_model(model_type, **d)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation="eager")
    g = torch.Generator().manual_seed(2000 + len(name))
    gemma = model_type == "gemma"
    with torch.no_grad():
        for pname, p in model.named_parameters():
            n = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if pname.endswith("embed_tokens.weight"):
                p.copy_((0.15 if cfg.tie_word_embeddings else 0.5) * n)
            elif "norm" in pname:
                p.copy_(0.1 * n if gemma else 1.0 + 0.1 * n)
            else:
                p.copy_(0.1 * n)
    out = os.path.join(MODELS, name)
    model.to(torch.bfloat16).save_pretrained(out)
    return out


def run(name):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    path = build(name)
    case = CASE[name]
    rows = tiny_data(12, 7, vocab=128)
    args = SFTConfig(**C.base_args(C.tmpdir(), **HP))
    model = C.load_model(path)  # fp32 master weights
    assert all(p.dtype == torch.float32 for p in model.parameters())
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    tok = C.id_tokenizer(model.config.vocab_size)
    rec = C.LogRecorder()
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                         callbacks=[rec])
    trainer.train()
    upd = {n: (p.detach() - init[n]).contiguous() for n, p in trainer.model.named_parameters()}
    config = C.case_config(case, "SFTTrainer", name, trainer, tok, args, len(rows))
    config.update({"model": f"tests/fixtures/models/{name}", "stored_dtype": "bfloat16", **HP})
    expected = {"steps": rec.logs, "final_param_norms": C.param_norms(trainer.model)}
    d = C.write_case(case, rows, config, expected)
    save_file(upd, os.path.join(d, "update.safetensors"), metadata={"format": "pt"})
    big = max(float(u.abs().max()) for u in upd.values())
    print(f"{case}: loss {rec.logs[0]['loss']:.5f} -> {rec.logs[-1]['loss']:.5f}, largest update {big:.3g}; wrote {d}")


def main():
    for name in SHRINK:
        run(name)


if __name__ == "__main__":
    main()
