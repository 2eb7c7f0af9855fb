"""Plain-PyTorch replay of the DPO fixtures (used by replay.py): the DPO math of TRL 1.16 written out
from tests/reference/README.md, independent of TRL."""
import math

import torch
import torch.nn.functional as F

import trl_common as C
from replay import AdamW, clip, lr_at, masked_forward, token_stats


def dpo_rows(cfg, data):
    # keep_start truncation: pairs whose prompt alone fills max_length are dropped before training
    return [r for r in data if cfg["max_length"] is None or len(r["prompt_input_ids"]) < cfg["max_length"]]


def dpo_collate(cfg, rows):
    """[chosen_0..chosen_{B-1}, rejected_0..rejected_{B-1}], each prompt+completion truncated to max_length
    (keep_start), right-padded to the longest of the 2B -> ids, attn_start, attention_mask, completion_mask."""
    seqs, cm = [], []
    for key in ("chosen_input_ids", "rejected_input_ids"):
        for r in rows:
            p, c = r["prompt_input_ids"], r[key]
            seqs.append((p + c)[:cfg["max_length"]])
            cm.append(([0] * len(p) + [1] * len(c))[:cfg["max_length"]])
    T = max(len(s) for s in seqs)
    n = len(seqs)
    ids = torch.full((n, T), cfg["pad_token_id"])
    am = torch.zeros(n, T, dtype=torch.long)
    cmask = torch.zeros(n, T, dtype=torch.long)
    start = torch.zeros(n, T, dtype=torch.long)
    for b, (s, m) in enumerate(zip(seqs, cm)):
        L = len(s)
        ids[b, :L] = torch.tensor(s)
        am[b, :L] = 1
        cmask[b, :L] = torch.tensor(m)
        start[b, L:] = torch.arange(L, T)
    return ids, start, am, cmask


def seq_logps(cfg, per_tok, shift_cm):
    if cfg["ld_alpha"] is None:
        return per_tok.sum(1)
    pos = shift_cm.cumsum(1)
    lens = shift_cm.sum(1)
    lc, lr = lens.chunk(2)
    shared = torch.minimum(lc, lr).repeat(2).unsqueeze(1)
    sm = (pos > 0) & (pos <= shared)
    tm = pos > shared
    return (per_tok * sm).sum(1) + cfg["ld_alpha"] * (per_tok * tm).sum(1)


def scores(cfg, lr_):
    f = cfg["f_divergence_type"]
    if f == "reverse_kl":
        return lr_
    if f == "forward_kl":
        return 1 - torch.exp(-lr_)
    if f == "js_divergence":
        return math.log(2) + F.logsigmoid(lr_)
    a = cfg["f_alpha_divergence_coef"]
    return (torch.exp(torch.clamp((a - 1) * lr_, max=80.0)) - 1) / (a - 1)


def dpo_loss(cfg, lt, c_lp, r_lp, rc, rr, cm, shift_cm, per_tok):
    beta, ls = cfg["beta"], cfg["label_smoothing"]
    cl, rl = c_lp - rc, r_lp - rr
    cs, rs = scores(cfg, cl), scores(cfg, rl)
    d = cs - rs
    cmk, rmk = cm.chunk(2)
    if lt == "sigmoid":
        return -F.logsigmoid(beta * d)
    if lt == "hinge":
        return torch.relu(1 - beta * d)
    if lt == "ipo":
        x = cs / cmk.sum(1).clamp(min=1) - rs / rmk.sum(1).clamp(min=1)
        return (x - 1 / (2 * beta)) ** 2
    if lt == "exo_pair":
        return (torch.sigmoid(beta * d) * (F.logsigmoid(beta * d) - math.log1p(-ls))
                + torch.sigmoid(-beta * d) * (F.logsigmoid(-beta * d) - math.log(ls)))
    if lt == "nca_pair":
        return -F.logsigmoid(beta * cl) - 0.5 * F.logsigmoid(-beta * cl) - 0.5 * F.logsigmoid(-beta * rl)
    if lt == "robust":
        return (-(1 - ls) * F.logsigmoid(beta * d) + ls * F.logsigmoid(-beta * d)) / (1 - 2 * ls)
    if lt == "bco_pair":
        return -F.logsigmoid(beta * cl) - F.logsigmoid(-beta * rl)
    if lt == "sppo_hard":
        return (cl - 0.5 / beta) ** 2 + (rl + 0.5 / beta) ** 2
    if lt in ("aot", "aot_unpaired"):
        if lt == "aot":
            delta = torch.sort(c_lp - r_lp)[0] - torch.sort(rc - rr)[0]
        else:
            delta = torch.sort(cl)[0] - torch.sort(rl)[0]
        return -F.logsigmoid(beta * delta) * (1 - ls) - F.logsigmoid(-beta * delta) * ls
    if lt == "apo_zero":
        return 1 - torch.sigmoid(beta * cl) + torch.sigmoid(beta * rl)
    if lt == "apo_down":
        return torch.sigmoid(beta * cl) + 1 - torch.sigmoid(beta * (cl - rl))
    if lt == "discopop":
        z = beta * d
        mod = torch.sigmoid(z / cfg["discopop_tau"])
        return -F.logsigmoid(z) * (1 - mod) + torch.exp(-z) * mod
    if lt == "sft":
        ch_mask, _ = shift_cm.chunk(2)
        ch_tok, _ = per_tok.chunk(2)
        return (-ch_tok[ch_mask.bool()].mean()).expand(c_lp.size(0))
    if lt == "sigmoid_norm":
        x = cs / cmk.sum(1).clamp(min=1) - rs / rmk.sum(1).clamp(min=1)
        return -F.logsigmoid(beta * x)
    raise ValueError(lt)


