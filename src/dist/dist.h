/* dist/ — running as one of several processes (ranks) of an MPI job: the only folder that
 *   includes <mpi.h>, and only when configure found MPI (HONE_HAVE_MPI); without it, or when
 *   the process was not started by mpirun / srun, every function below acts as a job of one
 *   rank, so the same binary runs alone. May include base/ only.
 *
 * dist/dist.h — ranks, placement and the few collectives training needs. MPI moves bytes
 * only: every sum here is computed by hone in rank order (0, 1, ..., N-1) from the gathered
 * parts, so a result never depends on timing or on the MPI library's reduction algorithm.
 * Only the calling (main) thread talks to MPI (MPI_THREAD_FUNNELED). */
#ifndef HONE_DIST_H
#define HONE_DIST_H
#include "base/error.h"
#include <stddef.h>

/* Starts MPI when the process was launched by an MPI launcher (OMPI_COMM_WORLD_SIZE,
 * PMIX_RANK or PMI_RANK in the environment), else stays a job of one. Idempotent. When a
 * launched job's ranks are not bound to distinct cores, sets HONE_CPUSET to this rank's
 * share of the node (threads_partition), so OpenMP threads of ranks on one node do not
 * share cores. Ranks other than 0 get a muted stderr (their lines would repeat rank 0's)
 * unless HONE_RANK_LOGS=1. Returns 0, or -1 with err when MPI is asked for and fails. */
int dist_init(hone_error *err);
/* MPI_Finalize when dist_init started MPI (registered with atexit too). */
void dist_finalize(void);
int dist_rank(void);
int dist_size(void);
/* Ranks on this node and this rank's index among them. */
int dist_local_rank(void);
int dist_local_size(void);
/* Whether MPI is built in / was started for this process. */
int dist_built(void);
int dist_started(void);
/* Whether the environment says an MPI launcher started this process. */
int dist_launched(void);
/* The MPI library's version line ("Open MPI v4.1.4, ..."), or why there is none. */
const char *dist_library(void);

/* Stops the whole job: prints "hone: rank R of N (host): msg" on stderr and aborts every
 * rank with status code (MPI_Abort); a job of one just prints. Returns code for callers
 * that exit with it. */
int dist_fail(const char *msg, int code);

void dist_barrier(void);
/* Broadcasts bytes from rank root to all. */
void dist_bcast(void *buf, size_t bytes, int root);
/* v[0..n) := the sum over ranks of v, added in rank order (exact for integers held in doubles). */
void dist_sum_f64(double *v, int n);
/* Sum over ranks of an integer. */
long long dist_sum_i64(long long v);
/* The lowest rank whose ok is 0, or -1 when every rank passed ok != 0. */
int dist_first_failed(int ok);
/* Gathers each rank's n doubles into all[rank * n ...] on every rank. */
void dist_allgather_f64(const double *mine, double *all, int n);
/* Gathers one fixed-size text per rank (len bytes each) into all[rank * len] on rank 0. */
void dist_gather_text(const char *mine, char *all, size_t len);
/* In place: rank r's part buf[displs[r] .. + counts[r]) goes to every rank (counts in floats,
 * any size: sent in pieces of at most 2^28 floats). */
void dist_allgatherv_f32(float *buf, const size_t *counts, const size_t *displs);

/* A nonblocking exchange (MPI_Ialltoallv over floats): rank r's send[sdispls[q] .. +scounts[q])
 * lands in rank q's recv[rdispls[r] .. +rcounts[r]]. Every rank must post the same exchanges
 * in the same order. *req receives a handle for dist_test / dist_wait_all. */
typedef struct dist_req { void *h; } dist_req;
int dist_ialltoallv_f32(const float *send, const int *scounts, const int *sdispls, float *recv, const int *rcounts,
                        const int *rdispls, dist_req *req, hone_error *err);
/* The same over doubles (the fp64 gradient sums of grad_accum_dtype fp64). */
int dist_ialltoallv_f64(const double *send, const int *scounts, const int *sdispls, double *recv, const int *rcounts,
                        const int *rdispls, dist_req *req, hone_error *err);
/* Lets posted exchanges advance (call between pieces of work). */
void dist_progress(dist_req *reqs, int n);
void dist_wait_all(dist_req *reqs, int n);

/* This rank's placement in one line: host, rank, local rank, the CPUs it may run on and
 * their NUMA nodes (from sched_getaffinity and /sys). */
void dist_placement(char *out, size_t n);
#endif
