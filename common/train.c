/*
 * train.c: logistic regression / softmax heads and their solvers (train.h).
 *
 * Layout of this file:
 *   kernels          dot and axpy of float32 rows with double vectors
 *   objective        one pass over the rows: loss, gradient (train_pass)
 *   standardisation  StandardScaler's mean and scale on the training rows
 *   lbfgs            driving lbfgs.c with full passes
 *   newton           binary only: Hessian by blocks with dsyrk, Cholesky solve
 *   sgd / adam       shuffled mini-batches, early stopping on validation
 *   heads            folding standardisation into float32 weights; prediction
 *
 * The optimisers work on F = f / (C * S), S = sum of the sample weights: the
 * mean weighted loss plus ||W||^2 / (2 C S). It has the same minimiser as f
 * and values of order one; f itself is reported.
 *
 * Parameters are one vector theta = [W (nout x dim, row-major), b (nout)].
 */
#include "train.h"
#include "cpu.h"

#include "lbfgs.h"
#include "pool.h"
#include "progress.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Passes over the rows run on bn_cpu_threads() threads (cpu.h) when there is
 * enough work: n * nout * dim >= TRAIN_PARALLEL_WORK. */
#define TRAIN_PARALLEL_WORK 4e6
#define TRAIN_CHUNKS 16
#define TRAIN_CHUNK_BYTES (64u << 20)

/* ---- options ------------------------------------------------------------ */

static const char *const train_solver_names[] = {"lbfgs", "newton", "sgd", "adam"};

int bn_solver_parse(const char *s, bn_solver *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, train_solver_names[i]) == 0) {
            *out = (bn_solver)i;
            return 0;
        }
    return -1;
}

const char *bn_solver_name(bn_solver s) {
    return (unsigned)s < 4 ? train_solver_names[s] : "?";
}

void bn_train_opts_default(bn_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->solver = BN_SOLVER_LBFGS;
    o->C = 1.0;
    o->max_iter = 1000;
    o->tol = 1e-4;
    o->epochs = 100;
    o->batch_size = 32;
    o->patience = 5;
    o->lr = 1e-3;
    o->seed = 0;
}

int bn_data_rows(const bn_data *d) {
    int n = 0;
    for (int b = 0; b < d->nblocks; b++)
        n += d->block[b].n;
    return n;
}

/* ---- kernels -------------------------------------------------------------- */

/* The two kernels every pass over the rows spends its time in. Compiled
 * twice (target_clones): AVX2+FMA where the CPU has it, baseline x86-64
 * otherwise; the loader picks once, so results are identical from run to run
 * on one machine (FMA rounds differently from separate multiply-add, so two
 * machines may differ in the last bits). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TRAIN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define TRAIN_CLONES
#endif

/* sum_j x[j] * v[j], float32 row times double vector, in eight partial sums
 * (vectorisable; the order is fixed, hence reproducible). */
