"""generate_ref.py — transformers generation speed (PyTorch, CPU) for bench_generate.

Usage: generate_ref.py MODEL_DIR PROMPT_TOKENS NEW_TOKENS [--dtype float32|bfloat16] THREADS...
MODEL_DIR holds a config.json (random init when there is no model.safetensors) or a
whole saved model. For each thread count prints one JSON line:
{"threads", "prefill_tps", "decode_tps"}: prefill = one forward over the prompt with
use_cache; decode = (time of generate(greedy, exactly NEW_TOKENS) - time of generate(1 token))
/ (NEW_TOKENS - 1), so the prompt pass and generate's set-up cancel. Best of 2 after a warm-up."""
import json, os, sys, time
import torch
from transformers import AutoConfig, AutoModelForCausalLM

d, P, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rest = sys.argv[4:]
dtype = torch.float32
if rest[:1] == ["--dtype"]:
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[rest[1]]
    rest = rest[2:]
threads = [int(x) for x in rest] or [1]
torch.manual_seed(0)
if os.path.exists(os.path.join(d, "model.safetensors")):
    model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=dtype)
else:
    cfg = AutoConfig.from_pretrained(d)
    cfg.torch_dtype = dtype
    model = AutoModelForCausalLM.from_config(cfg, torch_dtype=dtype)
model.eval()
V = model.config.vocab_size
ids = torch.randint(3, V, (1, P))
mask = torch.ones_like(ids)
for t in threads:
    torch.set_num_threads(t)
    best_pf, best_gen, best_one = 1e30, 1e30, 1e30

    def gen(n):
        t0 = time.perf_counter()
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                       pad_token_id=0, eos_token_id=None)
        return time.perf_counter() - t0

    with torch.inference_mode():
        for rep in range(3):
            t0 = time.perf_counter()
            model(input_ids=ids, attention_mask=mask, use_cache=True)
            pf = time.perf_counter() - t0
            one, full = gen(1), gen(N)
            if rep > 0:
                best_pf, best_one, best_gen = min(best_pf, pf), min(best_one, one), min(best_gen, full)
    dec = max(best_gen - best_one, 1e-9)
    print(json.dumps({"threads": t, "prefill_tps": P / best_pf, "decode_tps": (N - 1) / dec}), flush=True)
