/* base/threads.c — hwloc topology discovery, thread count and pinning (threads.h). */
#include "base/threads.h"
#include "config.h"
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if HONE_HAVE_OPENMP
#include <omp.h>
#endif

static long cache_size(hwloc_topology_t t, hwloc_obj_type_t type) {
    hwloc_obj_t o = hwloc_get_obj_by_type(t, type, 0);
    return o && o->attr ? (long)o->attr->cache.size : 0;
}

static void read_cpu_model(char *buf, size_t n) {
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10) || !strncmp(line, "CPU part", 8)) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ') c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(buf, n, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static int load_topology(hwloc_topology_t *t, const char *desc, hone_error *err) {
    if (hwloc_topology_init(t) < 0) return hone_fail(err, "hwloc: cannot initialise a topology");
    if (desc && *desc) {
        int rc = strchr(desc, '/') || strstr(desc, ".xml") ? hwloc_topology_set_xml(*t, desc)
                                                           : hwloc_topology_set_synthetic(*t, desc);
        if (rc < 0) {
            hwloc_topology_destroy(*t);
            return hone_fail(err, "HONE_TOPOLOGY: hwloc cannot read topology '%s'", desc);
        }
    }
    if (hwloc_topology_load(*t) < 0) {
        hwloc_topology_destroy(*t);
        return hone_fail(err, "hwloc: cannot load the machine topology");
    }
    return 0;
}

static void plan_from(hone_topology *topo, hwloc_topology_t t, int requested) {
    topo->packages = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
    topo->numa_nodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    topo->cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    topo->pus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    if (topo->numa_nodes < 1) topo->numa_nodes = 1;
    if (topo->cores < 1) topo->cores = topo->pus > 0 ? topo->pus : 1;
    topo->l1d = cache_size(t, HWLOC_OBJ_L1CACHE);
    topo->l2 = cache_size(t, HWLOC_OBJ_L2CACHE);
    topo->l3 = cache_size(t, HWLOC_OBJ_L3CACHE);
    int n = requested;
    if (n <= 0) {
        const char *e = getenv("HONE_THREADS");
        n = e && atoi(e) > 0 ? atoi(e) : topo->cores;
    }
    topo->requested = n;
    if (n > HONE_MAX_THREADS) n = HONE_MAX_THREADS;
    topo->threads = n;
    /* Round-robin over NUMA nodes, then over the cores of each node, so that
     * thread t's first-touched memory lands on its own node. */
    int per_node[64] = {0};
    for (int th = 0; th < n; th++) {
        int node = th % topo->numa_nodes;
        if (node >= 64) node = 63;
        hwloc_obj_t nobj = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, node);
        int core = th % topo->cores;
        if (nobj) {
            int k = per_node[node]++;
            int ncores = hwloc_get_nbobjs_inside_cpuset_by_type(t, nobj->cpuset, HWLOC_OBJ_CORE);
            if (ncores > 0) {
                hwloc_obj_t c = hwloc_get_obj_inside_cpuset_by_type(t, nobj->cpuset, HWLOC_OBJ_CORE, k % ncores);
                if (c) core = (int)c->logical_index;
            }
        }
        topo->core_of_thread[th] = core;
        topo->numa_of_thread[th] = nobj ? node : 0;
    }
}

int threads_plan(hone_topology *topo, const char *desc, int requested, hone_error *err) {
    memset(topo, 0, sizeof *topo);
    hwloc_topology_t t;
    if (load_topology(&t, desc, err) < 0) return -1;
    plan_from(topo, t, requested);
    hwloc_topology_destroy(t);
    return 0;
}

int threads_init(hone_topology *topo, int requested, int pin, hone_error *err) {
    memset(topo, 0, sizeof *topo);
    hwloc_topology_t t;
    const char *desc = getenv("HONE_TOPOLOGY");
    if (load_topology(&t, desc, err) < 0) return -1;
    plan_from(topo, t, requested);
    read_cpu_model(topo->cpu_model, sizeof topo->cpu_model);
#if HONE_HAVE_OPENMP
    omp_set_num_threads(topo->threads);
    omp_set_max_active_levels(1);
    if (pin && !(desc && *desc) && topo->threads <= topo->cores) {
#pragma omp parallel num_threads(topo->threads)
        {
            int th = omp_get_thread_num();
            hwloc_obj_t c = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, topo->core_of_thread[th]);
            if (c) hwloc_set_cpubind(t, c->cpuset, HWLOC_CPUBIND_THREAD);
        }
    }
#endif
    hwloc_topology_destroy(t);
    return 0;
}

int threads_count(void) {
#if HONE_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void threads_first_touch(void *p, size_t bytes) {
    const size_t page = 4096;
    int n = threads_count();
    size_t share = (bytes / n + page - 1) / page * page;
#if HONE_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(n)
#endif
    for (int t = 0; t < n; t++) {
        size_t lo = share * t, hi = lo + share < bytes ? lo + share : bytes;
        if (lo < hi) memset((char *)p + lo, 0, hi - lo);
    }
}

int threads_interleave(void *p, size_t bytes, hone_error *err) {
    hwloc_topology_t t;
    if (load_topology(&t, NULL, err) < 0) return -1;
    int rc = 0;
    if (hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE) > 1 &&
        hwloc_set_area_membind(t, p, bytes, hwloc_topology_get_topology_nodeset(t), HWLOC_MEMBIND_INTERLEAVE,
                               HWLOC_MEMBIND_BYNODESET | HWLOC_MEMBIND_MIGRATE) < 0)
        rc = hone_fail(err, "hwloc: cannot interleave %zu bytes over the NUMA nodes", bytes);
    hwloc_topology_destroy(t);
    return rc;
}
