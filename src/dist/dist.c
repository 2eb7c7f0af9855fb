/* dist/dist.c — ranks and collectives over MPI, or a job of one without it (dist.h).
 * Compiled in every build; the MPI calls only where configure found MPI. */
#include "dist/dist.h"
#include "config.h"
#include "base/threads.h"
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if HONE_HAVE_MPI
#include <mpi.h>
#endif

static int g_started, g_rank, g_size = 1, g_local_rank, g_local_size = 1;
static int g_errfd = 2; /* where dist_fail writes: stderr, kept when stderr is muted */

int dist_built(void) { return HONE_HAVE_MPI; }
int dist_started(void) { return g_started; }
int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int dist_local_rank(void) { return g_local_rank; }
int dist_local_size(void) { return g_local_size; }

int dist_launched(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]) && *getenv(vars[i])) return 1;
    return 0;
}

/* the CPUs this process may run on, as an hwloc list ("0-3,8"); returns their count */
static int affinity_list(char *out, size_t n) {
    cpu_set_t s;
    out[0] = 0;
    if (sched_getaffinity(0, sizeof s, &s) != 0) return 0;
    int count = 0;
    size_t o = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &s)) continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &s)) e++;
        int w = e > c ? snprintf(out + o, n - o, "%s%d-%d", o ? "," : "", c, e) : snprintf(out + o, n - o, "%s%d", o ? "," : "", c);
        if (w < 0 || (size_t)w >= n - o) break;
        o += (size_t)w;
        count += e - c + 1;
        c = e;
    }
    return count;
}

#if HONE_HAVE_MPI
/* Ranks of one node must not pin their threads onto the same cores: a rank bound by the
 * launcher keeps its binding (as HONE_CPUSET); an unbound one takes its local share. */
static void place_rank(void) {
    if (getenv("HONE_CPUSET") && *getenv("HONE_CPUSET")) return;
    char mine[THREADS_SET_LEN];
    int n = affinity_list(mine, sizeof mine);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (n > 0 && n < online) { setenv("HONE_CPUSET", mine, 1); return; }
    if (g_local_size <= 1) return;
    char (*sets)[THREADS_SET_LEN] = calloc((size_t)g_local_size, THREADS_SET_LEN);
    int per, k;
    if (sets && (k = threads_partition(NULL, g_local_size, sets, &per, NULL)) > 0) setenv("HONE_CPUSET", sets[g_local_rank % k], 1);
    free(sets);
}
#endif

int dist_init(hone_error *err) {
    if (g_started || !dist_launched()) return 0;
#if HONE_HAVE_MPI
    int provided = 0, flag = 0;
    MPI_Initialized(&flag);
    if (!flag && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return hone_fail(err, "MPI_Init_thread failed (started by mpirun / srun, but MPI could not start)");
    g_started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &g_local_rank);
    MPI_Comm_size(node, &g_local_size);
    MPI_Comm_free(&node);
    /* a failing rank stops the job through dist_fail; MPI's own errors abort too */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    atexit(dist_finalize);
    place_rank();
    /* every rank runs the same steps on the same data: their messages would repeat rank 0's N
     * times, so the other ranks' stderr is muted (HONE_RANK_LOGS=1 keeps it); failures still
     * reach the terminal through dist_fail */
    const char *keep = getenv("HONE_RANK_LOGS");
    if (g_rank > 0 && !(keep && *keep && strcmp(keep, "0"))) {
        int fd = open("/dev/null", O_WRONLY);
        g_errfd = dup(2);
        if (fd >= 0 && g_errfd >= 0) dup2(fd, 2);
        if (g_errfd < 0) g_errfd = 2;
        if (fd >= 0) close(fd);
    }
    return 0;
#else
    /* launched by mpirun, but this hone has no MPI: every rank would train alone */
    const char *sz = getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : getenv("PMI_SIZE");
    if (sz && atoi(sz) > 1)
        return hone_fail(err, "started by an MPI launcher as one of %s processes, but this hone was built without MPI "
                              "(./configure --with-mpi=yes, with openmpi-bin libopenmpi-dev installed)", sz);
    return 0;
#endif
}

void dist_finalize(void) {
#if HONE_HAVE_MPI
    int fin = 0;
    if (g_started && (MPI_Finalized(&fin), !fin)) MPI_Finalize();
#endif
}

