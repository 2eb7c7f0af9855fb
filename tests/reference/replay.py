#!/usr/bin/env python3
"""Independent re-implementation of the TRL fixtures' training math in plain PyTorch (no TRL, no Trainer).

It reads only a case's data.jsonl + config.json, rebuilds the batches (padding, truncation, BFD packing),
the losses, clipping, schedule and AdamW exactly as tests/reference/README.md documents them, and compares
every step with expected.json.  It is the executable form of that documentation: what the C trainer must do.
Agreement to ~1e-6 relative shows the README describes TRL's behaviour completely.

usage: replay.py [CASE ...]      (default: every case under tests/fixtures/trl/)
"""
import json
import math
import os
import sys
from collections import defaultdict, deque

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trl_common as C  # noqa: E402


# ---------------------------------------------------------------------------------------------- model
def masked_forward(model, ids, pos, start):
    """Forward with an explicit (B,1,T,T) mask: query t sees keys attn_start[t] <= j <= t."""
    B, T = ids.shape
    j = torch.arange(T).view(1, 1, T)
    t = torch.arange(T).view(1, T, 1)
    ok = (j >= start.view(B, T, 1)) & (j <= t)
    m = torch.zeros(B, 1, T, T).masked_fill_(~ok.unsqueeze(1), torch.finfo(torch.float32).min)
    return model(input_ids=ids, position_ids=pos, attention_mask=m, use_cache=False).logits


def token_stats(logits, labels):
    """Shifted next-token statistics: position t predicts labels[t+1].  Returns per-token (B,T-1) tensors
    logp (0 where ignored), entropy, mean logit, is_top1, valid mask."""
    lg = logits[:, :-1].float()
    lab = labels[:, 1:]
    valid = lab != -100
    lsm = torch.log_softmax(lg, -1)
    logp = lsm.gather(-1, lab.clamp(min=0).unsqueeze(-1)).squeeze(-1) * valid
    with torch.no_grad():
        ent = -(lsm.exp() * lsm).sum(-1) * valid
        mean_logit = lg.mean(-1) * valid
        top1 = (lg.argmax(-1) == lab) & valid
    return logp, ent, mean_logit, top1, valid


# ---------------------------------------------------------------------------------------------- optimizer
class AdamW:
    """torch.optim.AdamW semantics (decoupled decay, bias correction, eps added after sqrt(v)/sqrt(bc2))."""

    def __init__(self, named_params, cfg):
        self.b1, self.b2, self.eps = cfg["adam_beta1"], cfg["adam_beta2"], cfg["adam_epsilon"]
        no_decay = set(cfg["optimizer"]["param_groups"][1]["params"]) if len(cfg["optimizer"]["param_groups"]) > 1 \
            else set()
        self.params = [(n, p, 0.0 if n in no_decay else cfg["weight_decay"]) for n, p in named_params]
        self.m = {n: torch.zeros_like(p) for n, p, _ in self.params}
        self.v = {n: torch.zeros_like(p) for n, p, _ in self.params}
        self.t = 0

    @torch.no_grad()
    def step(self, lr):
        self.t += 1
        bc1 = 1 - self.b1 ** self.t
        bc2 = 1 - self.b2 ** self.t
        for n, p, wd in self.params:
            g = p.grad
            p.mul_(1 - lr * wd)
            self.m[n].lerp_(g, 1 - self.b1)
            self.v[n].mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            denom = (self.v[n].sqrt() / math.sqrt(bc2)).add_(self.eps)
            p.addcdiv_(self.m[n], denom, value=-lr / bc1)


def lr_at(cfg, step0):
    """Learning rate used by optimizer step `step0` (0-based); this is also what TRL logs for step0+1."""
    N, lr = cfg.get("max_steps_resolved", cfg["max_steps"]), cfg["learning_rate"]
    W = cfg["warmup_steps_resolved"]
    kind = cfg["lr_scheduler_type"]
    if kind == "constant":
        return lr
    if step0 < W:
        return lr * step0 / max(1, W)
    if kind == "constant_with_warmup":
        return lr
    if kind == "linear":
        return lr * max(0.0, (N - step0) / max(1, N - W))
    if kind == "cosine":
        prog = (step0 - W) / max(1, N - W)
        return lr * max(0.0, 0.5 * (1 + math.cos(math.pi * prog)))
    raise ValueError(kind)


@torch.no_grad()
def clip(params, max_norm):
    """torch.nn.utils.clip_grad_norm_: total = ||(||g_i||)_i||_2, scale = min(1, max_norm / (total + 1e-6))."""
    grads = [p.grad for p in params]
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef)
    return float(total)


