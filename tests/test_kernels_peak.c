/* test_kernels_peak.c — the register-only peak probes (kernels.h probe_fma_f32,
 * probe_dot_bf16, kernels_peak) on every ISA this machine runs, and `hone info`
 * printing them. No speed threshold is asserted (machines are shared): the
 * probes must do the work they count (their chains checked against a scalar
 * emulation) and the measured peaks must be plausible: above 0.01 GFLOP/s (qemu
 * emulates BFDOT at about 0.1) and below 10x the theoretical maximum from the clock (lanes x FLOPs per lane x 2
 * pipes x GHz, 6 GHz when the clock is unknown). */
#include "config.h"
#include "simd/kernels.h"
#include "test.h"
#include <math.h>
#include <unistd.h>

static const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
static const int lanes[] = {1, 8, 16, 4}; /* fp32 lanes of each ISA's probe */

/* Highest clock the OS reports, in GHz (6 when it reports none, e.g. under qemu). */
static double clock_ghz(void) {
    double mhz = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        double v;
        if (sscanf(line, "cpu MHz : %lf", &v) == 1 && v > mhz) mhz = v;
    }
    if (f) fclose(f);
    f = fopen("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "r");
    long khz;
    if (f && fscanf(f, "%ld", &khz) == 1 && khz / 1000.0 > mhz) mhz = khz / 1000.0;
    if (f) fclose(f);
    return mhz > 0 ? mhz / 1000 : 6.0;
}

/* Each chain did exactly iters steps of a = a * 0.999999f + 1e-7f: lane 0 bitwise
 * against the same recurrence in fp32 here, fused (fmaf: the FMA ISAs, and the scalar
 * kernel where the compiler contracts a*x+y) or rounded twice (scalar without FMA).
 * One step more or less changes chain c > 0 by about c * 1e-6, hundreds of ulps. */
static void test_probe_fma_counts(void) {
    int ran = 0;
    for (int i = 0; i < 4; i++) {
        hone_kernels t;
        if (kernels_get(isas[i], &t) < 0) continue;
        ran++;
        long iters = 3000;
        float out[HONE_PROBE_CHAINS];
        CHECK(t.probe_fma_f32 && t.probe_fma_unit, "%s: no fp32 probe", isas[i]);
        if (!t.probe_fma_f32) continue;
        double flops = t.probe_fma_f32(iters, out);
        CHECK(flops == (double)iters * HONE_PROBE_CHAINS * lanes[i] * 2, "%s: counted %.0f FLOPs", isas[i], flops);
        for (int c = 0; c < HONE_PROBE_CHAINS; c++) {
            volatile float x = 0.999999f, y = 1e-7f; /* volatile: no contraction of the unfused form */
            float fused = (float)c, twice = (float)c;
            for (long k = 0; k < iters; k++) {
                fused = fmaf(fused, x, y);
                volatile float m = twice * x;
                twice = m + y;
            }
            int ok = out[c] == fused || (i == 0 && out[c] == twice);
            CHECK(ok, "%s chain %d: %.9g, want %.9g (fused) or %.9g (scalar unfused)", isas[i], c, out[c], fused, twice);
        }
    }
    CHECK(ran >= 1, "no ISA ran");
}

/* The bf16 dot probe adds exactly 1/128 per step: out[c] = c + iters/128, bitwise. It
 * exists exactly where the CPU has AVX512-BF16 (x86) or Arm BF16 with a build that has
 * kernels_neon_bf16.c (configure's NEON BF16 check). */
static void test_probe_bf16_counts(void) {
    for (int i = 0; i < 4; i++) {
        hone_kernels t;
        if (kernels_get(isas[i], &t) < 0) continue;
#if defined(__x86_64__)
        int want = !strcmp(isas[i], "avx512") && kernels_cpu_has("avx512bf16");
#elif defined(__aarch64__)
        int want = !strcmp(isas[i], "neon") && HONE_HAVE_NEON_BF16 && kernels_cpu_has("neon-bf16");
#else
        int want = 0;
#endif
        CHECK(!!t.probe_dot_bf16 == want && !!t.probe_bf16_unit == want, "%s: bf16 probe %s, expected %s",
              isas[i], t.probe_dot_bf16 ? "present" : "absent", want ? "present" : "absent");
        hone_peak p = {1, 1, 1};
        if (!t.probe_dot_bf16) {
            CHECK(kernels_peak(&t, 1, 1, &p) == -1 && p.cpu == 0, "%s: kernels_peak without a bf16 probe", isas[i]);
            continue;
        }
        long iters = 4096;
        float out[HONE_PROBE_CHAINS];
        double flops = t.probe_dot_bf16(iters, out);
        CHECK(flops == (double)iters * HONE_PROBE_CHAINS * lanes[i] * 4, "%s: counted %.0f FLOPs", isas[i], flops);
        for (int c = 0; c < HONE_PROBE_CHAINS; c++)
            CHECK(out[c] == c + iters / 128.f, "%s chain %d: %.9g, want %.9g", isas[i], c, out[c], c + iters / 128.0);
    }
}