TRAIN_CLONES static double train_dot(const float *x, const double *v, int n) {
    double s[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++)
            s[k] += (double)x[j + k] * v[j + k];
    for (; j < n; j++)
        s[0] += (double)x[j] * v[j];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* g += a * x. In blocks of 8 with a scalar tail, as train_dot: GCC's -O2
 * (the default build's) vectorises only loops of a known count, and this
 * is half of every gradient pass. Each element's operations are the same
 * either way: the same bytes. */
TRAIN_CLONES static void train_axpy(double a, const float *x, double *g, int n) {
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++)
            g[j + k] += a * (double)x[j + k];
    for (; j < n; j++)
        g[j] += a * (double)x[j];
}

static double train_softplus(double z) {
    return fmax(z, 0.0) + log1p(exp(-fabs(z)));
}

static double train_sigmoid(double z) {
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* ---- objective -------------------------------------------------------------- */

/* What one pass accumulates over a range of rows. */
typedef struct {
    double *graw; /* (nout, dim) sum_i r_i x_i */
    double *rsum; /* (nout) sum_i r_i */
    double *z;    /* (nout) one row's logits */
    double loss;  /* sum_i sw_i loss_i */
} train_acc;

typedef struct {
    int dim, k, nout;
    double C;
    double *class_weight; /* (k) sw of each class */
    double S;             /* sum of sw over the training rows */
    const double *mean, *scale;
    double *v;        /* (nout, dim) effective weights on raw rows */
    double *c;        /* (nout) effective intercepts */
    int nchunks;      /* passes over the rows are cut into this many chunks */
    int nthreads;     /* that many threads work on them */
    train_acc *acc;   /* (nchunks) partial sums; acc[0] holds the total */
    const bn_data *d; /* the rows of the pass in progress (threads read it) */
    int grad;
    int pooled;      /* holds a reference to the thread pool (pool.h) */
    bn_pool_queue q; /* the chunks of the pass in progress */
} train_ctx;

/* v = w / scale, c = b - v . mean (the standardisation applied implicitly). */
static void train_effective(train_ctx *t, const double *theta) {
    const double *w = theta, *b = theta + (size_t)t->nout * t->dim;
    for (int o = 0; o < t->nout; o++) {
        double *vo = t->v + (size_t)o * t->dim;
        const double *wo = w + (size_t)o * t->dim;
        double c = b[o];
        if (t->scale) {
            for (int j = 0; j < t->dim; j++) {
                vo[j] = wo[j] / t->scale[j];
                c -= vo[j] * t->mean[j];
            }
        } else {
            memcpy(vo, wo, (size_t)t->dim * sizeof *vo);
        }
        t->c[o] = c;
    }
}

/* One row: its loss, and if grad, r = sw * (p - onehot(y)) accumulated into
 * graw and rsum scaled by gscale. Returns the unweighted loss. */
static double train_row(const train_ctx *t, train_acc *a, const float *x, int y, double gscale,
                        int grad) {
    double loss;
    if (t->nout == 1) {
        double z = train_dot(x, t->v, t->dim) + t->c[0];
        loss = train_softplus(z) - (y == 1 ? z : 0.0);
        if (grad) {
            double r = gscale * (train_sigmoid(z) - (y == 1));
            train_axpy(r, x, a->graw, t->dim);
            a->rsum[0] += r;
        }
    } else {
        double zmax = -INFINITY;
        for (int o = 0; o < t->nout; o++) {
            a->z[o] = train_dot(x, t->v + (size_t)o * t->dim, t->dim) + t->c[o];
            zmax = fmax(zmax, a->z[o]);
        }
        double sum = 0;
        for (int o = 0; o < t->nout; o++)
            sum += exp(a->z[o] - zmax);
        double lse = zmax + log(sum);
        loss = lse - a->z[y];
        if (grad)
            for (int o = 0; o < t->nout; o++) {
                double r = gscale * (exp(a->z[o] - lse) - (o == y));
                train_axpy(r, x, a->graw + (size_t)o * t->dim, t->dim);
                a->rsum[o] += r;
            }
    }
    return loss;
}

static void train_acc_clear(const train_ctx *t, train_acc *a, int grad) {
    if (grad) {
        memset(a->graw, 0, (size_t)t->nout * t->dim * sizeof *a->graw);
        memset(a->rsum, 0, (size_t)t->nout * sizeof *a->rsum);
    }
    a->loss = 0;
}

/* Chunk c of a pass: global rows [c n / nchunks, (c+1) n / nchunks), which
 * may span blocks, into acc[c]. */
static void train_chunk(train_ctx *t, int c) {
    const bn_data *d = t->d;
    train_acc *a = &t->acc[c];
    long n = bn_data_rows(d);
    long lo = n * c / t->nchunks, hi = n * (c + 1) / t->nchunks, base = 0;
    train_acc_clear(t, a, t->grad);
    for (int bl = 0; bl < d->nblocks; bl++) {
        const bn_block *blk = &d->block[bl];
        long from = lo > base ? lo - base : 0, to = hi - base < blk->n ? hi - base : blk->n;
        for (long i = from; i < to; i++) {
            double sw = t->class_weight[blk->y[i]];
            a->loss +=
                sw * train_row(t, a, blk->x + (size_t)i * t->dim, blk->y[i], sw / t->S, t->grad);
        }
        base += blk->n;
    }
}

/* One pool thread's share of a pass: chunks taken from the queue. */
static void train_work(void *arg, int tid, int nth) {
    (void)tid, (void)nth;
    train_ctx *t = arg;
    const unsigned end = (unsigned)t->nchunks;
    for (unsigned c; bn_pool_take(&t->q, end, &c);) {
        train_chunk(t, (int)c);
        bn_pool_finish(&t->q, end);
    }
}

/* One pass over d into acc[0]: chunks computed on the pool's threads (pool.h;
 * started once per process, not once per pass), then added in chunk order,
 * so the sums depend neither on the thread count nor on which thread took
 * which chunk. */
static void train_pass(train_ctx *t, const bn_data *d, int grad) {
    t->d = d;
    t->grad = grad;
    if (t->nthreads > 1) {
        memset(&t->q, 0, sizeof t->q);
        bn_pool_run(train_work, t, t->nthreads);
    } else {
        for (int c = 0; c < t->nchunks; c++)
            train_chunk(t, c);
    }
    train_acc *a = &t->acc[0];
    size_t p = (size_t)t->nout * t->dim;
    for (int c = 1; c < t->nchunks; c++) {
        const train_acc *b = &t->acc[c];
        a->loss += b->loss;
        if (grad) {
            for (size_t j = 0; j < p; j++)
                a->graw[j] += b->graw[j];
            for (int o = 0; o < t->nout; o++)
                a->rsum[o] += b->rsum[o];
        }
    }
}

/* grad = d/dtheta of (accumulated data term) + penalty * w, mapping the raw
 * sums back through the standardisation: d/dw_j = (graw_j - mean_j R) / scale_j. */
static void train_grad_end(train_ctx *t, const double *theta, double penalty, double *grad) {
    const train_acc *a = &t->acc[0];
    for (int o = 0; o < t->nout; o++) {
        const double *go = a->graw + (size_t)o * t->dim;
        const double *wo = theta + (size_t)o * t->dim;
        double *out = grad + (size_t)o * t->dim;
        if (t->scale)
            for (int j = 0; j < t->dim; j++)
                out[j] = (go[j] - t->mean[j] * a->rsum[o]) / t->scale[j] + penalty * wo[j];
        else
            for (int j = 0; j < t->dim; j++)
                out[j] = go[j] + penalty * wo[j];
        grad[(size_t)t->nout * t->dim + o] = a->rsum[o];
    }
}

static double train_sqnorm_w(const train_ctx *t, const double *theta) {
    double s = 0;
    for (size_t i = 0; i < (size_t)t->nout * t->dim; i++)
        s += theta[i] * theta[i];
    return s;
}

/* F(theta) = (1/S) sum_i sw_i loss_i + ||W||^2 / (2 C S), and its gradient
 * when grad is not NULL. */
static double train_eval(train_ctx *t, const bn_data *d, const double *theta, double *grad) {
    train_effective(t, theta);
    train_pass(t, d, grad != NULL);
    double pen = 1.0 / (t->C * t->S);
    if (grad)
        train_grad_end(t, theta, pen, grad);
    return t->acc[0].loss / t->S + 0.5 * pen * train_sqnorm_w(t, theta);
}

/* Mean unweighted cross-entropy of d (early stopping's yardstick). */
static double train_mean_loss(train_ctx *t, const bn_data *d, const double *theta) {
    train_effective(t, theta);
    double loss = 0;
    int n = 0;
    for (int bl = 0; bl < d->nblocks; bl++) {
        const bn_block *blk = &d->block[bl];
        for (int i = 0; i < blk->n; i++, n++)
            loss += train_row(t, &t->acc[0], blk->x + (size_t)i * t->dim, blk->y[i], 0, 0);
    }
    return n ? loss / n : 0;
}

static void train_ctx_free(train_ctx *t) {
    if (t->pooled)
        bn_pool_release();
    t->pooled = 0;
    free(t->class_weight);
    free(t->v);
    free(t->c);
    for (int c = 0; t->acc && c < t->nchunks; c++) {
        free(t->acc[c].graw);
        free(t->acc[c].rsum);
        free(t->acc[c].z);
    }
    free(t->acc);
}

/* Chunks and threads for passes over n rows of nout x dim weights: one chunk
 * for small problems; otherwise TRAIN_CHUNKS, fewer when their partial sums
 * would take more than TRAIN_CHUNK_BYTES. Depends only on the problem's
 * shape, never on the thread count, so results do not either. */
static int train_ctx_chunks(train_ctx *t, int n, bn_error *err) {
    size_t p = (size_t)t->nout * t->dim;
    int nc = 1;
    if ((double)n * (double)p >= TRAIN_PARALLEL_WORK) {
        nc = TRAIN_CHUNKS;
        while (nc > 1 && (size_t)nc * p * sizeof(double) > TRAIN_CHUNK_BYTES)
            nc /= 2;
        while (nc > 1 && n / nc < 64)
            nc /= 2;
    }
    t->nchunks = nc;
    int threads = bn_cpu_threads();
    t->nthreads = threads < 1 ? 1 : threads > nc ? nc : threads;
    if (t->nthreads > BN_POOL_MAX_THREADS)
        t->nthreads = BN_POOL_MAX_THREADS;
    /* A pool that cannot start every thread runs the pass on those it has. */
    if (t->nthreads > 1) {
        (void)bn_pool_acquire(t->nthreads);
        t->pooled = 1;
    }
    t->acc = calloc((size_t)nc, sizeof *t->acc);
    if (!t->acc)
        return bn_fail(err, BN_ENOMEM, "train: out of memory");
    for (int c = 0; c < nc; c++) {
        t->acc[c].graw = malloc(p * sizeof *t->acc[c].graw);
        t->acc[c].rsum = malloc((size_t)t->nout * sizeof *t->acc[c].rsum);
        t->acc[c].z = malloc((size_t)t->nout * sizeof *t->acc[c].z);
        if (!t->acc[c].graw || !t->acc[c].rsum || !t->acc[c].z)
            return bn_fail(err, BN_ENOMEM, "train: out of memory for %d x %zu partial sums", nc, p);
    }
    return BN_OK;
}

/* Class weights and S for the rows of d; checks every class occurs. */
static int train_ctx_init(train_ctx *t, const bn_data *d, const bn_train_opts *o,
                          const double *mean, const double *scale, bn_error *err) {
    memset(t, 0, sizeof *t);
    t->dim = d->dim;
    t->k = d->k;
    t->nout = d->k == 2 ? 1 : d->k;
    t->C = o->C;
    t->mean = mean;
    t->scale = scale;
    size_t p = (size_t)t->nout * t->dim;
    t->class_weight = calloc((size_t)d->k, sizeof *t->class_weight);
    t->v = malloc(p * sizeof *t->v);
    t->c = malloc((size_t)t->nout * sizeof *t->c);
    if (!t->class_weight || !t->v || !t->c) {
        train_ctx_free(t);
        return bn_fail(err, BN_ENOMEM, "train: out of memory for %d x %d weights", t->nout, t->dim);
    }
    if (train_ctx_chunks(t, bn_data_rows(d), err)) {
        train_ctx_free(t);
        return BN_ENOMEM;
    }
    int64_t *count = calloc((size_t)d->k, sizeof *count);
    if (!count) {
        train_ctx_free(t);
        return bn_fail(err, BN_ENOMEM, "train: out of memory");
    }
    int n = 0;
    for (int bl = 0; bl < d->nblocks; bl++)
        for (int i = 0; i < d->block[bl].n; i++, n++) {
            int y = d->block[bl].y[i];
            if (y < 0 || y >= d->k) {
                free(count);
                train_ctx_free(t);
                return bn_fail(err, BN_EINVAL, "train: row %d has class %d, outside [0, %d)", n, y,
                               d->k);
            }
            count[y]++;
        }
    for (int c = 0; c < d->k; c++) {
        if (count[c] == 0) {
            free(count);
            train_ctx_free(t);
            return bn_fail(err, BN_EINVAL,
                           "train: class %d of %d has no training rows: every class needs some",
                           c + 1, d->k);
        }
        t->class_weight[c] = o->balanced ? (double)n / ((double)d->k * (double)count[c]) : 1.0;
        t->S += t->class_weight[c] * (double)count[c];
    }
    free(count);
    return BN_OK;
}

/* ---- standardisation ---------------------------------------------------------- */

/* StandardScaler: mean, population standard deviation (two passes, double),
 * scale 1 where the variance is indistinguishable from 0 (sklearn's bound for
 * the two-pass algorithm: var <= n eps var + (n mean eps)^2). */
void bn_train_fit_scaler(const bn_data *d, double *mean, double *scale) {
    int dim = d->dim, n = bn_data_rows(d);
    memset(mean, 0, (size_t)dim * sizeof *mean);
    memset(scale, 0, (size_t)dim * sizeof *scale);
    for (int bl = 0; bl < d->nblocks; bl++)
        for (int i = 0; i < d->block[bl].n; i++)
            train_axpy(1.0, d->block[bl].x + (size_t)i * dim, mean, dim);
    for (int j = 0; j < dim; j++)
        mean[j] /= n;
    for (int bl = 0; bl < d->nblocks; bl++)
        for (int i = 0; i < d->block[bl].n; i++) {
            const float *x = d->block[bl].x + (size_t)i * dim;
            for (int j = 0; j < dim; j++) {
                double e = (double)x[j] - mean[j];
                scale[j] += e * e;
            }
        }
    for (int j = 0; j < dim; j++) {
        double var = scale[j] / n;
        double bound = n * DBL_EPSILON * var + pow(n * mean[j] * DBL_EPSILON, 2);
        scale[j] = var <= bound ? 1.0 : sqrt(var);
    }
}

/* ---- L-BFGS -------------------------------------------------------------------- */

static double train_vdot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static int train_all_finite(const double *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return 0;
    return 1;
}

static double train_vmaxabs(const double *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i]));
    return m;
}

