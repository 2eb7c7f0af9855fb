#!/usr/bin/env python3
"""PEFT + PyTorch peer of benchmarks/memory.sh's SmolLM2 case: LoRA (r 16, all-linear) SFT steps of 4 rows
x 256 tokens with gradient checkpointing, AdamW, on the model directory given (hone init's random
weights), on the CPU with the threads given, in fp32 or (PREC bf16) under torch.autocast("cpu", bfloat16),
TRL's bf16=True on a CPU (bf16 matrix products, fp32 weights, gradients and AdamW). Prints 'N tok/s' after
2 timed steps (one warm-up), and the CPU seconds (all threads) those steps took.
usage: lora_step_ref.py MODEL_DIR DATA_JSON THREADS [fp32|bf16]"""
import json
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

model_dir, data, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
prec = sys.argv[4] if len(sys.argv) > 4 else "fp32"
if prec not in ("fp32", "bf16"):
    sys.exit(f"lora_step_ref.py: precision '{prec}' is not fp32 or bf16")
torch.set_num_threads(threads)
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
model.gradient_checkpointing_enable()
model.enable_input_require_grads()
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear"))
rows = json.load(open(data))
text = "\n\n".join(r["instruction"] + "\n" + r.get("input", "") + "\n" + r["output"] for r in rows)
ids = tok(text, return_tensors="pt").input_ids[0]
B, T = 4, 256
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
model.train()
t0, c0, n = None, None, 0
for step in range(3):
    x = ids[step * B * T:(step + 1) * B * T].view(B, T)
    if step == 1:
        t0, c0 = time.perf_counter(), time.process_time()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
        loss = model(input_ids=x, labels=x).loss
    loss.backward()
    opt.step()
    opt.zero_grad()
    if step >= 1:
        n += B * T
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(f"{cpu / 2:.2f} CPU s per step (all threads), {n / cpu:.1f} tokens per CPU s")
print(f"{n / wall:.1f} tok/s")