/* kernels_peak on 1 and 2 threads: plausible GFLOP/s (see the top), both clocks.
 * Under qemu -cpu max (make check-neon) this runs the BFDOT probe too. */
static void test_peak_plausible(void) {
    double ghz = clock_ghz();
    for (int i = 0; i < 4; i++) {
        hone_kernels t;
        if (kernels_get(isas[i], &t) < 0) continue;
        for (int bf16 = 0; bf16 < 2; bf16++) {
            if (bf16 && !t.probe_dot_bf16) continue;
            double max = 10 * ghz * lanes[i] * (bf16 ? 4 : 2) * 2;
            for (int nth = 1; nth <= 2; nth++) {
                hone_peak p;
                CHECK(kernels_peak(&t, bf16, nth, &p) == 0, "%s: kernels_peak failed", isas[i]);
                CHECK(p.threads >= 1 && p.threads <= nth, "%s: %d threads ran", isas[i], p.threads);
                CHECK(p.cpu > 0.01 && p.cpu < max * p.threads, "%s %s on %d: %.3f GFLOP/s by CPU time, plausible 0.01-%.0f",
                      isas[i], bf16 ? "bf16" : "fp32", nth, p.cpu, max * p.threads);
                CHECK(p.wall > 0 && p.wall < max * p.threads, "%s %s on %d: %.2f GFLOP/s by the wall clock", isas[i],
                      bf16 ? "bf16" : "fp32", nth, p.wall);
            }
        }
    }
}

/* `hone info` prints the peaks and the bf16 path, also with HONE_ISA=scalar. */
static char out_text[16384];
static int run_info(const char *env) {
    const char *bin = getenv("HONE_BIN");
    out_text[0] = 0;
    if (!bin || access(bin, X_OK) != 0) { test_skip("HONE_BIN is unset or not built (make check sets it)"); return -1; }
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s info 2>&1", env, bin);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    size_t n = fread(out_text, 1, sizeof out_text - 1, f);
    out_text[n] = 0;
    return pclose(f);
}
static double field(const char *key) { /* the number after key, or -1 */
    const char *s = strstr(out_text, key);
    double v;
    return s && sscanf(s + strlen(key), " %lf", &v) == 1 ? v : -1;
}
static void test_hone_info(void) {
    if (run_info("HONE_THREADS=2") < 0) return;
    CHECK(field("fp32 peak:") > 0.1, "no fp32 peak in:\n%s", out_text);
    CHECK(strstr(out_text, "GFLOP/s per core, ") && strstr(out_text, " on 2 threads ("), "no 2-thread peak in:\n%s",
          out_text);
    CHECK(field("bf16 peak:") > 0.1 || strstr(out_text, "bf16 peak:  none (no bf16 dot-product unit"),
          "no bf16 peak line in:\n%s", out_text);
    CHECK(strstr(out_text, "bf16 training: `bf16: true` runs its matrix products on "), "no bf16 path in:\n%s", out_text);
    CHECK(strstr(out_text, "AMX-BF16:"), "no AMX line in:\n%s", out_text);
    CHECK(run_info("HONE_ISA=scalar HONE_THREADS=1") == 0, "HONE_ISA=scalar hone info failed:\n%s", out_text);
    CHECK(field("fp32 peak:") > 0.1 && strstr(out_text, "(scalar multiply-add"), "scalar fp32 peak missing:\n%s",
          out_text);
    CHECK(strstr(out_text, "bf16 peak:  none"), "scalar has no bf16 unit:\n%s", out_text);
    CHECK(strstr(out_text, "on scalar multiply-add on bf16-rounded operands (no bf16 dot-product unit"),
          "scalar bf16 path:\n%s", out_text);
    CHECK(run_info("HONE_BF16_PATH=rounded HONE_THREADS=1") == 0 && strstr(out_text, "on bf16-rounded operands ("),
          "HONE_BF16_PATH=rounded:\n%s", out_text);
}

int main(void) {
    TEST_RUN(test_probe_fma_counts);
    TEST_RUN(test_probe_bf16_counts);
    TEST_RUN(test_peak_plausible);
    TEST_RUN(test_hone_info);
    return test_finish();
}
