#!/usr/bin/env python3
"""Model parity fixtures for hone (issue 2, "Exactness, measured").

Writes random-init tiny Hugging Face model directories (config.json + model.safetensors, fp32)
under tests/fixtures/models/<name>/ and, for each model plus the converted stories260K, a fixture
tests/fixtures/parity/<name>.safetensors with a padded + packed token batch, the reference logits,
loss, per-token log-probabilities and the gradient of every parameter.  See tests/reference/README.md
for the exact contents.  Development only: needs torch + transformers (+ sentencepiece); the C tests
only read the committed outputs.

usage: model_ref.py [--only NAME ...] [--stories-dir DIR] [--shared DIR]
"""
import argparse
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures")

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------
# tiny model definitions


def tiny_configs():
    from transformers import GemmaConfig, LlamaConfig, Qwen2Config

    return {
        "tiny-llama": LlamaConfig(
            vocab_size=256, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, head_dim=16, tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, rms_norm_eps=1e-5,
            max_position_embeddings=128, bos_token_id=1, eos_token_id=2, pad_token_id=0,
            hidden_act="silu", attention_bias=False, mlp_bias=False),
        "tiny-llama3-gqa": LlamaConfig(
            vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=8, num_key_value_heads=2, head_dim=8, tie_word_embeddings=True,
            rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                             "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 32},
            mlp_bias=True, attention_bias=False, rms_norm_eps=1e-5, max_position_embeddings=256,
            bos_token_id=1, eos_token_id=2, pad_token_id=0, hidden_act="silu"),
        "tiny-qwen2": Qwen2Config(
            vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, rms_norm_eps=1e-6,
            max_position_embeddings=128, use_sliding_window=False, bos_token_id=1, eos_token_id=2,
            pad_token_id=0, hidden_act="silu"),
        "tiny-gemma": GemmaConfig(
            vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=1, head_dim=32,
            hidden_act="gelu_pytorch_tanh", rms_norm_eps=1e-6, tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            max_position_embeddings=128, bos_token_id=2, eos_token_id=1, pad_token_id=0),
    }


def init_tiny(model, name, seed):
    """Deterministic, non-vanishing init: linear weights/biases N(0, 0.1^2), embeddings N(0, 0.5^2)
    (N(0, 0.15^2) when tied, so the tied classifier's logits stay O(1) and the loss near ln V),
    norm weights 1 + N(0, 0.1^2) (Gemma: N(0, 0.1^2) since it multiplies by 1 + w)."""
    g = torch.Generator().manual_seed(seed)
    gemma = name.startswith("tiny-gemma")
    emb_std = 0.15 if model.config.tie_word_embeddings else 0.5
    with torch.no_grad():
        for pname, p in model.named_parameters():
            n = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if pname.endswith("embed_tokens.weight"):
                p.copy_(emb_std * n)
            elif "norm" in pname:
                p.copy_(0.1 * n if gemma else 1.0 + 0.1 * n)
            else:
                p.copy_(0.1 * n)


# ----------------------------------------------------------------------------------------------
# stories260K (llama2.c) -> LlamaForCausalLM, as transformers' convert_llama_weights_to_hf does


def permute_rope(w, n_heads, dim1, dim2):
    # llama2.c / Meta rotate interleaved pairs (x0,x1),(x2,x3)...; HF rotate_half pairs x_i with
    # x_{i+d/2}.  Reorder the output rows of wq/wk per head: [0,2,4,..,1,3,5,..].
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def convert_stories(bin_path, out_dir):
    from transformers import LlamaConfig, LlamaForCausalLM

    with open(bin_path, "rb") as f:
        hdr = struct.unpack("7i", f.read(28))
        data = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = hdr
    shared = vocab > 0
    vocab = abs(vocab)
    hs = dim // n_heads
    kv_dim = n_kv * hs
    off = 0

    def take(*shape):
        nonlocal off
        n = math.prod(shape)
        t = data[off:off + n].view(*shape).clone()
        off += n
        return t

    emb = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq = take(n_layers, dim, dim)
    wk = take(n_layers, kv_dim, dim)
    wv = take(n_layers, kv_dim, dim)
    wo = take(n_layers, dim, dim)
    rms_ffn = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    rms_final = take(dim)
    take(seq_len, hs // 2)  # freq_cis_real (unused: recomputed from rope_theta)
    take(seq_len, hs // 2)  # freq_cis_imag
    wcls = emb if shared else take(vocab, dim)
    assert off == data.numel(), (off, data.numel())

    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=dim, intermediate_size=hidden, num_hidden_layers=n_layers,
        num_attention_heads=n_heads, num_key_value_heads=n_kv, head_dim=hs,
        max_position_embeddings=seq_len, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=shared, bos_token_id=1, eos_token_id=2, hidden_act="silu")
    model = LlamaForCausalLM(cfg).float()
    sd = {"model.embed_tokens.weight": emb, "model.norm.weight": rms_final}
    if not shared:
        sd["lm_head.weight"] = wcls
    for i in range(n_layers):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = rms_att[i]
        sd[p + "post_attention_layernorm.weight"] = rms_ffn[i]
        sd[p + "self_attn.q_proj.weight"] = permute_rope(wq[i], n_heads, dim, dim)
        sd[p + "self_attn.k_proj.weight"] = permute_rope(wk[i], n_kv, kv_dim, dim)
        sd[p + "self_attn.v_proj.weight"] = wv[i]
        sd[p + "self_attn.o_proj.weight"] = wo[i]
        sd[p + "mlp.gate_proj.weight"] = w1[i]
        sd[p + "mlp.down_proj.weight"] = w2[i]
        sd[p + "mlp.up_proj.weight"] = w3[i]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if not (shared and m == "lm_head.weight")]
    assert not missing and not unexpected, (missing, unexpected)
    if shared:
        model.tie_weights()
    model.save_pretrained(out_dir, safe_serialization=True)
    return cfg


