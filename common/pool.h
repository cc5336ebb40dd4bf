/*
 * pool.h: the process-wide pool of compute threads, and task queues.
 *
 * Engines that run their own threads (conv_winograd.c, conv_direct.c) hand a
 * job to the pool: fn(arg, tid, nth) runs on nth threads, the caller being
 * thread 0, and bn_pool_run returns when all are done. Helpers wait between
 * jobs spinning briefly, then asleep on a futex, so that back-to-back layers
 * start within microseconds and an idle program uses no CPU. Jobs are
 * serialised: several networks may share the pool.
 *
 * Inside a job, work is handed out in numbered tasks (bn_pool_queue):
 * whichever thread is free takes the next number, so threads finish together
 * even when one of them is slowed (edge tiles, or a busy machine taking its
 * core away for a while). Which thread computes a task never changes what it
 * computes: results do not depend on the thread count.
 */
#ifndef BN_POOL_H
#define BN_POOL_H

#include <stdatomic.h>

/* Upper bound on the threads of the pool. */
#define BN_POOL_MAX_THREADS 64

typedef void (*bn_pool_fn)(void *arg, int tid, int nth);

/* Make sure the pool has at least `want` threads (capped), and hold a
 * reference to it. Call when preparing, never from a job. Returns 0, or an
 * errno-style code if a thread could not start (the pool then keeps the
 * threads it has: slower, not wrong). */
int bn_pool_acquire(int want);

/* Drop one reference; the last one stops and joins the helpers. */
void bn_pool_release(void);

/* Run fn(arg, tid, nth) on nth threads (the caller is tid 0; fewer if the
 * pool has fewer) and wait for all of them. */
void bn_pool_run(bn_pool_fn fn, void *arg, int nth);

/* Work handed out in numbered tasks: whichever thread is free takes the
 * next one, so threads finish together even when one of them is slowed
 * (edge tiles, or a busy machine taking its core away for a while). */
typedef struct {
    _Atomic unsigned next; /* next task number to hand out */
    _Atomic unsigned done; /* tasks finished */
    _Atomic int sleepers;
} bn_pool_queue;

/* Take the next task number below `end` into *task; 0 when none is left. */
static inline int bn_pool_take(bn_pool_queue *q, unsigned end, unsigned *task) {
    unsigned k = atomic_load(&q->next);
    while (k < end)
        if (atomic_compare_exchange_weak(&q->next, &k, k + 1)) {
            *task = k;
            return 1;
        }
    return 0;
}

/* Count one task of those numbered below `end` as finished. */
void bn_pool_finish(bn_pool_queue *q, unsigned end);

/* Wait until every task numbered below `end` is finished. */
void bn_pool_wait_done(bn_pool_queue *q, unsigned end);

#endif
