#!/usr/bin/env python3
"""bitsandbytes quantisation fixtures for hone's simd/quant.c (issue 14).

Runs bitsandbytes' CPU backend (bnb.functional.quantize_4bit / dequantize_4bit, quantize_blockwise,
int8_vectorwise_quant / dequant) on a few seeded inputs of odd sizes and writes
tests/fixtures/quant/quant.safetensors with, per case NAME:
  NAME.x          (n,) fp32 input
  NAME.<qt>[.nested].packed  (ceil(n/2),) uint8: bnb's packed nibbles (first element in the high nibble)
  NAME.<qt>.absmax           (blocks,) fp32 (plain)
  NAME.<qt>.nested.qabsmax   (blocks,) uint8, .absmax2 (ceil(blocks/256),) fp32, .offset (1,) fp32
  NAME.<qt>[.nested].deq     (n,) fp32: bnb's dequantize_4bit
  NAME.int8.q (rows, cols) int8, NAME.int8.scb (rows,) fp32, NAME.int8.deq (rows, cols) fp32 (cols in .shape)
  NAME.shape (2,) int32
plus code.dynamic (256,) fp32: the dynamic map as bnb's CPU quantize_blockwise leaves it (code[0] = -1).
Development only (CI compares the fixture; it never runs this).
usage: quant_ref.py
"""
import os

import numpy as np
import torch
from safetensors.torch import save_file

import bitsandbytes as bnb
import bitsandbytes.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "quant", "quant.safetensors")

torch.set_num_threads(1)
assert bnb.__version__.startswith("0.50"), bnb.__version__


def cases():
    g = torch.Generator().manual_seed(14)
    # (name, rows, cols, kind): odd shapes, a remainder block, an odd element count, big blocks for nesting
    yield "small", 5, 13, torch.randn(5, 13, generator=g)
    yield "rem", 37, 70, torch.randn(37, 70, generator=g) * 0.02
    yield "nest", 96, 200, torch.randn(96, 200, generator=g) * 0.05  # 300 blocks: two nested blocks
    w = torch.randn(64, 128, generator=g) * 0.03
    w[3, 5] = 0.7  # an outlier block
    w[10, :64] = 0.0  # an all-zero block
    yield "edge", 64, 128, w


def main():
    out = {}
    for name, r, c, x in cases():
        x = x.float().contiguous()
        out[name + ".x"] = x.reshape(-1).clone()
        out[name + ".shape"] = torch.tensor([r, c], dtype=torch.int32)
        for qt in ("nf4", "fp4"):
            for nested in (False, True):
                q, st = F.quantize_4bit(x, blocksize=64, quant_type=qt, compress_statistics=nested)
                key = f"{name}.{qt}" + (".nested" if nested else "")
                out[key + ".packed"] = q.reshape(-1).clone()
                if nested:
                    out[key + ".qabsmax"] = st.absmax.reshape(-1).clone()
                    out[key + ".absmax2"] = st.state2.absmax.reshape(-1).float().clone()
                    out[key + ".offset"] = st.offset.reshape(1).float().clone()
                    out["code.dynamic"] = st.state2.code.float().clone()
                else:
                    out[key + ".absmax"] = st.absmax.reshape(-1).float().clone()
                out[key + ".deq"] = F.dequantize_4bit(q, st).reshape(-1).float().clone()
        cb, scb, _ = F.int8_vectorwise_quant(x.to(torch.float16))
        out[name + ".int8.q"] = cb.contiguous()
        out[name + ".int8.scb"] = scb.float().contiguous()
        out[name + ".int8.deq"] = F.int8_vectorwise_dequant(cb, scb).float().contiguous()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, OUT, metadata={"bitsandbytes": bnb.__version__})
    print("wrote", OUT, len(out), "tensors")
    # the codebooks hone hard-codes, for the record
    print("nf4", F.get_4bit_type("nf4", device="cpu").tolist())
    print("fp4", F.get_4bit_type("fp4", device="cpu").tolist())


if __name__ == "__main__":
    main()
