#!/usr/bin/env python3
"""LoRA parity fixtures for hone (issue 14): PEFT adapters on the model_ref.py models.

For each of tiny-llama, tiny-llama3-gqa, tiny-qwen2, tiny-gemma and stories260K: wraps the base in
peft.get_peft_model with the LoraConfig below, gives every lora_B (and lora_A) random values from a
seeded torch.Generator (PEFT's default init makes B zero, which would leave dA zero and the adapter a
no-op), saves the adapter with PeftModel.save_pretrained to tests/fixtures/lora/<name>/, then runs
the batch of tests/fixtures/parity/<name>.safetensors (model_ref.py) through the PEFT model and
writes tests/fixtures/lora/<name>.safetensors: the same batch tensors, logits, loss (mean
cross-entropy over labels), logp, and grad.<PEFT key> for every trainable tensor (adapters and
modules_to_save copies), keys as in adapter_model.safetensors.

Needs model_ref.py's outputs (models, parity fixtures, /tmp/hone-ref/stories260K). Development only.
usage: lora_ref.py [--only NAME ...] [--stories-dir DIR]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures")
sys.path.insert(0, HERE)
from model_ref import additive_mask  # noqa: E402

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

# name -> LoraConfig arguments (a spread of targets, ranks, rslora and modules_to_save)
CASES = {
    "tiny-llama": dict(r=4, lora_alpha=8, target_modules="all-linear", modules_to_save=["embed_tokens", "lm_head"]),
    "tiny-llama3-gqa": dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], use_rslora=True),
    "tiny-qwen2": dict(r=4, lora_alpha=4, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    "tiny-gemma": dict(r=2, lora_alpha=4, target_modules=["gate_proj", "up_proj", "down_proj", "o_proj"]),
    "stories260K": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
}


def peft_key(name):
    """named_parameters name -> adapter_model.safetensors key"""
    return name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.").replace(
        ".modules_to_save.default.", ".")


def build(mdir, case, seed):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32, attn_implementation="eager")
    model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.0, **case))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".lora_A." in n or ".lora_B." in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--stories-dir", default="/tmp/hone-ref/stories260K")
    args = ap.parse_args()
    for seed, (name, case) in enumerate(CASES.items()):
        if args.only and name not in args.only:
            continue
        mdir = args.stories_dir if name == "stories260K" else os.path.join(FIX, "models", name)
        if not os.path.isdir(mdir):
            print(f"skip {name}: {mdir} missing (run model_ref.py)")
            continue
        model = build(mdir, case, 500 + seed)
        adir = os.path.join(FIX, "lora", name)
        model.save_pretrained(adir)
        # base_model_name_or_path: relative to the adapter dir for the committed tiny models
        cpath = os.path.join(adir, "adapter_config.json")
        with open(cpath) as f:
            ac = json.load(f)
        ac["base_model_name_or_path"] = ("../../models/" + name) if name != "stories260K" else "stories260K"
        with open(cpath, "w") as f:
            json.dump(ac, f, indent=2, sort_keys=True)
        fx = load_file(os.path.join(FIX, "parity", name + ".safetensors"))
        ids, pos, start, labels = (fx[k].long() for k in ("input_ids", "position_ids", "attn_start", "labels"))
        # the reference runs in float64 (the fp32 adapters and base, widened): the fixture then holds
        # the exact values and the C test measures hone's fp32 error alone, not the sum of two
        model.double()
        model.eval()
        out = model(input_ids=ids, position_ids=pos, attention_mask=additive_mask(start).double(), use_cache=False)
        V = out.logits.shape[-1]
        loss = F.cross_entropy(out.logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
        loss.backward()
        with torch.no_grad():
            lp = torch.log_softmax(out.logits, dim=-1)
            logp = lp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            logp = torch.where(labels == -100, torch.zeros_like(logp), logp)
        t = {k: fx[k] for k in ("input_ids", "position_ids", "attn_start", "labels")}
        t["logits"] = out.logits.detach().float().contiguous()
        t["loss"] = loss.detach().float().reshape(1)
        t["logp"] = logp.float().contiguous()
        ngrad = 0
        for n, p in model.named_parameters():
            if p.requires_grad:
                t["grad." + peft_key(n)] = p.grad.detach().float().contiguous()
                ngrad += 1
        save_file(t, os.path.join(FIX, "lora", name + ".safetensors"))
        print(f"{name}: loss {loss.item():.6f}, {ngrad} trainable tensors, adapter in {adir}")


if __name__ == "__main__":
    main()