METRICS = ("entropy", "logits/chosen", "logits/rejected", "mean_token_accuracy", "rewards/chosen",
           "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected")


def precompute(cfg, model, rows, batch):
    """Reference logps of every pair with `model`, in order, in batches of `batch` pairs."""
    pre = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            ids, start, am, cm = dpo_collate(cfg, rows[i:i + batch])
            lab = ids.masked_fill(cm == 0, -100)
            pos = torch.arange(ids.size(1)).expand_as(ids)
            lp = token_stats(masked_forward(model, ids, pos, start), lab)[0]
            c, r = seq_logps(cfg, lp, cm[:, 1:]).chunk(2)
            pre += list(zip(c.tolist(), r.tolist()))
    return pre


def micro_batch(cfg, model, ref, pre, rows):
    """One DPO micro-batch: -> (loss tensor, metrics dict, attention-mask token count).  `pre`: the rows'
    precomputed (ref_chosen, ref_rejected) or None (then `ref` model, or zeros when ref is None)."""
    ids, start, am, cm = dpo_collate(cfg, rows)
    pos = torch.arange(ids.size(1)).expand_as(ids)
    lab = ids.masked_fill(cm == 0, -100)
    shift_cm = cm[:, 1:]
    logits = masked_forward(model, ids, pos, start)
    per_tok, ent, mlog, top1, _ = token_stats(logits, lab)
    c_lp, r_lp = seq_logps(cfg, per_tok, shift_cm).chunk(2)
    if pre is not None:
        rc = torch.tensor([p[0] for p in pre])
        rr = torch.tensor([p[1] for p in pre])
    elif ref is None:
        rc = rr = torch.zeros_like(c_lp)
    else:
        with torch.no_grad():
            rlp = token_stats(masked_forward(ref, ids, pos, start), lab)[0]
            rc, rr = seq_logps(cfg, rlp, shift_cm).chunk(2)
    weights = cfg["loss_weights"] or [1.0] * len(cfg["loss_type"])
    loss = 0.0
    for lt, w in zip(cfg["loss_type"], weights):
        per_seq = dpo_loss(cfg, lt, c_lp, r_lp, rc, rr, cm, shift_cm, per_tok)
        if cfg["use_weighting"]:
            with torch.no_grad():
                lsm = torch.log_softmax(logits[:, :-1].float(), -1)
                lssp = torch.logsumexp(2 * lsm, -1)  # log sum_v p_v^2
                al = (per_tok - lssp) * shift_cm
            wts = torch.exp(al.sum(1) / shift_cm.sum(1).clamp_min(1))
            cw, rw = wts.chunk(2)
            per_seq = per_seq * cw * rw
        loss = loss + per_seq.mean() * w
    m = {}
    m["entropy"] = float((ent * shift_cm).sum()) / int(shift_cm.sum())
    cmk, rmk = shift_cm.chunk(2)
    ml_c, ml_r = mlog.chunk(2)
    m["logits/chosen"] = float(ml_c[cmk.bool()].sum()) / int(cmk.sum())
    m["logits/rejected"] = float(ml_r[rmk.bool()].sum()) / int(rmk.sum())
    t1c, _ = top1.chunk(2)
    m["mean_token_accuracy"] = float((t1c & cmk.bool()).sum()) / int(cmk.sum())
    cr = cfg["beta"] * (c_lp - rc).detach()
    rr_ = cfg["beta"] * (r_lp - rr).detach()
    m["rewards/chosen"] = float(cr.mean())
    m["rewards/rejected"] = float(rr_.mean())
    m["rewards/accuracies"] = float((cr > rr_).float().mean())
    m["rewards/margins"] = float((cr - rr_).mean())
    m["logps/chosen"] = float(c_lp.mean())
    m["logps/rejected"] = float(r_lp.mean())
    return loss, m, int(am.sum())


