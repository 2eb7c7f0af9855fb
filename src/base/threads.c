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

/* The topology of the machine (or of desc), restricted to the PUs of cpuset (an hwloc list
 * such as "0-3,8"; NULL or "" = all) when given. */
static int load_topology(hwloc_topology_t *t, const char *desc, const char *cpuset, hone_error *err) {
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
    if (cpuset && *cpuset) {
        hwloc_bitmap_t set = hwloc_bitmap_alloc();
        int bad = !set || hwloc_bitmap_list_sscanf(set, cpuset) < 0 ||
                  !hwloc_bitmap_intersects(set, hwloc_topology_get_topology_cpuset(*t));
        if (!bad) bad = hwloc_topology_restrict(*t, set, HWLOC_RESTRICT_FLAG_REMOVE_CPULESS) < 0;
        hwloc_bitmap_free(set);
        if (bad) {
            hwloc_topology_destroy(*t);
            return hone_fail(err, "HONE_CPUSET: '%s' is not a list of this machine's processing units (e.g. 0-3,8)", cpuset);
        }
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
    if (load_topology(&t, desc, getenv("HONE_CPUSET"), err) < 0) return -1;
    plan_from(topo, t, requested);
    hwloc_topology_destroy(t);
    return 0;
}

int threads_init(hone_topology *topo, int requested, int pin, hone_error *err) {
    memset(topo, 0, sizeof *topo);
    hwloc_topology_t t;
    const char *desc = getenv("HONE_TOPOLOGY"), *cpuset = getenv("HONE_CPUSET");
    if (load_topology(&t, desc, cpuset, err) < 0) return -1;
    plan_from(topo, t, requested);
    read_cpu_model(topo->cpu_model, sizeof topo->cpu_model);
    /* the whole process (threads started later included) stays inside its cpuset */
    if (cpuset && *cpuset && !(desc && *desc)) hwloc_set_cpubind(t, hwloc_topology_get_topology_cpuset(t), HWLOC_CPUBIND_PROCESS);
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
    if (load_topology(&t, NULL, NULL, err) < 0) return -1;
    int rc = 0;
    if (hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE) > 1 &&
        hwloc_set_area_membind(t, p, bytes, hwloc_topology_get_topology_nodeset(t), HWLOC_MEMBIND_INTERLEAVE,
                               HWLOC_MEMBIND_BYNODESET | HWLOC_MEMBIND_MIGRATE) < 0)
        rc = hone_fail(err, "hwloc: cannot interleave %zu bytes over the NUMA nodes", bytes);
    hwloc_topology_destroy(t);
    return rc;
}

int threads_partition(const char *desc, int k, char (*sets)[THREADS_SET_LEN], int *per_set, hone_error *err) {
    if (k < 1) return hone_fail(err, "threads_partition: %d sets", k);
    hwloc_topology_t t;
    if (load_topology(&t, desc, getenv("HONE_CPUSET"), err) < 0) return -1;
    int ncores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    int nnodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    if (ncores < 1 || ncores > 4096) { hwloc_topology_destroy(t); return hone_fail(err, "hwloc: %d cores", ncores); }
    if (nnodes < 1) nnodes = 1;
    if (k > ncores) k = ncores;
    int per = ncores / k;
    /* the cores, node by node (each core once: the node that holds it first) */
    int order[4096], node_of[4096], used[4096] = {0}, n = 0;
    for (int nd = 0; nd < nnodes; nd++) {
        hwloc_obj_t node = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, nd);
        for (int c = 0; c < ncores; c++) {
            hwloc_obj_t core = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, c);
            int seen = 0;
            for (int i = 0; i < n; i++) seen |= order[i] == c;
            if (seen || (node && !hwloc_bitmap_intersects(core->cpuset, node->cpuset))) continue;
            order[n] = c;
            node_of[n++] = nd;
        }
    }
    for (int c = 0; c < ncores; c++) { /* cores no node claims (no NUMA information) */
        int seen = 0;
        for (int i = 0; i < n; i++) seen |= order[i] == c;
        if (!seen) { order[n] = c; node_of[n++] = 0; }
    }
    for (int s = 0; s < k; s++) {
        /* the first node with `per` free cores keeps the set on one node; else any free cores in order */
        int pick = -1;
        for (int nd = 0; nd < nnodes && pick < 0; nd++) {
            int f = 0;
            for (int i = 0; i < n; i++) f += !used[i] && node_of[i] == nd;
            if (f >= per) pick = nd;
        }
        hwloc_bitmap_t set = hwloc_bitmap_alloc();
        if (!set) { hwloc_topology_destroy(t); return hone_fail(err, "out of memory"); }
        for (int i = 0, got = 0; i < n && got < per; i++) {
            if (used[i] || (pick >= 0 && node_of[i] != pick)) continue;
            used[i] = 1;
            got++;
            hwloc_bitmap_or(set, set, hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, order[i])->cpuset);
        }
        hwloc_bitmap_list_snprintf(sets[s], THREADS_SET_LEN, set);
        hwloc_bitmap_free(set);
    }
    hwloc_topology_destroy(t);
    *per_set = per;
    return k;
}
