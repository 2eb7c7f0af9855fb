#!/usr/bin/env python3
"""Check that a model directory written by hone reloads in transformers with the fixture's logits.

usage: check_roundtrip.py MODEL_DIR [FIXTURE.safetensors] [--tol 1e-5]

MODEL_DIR is what hone wrote (config.json + model.safetensors or a sharded index).  FIXTURE defaults to
tests/fixtures/parity/<basename of MODEL_DIR>.safetensors.  The model is loaded with from_pretrained
(fp32, eager attention) and run on the fixture's batch with the same explicit 4D mask and position ids
that model_ref.py used; prints max abs and max relative (abs diff / max |logit|) differences and exits
1 when the relative difference exceeds --tol.  Also reports whether every fixture gradient name is a
parameter of the reloaded model (the names hone writes must be the HF names).
"""
import argparse
import os
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_ref import FIX, additive_mask  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("fixture", nargs="?")
    ap.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM

    fx_path = args.fixture or os.path.join(
        FIX, "parity", os.path.basename(os.path.normpath(args.model_dir)) + ".safetensors")
    fx = load_file(fx_path)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    ids = fx["input_ids"].long()
    pos = fx["position_ids"].long()
    with torch.no_grad():
        logits = model(input_ids=ids, position_ids=pos, attention_mask=additive_mask(fx["attn_start"].long()),
                       use_cache=False).logits
    ref = fx["logits"]
    d = (logits - ref).abs().max().item()
    rel = d / ref.abs().max().item()
    names = {n for n, _ in model.named_parameters()}
    missing = [k[5:] for k in fx if k.startswith("grad.") and k[5:] not in names]
    print(f"{args.model_dir} vs {fx_path}: max abs diff {d:.3g}, max rel diff {rel:.3g} "
          f"(tol {args.tol:g}); parameter names missing: {missing or 'none'}")
    ok = rel <= args.tol and not missing
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