/* The method lives in lbfgs.c (shared with the lockstep sweeps of sweep.c);
 * here it is driven by full passes over the rows. tol is scikit-learn's: on
 * the gradient of f / C = S F. */
static int train_lbfgs(train_ctx *t, const bn_data *d, const bn_train_opts *o, double *theta,
                       bn_train_info *info, bn_error *err) {
    size_t P = (size_t)t->nout * t->dim + t->nout;
    bn_lbfgs s;
    int rc = bn_lbfgs_init(&s, P, theta, t->S, o->tol, o->max_iter, 0, 0, err);
    if (rc)
        return rc;
    double f;
    do
        f = train_eval(t, d, s.xt, s.gt);
    while (bn_lbfgs_tell(&s, f));
    memcpy(theta, s.theta, P * sizeof *theta);
    info->iterations = s.iterations;
    info->converged = s.converged;
    info->grad_max = bn_lbfgs_gnorm(&s, s.g);
    info->objective = s.f * t->C * t->S;
    bn_lbfgs_free(&s);
    return BN_OK;
}

/* ---- Newton (binary) -------------------------------------------------------------- */

#define NEWTON_MAX_DIM 4096
#define NEWTON_BLOCK 256

/* H = (1/S) sum_i sw_i p_i (1 - p_i) [x~_i 1][x~_i 1]^T + diag(1/(C S), .., 0),
 * x~ the standardised row; accumulated NEWTON_BLOCK rows at a time with dsyrk
 * into the upper triangle of the (dim+1)^2 matrix h. */
