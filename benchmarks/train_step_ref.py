#!/usr/bin/env python3
"""train_step_ref.py — the PyTorch side of bench_train_step: one fp32 training step of a random-init
transformers LlamaForCausalLM built from a config.json, with torch.optim.AdamW and the same thread count.

  sft      batch 4 x 256, causal-LM loss: model(input_ids, labels=...).loss (transformers' loss).
  dpo_pre  TRL's DPOTrainer._compute_loss with loss_type sigmoid, beta 0.1: one forward over the
           concatenated [chosen; rejected] rows (prompt 128 + completion 128 each), per-sequence sums of
           the completion tokens' log-probs, reference log-probs precomputed (computed once up front by
           the policy under no_grad, as precompute_ref_log_probs does)
  dpo_ref  the same with a live reference model (a frozen copy) run under no_grad every step
  sft_lora the sft step on a PEFT LoRA model (r 16, alpha 32, dropout 0.05, all-linear), AdamW over the
           adapters only

--head logits (default): full logits and TRL's selective_log_softmax (gather - logsumexp), as TRL 0.x
computed per-token log-probs; --head trl: TRL 1.16's chunked fused LM head (trl.trainer.utils.
add_fused_lm_head, what SFTTrainer/DPOTrainer 1.16 call; SFT loss -sum(log_probs)/n_labels). On CPU the
fused head is the slower of the two (about 2.5x on the 15M config), so the default is the stronger peer.

One warm-up step, then --steps timed steps; prints one machine-readable line
  RESULT mode=M threads=N tokens=T step_s=S cpu_s=C tokens_per_s=X peak_rss_kb=K ...
(step_s: median wall seconds per step; cpu_s: median process CPU seconds per step, all threads)
(tokens: rows x length; for DPO chosen + rejected rows, the prompt counted in both, as TRL's num_tokens).
--bf16: the forward and the loss under torch.autocast("cpu", dtype=torch.bfloat16) (TRL's bf16=True on
CPU: accelerate's autocast), fp32 weights, gradients and AdamW.
--compile: torch.compile(model) (inductor, fp32; the warm-up step compiles, so it is not timed).
Usage: train_step_ref.py --config CONFIG.json --mode sft|dpo_pre|dpo_ref --threads N [--steps K] [--bf16] [--compile]
Development tool, never needed by the build."""
import argparse
import copy
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--mode", choices=["sft", "dpo_pre", "dpo_ref", "sft_lora"], required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--head", choices=["logits", "trl"], default="logits")
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--completion", type=int, default=128)
    ap.add_argument("--profile", action="store_true", help="print forward/backward/optimizer times")
    ap.add_argument("--bf16", action="store_true", help="autocast to bf16, as TRL's bf16=True")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (inductor; compiled in the warm-up step)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    with open(args.config) as f:
        cfg = json.load(f)
    cfg["torch_dtype"] = "float32"
    cfg.pop("dtype", None)
    config = LlamaConfig(**cfg)
    config.use_cache = False
    model = LlamaForCausalLM(config).float()
    model.train()
    V = config.vocab_size
    if args.mode == "sft_lora":
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.05,
                                                 target_modules="all-linear"))
        model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    run = torch.compile(model) if args.compile else model  # what the steps call

    g = torch.Generator().manual_seed(1)
    if args.mode in ("sft", "sft_lora"):
        if args.head == "trl":
            add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
        ids = torch.randint(3, V, (args.rows, args.seq), generator=g)
        tokens = args.rows * args.seq

        def step():
            if args.head == "trl":
                out = run(input_ids=ids, labels=ids, fused_lm_head=True)
                n = out.label_mask.sum().clamp(min=1)
                loss = -out.log_probs.sum() / n
            else:
                loss = run(input_ids=ids, labels=ids).loss
            return loss
    else:
        if args.head == "trl":
            add_fused_lm_head(model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
        ref = None
        if args.mode == "dpo_ref":
            ref = copy.deepcopy(model)
            ref.eval()
            for p in ref.parameters():
                p.requires_grad_(False)
            if args.head == "trl":
                add_fused_lm_head(ref)
        P, Cn = args.prompt, args.completion
        prompt = torch.randint(3, V, (args.rows, P), generator=g)
        chosen = torch.randint(3, V, (args.rows, Cn), generator=g)
        rejected = torch.randint(3, V, (args.rows, Cn), generator=g)
        # TRL's batch: [chosen rows; rejected rows], completion_mask 1 on completion tokens
        input_ids = torch.cat([torch.cat([prompt, chosen], 1), torch.cat([prompt, rejected], 1)], 0)
        attention_mask = torch.ones_like(input_ids)
        completion_mask = torch.cat([torch.zeros(2 * args.rows, P, dtype=torch.long),
                                     torch.ones(2 * args.rows, Cn, dtype=torch.long)], 1)
        labels = input_ids.masked_fill(completion_mask == 0, -100)
        tokens = int(attention_mask.sum())
        beta = 0.1
        kw = dict(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)

        shift_labels = labels[:, 1:]
        lmask = shift_labels != -100

        def seq_logps(m):
            if args.head == "trl":
                out = m(**kw, labels=labels, fused_lm_head=True)
                return out.log_probs[:, -(input_ids.size(1) - 1):].sum(dim=1)
            logits = m(**kw).logits[:, :-1]
            idx = shift_labels.clamp(min=0).unsqueeze(-1)
            # TRL's selective_log_softmax for fp32: gathered logit - logsumexp over the vocabulary
            per_token = torch.gather(logits, -1, idx).squeeze(-1) - torch.logsumexp(logits, dim=-1)
            return (per_token * lmask).sum(dim=1)

        ref_run = torch.compile(ref) if args.compile and ref is not None else ref
        pre = None
        if args.mode == "dpo_pre":
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                pre = seq_logps(run).chunk(2, dim=0)

        def step():
            logps = seq_logps(run)
            chosen_logps, rejected_logps = logps.chunk(2, dim=0)
            if pre is not None:
                ref_c, ref_r = pre
            else:
                with torch.no_grad():
                    ref_c, ref_r = seq_logps(ref_run).chunk(2, dim=0)
            delta = (chosen_logps - ref_c) - (rejected_logps - ref_r)
            return (-F.logsigmoid(beta * delta)).mean()

    times, cpus, prof = [], [], []
    for s in range(args.steps + 1):
        c0 = time.process_time()
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = step()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        if s > 0:
            times.append(t3 - t0)
            cpus.append(time.process_time() - c0)
            prof.append((t1 - t0, t2 - t1, t3 - t2))
    step_s = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.profile:
        f, b, o = (statistics.median(x) for x in zip(*prof))
        print(f"PROFILE forward {f:.3f} backward {b:.3f} optimizer {o:.3f}", file=sys.stderr)
    print(f"RESULT mode={args.mode} threads={args.threads} tokens={tokens} step_s={step_s:.6f} "
          f"cpu_s={statistics.median(cpus):.6f} tokens_per_s={tokens / step_s:.2f} peak_rss_kb={rss} torch={torch.__version__} head={args.head} bf16={int(args.bf16)} compile={int(args.compile)} loss={float(loss.detach()):.6f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
