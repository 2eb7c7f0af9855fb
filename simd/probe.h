/* simd/probe.h — the bodies of the register-only peak probes (kernels.h,
 * probe_fma_f32 and probe_dot_bf16), written once and instantiated by each ISA
 * file on its own vector type. */
#ifndef HONE_PROBE_H
#define HONE_PROBE_H
#include "simd/kernels.h"

/* HONE_PROBE_CHAINS chains a[c] of vector type V, chain c starting at SET1(c);
 * DECL declares the loop-invariant operands, STEP is the new a[c] (an expression
 * of a[c] and those operands), FLOPS the FLOPs of one STEP, LANE0 the first lane. */
#define HONE_PROBE(name, V, SET1, DECL, STEP, LANE0, FLOPS)                           \
    static double name(long iters, float *out) {                                      \
        V a[HONE_PROBE_CHAINS];                                                      \
        DECL;                                                                        \
        for (int c = 0; c < HONE_PROBE_CHAINS; c++) a[c] = SET1((float)c);           \
        for (long it = 0; it < iters; it++)                                          \
            _Pragma("GCC unroll 16") for (int c = 0; c < HONE_PROBE_CHAINS; c++)     \
                a[c] = STEP;                                                         \
        for (int c = 0; c < HONE_PROBE_CHAINS; c++) out[c] = LANE0(a[c]);            \
        return (double)iters * HONE_PROBE_CHAINS * (FLOPS);                          \
    }

/* fp32 FMA: a = a * 0.999999f + 1e-7f; FMA(a, x, y) = a*x + y on LANES lanes. */
#define HONE_PROBE_FMA(name, V, SET1, FMA, LANE0, LANES)                                                  \
    HONE_PROBE(name, V, SET1, V x = SET1(0.999999f); V y = SET1(1e-7f), FMA(a[c], x, y), LANE0, (LANES) * 2)

/* bf16 dot: DOT(acc, a, b) adds two bf16 products per fp32 lane; B is the vector type
 * of bf16 pairs, BSET(u16) broadcasts a bf16 bit pattern. 0x3d80 is 0.0625, so each
 * step adds exactly 1/128. */
#define HONE_PROBE_DOT(name, V, B, SET1, BSET, DOT, LANE0, LANES) \
    HONE_PROBE(name, V, SET1, B x = BSET(0x3d80), DOT(a[c], x, x), LANE0, (LANES) * 4)
#endif
