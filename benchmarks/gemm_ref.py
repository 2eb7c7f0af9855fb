"""gemm_ref.py — torch.mm GFLOP/s (PyTorch on CPU: MKL / oneDNN) for bench_gemm's anchor columns.

Usage: gemm_ref.py THREADS SHAPE...   SHAPE = index,M,N,K,ta,tb as bench_gemm states them
(C (M,N) = op(A) @ op(B); ta=1: A stored (K,M) and used transposed; tb=1: B stored (N,K)).
For each shape and thread count 1..THREADS prints one line
  ROW index threads fp32_gflops bf16_gflops
by the wall clock, best of a few calls after a warm-up (one call for the vocabulary-sized
shapes). Prints NOTORCH and exits 0 when torch cannot be imported."""
import sys, time

try:
    import torch
except Exception:
    print("NOTORCH")
    sys.exit(0)

maxth = int(sys.argv[1])
torch.manual_seed(0)
for spec in sys.argv[2:]:
    i, M, N, K, ta, tb = (int(x) for x in spec.split(","))
    flops = 2.0 * M * N * K
    reps = 1 if flops > 50e9 else 4 if flops > 5e9 else 8
    for nth in range(1, maxth + 1):
        torch.set_num_threads(nth)
        res = []
        for dt in (torch.float32, torch.bfloat16):
            a = torch.rand((K, M) if ta else (M, K), dtype=torch.float32).sub_(0.5).to(dt)
            b = torch.rand((N, K) if tb else (K, N), dtype=torch.float32).sub_(0.5).to(dt)
            A, B = (a.t() if ta else a), (b.t() if tb else b)
            if reps > 1:
                torch.mm(A, B)
            best = 0.0
            for _ in range(reps):
                t0 = time.perf_counter()
                torch.mm(A, B)
                best = max(best, flops / (time.perf_counter() - t0) / 1e9)
            res.append(best)
        print("ROW %d %d %.2f %.2f" % (i, nth, res[0], res[1]), flush=True)
