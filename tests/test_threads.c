/* test_threads.c — thread placement (src/base/threads.c) on synthetic hwloc
 * topologies, since the test machine has one NUMA node: one thread per
 * physical core (not per hardware thread), threads dealt round-robin over the
 * NUMA nodes onto cores of their own node, HONE_THREADS and an explicit
 * request overriding the count, bad descriptions reported, not crashed on. */
#include "test.h"
#include "base/threads.h"
#include <hwloc.h>

/* For each thread: its core exists, lies in its NUMA node (checked against the
 * same synthetic topology), and no core has more than ceil(threads/cores). */
static void check_plan(const char *desc, const hone_topology *tp) {
    hwloc_topology_t t;
    hwloc_topology_init(&t);
    hwloc_topology_set_synthetic(t, desc);
    hwloc_topology_load(t);
    int uses[256] = {0};
    for (int th = 0; th < tp->threads; th++) {
        int c = tp->core_of_thread[th], node = tp->numa_of_thread[th];
        CHECK(c >= 0 && c < tp->cores, "%s: thread %d on core %d of %d", desc, th, c, tp->cores);
        if (c < 0 || c >= tp->cores) continue;
        uses[c]++;
        CHECK(node == th % tp->numa_nodes, "%s: thread %d on node %d, want %d (round-robin)", desc, th, node,
              th % tp->numa_nodes);
        hwloc_obj_t core = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, c);
        hwloc_obj_t nobj = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, node);
        CHECK(core && nobj && hwloc_bitmap_isincluded(core->cpuset, nobj->cpuset),
              "%s: thread %d's core %d is not in its NUMA node %d", desc, th, c, node);
    }
    int cap = (tp->threads + tp->cores - 1) / tp->cores;
    for (int c = 0; c < tp->cores; c++)
        CHECK(uses[c] <= cap, "%s: core %d runs %d threads (at most %d)", desc, c, uses[c], cap);
    hwloc_topology_destroy(t);
}

static void test_one_thread_per_core(void) {
    unsetenv("HONE_THREADS");
    hone_topology tp;
    hone_error err;
    const char *desc = "pack:2 numa:1 core:4 pu:2";
    CHECK(threads_plan(&tp, desc, 0, &err) == 0, "%s", err.msg);
    CHECK(tp.packages == 2 && tp.numa_nodes == 2 && tp.cores == 8 && tp.pus == 16,
          "counts %d packages %d nodes %d cores %d pus", tp.packages, tp.numa_nodes, tp.cores, tp.pus);
    CHECK(tp.threads == 8, "threads %d, want one per physical core (8)", tp.threads);
    check_plan(desc, &tp);
}

static void test_round_robin_numa(void) {
    unsetenv("HONE_THREADS");
    const char *descs[] = {"pack:2 group:2 numa:1 core:2 pu:1", "numa:3 core:5 pu:2", "core:2 pu:1",
                           "pack:4 numa:1 core:3 pu:1"};
    for (int i = 0; i < 4; i++) {
        hone_topology tp;
        hone_error err;
        CHECK(threads_plan(&tp, descs[i], 0, &err) == 0, "%s", err.msg);
        CHECK(tp.threads == tp.cores, "%s: %d threads for %d cores", descs[i], tp.threads, tp.cores);
        check_plan(descs[i], &tp);
        /* fewer threads than cores still alternate nodes */
        CHECK(threads_plan(&tp, descs[i], 3, &err) == 0, "%s", err.msg);
        check_plan(descs[i], &tp);
    }
}

static void test_thread_count_overrides(void) {
    hone_topology tp;
    hone_error err;
    const char *desc = "pack:2 numa:1 core:4 pu:2";
    setenv("HONE_THREADS", "3", 1);
    CHECK(threads_plan(&tp, desc, 0, &err) == 0, "%s", err.msg);
    CHECK(tp.threads == 3, "HONE_THREADS=3 gave %d threads", tp.threads);
    check_plan(desc, &tp);
    CHECK(threads_plan(&tp, desc, 5, &err) == 0, "%s", err.msg);
    CHECK(tp.threads == 5, "an explicit request of 5 gave %d (it wins over HONE_THREADS)", tp.threads);
    setenv("HONE_THREADS", "junk", 1);
    CHECK(threads_plan(&tp, desc, 0, &err) == 0, "%s", err.msg);
    CHECK(tp.threads == 8, "HONE_THREADS=junk gave %d threads, want the core count", tp.threads);
    unsetenv("HONE_THREADS");
    CHECK(threads_plan(&tp, desc, 20, &err) == 0, "%s", err.msg); /* oversubscribed: spread evenly */
    CHECK(tp.threads == 20, "requested 20 gave %d", tp.threads);
    check_plan(desc, &tp);
}

static void test_bad_topology(void) {
    hone_topology tp;
    hone_error err = {{0}};
    CHECK(threads_plan(&tp, "pack:banana", 0, &err) == -1, "a bad synthetic description was accepted");
    CHECK(strstr(err.msg, "pack:banana") != NULL, "message does not name the description: %s", err.msg);
}