# ---------------------------------------------------------------------------------------------- SFT data
def bfd_pack(rows, seq_len):
    """TRL 1.16 _pack_bfd (truncate overflow): see README."""
    rows = [dict(r, input_ids=r["input_ids"][:seq_len], labels=r["labels"][:seq_len]) for r in rows
            if len(r["input_ids"]) > 0]
    order = sorted(range(len(rows)), key=lambda i: (-len(rows[i]["input_ids"]), i))
    bins, space_to_bin, spaces = [], defaultdict(deque), set()
    for i in order:
        L = len(rows[i]["input_ids"])
        fit = [s for s in spaces if s >= L]
        space = min(fit) if fit else seq_len
        if space < seq_len:
            b = space_to_bin[space].popleft()
            if not space_to_bin[space]:
                spaces.discard(space)
        else:
            b = {"ids": [], "length": 0}
            bins.append(b)
        b["ids"].append(i)
        b["length"] += L
        space -= L
        space_to_bin[space].append(b)
        if space > 0:
            spaces.add(space)
    out = []
    for b in bins:
        ids, lab, lens = [], [], []
        for i in b["ids"]:
            ids += rows[i]["input_ids"]
            lab += rows[i]["labels"]
            lens.append(len(rows[i]["input_ids"]))
        out.append({"input_ids": ids, "labels": lab, "seq_lengths": lens})
    return out


def sft_rows(cfg, data):
    rows = []
    for r in data:
        ids = r["input_ids"]
        lab = [t if (m or not cfg["completion_only_loss"]) else -100 for t, m in zip(ids, r["completion_mask"])]
        rows.append({"input_ids": ids, "labels": lab})
    if cfg["packing"]:
        return bfd_pack(rows, cfg["max_length"])  # no separate truncation/filter step when packing
    rows = [{"input_ids": r["input_ids"][:cfg["max_length"]], "labels": r["labels"][:cfg["max_length"]]}
            for r in rows]
    return [r for r in rows if any(x != -100 for x in r["labels"])]


def sft_collate(cfg, rows):
    """-> input_ids, position_ids, attn_start, labels (B,T) and the token count num_tokens logs."""
    pad = cfg["pad_token_id"]
    if cfg["packing"]:  # padding-free: every row of the micro-batch flattened into ONE sequence
        ids, lab, pos = [], [], []
        for r in rows:
            for L in r["seq_lengths"]:
                pos += list(range(L))
            ids += r["input_ids"]
            lab += r["labels"]
        start, cur = [], 0
        for t, p in enumerate(pos):
            if p == 0:
                cur = t
            start.append(cur)
        lab = [-100 if p == 0 else x for x, p in zip(lab, pos)]
        T = torch.tensor
        return T([ids]), T([pos]), T([start]), T([lab]), len(ids)
    T = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), T), pad)
    lab = torch.full((len(rows), T), -100)
    start = torch.zeros(len(rows), T, dtype=torch.long)
    n = 0
    for b, r in enumerate(rows):
        L = len(r["input_ids"])
        ids[b, :L] = torch.tensor(r["input_ids"])
        lab[b, :L] = torch.tensor(r["labels"])
        start[b, L:] = torch.arange(L, T)  # pads see only themselves (they carry no label)
        n += L
    pos = torch.arange(T).expand(len(rows), T)
    return ids, pos, start, lab, n


def step_groups(cfg, rows):
    """Optimizer steps as lists of micro-batches (lists of rows): each epoch walks the rows in order in
    micro-batches of per_device_train_batch_size (the last may be smaller) and groups them by
    gradient_accumulation_steps (the epoch's last step may have fewer micro-batches); epochs repeat in the
    same order until max_steps_resolved steps."""
    B, GA = cfg["per_device_train_batch_size"], cfg["gradient_accumulation_steps"]
    epoch = [rows[i:i + B] for i in range(0, len(rows), B)]
    steps, N = [], cfg.get("max_steps_resolved", cfg["max_steps"])
    while len(steps) < N:
        for i in range(0, len(epoch), GA):
            if len(steps) < N:
                steps.append(epoch[i:i + GA])
    return steps


