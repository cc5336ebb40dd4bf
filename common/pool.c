/*
 * pool.c: the compute thread pool and task queues of pool.h.
 *
 * Owns: the helper threads, the futex waits, the job hand-over. Moved here
 * from conv_winograd.c so that every engine (and the trainer) can share one
 * set of threads instead of each creating its own.
 */
#include "pool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Waiting. The threads of a job are usually microseconds apart, so a waiter
 * first spins (POOL_SPINS pauses, about 20 us); then it sleeps in the kernel
 * (futex) so that on a busy machine the core goes to whoever can use it.
 * `sleepers` counts threads that may be asleep on a word, so that wakers
 * make no system call when nobody sleeps (both sides use sequentially
 * consistent operations: either the waiter sees the new value or the waker
 * sees the sleeper). */
#define POOL_SPINS 512

static void pool_wait_change(_Atomic unsigned *word, unsigned old, _Atomic int *sleepers) {
    for (int i = 0; i < POOL_SPINS; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) != old)
            return;
        __builtin_ia32_pause();
    }
    atomic_fetch_add(sleepers, 1);
    while (atomic_load(word) == old)
        syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_PRIVATE, old, NULL, NULL, 0);
    atomic_fetch_sub(sleepers, 1);
}

static void pool_wake_all(_Atomic unsigned *word, _Atomic int *sleepers) {
    if (atomic_load(sleepers) > 0)
        syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* One process-wide pool: helpers 1..nthreads-1 wait for jobs; the thread that
 * calls forward works as thread 0. Jobs are serialised by `run`, so several
 * networks may share the pool. */

typedef struct {
    pthread_mutex_t run; /* held for the duration of a job, and by acquire/release */
    pthread_t th[BN_POOL_MAX_THREADS];
    int nthreads; /* threads of the pool, caller included (helpers = nthreads - 1) */
    int refs;     /* prepared layers using the pool */
    _Atomic int quit;
    _Atomic unsigned gen;     /* bumped once per job (and to make helpers quit) */
    _Atomic unsigned pending; /* helpers not yet done with the current job */
    _Atomic int sleepers;     /* threads that may sleep on gen or pending */
    bn_pool_fn fn;
    void *arg;
    int job_threads;
} pool_t;

static pool_t pool = {
    .run = PTHREAD_MUTEX_INITIALIZER,
    .nthreads = 1,
};

/* The job generation each helper was started at (set before it starts). */
static unsigned pool_start_gen[BN_POOL_MAX_THREADS];

static void *pool_helper(void *argp) {
    int tid = (int)(intptr_t)argp;
    unsigned seen = pool_start_gen[tid];
    for (;;) {
        pool_wait_change(&pool.gen, seen, &pool.sleepers);
        seen = atomic_load(&pool.gen);
        if (atomic_load(&pool.quit))
            return NULL;
        if (tid < pool.job_threads)
            pool.fn(pool.arg, tid, pool.job_threads);
        if (atomic_fetch_sub(&pool.pending, 1) == 1)
            pool_wake_all(&pool.pending, &pool.sleepers);
    }
}

/* Make sure the pool has at least `want` threads (capped). Called at prepare,
 * never from forward. Returns 0, or an errno-style code if a thread could not
 * start (the pool then keeps the threads it has). */
int bn_pool_acquire(int want) {
    int rc = 0;
    if (want > BN_POOL_MAX_THREADS)
        want = BN_POOL_MAX_THREADS;
    pthread_mutex_lock(&pool.run);
    pool.refs++;
    while (pool.nthreads < want) {
        int tid = pool.nthreads;
        pool_start_gen[tid] = atomic_load(&pool.gen);
        rc = pthread_create(&pool.th[tid], NULL, pool_helper, (void *)(intptr_t)tid);
        if (rc)
            break;
        pool.nthreads++;
    }
    pthread_mutex_unlock(&pool.run);
    return rc;
}

/* Drop one reference; the last one stops and joins the helpers. */
void bn_pool_release(void) {
    pthread_mutex_lock(&pool.run);
    if (--pool.refs == 0 && pool.nthreads > 1) {
        atomic_store(&pool.quit, 1);
        atomic_fetch_add(&pool.gen, 1);
        pool_wake_all(&pool.gen, &pool.sleepers);
        for (int i = 1; i < pool.nthreads; i++)
            pthread_join(pool.th[i], NULL);
        pool.nthreads = 1;
        atomic_store(&pool.quit, 0);
    }
    pthread_mutex_unlock(&pool.run);
}

/* Run fn(arg, tid, nth) on nth threads (the caller is tid 0) and wait for all. */
void bn_pool_run(bn_pool_fn fn, void *arg, int nth) {
    pthread_mutex_lock(&pool.run);
    if (nth > pool.nthreads)
        nth = pool.nthreads;
    if (nth <= 1) {
        pthread_mutex_unlock(&pool.run);
        fn(arg, 0, 1);
        return;
    }
    pool.fn = fn;
    pool.arg = arg;
    pool.job_threads = nth;
    atomic_store(&pool.pending, (unsigned)pool.nthreads - 1);
    atomic_fetch_add(&pool.gen, 1);
    pool_wake_all(&pool.gen, &pool.sleepers);
    fn(arg, 0, nth);
    for (unsigned left; (left = atomic_load(&pool.pending)) != 0;)
        pool_wait_change(&pool.pending, left, &pool.sleepers);
    pthread_mutex_unlock(&pool.run);
}

void bn_pool_finish(bn_pool_queue *q, unsigned end) {
    if (atomic_fetch_add(&q->done, 1) + 1 == end)
        pool_wake_all(&q->done, &q->sleepers);
}

void bn_pool_wait_done(bn_pool_queue *q, unsigned end) {
    for (unsigned d; (d = atomic_load(&q->done)) < end;)
        pool_wait_change(&q->done, d, &q->sleepers);
}
