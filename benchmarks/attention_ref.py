"""attention_ref.py — PyTorch's causal attention (F.scaled_dot_product_attention, is_causal, GQA through
enable_gqa) forward and forward + backward times, the peer of bench_attention.

Usage: attention_ref.py THREADS SHAPE...   SHAPE = index,B,T,H,KV,D
For each shape and thread count 1..THREADS prints
  ROW index threads fwd_ms_fp32 bwd_ms_fp32 fwd_ms_bf16 bwd_ms_bf16
(bwd = forward + backward minus forward; best of a few calls after a warm-up, wall clock; q, k, v in
(B, heads, T, D), torch's own layout). Prints NOTORCH and exits 0 when torch cannot be imported.
Development tool, never needed by the build."""
import sys, time

try:
    import torch
    import torch.nn.functional as F
except Exception:
    print("NOTORCH")
    sys.exit(0)

def best(fn, reps):
    fn()
    b = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        b = min(b, time.perf_counter() - t0)
    return b * 1e3


def main(maxth, specs):
    torch.manual_seed(0)
    for spec in specs:
        i, B, T, H, KV, D = (int(x) for x in spec.split(","))
        for nth in range(1, maxth + 1):
            torch.set_num_threads(nth)
            out = []
            for dt in (torch.float32, torch.bfloat16):
                q = (torch.rand(B, H, T, D) - 0.5).to(dt).requires_grad_()
                k = (torch.rand(B, KV, T, D) - 0.5).to(dt).requires_grad_()
                v = (torch.rand(B, KV, T, D) - 0.5).to(dt).requires_grad_()
                g = (torch.rand(B, H, T, D) - 0.5).to(dt)

                def fwd():
                    with torch.no_grad():
                        F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=KV != H)

                def both():
                    o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=KV != H)
                    o.backward(g)

                f = best(fwd, 5)
                fb = best(both, 5)
                out += [f, max(fb - f, 0.0)]
            print("ROW %d %d %.4f %.4f %.4f %.4f" % (i, nth, *out), flush=True)


main(int(sys.argv[1]), sys.argv[2:])
