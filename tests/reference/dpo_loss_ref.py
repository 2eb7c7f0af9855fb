#!/usr/bin/env python3
"""dpo_loss_ref.py — writes tests/fixtures/dpo_loss.json, the reference for src/train/dpo_loss.c.

Runs TRL's own DPO loss code, `DPOTrainer._compute_loss` from the installed TRL (1.16), on random
per-token completion log-probabilities for every loss type and option combination, and records the
batch loss, the gradient of the loss with respect to every policy per-token log-prob (torch
autograd), and TRL's metrics.

How TRL's code is reached without a model: `_compute_loss` is a method of a trainer instance and
calls `model(...)` for per-token log-probs. We create the instance with `DPOTrainer.__new__` (no
__init__, so no model, tokenizer or dataset) and set the attributes `_compute_loss` reads; the
"model" is a stub returning a leaf tensor of per-token log-probs that requires grad, laid out as
TRL's collator lays out a batch: (2P, T) with rows [chosen..., rejected...], prompts left-padded,
completions right-padded, log_probs of shape (2P, T-1) zero where the next-token label is -100.
The reference log-probs go through the `precompute_ref_log_probs=True` path (`inputs[
"ref_chosen_logps"]`), so the stub is only called for the policy.

One patch, for float64: `_compute_loss` picks the alpha-divergence clamp from a dict keyed by
float16/bfloat16/float32 only; we exec TRL's own source of the method with `torch.float64: 80.0`
added to that dict (the value float32 uses) so that everything runs in float64. The method is
otherwise TRL's text, byte for byte (asserted).

Options TRL 1.16 no longer has (implemented in hone after TRL 0.24.0, trl/trainer/dpo_trainer.py):
  rpo_alpha      0.24 adds rpo_alpha * nll_loss (mean NLL of the chosen completion tokens) before the
                 WPO weighting; 1.16 expresses exactly this as loss type "sft" with weight rpo_alpha,
                 so the reference appends ("sft", rpo_alpha) to TRL 1.16's loss list.
  reference_free 0.24 drops the reference log-probs (treats them as 0); the reference passes zeros.
  bco_pair with the running reward mean (0.24's RunningMoments, delta subtracted from both rewards):
                 -logsig(b*lc - d) - logsig(-(b*lr - d)) equals 1.16's bco_pair with both reference
                 log-probs shifted by +d/b, so TRL 1.16 is called with shifted reference log-probs and
                 d tracked by RunningMoments.update's single-process arithmetic (below), the
                 metrics taken from an unshifted call.

Usage: /work/venv/bin/python tests/reference/dpo_loss_ref.py [OUT.json]
"""
import inspect
import json
import math
import sys
import textwrap
from collections import defaultdict
from types import SimpleNamespace

import torch
import trl
from trl.trainer import dpo_trainer as dpo_mod
from trl.trainer.dpo_trainer import DPOTrainer

torch.set_default_dtype(torch.float64)

# --- TRL's _compute_loss, exec'd with the float64 clamp entry added --------------------------------
_src = textwrap.dedent(inspect.getsource(DPOTrainer._compute_loss))
_old = "{torch.float16: 11.0, torch.bfloat16: 80.0, torch.float32: 80.0}[dtype]"
assert _src.count(_old) == 1, "TRL's alpha-divergence clamp table changed; update the patch"
_src = _src.replace(_old, "{torch.float16: 11.0, torch.bfloat16: 80.0, torch.float32: 80.0, torch.float64: 80.0}[dtype]")
_ns = dict(vars(dpo_mod))
exec(compile(_src, "trl_dpo_compute_loss_f64", "exec"), _ns)
trl_compute_loss = _ns["_compute_loss"]

# TRL 1.16 bug: with use_weighting, `per_sequence_loss *= weights` is in place, which autograd rejects when
# the loss tensor is saved for backward (hinge: relu's output) or is an expanded view (sft). For those
# combinations only, the fixture uses the out-of-place product that the in-place one means to compute
# (marked "trl_inplace_bug" in the fixture); every other case runs the text above.
_old_w = "per_sequence_loss *= chosen_weights * rejected_weights"
assert _src.count(_old_w) == 1, "TRL's WPO weighting line changed; update the patch"
_ns_fixed = dict(vars(dpo_mod))
exec(compile(_src.replace(_old_w, "per_sequence_loss = per_sequence_loss * (chosen_weights * rejected_weights)"),
             "trl_dpo_compute_loss_f64_wpo_fixed", "exec"), _ns_fixed)