@torch.no_grad()
def dpo_eval(cfg, model, ref, pre, rows, train_tokens):
    """Like SFT's evaluation: eval_loss weighted by pairs per batch, other metrics unweighted means."""
    EB = cfg["per_device_eval_batch_size"]
    model.eval()
    losses, acc = [], {k: [] for k in METRICS}
    for i in range(0, len(rows), EB):
        loss, m, _ = micro_batch(cfg, model, ref, pre[i:i + EB] if pre is not None else None, rows[i:i + EB])
        losses.append((float(loss), len(rows[i:i + EB])))
        for k in METRICS:
            acc[k].append(m[k])
    model.train()
    out = {"eval_loss": sum(v * n for v, n in losses) / sum(n for _, n in losses),
           "eval_num_tokens": float(train_tokens)}
    out.update({"eval_" + k: sum(v) / len(v) for k, v in acc.items()})
    return out


def replay_dpo(cfg, data, model, path, eval_data=None):
    rows = dpo_rows(cfg, data)
    eval_rows = dpo_rows(cfg, eval_data) if eval_data else None
    B, GA = cfg["per_device_train_batch_size"], cfg["gradient_accumulation_steps"]
    mode = cfg["reference_mode"]
    ref = C.load_model(path).eval() if mode in ("ref_model", "precompute") else None
    batches = [rows[i:i + B] for i in range(0, len(rows), B)]
    pre = eval_pre = None
    if mode == "precompute":  # one pass with the initial policy before training
        pre = precompute(cfg, ref, rows, cfg["precompute_ref_batch_size"] or B)
        if eval_rows:
            eval_pre = precompute(cfg, ref, eval_rows,
                                  cfg["precompute_ref_batch_size"] or cfg["per_device_eval_batch_size"])
        ref = None
    elif mode == "reference_free":
        pre = [(0.0, 0.0)] * len(rows)
        eval_pre = [(0.0, 0.0)] * len(eval_rows or [])
    opt = AdamW(list(model.named_parameters()), cfg)
    params = [p for _, p in model.named_parameters()]
    out, evals, total_tokens = [], [], 0
    do_eval = eval_rows is not None and cfg.get("eval_strategy") == "steps"
    if do_eval and cfg.get("eval_on_start"):
        evals.append(dpo_eval(cfg, model, ref, eval_pre, eval_rows, 0))
    for s in range(cfg["max_steps"]):
        acc = {k: [] for k in METRICS}
        loss_sum = 0.0
        for mb in range(GA):
            bi = s * GA + mb
            mpre = pre[bi * B:bi * B + len(batches[bi])] if pre is not None else None
            loss, m, ntok = micro_batch(cfg, model, ref, mpre, batches[bi])
            (loss / GA).backward()
            loss_sum += float(loss.detach()) / GA
            total_tokens += ntok
            for k in METRICS:
                acc[k].append(m[k])
        gn = clip(params, cfg["max_grad_norm"])
        lr = lr_at(cfg, s)
        opt.step(lr)
        model.zero_grad(set_to_none=False)
        if cfg["sync_ref_model"] and (s + 1) % cfg["ref_model_sync_steps"] == 0:
            a = cfg["ref_model_mixup_alpha"]
            with torch.no_grad():
                for rp, pp in zip(ref.parameters(), model.parameters()):
                    rp.mul_(1 - a).add_(pp, alpha=a)
        row = {"loss": loss_sum, "grad_norm": gn, "learning_rate": lr, "num_tokens": float(total_tokens)}
        row.update({k: sum(v) / len(v) for k, v in acc.items()})
        out.append(row)
        if do_eval and (s + 1) % cfg["eval_steps"] == 0:
            evals.append(dpo_eval(cfg, model, ref, eval_pre, eval_rows, total_tokens))
    return out, evals