static void train_newton_hessian(train_ctx *t, const bn_data *d, const double *theta, double *h,
                                 double *blockbuf) {
    int D = t->dim, P = D + 1;
    train_effective(t, theta);
    memset(h, 0, (size_t)P * P * sizeof *h);
    int fill = 0;
    for (int bl = 0; bl <= d->nblocks; bl++) {
        int nrows = bl < d->nblocks ? d->block[bl].n : 0;
        for (int i = 0; i < nrows; i++) {
            const float *x = d->block[bl].x + (size_t)i * D;
            int y = d->block[bl].y[i];
            double z = train_dot(x, t->v, D) + t->c[0];
            double p = train_sigmoid(z);
            double a = sqrt(t->class_weight[y] * p * (1 - p) / t->S);
            double *row = blockbuf + (size_t)fill * P;
            for (int j = 0; j < D; j++)
                row[j] = a * (t->scale ? ((double)x[j] - t->mean[j]) / t->scale[j] : (double)x[j]);
            row[D] = a;
            if (++fill == NEWTON_BLOCK) {
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, P, fill, 1.0, blockbuf, P, 1.0,
                            h, P);
                fill = 0;
            }
        }
    }
    if (fill)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, P, fill, 1.0, blockbuf, P, 1.0, h, P);
    for (int j = 0; j < D; j++)
        h[(size_t)j * P + j] += 1.0 / (t->C * t->S);
}

