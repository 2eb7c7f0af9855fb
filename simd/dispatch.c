/* dispatch.c — fills the kernel table once at start-up.
 * x86-64: CPUID says what the CPU has, XGETBV says whether the OS saves the
 * YMM/ZMM state; only then is AVX2 / AVX-512 used. aarch64: NEON is baseline, Arm
 * BF16 where the kernel's HWCAP2 says so.
 * HONE_ISA forces a path (an ISA the machine cannot run is refused). */
#include "config.h"
#include "simd/kernels.h"
#include "simd/ggml_quant.h"
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__linux__) && defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1 << 14) /* Linux's arm64 uapi: older C libraries lack it */
#endif
#endif

hone_kernels hone_kt;

#if defined(__x86_64__)
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

int kernels_cpu_has(const char *isa) {
    if (!strcmp(isa, "scalar")) return 1;
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return 0;
    uint64_t xcr0 = xgetbv0();
    int ymm_os = (xcr0 & 0x6) == 0x6;            /* SSE + AVX state */
    int zmm_os = (xcr0 & 0xe6) == 0xe6;          /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1,
        avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    if (!strcmp(isa, "amx-bf16")) {
        /* CPUID.(7,0):EDX AMX-BF16 (22) and AMX-TILE (24), XCR0 XTILECFG/XTILEDATA (17, 18),
         * and Linux's per-process permission for the tile data (ARCH_REQ_XCOMP_PERM, 0x1023) */
        if (!((d >> 22) & 1) || !((d >> 24) & 1) || (xcr0 & 0x60000) != 0x60000) return 0;
#if defined(__linux__)
        return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
        return 0;
#endif
    }
    if (!strcmp(isa, "avx512bf16")) { /* CPUID.(7,1):EAX bit 5, with the ZMM state saved */
        unsigned a1, b1, c1, d1;
        if (!HONE_HAVE_AVX512 || !zmm_os || !avx512f || !__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) return 0;
        return (a1 >> 5) & 1;
    }
    if (!strcmp(isa, "avx2")) return HONE_HAVE_AVX2 && ymm_os && avx2 && fma && f16c;
    if (!strcmp(isa, "avx512"))
        return HONE_HAVE_AVX512 && zmm_os && avx512f && avx512dq && avx512bw && avx512vl && fma && f16c;
    return 0;
#elif defined(__aarch64__)
    if (!strcmp(isa, "neon-bf16")) { /* FEAT_BF16 (BFDOT, BFMMLA), as the kernel reports it: HWCAP2_BF16 */
#if defined(__linux__)
        return HONE_HAVE_NEON && (getauxval(AT_HWCAP2) & HWCAP2_BF16) != 0;
#else
        return 0;
#endif
    }
    return !strcmp(isa, "neon") && HONE_HAVE_NEON;
#else
    return 0;
#endif
}

int kernels_get(const char *isa, hone_kernels *t) {
    memset(t, 0, sizeof *t);
    kernels_fill_scalar(t);
    ggml_quant_fill_scalar(t);
    if (!strcmp(isa, "scalar")) return 0;
    if (!kernels_cpu_has(isa)) return -1;
#if HONE_HAVE_AVX2 && defined(__x86_64__)
    if (!strcmp(isa, "avx2")) {
        kernels_fill_avx2(t);
        quant_fill_avx2(t);
        ggml_quant_fill_avx2(t);
        return 0;
    }
#endif
#if HONE_HAVE_AVX512 && defined(__x86_64__)
    if (!strcmp(isa, "avx512")) {
        kernels_fill_avx2(t);
        kernels_fill_avx512(t);
        quant_fill_avx2(t);
        quant_fill_avx512(t);
        ggml_quant_fill_avx2(t);
        ggml_quant_fill_avx512(t);
        /* kernels_fill_avx512 sets the bf16 unit's entries only where CPUID has it */
        return 0;
    }
#endif
#if HONE_HAVE_NEON && defined(__aarch64__)
    if (!strcmp(isa, "neon")) {
        kernels_fill_neon(t);
        ggml_quant_fill_neon(t);
        quant_fill_neon(t);
#if HONE_HAVE_NEON_BF16
        if (kernels_cpu_has("neon-bf16")) kernels_fill_neon_bf16(t); /* the bf16 unit's entries */
#endif
        return 0;
    }
#endif
    return -1;
}

int kernels_init(void) {
    static const char *order[] = {"avx512", "avx2", "neon"};
    const char *want = getenv("HONE_ISA");
    if (want && *want) {
        if (kernels_get(want, &hone_kt) == 0) return 0;
    }
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (kernels_get(order[i], &hone_kt) == 0) return (want && *want) ? -1 : 0;
    kernels_get("scalar", &hone_kt);
    return (want && *want && strcmp(want, "scalar")) ? -1 : 0;
}