const char *dist_library(void) {
#if HONE_HAVE_MPI
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    char *nl = strchr(v, '\n');
    if (nl) *nl = 0;
    char *c = strchr(v, ',');
    if (c && c - v < 40) *c = 0; /* "Open MPI v4.1.4" */
    return v;
#else
    return "not built in (./configure --with-mpi)";
#endif
}

int dist_fail(const char *msg, int code) {
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    if (g_size > 1) {
        fflush(stderr);
        dprintf(g_errfd, "hone: rank %d of %d (%s): %s; stopping every rank\n", g_rank, g_size, host, msg);
#if HONE_HAVE_MPI
        MPI_Abort(MPI_COMM_WORLD, code);
#endif
    }
    return code;
}

void dist_barrier(void) {
#if HONE_HAVE_MPI
    if (g_started) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

void dist_bcast(void *buf, size_t bytes, int root) {
#if HONE_HAVE_MPI
    if (g_size > 1)
        for (size_t o = 0; o < bytes; o += 1u << 30) {
            size_t k = bytes - o < (1u << 30) ? bytes - o : (1u << 30);
            MPI_Bcast((char *)buf + o, (int)k, MPI_BYTE, root, MPI_COMM_WORLD);
        }
#else
    (void)buf, (void)bytes, (void)root;
#endif
}

void dist_allgather_f64(const double *mine, double *all, int n) {
#if HONE_HAVE_MPI
    if (g_size > 1) { MPI_Allgather(mine, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD); return; }
#endif
    memmove(all, mine, sizeof(double) * (size_t)n);
}

void dist_sum_f64(double *v, int n) {
    if (g_size <= 1 || n <= 0) return;
    double *all = malloc(sizeof(double) * (size_t)n * (size_t)g_size);
    if (!all) { dist_fail("out of memory in dist_sum_f64", 1); return; }
    dist_allgather_f64(v, all, n);
    for (int i = 0; i < n; i++) {
        double s = all[i];
        for (int r = 1; r < g_size; r++) s += all[(size_t)r * n + i];
        v[i] = s;
    }
    free(all);
}

long long dist_sum_i64(long long v) {
#if HONE_HAVE_MPI
    if (g_size > 1) {
        long long s = 0;
        MPI_Allreduce(&v, &s, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD); /* integers: any order is exact */
        return s;
    }
#endif
    return v;
}

int dist_first_failed(int ok) {
#if HONE_HAVE_MPI
    if (g_size > 1) {
        int mine = ok ? g_size : g_rank, first = g_size;
        MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        return first < g_size ? first : -1;
    }
#endif
    return ok ? -1 : 0;
}

void dist_gather_text(const char *mine, char *all, size_t len) {
#if HONE_HAVE_MPI
    if (g_size > 1) { MPI_Gather(mine, (int)len, MPI_CHAR, all, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD); return; }
#endif
    memcpy(all, mine, len);
}

void dist_allgatherv_f32(float *buf, const size_t *counts, const size_t *displs) {
#if HONE_HAVE_MPI
    if (g_size <= 1) return;
    /* each rank broadcasts its own part in place, in rounds of at most CH floats so that
     * counts fit MPI's int; all of a round's broadcasts run at once */
    enum { CH = 1 << 28 };
    size_t most = 0;
    for (int r = 0; r < g_size; r++) most = counts[r] > most ? counts[r] : most;
    MPI_Request *rq = malloc(sizeof(MPI_Request) * (size_t)g_size);
    if (!rq) { dist_fail("out of memory in dist_allgatherv_f32", 1); return; }
    for (size_t o = 0; o < most; o += CH) {
        for (int r = 0; r < g_size; r++) {
            size_t k = counts[r] > o ? counts[r] - o : 0;
            MPI_Ibcast(buf + displs[r] + (k ? o : 0), (int)(k < CH ? k : CH), MPI_FLOAT, r, MPI_COMM_WORLD, &rq[r]);
        }
        MPI_Waitall(g_size, rq, MPI_STATUSES_IGNORE);
    }
    free(rq);
#else
    (void)buf, (void)counts, (void)displs;
#endif
}

/* the exchange over floats (f64 0) or doubles (f64 1); counts and displacements in elements */
static int ialltoallv(const void *send, const int *scounts, const int *sdispls, void *recv, const int *rcounts, const int *rdispls,
                      int f64, dist_req *req, hone_error *err) {
    req->h = NULL;
#if HONE_HAVE_MPI
    if (g_size > 1) {
        MPI_Datatype type = f64 ? MPI_DOUBLE : MPI_FLOAT;
        MPI_Request *r = malloc(sizeof *r);
        if (!r) return hone_fail(err, "out of memory");
        if (MPI_Ialltoallv(send, scounts, sdispls, type, recv, rcounts, rdispls, type, MPI_COMM_WORLD, r) != MPI_SUCCESS) {
            free(r);
            return hone_fail(err, "MPI_Ialltoallv failed");
        }
        req->h = r;
        return 0;
    }
#endif
    /* a job of one: its own part is the whole exchange */
    size_t es = f64 ? sizeof(double) : sizeof(float);
    if (rcounts[0]) memcpy((char *)recv + es * (size_t)rdispls[0], (const char *)send + es * (size_t)sdispls[0], es * (size_t)scounts[0]);
    (void)err;
    return 0;
}

int dist_ialltoallv_f32(const float *send, const int *scounts, const int *sdispls, float *recv, const int *rcounts,
                        const int *rdispls, dist_req *req, hone_error *err) {
    return ialltoallv(send, scounts, sdispls, recv, rcounts, rdispls, 0, req, err);
}

int dist_ialltoallv_f64(const double *send, const int *scounts, const int *sdispls, double *recv, const int *rcounts,
                        const int *rdispls, dist_req *req, hone_error *err) {
    return ialltoallv(send, scounts, sdispls, recv, rcounts, rdispls, 1, req, err);
}

void dist_progress(dist_req *reqs, int n) {
#if HONE_HAVE_MPI
    for (int i = 0; i < n; i++)
        if (reqs[i].h) {
            int done = 0;
            MPI_Test((MPI_Request *)reqs[i].h, &done, MPI_STATUS_IGNORE);
            if (done) { free(reqs[i].h); reqs[i].h = NULL; }
        }
#else
    (void)reqs, (void)n;
#endif
}

void dist_wait_all(dist_req *reqs, int n) {
#if HONE_HAVE_MPI
    for (int i = 0; i < n; i++)
        if (reqs[i].h) {
            MPI_Wait((MPI_Request *)reqs[i].h, MPI_STATUS_IGNORE);
            free(reqs[i].h);
            reqs[i].h = NULL;
        }
#else
    (void)reqs, (void)n;
#endif
}

/* the NUMA nodes holding any CPU this process may run on (from /sys), as "0" or "0,1" */
static void numa_of(char *out, size_t n) {
    cpu_set_t s;
    out[0] = 0;
    if (sched_getaffinity(0, sizeof s, &s) != 0) return;
    size_t o = 0;
    for (int node = 0; node < 64; node++) {
        char p[128], *txt = NULL;
        snprintf(p, sizeof p, "/sys/devices/system/node/node%d/cpulist", node);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        size_t cap = 0;
        int any = 0;
        if (getline(&txt, &cap, f) > 0) {
            /* the node's list "a-b,c": is one of them ours? */
            for (char *tok = strtok(txt, ",\n"); tok && !any; tok = strtok(NULL, ",\n")) {
                int a = 0, b = -1;
                if (sscanf(tok, "%d-%d", &a, &b) < 2) b = a;
                for (int c = a; c <= b && c < CPU_SETSIZE && !any; c++) any = CPU_ISSET(c, &s);
            }
        }
        free(txt);
        fclose(f);
        if (any) {
            int w = snprintf(out + o, n - o, "%s%d", o ? "," : "", node);
            if (w > 0 && (size_t)w < n - o) o += (size_t)w;
        }
    }
    if (!out[0]) snprintf(out, n, "?");
}

void dist_placement(char *out, size_t n) {
    char host[64] = "", cpus[THREADS_SET_LEN], nodes[64];
    gethostname(host, sizeof host - 1);
    affinity_list(cpus, sizeof cpus);
    numa_of(nodes, sizeof nodes);
    const char *cs = getenv("HONE_CPUSET");
    snprintf(out, n, "rank %d of %d on %s (local rank %d of %d): cpus %s, NUMA node(s) %s%s", g_rank, g_size, host, g_local_rank,
             g_local_size, cs && *cs ? cs : cpus, nodes, cs && *cs ? " (HONE_CPUSET)" : "");
}