@torch.no_grad()
def sft_eval(cfg, model, eval_data, train_tokens):
    """Trainer.evaluate: model.eval(); per eval batch the token-mean NLL (SFT passes no num_items_in_batch);
    eval_loss = mean over batches weighted by the number of dataset rows in each batch (the Trainer repeats a
    batch's loss eval_batch_size times and accelerate's gather_for_metrics cuts the last batch's copies to
    the rows it really had); entropy and accuracy: unweighted mean over batches; eval_num_tokens = training
    tokens so far."""
    rows = sft_rows(cfg, eval_data)
    EB = cfg["per_device_eval_batch_size"]
    model.eval()
    losses, ents, accs = [], [], []
    for i in range(0, len(rows), EB):
        ids, pos, start, lab, _ = sft_collate(cfg, rows[i:i + EB])
        logp, ent, _, top1, valid = token_stats(masked_forward(model, ids, pos, start), lab)
        nv = int(valid.sum())
        losses.append((float(-logp.sum()) / max(nv, 1), len(rows[i:i + EB])))
        ents.append(float(ent.sum()) / nv if nv else 0.0)
        accs.append(float(top1.sum()) / nv if nv else 0.0)
    model.train()
    return {"eval_loss": sum(v * n for v, n in losses) / sum(n for _, n in losses), "eval_entropy": sum(ents) / len(ents),
            "eval_mean_token_accuracy": sum(accs) / len(accs), "eval_num_tokens": float(train_tokens)}


def replay_sft(cfg, data, model, eval_data=None):
    rows = sft_rows(cfg, data)
    opt = AdamW(list(model.named_parameters()), cfg)
    params = [p for _, p in model.named_parameters()]
    out, evals, total_tokens = [], [], 0
    do_eval = eval_data is not None and cfg.get("eval_strategy") == "steps"
    if do_eval and cfg.get("eval_on_start"):
        evals.append(sft_eval(cfg, model, eval_data, 0))
    for s, group in enumerate(step_groups(cfg, rows)):
        mbs = [sft_collate(cfg, b) for b in group]
        n_items = sum(int((m[3][:, 1:] != -100).sum()) for m in mbs)
        loss_sum, ents, accs = 0.0, [], []
        for ids, pos, start, lab, ntok in mbs:
            logits = masked_forward(model, ids, pos, start)
            logp, ent, _, top1, valid = token_stats(logits, lab)
            loss = -logp.sum() / n_items
            loss.backward()
            loss_sum += float(loss)
            nv = int(valid.sum())
            ents.append(float(ent.sum()) / nv if nv else 0.0)
            accs.append(float(top1.sum()) / nv if nv else 0.0)
            total_tokens += ntok
        gn = clip(params, cfg["max_grad_norm"])
        lr = lr_at(cfg, s)
        opt.step(lr)
        model.zero_grad(set_to_none=False)
        out.append({"loss": loss_sum, "grad_norm": gn, "learning_rate": lr, "entropy": sum(ents) / len(ents),
                    "mean_token_accuracy": sum(accs) / len(accs), "num_tokens": float(total_tokens)})
        if do_eval and (s + 1) % cfg["eval_steps"] == 0:
            evals.append(sft_eval(cfg, model, eval_data, total_tokens))
    return out, evals


# ---------------------------------------------------------------------------------------------- compare
def compare(case, got, exp):
    """Worst relative difference per metric (|got - exp| / |exp|) and worst absolute difference."""
    rel, ab = {}, {}
    for g, e in zip(got, exp["steps"]):
        for k, v in g.items():
            ev = e[k]
            d = abs(v - ev)
            ab[k] = max(ab.get(k, 0.0), d)
            rel[k] = max(rel.get(k, 0.0), d / abs(ev) if ev != 0 else (0.0 if d == 0 else float("inf")))
    print(f"{case} ({len(got)} steps): " + ", ".join(f"{k} {rel[k]:.1e} rel / {ab[k]:.1e} abs" for k in rel))
    return rel


def main():
    cases = sys.argv[1:] or sorted(os.listdir(C.FIX_TRL))
    bad = 0
    for case in cases:
        d = os.path.join(C.FIX_TRL, case)
        cfg = json.load(open(os.path.join(d, "config.json")))
        exp = json.load(open(os.path.join(d, "expected.json")))
        data = [json.loads(line) for line in open(os.path.join(d, "data.jsonl"))]
        path = C.TINY_LLAMA if "tiny-llama" in cfg["model"] else C.STORIES_DIR
        torch.manual_seed(0)
        model = C.load_model(path)
        model.train()
        ev = os.path.join(d, "eval.jsonl")
        eval_data = [json.loads(line) for line in open(ev)] if os.path.exists(ev) else None
        if cfg["trainer"] == "SFTTrainer":
            got, evals = replay_sft(cfg, data, model, eval_data)
        else:
            import dpo_replay
            got, evals = dpo_replay.replay_dpo(cfg, data, model, path, eval_data)
        worst = compare(case, got, exp)
        if evals:
            compare(case + " eval", evals, {"steps": exp["eval"]})
        bad += worst["loss"] > 1e-4 or worst["grad_norm"] > 1e-4
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
