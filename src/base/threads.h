/* base/threads.h — thread count and placement. hwloc discovers packages, NUMA nodes,
 * physical cores and caches; hone runs one OpenMP thread per physical core
 * (or HONE_THREADS / the config's `threads`), pinned once at start-up. */
#ifndef HONE_THREADS_H
#define HONE_THREADS_H
#include "base/error.h"
#include <stddef.h>

#define HONE_MAX_THREADS 256 /* the most threads hone runs (size of the placement tables) */

typedef struct hone_topology {
    int packages, numa_nodes, cores, pus;
    long l1d, l2, l3;        /* bytes per cache, 0 when unknown */
    int threads;             /* threads hone uses */
    int requested;           /* threads asked for (argument, else HONE_THREADS, else cores) before
                                the HONE_MAX_THREADS cap: callers warn when it differs from threads */
    char cpu_model[128];
    int core_of_thread[HONE_MAX_THREADS]; /* logical index of the core thread t is pinned to */
    int numa_of_thread[HONE_MAX_THREADS]; /* NUMA node of that core */
} hone_topology;

/* Discovers the machine (or a synthetic topology string / XML file given in
 * HONE_TOPOLOGY, for tests), decides the thread count (requested > 0 wins, then
 * HONE_THREADS, then one per physical core) and, when pin is set, binds OpenMP
 * thread t to core core_of_thread[t]. Threads are spread over NUMA nodes
 * round-robin so each node's memory bandwidth is used. */
int threads_init(hone_topology *topo, int requested, int pin, hone_error *err);

/* Both honour HONE_CPUSET (an hwloc list of processing units, "0-3,8", as `hone` sets it
 * for each trial of a concurrent search): the topology is restricted to those PUs, the
 * default thread count is the cores among them, and threads_init binds the process to them
 * before pinning its threads inside. */

/* Plans the placement only (no binding): used by threads_init and by tests on
 * synthetic topologies. `desc` is an hwloc synthetic description or NULL. */
int threads_plan(hone_topology *topo, const char *desc, int requested, hone_error *err);

int threads_count(void);

/* Splits the cores (of desc, or the machine; within HONE_CPUSET when set) into k disjoint
 * sets of equal size (cores / k; k above the core count is lowered to it), each inside one
 * NUMA node when a node has that many free cores, else across nodes in order. Writes each
 * set's PUs as an hwloc list ("0-3") into sets[0..k), the cores per set into *per_set, and
 * returns the number of sets, or -1. */
#define THREADS_SET_LEN 256
int threads_partition(const char *desc, int k, char (*sets)[THREADS_SET_LEN], int *per_set, hone_error *err);

/* First touch: zeroes [p, p + bytes) with the OpenMP threads, thread t taking
 * the t-th of threads_count() equal page-aligned shares (the split of a
 * schedule(static) loop over the buffer), so on a multi-node machine each
 * share's pages are placed on the node of the thread that will use them. */
void threads_first_touch(void *p, size_t bytes);

/* Interleaves the pages of [p, p + bytes) (p page-aligned) over all NUMA nodes (for memory
 * every thread reads, like shared weights), moving pages already touched. Returns 0,
 * also on a one-node machine where there is nothing to do, or -1 when the OS refuses.
 * model_init applies it to the parameters; other large buffers are first-touched in
 * static shares by hone_alloc. */
int threads_interleave(void *p, size_t bytes, hone_error *err);
#endif