def stories_sanity(model_dir, tok_path):
    import sentencepiece as spm
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = [1]
    with torch.no_grad():
        for _ in range(40):
            logits = model(torch.tensor([ids])).logits
            ids.append(int(logits[0, -1].argmax()))
    sp = spm.SentencePieceProcessor(model_file=tok_path)
    text = sp.decode(ids[1:])
    print("stories260K greedy:", repr(text))
    assert text.startswith("Once upon a time, there was a little girl named Lily."), text
    return sp


# ----------------------------------------------------------------------------------------------
# the token batch: row 0 one document, row 1 right padding, row 2 three packed documents


def make_batch(T, vocab, seed, tokens=None):
    """Returns dict of int64 tensors (B=3, T): input_ids, position_ids, attn_start, labels."""
    B = 3
    g = torch.Generator().manual_seed(seed)
    if tokens is None:
        ids = torch.randint(3, vocab, (B, T), generator=g)
    else:
        ids = tokens.clone()
    pos = torch.zeros(B, T, dtype=torch.long)
    start = torch.zeros(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    docs = {0: [T], 2: [5, 7, 4] if T == 16 else [T * 5 // 16, T * 7 // 16, T * 4 // 16]}
    n_real = 11 if T == 16 else 22
    assert sum(docs[2]) == T
    # rows 0 and 2: documents tile the row
    for b in (0, 2):
        s = 0
        for L in docs[b]:
            for t in range(s, s + L):
                pos[b, t] = t - s
                start[b, t] = s
                if t + 1 < s + L:
                    labels[b, t] = ids[b, t + 1]
            s += L
    # row 1: n_real tokens then pads (id 0) that only see themselves, position t, label -100
    for t in range(T):
        pos[1, t] = t
        if t < n_real:
            start[1, t] = 0
            if t + 1 < n_real:
                labels[1, t] = ids[1, t + 1]
        else:
            ids[1, t] = 0
            start[1, t] = t
    labels[0, :3] = -100  # prompt masking
    return {"input_ids": ids, "position_ids": pos, "attn_start": start, "labels": labels}


def additive_mask(start):
    """(B,T) attn_start -> (B,1,T,T) float mask: 0 where attn_start[t] <= j <= t, else finfo.min."""
    B, T = start.shape
    j = torch.arange(T).view(1, 1, T)
    t = torch.arange(T).view(1, T, 1)
    ok = (j >= start.view(B, T, 1)) & (j <= t)
    m = torch.zeros(B, 1, T, T, dtype=torch.float32)
    m.masked_fill_(~ok.unsqueeze(1), torch.finfo(torch.float32).min)
    return m


def capture_activations(model):
    """Forward hooks that keep (and retain the gradient of) the residual stream: the embed_tokens output
    (Gemma: already scaled by sqrt(hidden)), every decoder layer's output, and the final norm output."""
    acts, hooks = {}, []

    def keep(name):
        def hook(mod, inp, out):
            t = out[0] if isinstance(out, tuple) else out
            t.retain_grad()
            acts[name] = t
        return hook

    base = model.model
    hooks.append(base.embed_tokens.register_forward_hook(keep("embed")))
    for i, layer in enumerate(base.layers):
        hooks.append(layer.register_forward_hook(keep(f"layer.{i}")))
    hooks.append(base.norm.register_forward_hook(keep("norm")))
    return acts, hooks


def run_fixture(model, batch, out_path, vocab, grad_layers=None, activations=True):
    """grad_layers: None stores every parameter's gradient; a set of layer indices stores only those
    layers plus the non-layer parameters (keeps the stories260K fixture small).  activations: also store
    the residual stream and its gradient (act.* / grad_act.*) for debugging."""
    model.eval()
    model.zero_grad(set_to_none=True)
    acts, hooks = capture_activations(model) if activations else ({}, [])
    ids, pos, start, labels = (batch[k] for k in ("input_ids", "position_ids", "attn_start", "labels"))
    out = model(input_ids=ids, position_ids=pos, attention_mask=additive_mask(start), use_cache=False)
    logits = out.logits  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1), ignore_index=-100)
    loss.backward()
    for h in hooks:
        h.remove()
    with torch.no_grad():
        lp = torch.log_softmax(logits, dim=-1)
        safe = labels.clamp(min=0)
        logp = lp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
        logp = torch.where(labels == -100, torch.zeros_like(logp), logp)

    # check: the 4D-mask batched run equals running every document alone with a plain causal mask
    max_abs, max_rel = 0.0, 0.0
    with torch.no_grad():
        B, T = ids.shape
        for b in range(B):
            t = 0
            while t < T:
                s = int(start[b, t])
                e = t + 1
                while e < T and int(start[b, e]) == s:
                    e += 1
                seg = ids[b:b + 1, s:e]
                alone = model(input_ids=seg, position_ids=pos[b:b + 1, s:e], use_cache=False).logits
                ref = logits[b:b + 1, s:e]
                d = (alone - ref).abs().max().item()
                max_abs = max(max_abs, d)
                max_rel = max(max_rel, d / ref.abs().max().item())
                t = e
    n_lab = int((labels != -100).sum())
    print(f"  {os.path.basename(out_path)}: loss {loss.item():.6f} over {n_lab} labels; "
          f"4D-mask vs per-document: max abs {max_abs:.3g}, max abs/max|logit| {max_rel:.3g}")
    assert max_rel < 1e-5, "custom 4D mask not honoured"

    tensors = {
        "input_ids": ids.to(torch.int32).contiguous(),
        "position_ids": pos.to(torch.int32).contiguous(),
        "attn_start": start.to(torch.int32).contiguous(),
        "labels": labels.to(torch.int32).contiguous(),
        "logits": logits.detach().contiguous(),
        "loss": loss.detach().reshape(1).contiguous(),
        "logp": logp.contiguous(),
    }
    for name, t in acts.items():
        tensors["act." + name] = t.detach().contiguous()
        tensors["grad_act." + name] = t.grad.detach().contiguous()
    for name, p in model.named_parameters():
        parts = name.split(".")
        if grad_layers is not None and parts[1] == "layers" and int(parts[2]) not in grad_layers:
            continue
        tensors["grad." + name] = p.grad.detach().clone().contiguous()
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    # no metadata: safetensors writes its map in random order, and fixtures should be byte-stable
    save_file(tensors, out_path)
    return max_abs, max_rel


def check_saved_names(model_dir, tied):
    from safetensors import safe_open

    with safe_open(os.path.join(model_dir, "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert "model.embed_tokens.weight" in keys
    assert ("lm_head.weight" in keys) == (not tied), (tied, "lm_head.weight" in keys)
    return keys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--stories-dir", default="/tmp/hone-ref/stories260K",
                    help="where the converted stories260K HF dir goes (never committed)")
    args = ap.parse_args()

    from transformers import AutoModelForCausalLM

    names = ["tiny-llama", "tiny-llama3-gqa", "tiny-qwen2", "tiny-gemma", "stories260K"]
    if args.only:
        names = [n for n in names if n in args.only]
    cfgs = tiny_configs()
    for seed, name in enumerate(names):
        if name == "stories260K":
            sdir = os.path.join(args.shared, "models", "stories260K")
            if not os.path.exists(os.path.join(sdir, "stories260K.bin")):
                print("skip stories260K: ../shared missing")
                continue
            mdir = args.stories_dir
            convert_stories(os.path.join(sdir, "stories260K.bin"), mdir)
            sp = stories_sanity(mdir, os.path.join(sdir, "tok512.model"))
            T = 32
            grad_layers = {0, model_cfg_layers(mdir) - 1}
            text = ("Once upon a time, there was a little girl named Lily. She loved to play "
                    "outside. One day she saw a big red ball in the park and she was very happy.")
            toks = sp.encode(text)
            rows = []
            for r in range(3):
                row = ([1] + toks[r * 7:])[:T]
                rows.append(row)
            tokens = torch.tensor(rows, dtype=torch.long)
        else:
            mdir = os.path.join(FIX, "models", name)
            cfg = cfgs[name]
            torch.manual_seed(1234 + seed)
            model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").float()
            init_tiny(model, name, 1000 + seed)
            model.save_pretrained(mdir, safe_serialization=True)
            T = 16
            tokens = None
            grad_layers = None
        model = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32,
                                                     attn_implementation="eager")
        cfg = model.config
        keys = check_saved_names(mdir, cfg.tie_word_embeddings)
        print(f"{name}: {type(model).__name__}, {sum(p.numel() for p in model.parameters())} "
              f"params, {len(keys)} saved tensors, tied={cfg.tie_word_embeddings}")
        batch = make_batch(T, cfg.vocab_size, 77 + seed, tokens)
        run_fixture(model, batch, os.path.join(FIX, "parity", name + ".safetensors"), cfg.vocab_size,
                    grad_layers, activations=grad_layers is None)


def model_cfg_layers(model_dir):
    import json
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)["num_hidden_layers"]


if __name__ == "__main__":
    main()