trl_compute_loss_wpo_fixed = _ns_fixed["_compute_loss"]


class StubModel:
    """Stands in for the policy: returns the per-token log-probs it was given (TRL's fused head output)."""

    training = True

    def __init__(self, log_probs, log_sum_sq_probs):
        self.log_probs = log_probs
        self.log_sum_sq_probs = log_sum_sq_probs

    def __call__(self, **kwargs):
        z = torch.zeros_like(self.log_probs).detach()
        return SimpleNamespace(
            log_probs=self.log_probs,
            entropy=z,
            mean_logits=z,
            is_top1=torch.zeros(z.shape, dtype=torch.bool),
            log_sum_sq_probs=self.log_sum_sq_probs,
            aux_loss=None,
        )


def make_trainer(opts):
    tr = DPOTrainer.__new__(DPOTrainer)
    loss_types = list(opts["loss_type"])
    weights = list(opts["loss_weights"]) if opts["loss_weights"] is not None else [1.0] * len(loss_types)
    if opts["rpo_alpha"] is not None:  # 0.24's RPO term == 1.16's "sft" term (see header)
        loss_types.append("sft")
        weights.append(opts["rpo_alpha"])
    tr.beta = opts["beta"]
    tr.loss_types = loss_types
    tr.loss_weights = weights
    tr.ld_alpha = opts["ld_alpha"]
    tr.f_divergence_type = opts["f_divergence_type"]
    tr.f_alpha_divergence_coef = opts["f_alpha_divergence_coef"]
    tr.label_smoothing = opts["label_smoothing"]
    tr.use_weighting = opts["use_weighting"]
    tr.precompute_ref_logps = True
    tr.aux_loss_enabled = False
    tr._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    tr._total_train_tokens = 0
    tr._tp_size = 1
    tr.model = SimpleNamespace(training=True)  # read for the train/eval metrics key
    tr.args = SimpleNamespace(discopop_tau=opts["discopop_tau"], gradient_checkpointing_kwargs=None)
    tr.accelerator = SimpleNamespace(device=torch.device("cpu"), gather=lambda x: x, gather_for_metrics=lambda x: x)
    return tr


def run_trl(opts, s, ref_c, ref_r):
    """Runs TRL on input set s; returns loss, per-token grads (lists per sequence) and metrics."""
    P = s["P"]
    seqs = s["chosen_logp"] + s["rejected_logp"]
    lssps = s["chosen_lssp"] + s["rejected_lssp"]
    ns = [len(x) for x in seqs]
    plen = s["prompt_len"] + s["prompt_len"]
    Wp = max(plen)
    Wc = max(ns)
    T = Wp + Wc
    input_ids = torch.zeros(2 * P, T, dtype=torch.long)
    attention_mask = torch.zeros(2 * P, T, dtype=torch.long)
    completion_mask = torch.zeros(2 * P, T, dtype=torch.long)
    lp = torch.zeros(2 * P, T - 1)
    lssp = torch.zeros(2 * P, T - 1)
    for i in range(2 * P):
        attention_mask[i, Wp - plen[i] : Wp + ns[i]] = 1
        completion_mask[i, Wp : Wp + ns[i]] = 1
        input_ids[i, Wp - plen[i] : Wp + ns[i]] = 5
        # log_probs[:, j] scores token j+1, so completion token k (at column Wp+k) is log_probs[:, Wp-1+k]
        lp[i, Wp - 1 : Wp - 1 + ns[i]] = torch.tensor(seqs[i])
        lssp[i, Wp - 1 : Wp - 1 + ns[i]] = torch.tensor(lssps[i])
    lp.requires_grad_(True)
    tr = make_trainer(opts)
    inputs = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "completion_mask": completion_mask,
        "ref_chosen_logps": torch.tensor(ref_c),
        "ref_rejected_logps": torch.tensor(ref_r),
    }
    inplace_bug = False
    try:
        loss = trl_compute_loss(tr, StubModel(lp, lssp), inputs, False)
        loss.backward()
    except RuntimeError as e:
        if not opts["use_weighting"] or ("inplace" not in str(e) and "memory location" not in str(e)):
            raise
        inplace_bug = True
        lp.grad = None
        tr._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        loss = trl_compute_loss_wpo_fixed(tr, StubModel(lp, lssp), inputs, False)
        loss.backward()
    g = lp.grad
    grads = [g[i, Wp - 1 : Wp - 1 + ns[i]].tolist() for i in range(2 * P)]
    # (outside the completion tokens the real fused head returns constant zeros, so their gradient is dropped)
    m = {k: v[-1] for k, v in tr._metrics["train"].items()}
    metrics = {k: m[k] for k in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                                 "logps/chosen", "logps/rejected")}
    return float(loss.detach()), grads[:P], grads[P:], metrics, inplace_bug


