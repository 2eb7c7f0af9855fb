#!/usr/bin/env python3
"""LoRA interop fixtures (issue 14): an adapter hone writes, read by PEFT; hone's merge, read by transformers.

Needs ./hone built and ../shared (stories260K).  Steps:
  1. `hone convert llama2c` stories260K (+ tok512.model) into a temp dir;
  2. `hone sft` with use_peft (r 4, alpha 8, all-linear, dropout 0, 6 steps on prompt/completion rows) ->
     hone's adapter directory (final/);
  3. copies that adapter (adapter_config.json, adapter_model.safetensors, as hone wrote them but
     base_model_name_or_path set to "stories260K") to tests/fixtures/lora/hone-stories260K/;
  4. PeftModel.from_pretrained(base, adapter) on the batch of tests/fixtures/parity/stories260K.safetensors
     -> peft_logits;
  5. `hone merge final/ merged/`, then AutoModelForCausalLM.from_pretrained(merged/) on the same batch
     -> merged_logits;
  6. writes tests/fixtures/lora/hone-stories260K.safetensors (the batch, peft_logits, merged_logits).
The C test (test_lora.c) loads the committed adapter in hone and compares hone's logits with both.
This script also prints PEFT vs transformers-on-merge directly.

usage: lora_interop.py [--hone ./hone]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures")
SHARED = os.path.join(ROOT, "..", "shared")
sys.path.insert(0, HERE)
from model_ref import additive_mask  # noqa: E402

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


def logits_of(model, fx):
    with torch.no_grad():
        return model(input_ids=fx["input_ids"].long(), position_ids=fx["position_ids"].long(),
                     attention_mask=additive_mask(fx["attn_start"].long()), use_cache=False).logits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hone", default=os.path.join(ROOT, "hone"))
    a = ap.parse_args()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tmp = tempfile.mkdtemp(prefix="hone-interop-")
    base = os.path.join(tmp, "base")
    sdir = os.path.join(SHARED, "models", "stories260K")
    subprocess.run([a.hone, "convert", "llama2c", os.path.join(sdir, "stories260K.bin"), base, "--tokenizer",
                    os.path.join(sdir, "tok512.model")], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(tmp, "sft.jsonl"), "w") as f:
        for i, (p, c) in enumerate([("Lily had a red ball.", " She threw it to her dog."),
                                    ("Tom saw a big tree.", " He wanted to climb it."),
                                    ("The cat was hungry.", " It ate some fish.")] * 8):
            f.write(json.dumps({"prompt": p, "completion": c}) + "\n")
    with open(os.path.join(tmp, "sft.yaml"), "w") as f:
        f.write(f"model_name_or_path: {base}\noutput_dir: {tmp}/run\nuse_peft: true\nlora_r: 4\nlora_alpha: 8\n"
                f"lora_dropout: 0.0\nlora_target_modules: all-linear\nlearning_rate: 1.0e-2\nmax_steps: 6\n"
                f"per_device_train_batch_size: 4\nmax_length: 32\nthreads: 1\nseed: 3\n"
                f"datasets:\n  - path: {tmp}/sft.jsonl\n")
    subprocess.run([a.hone, "sft", os.path.join(tmp, "sft.yaml")], check=True, stderr=subprocess.DEVNULL)
    final = os.path.join(tmp, "run", "final")
    merged = os.path.join(tmp, "merged")
    subprocess.run([a.hone, "merge", final, merged], check=True, stdout=subprocess.DEVNULL)

    fx = load_file(os.path.join(FIX, "parity", "stories260K.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation="eager")
    peft_model = PeftModel.from_pretrained(model, final).eval()
    peft_logits = logits_of(peft_model, fx)
    mm = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32, attn_implementation="eager").eval()
    merged_logits = logits_of(mm, fx)
    d = (peft_logits - merged_logits).abs().max().item() / peft_logits.abs().max().item()
    b0 = logits_of(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation="eager").eval(), fx)
    moved = (peft_logits - b0).abs().max().item()
    print(f"PEFT(hone adapter) vs transformers(hone merge): max diff / max|logit| {d:.3g}; "
          f"the adapter moves the logits by up to {moved:.3g}")

    out = os.path.join(FIX, "lora", "hone-stories260K")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for n in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(os.path.join(final, n), out)
    cp = os.path.join(out, "adapter_config.json")
    with open(cp) as f:
        ac = json.load(f)
    ac["base_model_name_or_path"] = "stories260K"
    with open(cp, "w") as f:
        json.dump(ac, f, indent=2, sort_keys=True)
    t = {k: fx[k] for k in ("input_ids", "position_ids", "attn_start", "labels")}
    t["peft_logits"] = peft_logits.contiguous()
    t["merged_logits"] = merged_logits.contiguous()
    save_file(t, os.path.join(FIX, "lora", "hone-stories260K.safetensors"))
    print(f"wrote {out} and {out}.safetensors")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
