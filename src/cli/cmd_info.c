/* cli/cmd_info.c — `hone info`: what hone sees and chose on this machine. */
#include "cli/commands.h"
#include "config.h"
#include "simd/kernels.h"
#include "base/threads.h"
#include "dist/dist.h"
#include <hwloc.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <yaml.h>
#include <zlib.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* The probe's peaks on 1 thread and on the thread count in use (kernels.h). */
static void print_peaks(int threads) {
    hone_peak p1, pn;
    kernels_peak(&hone_kt, 0, 1, &p1);
    printf("fp32 peak:  %.1f GFLOP/s per core", p1.cpu);
    if (threads > 1 && kernels_peak(&hone_kt, 0, threads, &pn) == 0)
        printf(", %.1f on %d threads", pn.cpu, pn.threads);
    printf(" (%s, register-only, by CPU time)\n", hone_kt.probe_fma_unit);
    if (kernels_peak(&hone_kt, 1, 1, &p1) < 0) {
        printf("bf16 peak:  none (no bf16 dot-product unit in the %s kernels on this CPU)\n", hone_kt.isa);
    } else {
        printf("bf16 peak:  %.1f GFLOP/s per core", p1.cpu);
        if (threads > 1 && kernels_peak(&hone_kt, 1, threads, &pn) == 0)
            printf(", %.1f on %d threads", pn.cpu, pn.threads);
        printf(" (%s, register-only, by CPU time)\n", hone_kt.probe_bf16_unit);
    }
    hone_kernels t = hone_kt;
    char why[256];
    kernels_select_bf16(&t, why, sizeof why);
    printf("bf16 training: `bf16: true` runs its matrix products on %s\n", why);
    printf("AMX-BF16:   %s\n", kernels_cpu_has("amx-bf16") ? "granted by CPUID, XCR0 and arch_prctl, but hone has no AMX kernel yet"
                                                           : "not available on this CPU/OS");
}

int cmd_info(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("Usage: hone info\n\nPrints the CPU, the kernel ISA chosen (HONE_ISA overrides), physical cores,\n"
               "NUMA nodes and caches (hwloc), the thread count (HONE_THREADS overrides),\n"
               "the backends built in and the versions of the libraries linked, and the\n"
               "measured peaks of the chosen kernels (about half a second): the fp32 FMA\n"
               "peak per core and on the thread count in use, the bf16 dot-product peak\n"
               "(AVX512-BF16 vdpbf16ps; Arm BF16 BFDOT where HWCAP2 has it) or that the\n"
               "CPU has none, and the path `bf16: true` takes with the reason (the bf16\n"
               "unit where its peak beats fp32 FMA, else bf16-rounded operands through\n"
               "the fp32 kernels; HONE_BF16_PATH=dot|rounded overrides). Peaks are\n"
               "register-only loops timed by CPU time (docs/performance.md).\n"
               "It also says whether MPI is built in; under mpirun (mpirun -np N hone info) rank 0\n"
               "prints every rank's placement: host, local rank, CPUs and NUMA nodes\n"
               "(docs/distributed.md).\n");
        return 0;
    }
    hone_error err = {{0}};
    /* each rank's placement, before threads_init pins this thread to one core */
    enum { PLACE = 256 };
    char mine[PLACE] = {0}, *all = NULL;
    dist_placement(mine, sizeof mine);
    if (dist_rank() == 0 && !(all = calloc((size_t)dist_size(), PLACE))) { fprintf(stderr, "hone info: out of memory\n"); return 1; }
    dist_gather_text(mine, all, PLACE);
    if (dist_rank() != 0) return 0; /* rank 0 prints for the job */
    int isa_rc = kernels_init();
    hone_topology topo;
    if (threads_init(&topo, 0, 1, &err) < 0) { fprintf(stderr, "hone info: %s\n", err.msg); return 1; }
    printf("hone %s (%s)\n", HONE_VERSION, HONE_ARCH);
    printf("cpu:        %s\n", topo.cpu_model);
    printf("isa:        %s%s  (supported:", hone_kt.isa, isa_rc ? "  [HONE_ISA not available here]" : "");
    const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
    for (int i = 0; i < 4; i++)
        if (kernels_cpu_has(isas[i])) printf(" %s", isas[i]);
    printf(")\n");
    printf("topology:   %d package(s), %d NUMA node(s), %d core(s), %d hardware thread(s)\n", topo.packages,
           topo.numa_nodes, topo.cores, topo.pus);
    printf("caches:     L1d %ld KiB, L2 %ld KiB, L3 %ld KiB\n", topo.l1d / 1024, topo.l2 / 1024, topo.l3 / 1024);
    printf("threads:    %d (OpenMP %s)\n", topo.threads, HONE_HAVE_OPENMP ? "on" : "off");
    printf("backends:   cpu (cuda toolkit %s; no CUDA backend is built yet, see gpu/README.md)\n",
           HONE_HAVE_CUDA ? "found" : "not found");
    if (!dist_built()) printf("mpi:        %s\n", dist_library());
    else if (!dist_started()) printf("mpi:        %s built in; not started by mpirun / srun (one process)\n", dist_library());
    else {
        printf("mpi:        %s, %d rank(s)\n", dist_library(), dist_size());
        for (int r = 0; r < dist_size(); r++) printf("            %s\n", all + (size_t)r * PLACE);
    }
    free(all);
    print_peaks(topo.threads);
    char pcre_ver[64] = "";
    pcre2_config(PCRE2_CONFIG_VERSION, pcre_ver);
    uint32_t jit = 0;
    pcre2_config(PCRE2_CONFIG_JIT, &jit);
    printf("libraries:  pcre2 %s (jit %s), hwloc %u.%u.%u, libyaml %s, jansson %s, utf8proc %s, zlib %s\n", pcre_ver,
           jit ? "yes" : "no", hwloc_get_api_version() >> 16, (hwloc_get_api_version() >> 8) & 0xff,
           hwloc_get_api_version() & 0xff, yaml_get_version_string(), jansson_version_str(), utf8proc_version(),
           zlibVersion());
    return 0;
}