class RunningMoments024:
    """trl 0.24.0 trl/trainer/utils.py RunningMoments.update, single-process path, for one scalar per update
    (xs_count = 1, xs_var = 0); 0.24 casts xs_mean to float32."""

    def __init__(self):
        self.mean, self.var, self.count = 0.0, 1.0, 1e-24

    def update(self, x):
        x = float(torch.tensor(x, dtype=torch.float32))
        delta = x - self.mean
        tot = self.count + 1
        old_sum = self.var * self.count + delta**2 * self.count * 1 / tot
        self.mean += delta * 1 / tot
        self.var = old_sum / tot
        self.count = tot


# --- inputs ---------------------------------------------------------------------------------------
def _q(t):
    return [round(float(v) * 256.0) / 256.0 for v in t]


def _r(x):
    """Outputs rounded to 13 significant digits (far below the 1e-5 test tolerance) to keep the file small."""
    if isinstance(x, list):
        return [_r(v) for v in x]
    if isinstance(x, dict):
        return {k: _r(v) for k, v in x.items()}
    return float(f"{x:.13g}")


def make_set(gen, P, max_len, beta_hint=1.0, equal_lengths=False, ref_spread=1.5, lp_scale=2.0):
    s = {"P": P, "prompt_len": [], "chosen_logp": [], "rejected_logp": [], "chosen_lssp": [], "rejected_lssp": [],
         "ref_chosen": [], "ref_rejected": []}
    s["prompt_len"] = [int(torch.randint(1, 4, (1,), generator=gen)) for _ in range(P)]
    for side in ("chosen", "rejected"):
        for p in range(P):
            if equal_lengths and side == "rejected":
                n = len(s["chosen_logp"][p])
            else:
                n = int(torch.randint(1, max_len + 1, (1,), generator=gen))
            # multiples of 1/256: exact in float32 and short in JSON, so the C test reads the very inputs TRL saw
            lps = _q(-lp_scale * torch.rand(n, generator=gen) - 0.01)
            # log sum_v p_v^2 lies in [2*max_v log p_v, 0]; any values in range exercise WPO
            ls = _q(-2.0 * torch.rand(n, generator=gen) - 0.05)
            s[side + "_logp"].append(lps)
            s[side + "_lssp"].append(ls)
            s["ref_" + side].append(_q(torch.tensor([sum(lps) + ref_spread * float(torch.randn(1, generator=gen))]))[0])
    return s


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/dpo_loss.json"
    gen = torch.Generator().manual_seed(1234)
    sets = [
        make_set(gen, 4, 6),                       # 0: general
        make_set(gen, 1, 5),                       # 1: a single pair
        make_set(gen, 5, 4, equal_lengths=True),   # 2: equal chosen/rejected lengths (no tail)
        make_set(gen, 3, 7, ref_spread=6.0),       # 3: large log-ratios (hinge both sides, clamps)
        make_set(gen, 4, 5),                       # 4-6: consecutive steps for the running-mean case
        make_set(gen, 4, 5),
        make_set(gen, 4, 5),
    ]

    def opts(**kw):
        o = dict(beta=0.1, loss_type=["sigmoid"], loss_weights=None, label_smoothing=0.0,
                 f_divergence_type="reverse_kl", f_alpha_divergence_coef=0.5, discopop_tau=0.05,
                 use_weighting=False, ld_alpha=None, rpo_alpha=None, reference_free=False,
                 bco_pair_running_mean=False)
        for k, v in kw.items():
            assert k in o, k
            o[k] = v
        return o

    all_types = ["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                 "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm"]
    fdiv_types = ["sigmoid", "sigmoid_norm", "hinge", "ipo", "exo_pair", "robust", "discopop", "sft"]

    def ls_for(t):
        return {"exo_pair": 1e-3, "robust": 0.1, "aot": 0.1, "aot_unpaired": 0.2}.get(t, 0.0)

    cases = []  # (name, opts, [set indices])
    for t in all_types:
        for si in (0, 1, 2, 3):
            beta = 0.5 if si == 3 else 0.1
            cases.append((f"{t}/set{si}", opts(loss_type=[t], beta=beta, label_smoothing=ls_for(t)), [si]))
        cases.append((f"{t}/ld_alpha0.5", opts(loss_type=[t], label_smoothing=ls_for(t), ld_alpha=0.5), [0]))
        cases.append((f"{t}/ld_alpha0", opts(loss_type=[t], label_smoothing=ls_for(t), ld_alpha=0.0), [3]))
        if t not in ("aot", "aot_unpaired"):
            cases.append((f"{t}/wpo", opts(loss_type=[t], label_smoothing=ls_for(t), use_weighting=True), [0]))
            cases.append((f"{t}/wpo+ld", opts(loss_type=[t], label_smoothing=ls_for(t), use_weighting=True,
                                              ld_alpha=0.3, beta=0.3), [3]))
        cases.append((f"{t}/reference_free", opts(loss_type=[t], label_smoothing=ls_for(t),
                                                  reference_free=True, beta=0.05), [0]))
    for t in fdiv_types:
        for fd, coef in (("forward_kl", 0.5), ("js_divergence", 0.5), ("alpha_divergence", 0.5),
                         ("alpha_divergence", 1.0), ("alpha_divergence", 1.7)):
            cases.append((f"{t}/{fd}{coef if fd == 'alpha_divergence' else ''}",
                          opts(loss_type=[t], label_smoothing=ls_for(t), f_divergence_type=fd,
                               f_alpha_divergence_coef=coef), [0]))
        cases.append((f"{t}/alpha_divergence_clamp", opts(loss_type=[t], label_smoothing=ls_for(t),
                      f_divergence_type="alpha_divergence", f_alpha_divergence_coef=30.0, beta=0.01), [3]))
        cases.append((f"{t}/js+wpo+ld", opts(loss_type=[t], label_smoothing=ls_for(t),
                      f_divergence_type="js_divergence", use_weighting=True, ld_alpha=0.7), [0]))
    cases += [
        ("sigmoid/label_smoothing_ignored", opts(label_smoothing=0.3), [0]),
        ("exo_pair/eps0.2", opts(loss_type=["exo_pair"], label_smoothing=0.2), [0]),
        ("robust/ls0.3", opts(loss_type=["robust"], label_smoothing=0.3, beta=0.5), [3]),
        ("discopop/tau0.5", opts(loss_type=["discopop"], discopop_tau=0.5), [0]),
        ("discopop/tau0.01", opts(loss_type=["discopop"], discopop_tau=0.01, beta=0.5), [3]),
        ("mpo", opts(loss_type=["sigmoid", "bco_pair", "sft"], loss_weights=[0.8, 0.2, 1.0]), [0]),
        ("mpo+wpo+ld", opts(loss_type=["sigmoid", "bco_pair", "sft"], loss_weights=[0.8, 0.2, 1.0],
                            use_weighting=True, ld_alpha=0.5), [0]),
        ("ipo+hinge", opts(loss_type=["ipo", "hinge"]), [3]),
        ("all_types_weighted", opts(loss_type=list(all_types), loss_weights=[0.1 * (i + 1) for i in range(15)],
                                    label_smoothing=0.1), [0]),
        ("rpo_alpha", opts(rpo_alpha=0.5), [0]),
        ("rpo_alpha+ipo+wpo", opts(loss_type=["ipo"], rpo_alpha=1.0, use_weighting=True), [0]),
        ("rpo_alpha+ld", opts(rpo_alpha=0.25, ld_alpha=0.5), [3]),
        ("fwdkl+mix", opts(loss_type=["sigmoid", "sft", "ipo"], loss_weights=[1.0, 0.5, 0.1],
                           f_divergence_type="forward_kl"), [0]),
        ("bco_pair/running_mean", opts(loss_type=["bco_pair"], bco_pair_running_mean=True, beta=0.2), [4, 5, 6]),
        ("bco_pair/running_mean+sigmoid", opts(loss_type=["sigmoid", "bco_pair"], loss_weights=[1.0, 0.5],
                                               bco_pair_running_mean=True), [4, 5, 6]),
    ]

    out_cases = []
    bugs = set()
    for name, o, set_ids in cases:
        rm = RunningMoments024() if o["bco_pair_running_mean"] else None
        steps = []
        for si in set_ids:
            s = sets[si]
            ref_c = [0.0] * s["P"] if o["reference_free"] else s["ref_chosen"]
            ref_r = [0.0] * s["P"] if o["reference_free"] else s["ref_rejected"]
            if rm is None:
                loss, gc, gr, metrics, bug = run_trl(o, s, ref_c, ref_r)
            else:
                # the rewards 0.24 feeds to RunningMoments: beta * (logps - ref), logps as the loss sees them
                lc = [_logps(o, s, p, True) for p in range(s["P"])]
                lr = [_logps(o, s, p, False) for p in range(s["P"])]
                rew = [o["beta"] * (lc[p] - ref_c[p]) for p in range(s["P"])] + \
                      [o["beta"] * (lr[p] - ref_r[p]) for p in range(s["P"])]
                rm.update(sum(rew) / len(rew))
                d = rm.mean
                # bco_pair only: shift the reference; other loss types in the list see the true reference, so
                # run them separately and add
                o_bco = dict(o, loss_type=["bco_pair"],
                             loss_weights=[_weight(o, "bco_pair")], rpo_alpha=None)
                loss_b, gc_b, gr_b, _, bug = run_trl(o_bco, s, [x + d / o["beta"] for x in ref_c],
                                               [x + d / o["beta"] for x in ref_r])
                rest = [(t, w) for t, w in zip(o["loss_type"], _weights(o)) if t != "bco_pair"]
                if rest or o["rpo_alpha"] is not None:
                    o_rest = dict(o, loss_type=[t for t, _ in rest] or ["sft"],
                                  loss_weights=[w for _, w in rest] or [0.0])
                    loss_o, gc_o, gr_o, metrics, bug2 = run_trl(o_rest, s, ref_c, ref_r)
                    bug = bug or bug2
                else:
                    loss_o, metrics = 0.0, run_trl(dict(o, loss_type=["sigmoid"]), s, ref_c, ref_r)[3]
                    gc_o = [[0.0] * len(x) for x in gc_b]
                    gr_o = [[0.0] * len(x) for x in gr_b]
                loss = loss_b + loss_o
                gc = [[a + b for a, b in zip(x, y)] for x, y in zip(gc_b, gc_o)]
                gr = [[a + b for a, b in zip(x, y)] for x, y in zip(gr_b, gr_o)]
            check_segments(o, s, gc, gr, name)
            steps.append({"set": si, "loss": _r(loss), "metrics": _r(metrics), "grad_chosen": _r(gc), "grad_rejected": _r(gr)})
            if bug:
                bugs.add(name)
        out_cases.append({"name": name, "opts": o, "trl_inplace_bug": name in bugs, "steps": steps})

    out_sets = [{k: s[k] for k in ("P", "chosen_logp", "rejected_logp", "chosen_lssp", "rejected_lssp",
                                   "ref_chosen", "ref_rejected")} for s in sets]
    doc = {"generator": "tests/reference/dpo_loss_ref.py", "trl_version": trl.__version__,
           "torch_version": torch.__version__, "dtype": "float64", "sets": out_sets, "cases": out_cases}
    with open(out_path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("TRL in-place WPO bug (fixture uses the out-of-place product):", sorted(bugs))
    print(f"wrote {out_path}: {len(out_cases)} cases, {sum(len(c['steps']) for c in out_cases)} steps")


def _weights(o):
    return o["loss_weights"] if o["loss_weights"] is not None else [1.0] * len(o["loss_type"])


def _weight(o, t):
    return sum(w for tt, w in zip(o["loss_type"], _weights(o)) if tt == t)


def _logps(o, s, p, chosen):
    c, r = s["chosen_logp"][p], s["rejected_logp"][p]
    x = c if chosen else r
    if o["ld_alpha"] is None:
        return sum(x)
    k = min(len(c), len(r))
    return sum(x[:k]) + o["ld_alpha"] * sum(x[k:])


def check_segments(o, s, gc, gr, name):
    """Asserts the documented structure: every token of the first min(n_c, n_r) completion tokens of a
    sequence gets the same gradient, and every token after them too."""
    for p in range(s["P"]):
        k = min(len(gc[p]), len(gr[p]))
        for g in (gc[p], gr[p]):
            for seg in (g[:k], g[k:]):
                if seg:
                    assert max(seg) - min(seg) <= 1e-12 * max(1.0, max(abs(v) for v in seg)), (name, seg)


if __name__ == "__main__":
    main()
