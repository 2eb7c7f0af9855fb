#!/usr/bin/env python3
"""QLoRA parity fixtures for hone (issue 14): PEFT adapters on a bitsandbytes 4-bit base (CPU backend).

For each case below: loads tests/fixtures/models/<model> with transformers'
BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=<qt>, bnb_4bit_use_double_quant=<nested>,
bnb_4bit_compute_dtype=torch.float32) on the CPU, attaches the adapter of tests/fixtures/lora/<model>
(lora_ref.py) with PeftModel.from_pretrained(is_trainable=True), runs the batch of
tests/fixtures/parity/<model>.safetensors and writes tests/fixtures/qlora/<case>.safetensors: logits,
loss (mean cross-entropy over labels), logp and grad.<PEFT key> of every trainable tensor. bitsandbytes'
CPU Linear4bit dequantises the weight (bit-equal to hone's, tests/test_quant.c) and multiplies in fp32.

Also case "<model>-bf16": the base rounded to bf16 (what a bf16 checkpoint holds), the adapters and
the arithmetic in fp32 (PEFT on model.to(bfloat16).to(float32)): hone's bf16-held base.

bitsandbytes 0.50.2's AVX-512 CPU dequantiser indexes the absmax as row * (cols // 64) + col // 64,
which is wrong for rows whose length is a multiple of 16 but not of 64 (tiny-llama's down_proj has
160 columns: 9,147 of its 10,240 values come out with another block's scale). Its quantiser, its
scalar path and its default (PyTorch) backend all use flat blocks of 64 consecutive elements, as
hone does, so this script routes dequantize_4bit on the CPU to the default backend's implementation.
Real models' rows are multiples of 64, where both paths agree.

Development only (CI compares the fixtures). usage: qlora_ref.py
"""
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures")
sys.path.insert(0, HERE)
from model_ref import additive_mask  # noqa: E402
from lora_ref import peft_key  # noqa: E402

torch.set_num_threads(1)


def use_flat_block_dequant():
    """dequantize_4bit on the CPU -> bitsandbytes' default backend (see the docstring)"""
    from bitsandbytes.backends.default.ops import _dequantize_4bit_compute
    from bitsandbytes.backends.utils import _get_4bit_code

    def deq(A, absmax, blocksize, quant_type, shape, dtype):
        if A.dtype != torch.uint8:
            A = A.view(torch.uint8)
        return _dequantize_4bit_compute(A.reshape(-1), absmax, _get_4bit_code(quant_type, A.device), blocksize, shape, dtype)

    lib = torch.library.Library("bitsandbytes", "IMPL")
    lib.impl("dequantize_4bit", deq, "CPU")
    return lib  # keep the registration alive

CASES = [  # (case name, model, quant type or "bf16", nested)
    ("tiny-llama-nf4", "tiny-llama", "nf4", False),
    ("tiny-llama-nf4-nested", "tiny-llama", "nf4", True),
    ("tiny-llama-fp4", "tiny-llama", "fp4", False),
    ("tiny-llama3-gqa-nf4", "tiny-llama3-gqa", "nf4", False),
    ("tiny-llama-bf16", "tiny-llama", "bf16", False),
]


def load(model, qt, nested):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    mdir = os.path.join(FIX, "models", model)
    if qt == "bf16":
        base = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32, attn_implementation="eager")
        with torch.no_grad():
            for n, p in base.named_parameters():
                if p.dim() == 2 and "layers." in n:  # the decoder linears, as hone holds them
                    p.copy_(p.to(torch.bfloat16).float())
        return base
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=qt, bnb_4bit_use_double_quant=nested,
                             bnb_4bit_compute_dtype=torch.float32)
    return AutoModelForCausalLM.from_pretrained(mdir, quantization_config=bnb, dtype=torch.float32, device_map="cpu",
                                                attn_implementation="eager")


def main():
    from peft import PeftModel

    os.makedirs(os.path.join(FIX, "qlora"), exist_ok=True)
    keep = use_flat_block_dequant()  # noqa: F841
    for case, model, qt, nested in CASES:
        base = load(model, qt, nested)
        pm = PeftModel.from_pretrained(base, os.path.join(FIX, "lora", model), is_trainable=True)
        fx = load_file(os.path.join(FIX, "parity", model + ".safetensors"))
        ids, pos, start, labels = (fx[k].long() for k in ("input_ids", "position_ids", "attn_start", "labels"))
        pm.train()  # lora_dropout is 0 in these adapters: train() only enables gradients
        out = pm(input_ids=ids, position_ids=pos, attention_mask=additive_mask(start), use_cache=False)
        V = out.logits.shape[-1]
        loss = F.cross_entropy(out.logits.reshape(-1, V).float(), labels.reshape(-1), ignore_index=-100)
        loss.backward()
        with torch.no_grad():
            lp = torch.log_softmax(out.logits.float(), dim=-1)
            logp = lp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            logp = torch.where(labels == -100, torch.zeros_like(logp), logp)
        t = {"logits": out.logits.detach().float().contiguous(), "loss": loss.detach().float().reshape(1),
             "logp": logp.float().contiguous()}
        ng = 0
        for n, p in pm.named_parameters():
            if p.requires_grad:
                t["grad." + peft_key(n)] = p.grad.detach().float().contiguous()
                ng += 1
        save_file(t, os.path.join(FIX, "qlora", case + ".safetensors"), metadata={"quant": qt, "nested": str(nested)})
        print(f"{case}: loss {loss.item():.6f}, {ng} trainable tensors")


if __name__ == "__main__":
    main()
