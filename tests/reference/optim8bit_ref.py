#!/usr/bin/env python3
"""8-bit AdamW parity fixture for hone (issue 14): bitsandbytes' AdamW(optim_bits=8) on CPU.

Four tensors of odd sizes, updated STEPS times with seeded random gradients, the way transformers'
Trainer builds the optimizer for `optim: adamw_8bit`: bnb.optim.AdamW(optim_bits=8), the embedding
registered for 32-bit state (GlobalOptimManager override, as Trainer.create_optimizer does), two
param groups (weight decay 0.01 / none). Tensors:
  w8a  (33, 131)  4323 elements: 8-bit state, 17 blocks of 256, the last partial; its first 300
                  gradient entries are zero on step 1 (a zero block: absmax 0)
  w8b  (4100,)    8-bit state, 17 blocks, the last of 4 elements; no weight decay
  small (5, 7)    below min_8bit_size 4096: bitsandbytes' 32-bit update
  model.embed_tokens.weight (65, 64)  4160 elements, 32-bit by the embedding override
Writes tests/fixtures/optim/adamw8bit.safetensors: qmap1/qmap2 (the maps as used: code[0] is -1
after quantize_cpu), init.<name>, grad<k>.<name> and param<k>.<name> for k = 1..STEPS, and the
final state: state1.<name>, state2.<name> (uint8) and absmax1/absmax2.<name> for the 8-bit tensors,
fp32 state1/state2 for the others (lr 2e-3, betas (0.9, 0.995), eps 1e-6, weight decay 0.01).
Reruns write byte-identical files. Gradient 3 is scaled by 0.5 before the step (clip_grad_norm_'s
in-place scaling: hone passes the factor to the update). Development only; ~2 s.
usage: optim8bit_ref.py
"""
import os

import bitsandbytes as bnb
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "optim", "adamw8bit.safetensors")
STEPS = 4
LR, BETAS, EPS, WD = 2e-3, (0.9, 0.995), 1e-6, 0.01

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


def main():
    g = torch.Generator().manual_seed(14)
    shapes = {"w8a": (33, 131), "w8b": (4100,), "small": (5, 7), "model.embed_tokens.weight": (65, 64)}
    params = {k: torch.nn.Parameter(torch.randn(s, generator=g) * 0.2) for k, s in shapes.items()}
    out = {f"init.{k}": p.detach().clone() for k, p in params.items()}
    mgr = bnb.optim.GlobalOptimManager.get_instance()
    mgr.register_parameters(list(params.values()))
    mgr.override_config(params["model.embed_tokens.weight"], "optim_bits", 32)
    decay = [params[k] for k in ("w8a", "small", "model.embed_tokens.weight")]
    opt = bnb.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": [params["w8b"]], "weight_decay": 0.0}],
                          lr=LR, betas=BETAS, eps=EPS, optim_bits=8)
    for step in range(1, STEPS + 1):
        for k, p in params.items():
            gr = torch.randn(p.shape, generator=g) * (0.05 if step % 2 else 0.3)
            if step == 1 and k == "w8a":
                gr.view(-1)[:300] = 0
            out[f"grad{step}.{k}"] = gr.clone()
            p.grad = gr * 0.5 if step == 3 else gr
        opt.step()
        for k, p in params.items():
            out[f"param{step}.{k}"] = p.detach().clone()
    for k, p in params.items():
        st = opt.state[p]
        for s in ("state1", "state2", "absmax1", "absmax2"):
            if s in st:
                out[f"{s}.{k}"] = st[s].clone()
        if "qmap1" in st:
            out["qmap1"], out["qmap2"] = st["qmap1"].clone(), st["qmap2"].clone()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # one metadata key: the writer orders several by a hash map, which would make reruns differ
    save_file({k: v.contiguous() for k, v in out.items()}, OUT, metadata={"format": "pt"})
    print(f"wrote {OUT}: " + ", ".join(f"{k} {str(st['state1'].dtype)}" for k, st in
                                     ((k, opt.state[p]) for k, p in params.items())))


if __name__ == "__main__":
    main()