static int train_newton(train_ctx *t, const bn_data *d, const bn_train_opts *o, double *theta,
                        bn_train_info *info, bn_error *err) {
    if (t->nout != 1)
        return bn_fail(err, BN_EINVAL,
                       "train: --solver newton handles two classes only (%d here): use lbfgs",
                       t->k);
    if (t->dim > NEWTON_MAX_DIM)
        return bn_fail(err, BN_EINVAL,
                       "train: --solver newton needs dim <= %d (the Hessian is dim^2), this "
                       "feature set has %d: use lbfgs",
                       NEWTON_MAX_DIM, t->dim);
    int P = t->dim + 1;
    const double gscale = t->S; /* tol on grad (f / C), as lbfgs */
    double *h = malloc((size_t)P * P * sizeof *h);
    double *buf = malloc((size_t)NEWTON_BLOCK * P * sizeof *buf);
    double *g = malloc((size_t)P * sizeof *g), *dir = malloc((size_t)P * sizeof *dir);
    double *xt = malloc((size_t)P * sizeof *xt), *gt = malloc((size_t)P * sizeof *gt);
    if (!h || !buf || !g || !dir || !xt || !gt) {
        free(h), free(buf), free(g), free(dir), free(xt), free(gt);
        return bn_fail(err, BN_ENOMEM, "train: out of memory for a %d x %d Hessian", P, P);
    }
    double f = train_eval(t, d, theta, g);
    int it = 0, converged = 0;
    for (;;) {
        if (train_vmaxabs(g, (size_t)P) * gscale <= o->tol) {
            converged = 1;
            break;
        }
        if (it >= o->max_iter)
            break;
        train_newton_hessian(t, d, theta, h, buf);
        for (int i = 0; i < P; i++)
            dir[i] = -g[i];
        /* The intercept's diagonal entry can vanish on separable data; a tiny
         * ridge keeps the Cholesky factorisation defined. */
        lapack_int info_c = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', P, 1, h, P, dir, 1);
        if (info_c != 0) {
            train_newton_hessian(t, d, theta, h, buf);
            for (int i = 0; i < P; i++) {
                h[(size_t)i * P + i] += 1e-10 * (1 + h[(size_t)i * P + i]);
                dir[i] = -g[i];
            }
            if (LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', P, 1, h, P, dir, 1) != 0)
                for (int i = 0; i < P; i++)
                    dir[i] = -g[i];
        }
        double d0 = train_vdot(g, dir, (size_t)P);
        if (!(d0 < 0))
            break;
        /* Backtracking (Armijo) from the full Newton step. */
        double alpha = 1.0, fnew = f;
        int ok = 0;
        for (int ls = 0; ls < 60; ls++) {
            for (int i = 0; i < P; i++)
                xt[i] = theta[i] + alpha * dir[i];
            fnew = train_eval(t, d, xt, gt);
            if (isfinite(fnew) && fnew <= f + 1e-4 * alpha * d0) {
                ok = 1;
                break;
            }
            alpha *= 0.5;
        }
        if (!ok)
            break; /* rounding floor reached */
        it++;
        memcpy(theta, xt, (size_t)P * sizeof *theta);
        memcpy(g, gt, (size_t)P * sizeof *g);
        double fold = f;
        f = fnew;
        if ((fold - f) * t->S <= 64 * DBL_EPSILON * fmax(fabs(f) * t->S, 1.0)) {
            converged = 1;
            break;
        }
    }
    info->iterations = it;
    info->converged = converged;
    info->grad_max = train_vmaxabs(g, (size_t)P) * gscale;
    info->objective = f * t->C * t->S;
    free(h), free(buf), free(g), free(dir), free(xt), free(gt);
    return BN_OK;
}

/* ---- SGD / Adam ----------------------------------------------------------------------- */

/* splitmix64 (train.h). */
uint64_t bn_train_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint32_t bn_train_rng_below(uint64_t *s, uint32_t n) {
    return (uint32_t)(((unsigned __int128)bn_train_rng_next(s) * n) >> 64);
}

static int train_minibatch(train_ctx *t, const bn_data *d, const bn_data *valid,
                           const bn_train_opts *o, double *theta, bn_train_info *info,
                           bn_error *err) {
    if (o->epochs < 1 || o->batch_size < 1 || !(o->lr > 0))
        return bn_fail(err, BN_EINVAL,
                       "train: --epochs, --batch-size and --lr must be positive (%d, %d, %g)",
                       o->epochs, o->batch_size, o->lr);
    int n = bn_data_rows(d);
    size_t P = (size_t)t->nout * t->dim + t->nout;
    const float **rows = malloc((size_t)n * sizeof *rows);
    int *ys = malloc((size_t)n * sizeof *ys);
    uint32_t *perm = malloc((size_t)n * sizeof *perm);
    double *mem = calloc(4 * P, sizeof *mem);
    if (!rows || !ys || !perm || !mem) {
        free(rows), free(ys), free(perm), free(mem);
        return bn_fail(err, BN_ENOMEM, "train: out of memory for mini-batches");
    }
    double *g = mem, *m1 = g + P, *m2 = m1 + P, *best = m2 + P;
    for (int bl = 0, r = 0; bl < d->nblocks; bl++)
        for (int i = 0; i < d->block[bl].n; i++, r++) {
            rows[r] = d->block[bl].x + (size_t)i * t->dim;
            ys[r] = d->block[bl].y[i];
        }
    for (int i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    uint64_t rng = o->seed ^ 0x6a09e667f3bcc909ULL;
    const double b1 = 0.9, b2 = 0.999, eps = 1e-7; /* Keras' Adam defaults */
    double b1t = 1, b2t = 1;
    double best_loss = INFINITY;
    int best_epoch = 0, stopped = 0, epoch;
    int rc = BN_OK;
    double pen = 1.0 / (t->C * t->S);
    for (epoch = 1; epoch <= o->epochs; epoch++) {
        for (int i = n - 1; i > 0; i--) {
            uint32_t j = bn_train_rng_below(&rng, (uint32_t)i + 1);
            uint32_t tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        for (int start = 0; start < n; start += o->batch_size) {
            int bs = n - start < o->batch_size ? n - start : o->batch_size;
            /* Unbiased estimate of grad F: (n / (S bs)) sum_batch sw grad loss. */
            double gs = (double)n / (t->S * bs);
            train_effective(t, theta);
            train_acc_clear(t, &t->acc[0], 1);
            for (int q = 0; q < bs; q++) {
                int r = (int)perm[start + q];
                train_row(t, &t->acc[0], rows[r], ys[r], gs * t->class_weight[ys[r]], 1);
            }
            train_grad_end(t, theta, pen, g);
            if (o->solver == BN_SOLVER_ADAM) {
                b1t *= b1;
                b2t *= b2;
                for (size_t i = 0; i < P; i++) {
                    m1[i] = b1 * m1[i] + (1 - b1) * g[i];
                    m2[i] = b2 * m2[i] + (1 - b2) * g[i] * g[i];
                    theta[i] -= o->lr * (m1[i] / (1 - b1t)) / (sqrt(m2[i] / (1 - b2t)) + eps);
                }
            } else {
                for (size_t i = 0; i < P; i++)
                    theta[i] -= o->lr * g[i];
            }
        }
        if (!train_all_finite(theta, P)) {
            rc = bn_fail(err, BN_EINVAL,
                         "train: %s diverged in epoch %d (weights are no longer finite): lower "
                         "--lr (now %g)",
                         bn_solver_name(o->solver), epoch, o->lr);
            break;
        }
        if (valid && bn_data_rows(valid) > 0) {
            double vl = train_mean_loss(t, valid, theta);
            if (vl < best_loss) {
                best_loss = vl;
                best_epoch = epoch;
                memcpy(best, theta, P * sizeof *best);
            } else if (epoch - best_epoch >= o->patience) {
                stopped = 1;
                break;
            }
        }
    }
    if (rc == BN_OK) {
        if (best_epoch > 0)
            memcpy(theta, best, P * sizeof *theta);
        info->iterations = epoch > o->epochs ? o->epochs : epoch;
        info->converged = stopped;
        info->best_epoch = best_epoch;
        info->objective = train_eval(t, d, theta, g) * t->C * t->S;
        info->grad_max = train_vmaxabs(g, P) * t->S;
    }
    free(rows), free(ys), free(perm), free(mem);
    return rc;
}

/* ---- models and training entry point -------------------------------------------------- */

int bn_model_init(bn_model *m, int dim, int k, bn_error *err) {
    memset(m, 0, sizeof *m);
    if (dim < 1 || k < 2)
        return bn_fail(err, BN_EINVAL, "train: need dim >= 1 and at least 2 classes (%d, %d)", dim,
                       k);
    m->dim = dim;
    m->k = k;
    m->nout = k == 2 ? 1 : k;
    m->w = calloc((size_t)m->nout * dim + m->nout, sizeof *m->w);
    if (!m->w)
        return bn_fail(err, BN_ENOMEM, "train: out of memory for %d x %d weights", m->nout, dim);
    m->b = m->w + (size_t)m->nout * dim; /* theta layout: b right after W */
    return BN_OK;
}

void bn_model_free(bn_model *m) {
    free(m->w);
    free(m->mean);
    free(m->scale);
    memset(m, 0, sizeof *m);
}

int bn_train(const bn_data *train, const bn_data *valid, const bn_train_opts *o, bn_model *model,
             bn_train_info *info, bn_error *err) {
    memset(info, 0, sizeof *info);
    double t0 = bn_progress_now();
    if (train->dim < 1 || train->k < 2)
        return bn_fail(err, BN_EINVAL, "train: need dim >= 1 and at least 2 classes (%d, %d)",
                       train->dim, train->k);
    if (bn_data_rows(train) < 1)
        return bn_fail(err, BN_EINVAL, "train: no training rows");
    if (!(o->C > 0) || !isfinite(o->C))
        return bn_fail(err, BN_EINVAL, "train: C must be a positive number (got %g)", o->C);
    if (valid && (valid->dim != train->dim || valid->k != train->k))
        return bn_fail(err, BN_EINVAL,
                       "train: validation rows have dim %d and %d classes, "
                       "training rows %d and %d",
                       valid->dim, valid->k, train->dim, train->k);
    int warm = model->w && model->dim == train->dim && model->k == train->k;
    if (!warm) {
        bn_model_free(model);
        int rc = bn_model_init(model, train->dim, train->k, err);
        if (rc)
            return rc;
    }
    free(model->mean);
    free(model->scale);
    model->mean = model->scale = NULL;
    if (o->standardize) {
        model->mean = malloc((size_t)train->dim * sizeof *model->mean);
        model->scale = malloc((size_t)train->dim * sizeof *model->scale);
        if (!model->mean || !model->scale)
            return bn_fail(err, BN_ENOMEM, "train: out of memory for standardisation");
        bn_train_fit_scaler(train, model->mean, model->scale);
    }
    if (o->solver == BN_SOLVER_SGD || o->solver == BN_SOLVER_ADAM)
        memset(model->w, 0, ((size_t)model->nout * model->dim + model->nout) * sizeof *model->w);

    train_ctx t;
    int rc = train_ctx_init(&t, train, o, model->mean, model->scale, err);
    if (rc)
        return rc;
    switch (o->solver) {
    case BN_SOLVER_LBFGS: rc = train_lbfgs(&t, train, o, model->w, info, err); break;
    case BN_SOLVER_NEWTON: rc = train_newton(&t, train, o, model->w, info, err); break;
    case BN_SOLVER_SGD:
    case BN_SOLVER_ADAM: rc = train_minibatch(&t, train, valid, o, model->w, info, err); break;
    default: rc = bn_fail(err, BN_EINVAL, "train: unknown solver %d", (int)o->solver);
    }
    train_ctx_free(&t);
    info->seconds = bn_progress_now() - t0;
    return rc;
}

double bn_train_objective(const bn_data *d, const bn_train_opts *o, const bn_model *m,
                          double *grad_w, double *grad_b) {
    train_ctx t;
    if (train_ctx_init(&t, d, o, m->mean, m->scale, NULL) != BN_OK)
        return NAN;
    size_t P = (size_t)t.nout * t.dim + t.nout;
    double *g = malloc(P * sizeof *g);
    double f = NAN;
    if (g) {
        f = train_eval(&t, d, m->w, g);
        double s = t.C * t.S;
        f *= s;
        for (size_t i = 0; i < (size_t)t.nout * t.dim; i++)
            if (grad_w)
                grad_w[i] = g[i] * s;
        for (int o2 = 0; o2 < t.nout; o2++)
            if (grad_b)
                grad_b[o2] = g[(size_t)t.nout * t.dim + o2] * s;
        free(g);
    }
    train_ctx_free(&t);
    return f;
}

/* ---- heads ------------------------------------------------------------------------------ */

int bn_head_alloc(bn_head *h, int dim, int k, int standardized, bn_error *err) {
    memset(h, 0, sizeof *h);
    if (dim < 1 || k < 2)
        return bn_fail(err, BN_EINVAL, "head: need dim >= 1 and at least 2 classes (%d, %d)", dim,
                       k);
    h->dim = dim;
    h->k = k;
    h->nout = k == 2 ? 1 : k;
    h->w = malloc((size_t)h->nout * dim * sizeof *h->w);
    h->b = malloc((size_t)h->nout * sizeof *h->b);
    if (standardized) {
        h->mean = malloc((size_t)dim * sizeof *h->mean);
        h->scale = malloc((size_t)dim * sizeof *h->scale);
    }
    if (!h->w || !h->b || (standardized && (!h->mean || !h->scale))) {
        bn_head_free(h);
        return bn_fail(err, BN_ENOMEM, "head: out of memory for %d x %d weights", k, dim);
    }
    return BN_OK;
}

void bn_head_free(bn_head *h) {
    free(h->w);
    free(h->b);
    free(h->mean);
    free(h->scale);
    memset(h, 0, sizeof *h);
}

int bn_head_from_model(const bn_model *m, bn_head *h, bn_error *err) {
    int rc = bn_head_alloc(h, m->dim, m->k, m->mean != NULL, err);
    if (rc)
        return rc;
    for (int o = 0; o < m->nout; o++) {
        const double *wo = m->w + (size_t)o * m->dim;
        double c = m->b[o];
        for (int j = 0; j < m->dim; j++) {
            double v = m->scale ? wo[j] / m->scale[j] : wo[j];
            if (m->mean)
                c -= v * m->mean[j];
            h->w[(size_t)o * m->dim + j] = (float)v;
        }
        h->b[o] = (float)c;
    }
    if (m->mean)
        for (int j = 0; j < m->dim; j++) {
            h->mean[j] = (float)m->mean[j];
            h->scale[j] = (float)m->scale[j];
        }
    return BN_OK;
}

int bn_head_predict(const bn_head *h, const float *x, int n, double *proba, bn_error *err) {
    double *wd = malloc(((size_t)h->nout * h->dim + h->nout) * sizeof *wd);
    if (!wd)
        return bn_fail(err, BN_ENOMEM, "head: out of memory for %d x %d weights", h->nout, h->dim);
    double *z = wd + (size_t)h->nout * h->dim;
    for (size_t i = 0; i < (size_t)h->nout * h->dim; i++)
        wd[i] = h->w[i];
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * h->dim;
        double *p = proba + (size_t)i * h->k;
        if (h->nout == 1) {
            double zz = train_dot(xi, wd, h->dim) + h->b[0];
            p[1] = train_sigmoid(zz);
            p[0] = train_sigmoid(-zz);
        } else {
            double zmax = -INFINITY, sum = 0;
            for (int o = 0; o < h->nout; o++) {
                z[o] = train_dot(xi, wd + (size_t)o * h->dim, h->dim) + h->b[o];
                zmax = fmax(zmax, z[o]);
            }
            for (int o = 0; o < h->nout; o++)
                sum += (p[o] = exp(z[o] - zmax));
            for (int o = 0; o < h->nout; o++)
                p[o] /= sum;
        }
    }
    free(wd);
    return BN_OK;
}