static void test_this_machine(void) {
    hone_topology tp;
    hone_error err;
    unsetenv("HONE_THREADS");
    CHECK(threads_plan(&tp, NULL, 0, &err) == 0, "%s", err.msg);
    CHECK(tp.cores >= 1 && tp.threads >= 1 && tp.numa_nodes >= 1, "cores %d threads %d nodes %d", tp.cores,
          tp.threads, tp.numa_nodes);
    for (int th = 0; th < tp.threads; th++)
        CHECK(tp.core_of_thread[th] >= 0 && tp.core_of_thread[th] < tp.cores, "thread %d core %d", th,
              tp.core_of_thread[th]);
}

static void test_first_touch_and_interleave(void) {
    size_t n = 3 * 4096 * 5 + 123;
    unsigned char *p = malloc(n);
    memset(p, 0xab, n);
    threads_first_touch(p, n);
    size_t nz = 0;
    for (size_t i = 0; i < n; i++) nz += p[i] != 0;
    CHECK(nz == 0, "first touch left %zu bytes unzeroed", nz);
    hone_error err;
    CHECK(threads_interleave(p, n, &err) == 0, "%s", err.msg);
    threads_first_touch(p, 0);
    free(p);
}

/* the NUMA node (0-based) holding PU os index pu in a "numa:N core:C pu:P" description */
static int node_of_pu(int pu, int cores_per_node, int pus_per_core) { return pu / (cores_per_node * pus_per_core); }

/* threads_partition: k disjoint sets of cores/k cores each, inside one node when they fit */
static void test_partition_numa(void) {
    unsetenv("HONE_CPUSET");
    static const struct { int k, want_k, per; } cases[] = {{1, 1, 8}, {2, 2, 4}, {4, 4, 2}, {3, 3, 2}, {8, 8, 1}, {100, 8, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char sets[100][THREADS_SET_LEN];
        int per = 0;
        hone_error err;
        int k = threads_partition("numa:2 core:4 pu:2", cases[c].k, sets, &per, &err);
        CHECK(k == cases[c].want_k && per == cases[c].per, "k %d: got %d sets of %d cores, want %d of %d", cases[c].k, k, per,
              cases[c].want_k, cases[c].per);
        int owner[16];
        for (int i = 0; i < 16; i++) owner[i] = -1;
        for (int s = 0; s < k && k > 0; s++) {
            /* parse "a-b,c" */
            int npu = 0, node = -1, same_node = 1;
            for (const char *p = sets[s]; *p;) {
                int a = (int)strtol(p, (char **)&p, 10), b = a;
                if (*p == '-') b = (int)strtol(p + 1, (char **)&p, 10);
                for (int u = a; u <= b && u < 16; u++) {
                    CHECK(owner[u] < 0, "k %d: PU %d in sets %d and %d", cases[c].k, u, owner[u], s);
                    owner[u] = s;
                    npu++;
                    if (node < 0) node = node_of_pu(u, 4, 2);
                    same_node &= node_of_pu(u, 4, 2) == node;
                }
                if (*p == ',') p++;
            }
            CHECK(npu == 2 * per, "k %d: set %d '%s' has %d PUs, want %d", cases[c].k, s, sets[s], npu, 2 * per);
            CHECK(per > 4 || same_node, "k %d: set %d '%s' spans NUMA nodes although %d cores fit in one", cases[c].k, s, sets[s], per);
        }
    }
}

/* HONE_CPUSET restricts the plan to its PUs: the default thread count is its cores */
static void test_cpuset_restricts(void) {
    hone_topology tp;
    hone_error err;
    setenv("HONE_CPUSET", "4-7", 1);
    unsetenv("HONE_THREADS");
    CHECK(threads_plan(&tp, "numa:2 core:4 pu:2", 0, &err) == 0, "%s", err.msg);
    CHECK(tp.cores == 2 && tp.threads == 2 && tp.numa_nodes == 1, "HONE_CPUSET 4-7: %d cores, %d threads, %d nodes", tp.cores, tp.threads,
          tp.numa_nodes);
    char sets[2][THREADS_SET_LEN];
    int per = 0;
    CHECK(threads_partition("numa:2 core:4 pu:2", 2, sets, &per, &err) == 2 && !strcmp(sets[0], "4-5") && !strcmp(sets[1], "6-7"),
          "partition inside HONE_CPUSET 4-7: '%s' '%s'", sets[0], sets[1]);
    setenv("HONE_CPUSET", "99", 1);
    CHECK(threads_plan(&tp, "numa:2 core:4 pu:2", 0, &err) == -1 && strstr(err.msg, "HONE_CPUSET"), "a cpuset outside the machine: %s",
          err.msg);
    unsetenv("HONE_CPUSET");
}

int main(void) {
    TEST_RUN(test_one_thread_per_core);
    TEST_RUN(test_round_robin_numa);
    TEST_RUN(test_thread_count_overrides);
    TEST_RUN(test_bad_topology);
    TEST_RUN(test_this_machine);
    TEST_RUN(test_first_touch_and_interleave);
    TEST_RUN(test_partition_numa);
    TEST_RUN(test_cpuset_restricts);
    return test_finish();
}
