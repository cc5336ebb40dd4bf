/*
 * sweep.c: binary heads for a list of C values, trained in lockstep (sweep.h).
 *
 * Layout of this file:
 *   pass        one pass over the rows serves every candidate in flight, in
 *               three groups: margins along a new direction (u = X d, float32
 *               GEMM), gradients at an accepted point (X^T r, float32 GEMM),
 *               full evaluations in double (margins, loss, gradient per block);
 *               SW_CHUNKS fixed chunks of rows on the pool's threads
 *   row space   K = X X^T of the centred rows, its pivoted Cholesky factor -> Z
 *   line search along a direction from the margins: z(alpha) = z + alpha u
 *   driver      the candidates' L-BFGS state machines, round after round
 *   results     back to bn_model: w in the original coordinates
 *
 * Why the line search works from margins: an L-BFGS iteration evaluates a few
 * points theta + alpha d along one direction. Their margins are z + alpha u,
 * z the margins at theta (kept in double) and u = X d (one GEMM per
 * direction), so each trial costs O(n) instead of a pass, and F and
 * dF/dalpha come out of double sums: the GEMM's float32 rounding only enters
 * through alpha u, which shrinks with the steps. Computing every trial's
 * margins afresh in float32 instead stalled the line searches at
 * |grad| ~ 1e-3 (F's rounding noise, ~1e-7 relative, exceeds the decreases
 * left), and the double passes that had to finish the job cost more than all
 * the float32 ones (10 values of C on 2,000 x 1,024: 108 passes, 82 of
 * them in double; this way 174 passes, 13 of them double, mostly the checks,
 * and 10-20% less CPU in all).
 *
 * Each iteration thus takes two passes (u along the new direction; the
 * gradient at the accepted point); candidates in different phases share them.
 * A candidate that has converged is evaluated once in double at its result
 * (the check, once no float32 work is left, so that the checks share one
 * pass); if the exact gradient misses tol it goes on with double
 * evaluations. Reported objectives and gradients are the double ones.
 *
 * Threads: chunks of rows, the candidates' own steps between passes and the
 * tiles of K go to whichever thread of the pool (pool.h) is free; each task
 * writes only its own sums and every BLAS call runs on one thread, so the
 * results do not depend on the thread count.
 */
#include "sweep.h"
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

#define SW_BLOCK 64 /* rows per GEMM block: 64 x 1,024 floats, in L2 for both GEMMs */
#define SW_CHUNKS 8 /* partial sums per pass; fixed, so results do not depend on threads */
#define SW_MAX_THREADS 16
#ifndef SW_PAIRS
#define SW_PAIRS 20
#endif
#define SW_COLS 256      /* columns per slab when forming K = X X^T */
#define SW_GRAM_TILE 256 /* rows per tile of K */

/* What a candidate waits for. */
enum {
    SW_START,  /* the gradient at theta0 = 0 (margins 0) */
    SW_FWD,    /* u = X d along its new direction */
    SW_BWD,    /* the gradient at the accepted point xt */
    SW_VERIFY, /* a double evaluation at its result */
    SW_DOUBLE, /* double evaluations from here on */
    SW_FINISHED
};

typedef struct {
    float *mf, *gb;       /* (SW_BLOCK, nu), (ng, D) */
    double *xd, *md, *rd; /* (SW_BLOCK, D), (SW_BLOCK, ncand) x 2 */
} sw_scratch;

typedef struct {
    int n, D, ncand;
    const float **xrows; /* the training rows (n, dim) */
    const float **rows;  /* the rows passes read: xrows, or the rows of zf */
    size_t ld_rows;      /* floats from one row to the next inside a block */
    double *mud, *sdd;   /* (D) centring and scale: the caller's, or mud0, sdd0 (0 and 1) */
    double *mud0, *sdd0;
    float *zf; /* row space: Z (n, D), float and double */
    double *zd;
    lapack_int *piv; /* row space: the Cholesky factor's pivots (1-based) */
    int flat;        /* row space: every row equal (Z is one column of 0) */
    int tri;         /* row space: rows in pivot order, row i zero past column i */
    int *y;
    double *sw, S;
    int nch, nth;
    sw_scratch scratch[SW_MAX_THREADS];
    /* the pass in progress */
    int nu, ng, nd;      /* columns of the three groups */
    float *wu;           /* (nu, D) directions d' = d / scale */
    double *bu;          /* (nu) their intercept parts: d_b - mean . d' */
    double **uout;       /* (nu) where u goes, n doubles each */
    float *r;            /* (n, ng) residuals sw (p - y) / S */
    double *gg;          /* per chunk (nch, ng, D): sum_i r_i x_i */
    bn_pool_queue queue; /* chunks of the pass in progress */
    double *wd, *bd;     /* (D, nd), (nd) points of the double group */
    double *gd;          /* per chunk (nch, D, nd) */
    double *ld, *sd;     /* per chunk (nch, nd): sum sw loss, sum r */
} sw_ctx;

/* ---- pass ------------------------------------------------------------------- */

/* The two products of a pass are skinny (a block of rows times at most a
 * few candidates): OpenBLAS spent as long packing their operands as
 * multiplying (perf: sgemm_oncopy/otcopy 24% of the run, the kernel 15%), so
 * they are done here on the stored rows, vectorised along the columns: 16
 * columns per vector, a tile of 4 rows x 4 candidates (16 accumulators) so
 * that each vector loaded serves 4 FMAs. An earlier version put 16
 * candidates in a vector instead; with fewer in flight (after the first
 * rounds, 1 to 4 of 10) most lanes multiplied padding: 2,000 x 1,024 with 10
 * values of C, 2.6x more CPU in the products. Compiled for AVX-512, AVX2 and
 * baseline x86-64 (the loader picks once, so results are identical from run
 * to run on one machine). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SW_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SW_CLONES
#endif
#define SW_VL 16  /* floats per vector */
#define SW_TILE 4 /* candidates per tile (rows per tile in the forward product) */

/* 16 floats as one value (GCC vector extension: one zmm register with
 * AVX-512, two ymm with AVX2, four xmm otherwise). */
typedef float sw_v16 __attribute__((vector_size(SW_VL * sizeof(float))));

/* v = 16 floats at p (a macro: a function returning a vector type would
 * change the ABI between the clones) */
#define SW_LOAD(v, p) memcpy(&(v), (p), sizeof(v))

/* out[r * ldo + a] = x_r . w_a over the first D columns, for the m rows of
 * x (stride ldx) and A directions w (A rows of stride ldw). Four rows per step; a last step of
 * fewer rows repeats row 0 and drops the copies. Sums: 16 partial sums along the columns added in a
 * fixed order, then the columns past the last 16. */
static inline __attribute__((always_inline)) void sw_fwd_tile(const float *restrict x, size_t ldx,
                                                              int m, int D, const float *restrict w,
                                                              size_t ldw, float *restrict out,
                                                              int ldo, const int A) {
    int D16 = D - D % SW_VL;
    for (int r = 0; r < m; r += 4) {
        int mr = m - r < 4 ? m - r : 4;
        const float *p[4];
        for (int k = 0; k < 4; k++)
            p[k] = x + (size_t)(r + (k < mr ? k : 0)) * ldx;
        sw_v16 acc[4][SW_TILE];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
#pragma GCC unroll 4
            for (int a = 0; a < A; a++)
                acc[k][a] = (sw_v16){0};
        for (int j = 0; j < D16; j += SW_VL) {
            sw_v16 xv[4];
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                SW_LOAD(xv[k], p[k] + j);
#pragma GCC unroll 4
            for (int a = 0; a < A; a++) {
                sw_v16 wv;
                SW_LOAD(wv, w + (size_t)a * ldw + j);
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++)
                    acc[k][a] += xv[k] * wv;
            }
        }
        for (int k = 0; k < mr; k++)
            for (int a = 0; a < A; a++) {
                float s = 0;
                for (int l = 0; l < SW_VL; l++)
                    s += acc[k][a][l];
                for (int j = D16; j < D; j++)
                    s += p[k][j] * w[(size_t)a * ldw + j];
                out[(size_t)(r + k) * ldo + a] = s;
            }
    }
}

SW_CLONES static void sw_fwd4(const float *restrict x, size_t ldx, int m, int D,
                              const float *restrict w, size_t ldw, float *restrict out, int ldo) {
    sw_fwd_tile(x, ldx, m, D, w, ldw, out, ldo, 4);
}

SW_CLONES static void sw_fwd1(const float *restrict x, size_t ldx, int m, int D,
                              const float *restrict w, size_t ldw, float *restrict out, int ldo) {
    sw_fwd_tile(x, ldx, m, D, w, ldw, out, ldo, 1);
}

/* g_a += sum_r rr[r * ldr + a] x_r over the first D columns of the m rows
 * of x (stride ldx), g (A rows of stride ldg): 64 columns x A candidates held in registers while
 * the rows go by, then 16 columns at a time, then one. */
static inline __attribute__((always_inline)) void
sw_bwd_tile(const float *restrict x, size_t ldx, int m, int D, const float *restrict rr, int ldr,
            float *restrict g, size_t ldg, const int A) {
    int j = 0;
    for (; j + 4 * SW_VL <= D; j += 4 * SW_VL) {
        sw_v16 acc[4][SW_TILE];
#pragma GCC unroll 4
        for (int a = 0; a < A; a++)
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++)
                SW_LOAD(acc[v][a], g + (size_t)a * ldg + j + v * SW_VL);
        for (int r = 0; r < m; r++) {
            const float *xr = x + (size_t)r * ldx + j;
            sw_v16 xv[4];
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++)
                SW_LOAD(xv[v], xr + v * SW_VL);
#pragma GCC unroll 4
            for (int a = 0; a < A; a++) {
                float ra = rr[(size_t)r * ldr + a];
#pragma GCC unroll 4
                for (int v = 0; v < 4; v++)
                    acc[v][a] += xv[v] * ra;
            }
        }
#pragma GCC unroll 4
        for (int a = 0; a < A; a++)
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++)
                memcpy(g + (size_t)a * ldg + j + v * SW_VL, &acc[v][a], sizeof(sw_v16));
    }
    for (; j + SW_VL <= D; j += SW_VL)
        for (int a = 0; a < A; a++) {
            sw_v16 acc;
            SW_LOAD(acc, g + (size_t)a * ldg + j);
            for (int r = 0; r < m; r++) {
                sw_v16 xv;
                SW_LOAD(xv, x + (size_t)r * ldx + j);
                acc += xv * rr[(size_t)r * ldr + a];
            }
            memcpy(g + (size_t)a * ldg + j, &acc, sizeof acc);
        }
    for (; j < D; j++)
        for (int a = 0; a < A; a++) {
            float s = g[(size_t)a * ldg + j];
            for (int r = 0; r < m; r++)
                s += x[(size_t)r * ldx + j] * rr[(size_t)r * ldr + a];
            g[(size_t)a * ldg + j] = s;
        }
}

SW_CLONES static void sw_bwd4(const float *restrict x, size_t ldx, int m, int D,
                              const float *restrict rr, int ldr, float *restrict g, size_t ldg) {
    sw_bwd_tile(x, ldx, m, D, rr, ldr, g, ldg, 4);
}

SW_CLONES static void sw_bwd1(const float *restrict x, size_t ldx, int m, int D,
                              const float *restrict rr, int ldr, float *restrict g, size_t ldg) {
    sw_bwd_tile(x, ldx, m, D, rr, ldr, g, ldg, 1);
}

/* Loss of margin z for label y, and sigmoid(z) in *p, with one exp. */
static inline double sw_loss(double z, int y, double *p) {
    double e = exp(-fabs(z));
    *p = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    return fmax(z, 0.0) + log1p(e) - (y ? z : 0.0);
}

/* Rows [lo, hi) of chunk c. The float32 GEMMs read the stored rows as they
 * are (no copy): u = X d' + (d_b - mean . d'), and sum_i r_i x_i, mapped
 * through the standardisation after the pass; the double group centres and
 * scales a block first (the exact evaluation). */
static void sw_chunk(sw_ctx *t, sw_scratch *s, int c) {
    int D = t->D, nu = t->nu, ng = t->ng, nd = t->nd;
    int lo = (int)((long)t->n * c / t->nch), hi = (int)((long)t->n * (c + 1) / t->nch);
    double *gg = t->gg + (size_t)c * ng * D, *gd = t->gd + (size_t)c * D * nd;
    double *ld = t->ld + (size_t)c * nd, *sd = t->sd + (size_t)c * nd;
    memset(gd, 0, (size_t)D * nd * sizeof *gd);
    memset(ld, 0, (size_t)nd * sizeof *ld);
    memset(sd, 0, (size_t)nd * sizeof *sd);
    memset(s->gb, 0, (size_t)ng * D * sizeof *s->gb);
    for (int i0 = lo; i0 < hi;) {
        /* up to SW_BLOCK rows that are contiguous in memory (blocks of bn_data) */
        const float *x0 = t->rows[i0];
        int m = 1;
        while (m < SW_BLOCK && i0 + m < hi && t->rows[i0 + m] == x0 + (size_t)m * t->ld_rows)
            m++;
        /* Row space: row i of Z has nonzeros in its first i + 1 columns only */
        int De = t->tri && i0 + m < D ? i0 + m : D;
        if (nu) {
            int a = 0;
            for (; a + SW_TILE <= nu; a += SW_TILE)
                sw_fwd4(x0, t->ld_rows, m, De, t->wu + (size_t)a * D, (size_t)D, s->mf + a, nu);
            for (; a < nu; a++)
                sw_fwd1(x0, t->ld_rows, m, De, t->wu + (size_t)a * D, (size_t)D, s->mf + a, nu);
            for (a = 0; a < nu; a++) { /* each candidate's u in order */
                double *u = t->uout[a] + i0, b = t->bu[a];
                for (int r = 0; r < m; r++)
                    u[r] = (double)s->mf[r * nu + a] + b;
            }
        }
        if (ng) {
            const float *rr = t->r + (size_t)i0 * ng;
            int a = 0;
            for (; a + SW_TILE <= ng; a += SW_TILE)
                sw_bwd4(x0, t->ld_rows, m, De, rr + a, ng, s->gb + (size_t)a * D, (size_t)D);
            for (; a < ng; a++)
                sw_bwd1(x0, t->ld_rows, m, De, rr + a, ng, s->gb + (size_t)a * D, (size_t)D);
        }
        if (nd) {
            const double *x = t->zd ? t->zd + (size_t)i0 * D : s->xd;
            if (!t->zd)
                for (int r = 0; r < m; r++) {
                    const float *row = x0 + (size_t)r * t->ld_rows;
                    double *out = s->xd + (size_t)r * D;
                    for (int j = 0; j < D; j++)
                        out[j] = ((double)row[j] - t->mud[j]) / t->sdd[j];
                }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, nd, De, 1.0, x, D, t->wd, nd,
                        0.0, s->md, nd);
            for (int r = 0; r < m; r++) {
                int y = t->y[i0 + r];
                double w = t->sw[i0 + r];
                for (int a = 0; a < nd; a++) {
                    double p, z = s->md[r * nd + a] + t->bd[a];
                    ld[a] += w * sw_loss(z, y, &p);
                    double res = w * (p - y) / t->S;
                    s->rd[r * nd + a] = res;
                    sd[a] += res;
                }
            }
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, De, nd, m, 1.0, x, D, s->rd, nd,
                        1.0, gd, nd);
        }
        i0 += m;
    }
    for (size_t q = 0; q < (size_t)ng * D; q++)
        gg[q] = (double)s->gb[q];
}

/* A pool job: whichever thread is free takes the next chunk (a busy
 * machine may slow one of them); each chunk writes only its own partial
 * sums, so which thread computed it changes nothing. */
static void sw_job(void *arg, int tid, int nth) {
    (void)nth;
    sw_ctx *t = arg;
    unsigned c;
    while (bn_pool_take(&t->queue, (unsigned)t->nch, &c)) /* row space: the widest first */
        sw_chunk(t, &t->scratch[tid], t->tri ? t->nch - 1 - (int)c : (int)c);
}

/* One pass: chunks on the pool's threads (kept between passes: starting
 * and joining threads for each of ~170 passes cost more than 10% of a
 * sweep), then added in chunk order into chunk 0. rsum (ng): sum_i r_i of
 * the gradient group, for the mapping back. */
static void sw_pass(sw_ctx *t, const double *rsum) {
    atomic_store(&t->queue.next, 0);
    bn_pool_run(sw_job, t, t->nth);
    size_t pg = (size_t)t->ng * t->D, pd = (size_t)t->D * t->nd;
    for (int c = 1; c < t->nch; c++) {
        for (size_t q = 0; q < pg; q++)
            t->gg[q] += t->gg[c * pg + q];
        for (size_t q = 0; q < pd; q++)
            t->gd[q] += t->gd[c * pd + q];
        for (int a = 0; a < t->nd; a++) {
            t->ld[a] += t->ld[(size_t)c * t->nd + a];
            t->sd[a] += t->sd[(size_t)c * t->nd + a];
        }
    }
    /* sum_i r_i (x_i - mean) / scale = (sum_i r_i x_i - mean sum_i r_i) / scale */
    for (int a = 0; a < t->ng; a++)
        for (int j = 0; j < t->D; j++)
            t->gg[(size_t)a * t->D + j] =
                (t->gg[(size_t)a * t->D + j] - t->mud[j] * rsum[a]) / t->sdd[j];
}

/* ---- row space ------------------------------------------------------------------ */

/* Columns [j0, j0 + cw) of the centred, scaled rows into xc (n, cw), double. */
static void sw_slab(const sw_ctx *t, const double *mu, const double *sd, int j0, int cw,
                    double *xc) {
    for (int i = 0; i < t->n; i++)
        for (int j = 0; j < cw; j++)
            xc[(size_t)i * cw + j] = ((double)t->xrows[i][j0 + j] - mu[j0 + j]) / sd[j0 + j];
}

/* K += xc xc^T for a slab xc (n, cw): the upper triangle in tiles of
 * SW_GRAM_TILE rows, one BLAS call each, on whichever pool thread is free. */
typedef struct {
    const double *xc;
    double *K;
    int n, cw, tiles;
    bn_pool_queue queue;
} sw_gram_job;

static void sw_gram(void *arg, int tid, int nth) {
    (void)tid, (void)nth;
    sw_gram_job *j = arg;
    unsigned task, ntasks = (unsigned)(j->tiles * (j->tiles + 1) / 2);
    while (bn_pool_take(&j->queue, ntasks, &task)) {
        int a = 0, b = (int)task; /* task -> tile (a, b), a <= b */
        while (b >= j->tiles - a)
            b -= j->tiles - a, a++;
        b += a;
        int i0 = a * SW_GRAM_TILE, j0 = b * SW_GRAM_TILE;
        int ni = j->n - i0 < SW_GRAM_TILE ? j->n - i0 : SW_GRAM_TILE;
        int nj = j->n - j0 < SW_GRAM_TILE ? j->n - j0 : SW_GRAM_TILE;
        const double *xi = j->xc + (size_t)i0 * j->cw, *xj = j->xc + (size_t)j0 * j->cw;
        double *k = j->K + (size_t)i0 * j->n + j0;
        if (a == b)
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, ni, j->cw, 1.0, xi, j->cw, 1.0, k,
                        j->n);
        else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nj, j->cw, 1.0, xi, j->cw, xj,
                        j->cw, 1.0, k, j->n);
    }
}

/* K = X X^T (n x n) of the centred rows, slab by slab (sw_gram), then its pivoted Cholesky factor
 * (LAPACK dpstrf): P^T K P = L L^T, L (n x r) stopping at the rank r (the centred rows have rank
 * <= n - 1; what is left below n eps trace K is rounding). Z = P L: Z Z^T = K.
 * Any such Z gives the same problem: margins X w = Z beta and ||w|| =
 * ||beta|| for w = X^T a, Z^T a = beta; two of them differ by a rotation
 * of beta, to which L-BFGS (scalar initial Hessian, start at 0, test on
 * the Euclidean norm) is blind. The eigenvectors (Z = U L^(1/2), dsyevd)
 * cost ten times more: 3.6 of 8.5 s of setup for 2,000 x 25,088 (load 7),
 * the Cholesky factor 0.2 s. */
static int sw_row_space(sw_ctx *t, int dim, const double *mu, const double *sd, bn_error *err) {
    int n = t->n;
    double *K = calloc((size_t)n * n, sizeof *K);
    double *xc = malloc((size_t)n * SW_COLS * sizeof *xc);
    t->piv = malloc((size_t)n * sizeof *t->piv);
    if (!K || !xc || !t->piv) {
        free(K), free(xc);
        return bn_fail(err, BN_ENOMEM, "train: out of memory for the %d x %d row-space matrix", n,
                       n);
    }
    sw_gram_job job = {xc, K, n, 0, (n + SW_GRAM_TILE - 1) / SW_GRAM_TILE, {0}};
    for (int j0 = 0; j0 < dim; j0 += SW_COLS) {
        job.cw = dim - j0 < SW_COLS ? dim - j0 : SW_COLS;
        sw_slab(t, mu, sd, j0, job.cw, xc);
        atomic_store(&job.queue.next, 0);
        bn_pool_run(sw_gram, &job, SW_MAX_THREADS);
    }
    free(xc);
    /* The upper triangle in row order is the lower one in column order:
     * L (i, q) lands at K[q n + i], i >= q. */
    lapack_int rank = 0;
    double trace = 0;
    for (int i = 0; i < n; i++)
        trace += K[(size_t)i * n + i];
    /* Stop when the rows' variance left (the Schur complement's trace) is
     * below n eps of the whole: LAPACK's default, n eps max K_ii, kept the
     * direction that centring removes (rank n of n rows). */
    lapack_int info =
        LAPACKE_dpstrf(LAPACK_COL_MAJOR, 'L', n, K, n, t->piv, &rank, n * DBL_EPSILON * trace);
    if (info < 0) {
        free(K);
        return bn_fail(err, BN_EINVAL,
                       "train: Cholesky factorisation of the %d x %d row-space matrix failed "
                       "(LAPACK dpstrf info %d)",
                       n, n, (int)info);
    }
    int r = (int)rank;
    if (r < 1) /* every row equal: no direction to learn, only the intercept */
        r = 1, t->flat = 1;
    t->D = r;
    t->zd = calloc((size_t)n * r, sizeof *t->zd);
    t->zf = malloc((size_t)n * r * sizeof *t->zf);
    if (!t->zd || !t->zf) {
        free(K);
        return bn_fail(err, BN_ENOMEM, "train: out of memory for %d x %d components", n, r);
    }
    /* The passes take the rows in pivot order, Z = L: row k of L is zero
     * past column k, so a block of rows reads and multiplies only the
     * columns up to its last row (half the work). Labels and weights follow. */
    int *y = malloc((size_t)n * sizeof *y);
    double *w = malloc((size_t)n * sizeof *w);
    if (!y || !w) {
        free(K), free(y), free(w);
        return bn_fail(err, BN_ENOMEM, "train: out of memory for %d rows", n);
    }
    for (int k = 0; k < n; k++) {
        y[k] = t->y[t->piv[k] - 1];
        w[k] = t->sw[t->piv[k] - 1];
    }
    free(t->y), free(t->sw);
    t->y = y, t->sw = w, t->tri = 1;
    for (int k = 0; k < n && !t->flat; k++)
        for (int q = 0; q <= k && q < r; q++)
            t->zd[(size_t)k * r + q] = K[(size_t)q * n + k];
    for (size_t q = 0; q < (size_t)n * r; q++)
        t->zf[q] = (float)t->zd[q];
    free(K);
    /* Passes read Z: already centred, unit scale. */
    t->rows = malloc((size_t)n * sizeof *t->rows);
    t->mud = t->mud0 = calloc((size_t)r, sizeof *t->mud0);
    t->sdd = t->sdd0 = malloc((size_t)r * sizeof *t->sdd0);
    if (!t->rows || !t->mud0 || !t->sdd0)
        return bn_fail(err, BN_ENOMEM, "train: out of memory for %d x %d components", n, r);
    for (int i = 0; i < n; i++)
        t->rows[i] = t->zf + (size_t)i * r;
    for (int q = 0; q < r; q++)
        t->sdd0[q] = 1.0;
    t->ld_rows = (size_t)r;
    return BN_OK;
}

/* w (dim, ncand) = X^T a with Z^T a = beta: the coefficients of the
 * original (centred, scaled) coordinates. With L11 the first r rows of L,
 * a = P [L11^-T beta; 0] (any solution gives the same w: two differ by a
 * vector of K's null space, which X^T maps to 0). */
static int sw_row_space_back(sw_ctx *t, int dim, const double *mu, const double *sd,
                             const double *beta, int ncand, double *w, bn_error *err) {
    int n = t->n, r = t->D;
    if (t->flat) {
        memset(w, 0, (size_t)dim * ncand * sizeof *w);
        return BN_OK;
    }
    double *a = calloc((size_t)n * ncand, sizeof *a), *l11 = malloc((size_t)r * r * sizeof *l11);
    double *b = malloc((size_t)r * ncand * sizeof *b);
    double *xc = malloc((size_t)n * SW_COLS * sizeof *xc);
    if (!a || !l11 || !b || !xc) {
        free(a), free(l11), free(b), free(xc);
        return bn_fail(err, BN_ENOMEM, "train: out of memory mapping back %d components", r);
    }
    memcpy(l11, t->zd, (size_t)r * r * sizeof *l11); /* the first r rows, in pivot order */
    for (int q = 0; q < r; q++)
        for (int c = 0; c < ncand; c++)
            b[(size_t)q * ncand + c] = beta[(size_t)c * r + q];
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, r, ncand, 1.0, l11,
                r, b, ncand);
    for (int k = 0; k < r; k++)
        memcpy(a + (size_t)(t->piv[k] - 1) * ncand, b + (size_t)k * ncand,
               (size_t)ncand * sizeof *a);
    for (int j0 = 0; j0 < dim; j0 += SW_COLS) {
        int cw = dim - j0 < SW_COLS ? dim - j0 : SW_COLS;
        sw_slab(t, mu, sd, j0, cw, xc);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cw, ncand, n, 1.0, xc, cw, a, ncand,
                    0.0, w + (size_t)j0 * ncand, ncand);
    }
    free(a), free(l11), free(b), free(xc);
    return BN_OK;
}

/* ---- line search ------------------------------------------------------------------ */

typedef struct {
    bn_lbfgs lb;
    int state, col; /* col: its column in this round's pass, -1 if none */
    double C;
    double *zt, *zx, *u; /* (n) margins at theta, at the trial point, along dir */
    double *px;          /* (n) sigmoid(zx): the residuals of an accepted point */
    double *g;           /* (P) the gradient of its check in double */
    int rc;              /* what went wrong in a parallel step, and */
    bn_error err;
} sw_cand;

/* The margins z into column a of the residuals (sw (p - y) / S); returns
 * sum_i sw_i loss_i (0 when pz, the sigmoids of z, are given) and sum_i r_i
 * in *rsum. */
static double sw_residuals(const sw_ctx *t, const double *z, const double *pz, int a,
                           double *rsum) {
    double loss = 0, rs = 0;
    for (int i = 0; i < t->n; i++) {
        double p;
        if (pz) /* sigmoid(z) known from the line search: no loss needed */
            p = pz[i];
        else
            loss += t->sw[i] * sw_loss(z[i], t->y[i], &p);
        double res = t->sw[i] * (p - t->y[i]) / t->S;
        t->r[(size_t)i * t->ng + a] = (float)res;
        rs += res;
    }
    *rsum = rs;
    return loss;
}

/* Trials along the candidate's direction from its margins, z = zt + alpha u,
 * until it needs a pass: the gradient at an accepted point (SW_BWD), margins
 * along a new direction (SW_FWD), or the check of its result (SW_VERIFY). */
static void sw_line(const sw_ctx *t, sw_cand *k) {
    for (;;) {
        double a = k->lb.alpha, loss = 0, dz = 0;
        for (int i = 0; i < t->n; i++) {
            double p, z = k->zt[i] + a * k->u[i];
            k->zx[i] = z;
            loss += t->sw[i] * sw_loss(z, t->y[i], &p);
            k->px[i] = p;
            dz += t->sw[i] * (p - t->y[i]) * k->u[i];
        }
        const double *x = k->lb.xt, *d = k->lb.dir;
        double pen = 1.0 / (k->C * t->S), sq = 0, wd = 0;
        for (int j = 0; j < t->D; j++) {
            sq += x[j] * x[j];
            wd += x[j] * d[j];
        }
        int ndir = k->lb.ndir;
        int rc = bn_lbfgs_tell_line(&k->lb, loss / t->S + 0.5 * pen * sq, dz / t->S + pen * wd);
        if (rc == 0) {
            k->state = SW_VERIFY;
            return;
        }
        if (rc == BN_LBFGS_NEED_GRAD) {
            k->state = SW_BWD;
            return;
        }
        if (k->lb.ndir != ndir) { /* the line search failed; a new direction */
            k->state = SW_FWD;
            return;
        }
    }
}

/* ---- driver --------------------------------------------------------------------- */

int bn_sweep_supported(const bn_data *d, const bn_train_opts *o) {
    return d->k == 2 && o->solver == BN_SOLVER_LBFGS;
}

static void sw_ctx_free(sw_ctx *t) {
    if (t->rows != t->xrows)
        free(t->rows);
    free(t->xrows), free(t->zf), free(t->zd), free(t->piv), free(t->mud0), free(t->sdd0),
        free(t->y), free(t->sw);
    for (int i = 0; i < SW_MAX_THREADS; i++) {
        sw_scratch *s = &t->scratch[i];
        free(s->mf), free(s->gb), free(s->xd), free(s->md), free(s->rd);
    }
    free(t->wu), free(t->bu), free(t->uout), free(t->r), free(t->gg);
    free(t->wd), free(t->bd), free(t->gd), free(t->ld), free(t->sd);
}

/* Rows, labels and sample weights of d; S; fails when a class has no row. */
static int sw_rows(sw_ctx *t, const bn_data *d, int balanced, bn_error *err) {
    int n = t->n;
    t->xrows = malloc((size_t)n * sizeof *t->xrows);
    t->y = malloc((size_t)n * sizeof *t->y);
    t->sw = malloc((size_t)n * sizeof *t->sw);
    if (!t->xrows || !t->y || !t->sw)
        return bn_fail(err, BN_ENOMEM, "train: out of memory for %d rows", n);
    long count[2] = {0, 0};
    int i = 0;
    for (int bl = 0; bl < d->nblocks; bl++)
        for (int r = 0; r < d->block[bl].n; r++, i++) {
            int y = d->block[bl].y[r];
            if (y < 0 || y > 1)
                return bn_fail(err, BN_EINVAL, "train: row %d has class %d, outside [0, 2)", i, y);
            t->xrows[i] = d->block[bl].x + (size_t)r * d->dim;
            t->y[i] = y;
            count[y]++;
        }
    if (!count[0] || !count[1])
        return bn_fail(err, BN_EINVAL,
                       "train: class %d of 2 has no training rows: every class needs some",
                       count[0] ? 2 : 1);
    double cw[2];
    for (int c = 0; c < 2; c++)
        cw[c] = balanced ? (double)n / (2.0 * (double)count[c]) : 1.0;
    t->S = cw[0] * (double)count[0] + cw[1] * (double)count[1];
    for (i = 0; i < n; i++)
        t->sw[i] = cw[t->y[i]];
    return BN_OK;
}

static int sw_alloc(sw_ctx *t, bn_error *err) {
    size_t D = (size_t)t->D, k = (size_t)t->ncand, ch = (size_t)t->nch, n = (size_t)t->n;
    int ok = 1;
    for (int i = 0; i < t->nth; i++) {
        sw_scratch *s = &t->scratch[i];
        if (!t->zd) {
            s->xd = malloc(SW_BLOCK * D * sizeof *s->xd);
            ok &= s->xd != NULL;
        }
        s->mf = malloc(SW_BLOCK * k * sizeof *s->mf);
        s->gb = malloc(D * k * sizeof *s->gb);
        s->md = malloc(SW_BLOCK * k * sizeof *s->md);
        s->rd = malloc(SW_BLOCK * k * sizeof *s->rd);
        ok &= s->mf && s->gb && s->md && s->rd;
    }
    t->wu = calloc(D * k, sizeof *t->wu);
    t->bu = malloc(k * sizeof *t->bu);
    t->uout = malloc(k * sizeof *t->uout);
    t->r = calloc(n * k, sizeof *t->r);
    t->gg = malloc(ch * D * k * sizeof *t->gg);
    t->wd = malloc(D * k * sizeof *t->wd);
    t->bd = malloc(k * sizeof *t->bd);
    t->gd = malloc(ch * D * k * sizeof *t->gd);
    t->ld = malloc(ch * k * sizeof *t->ld);
    t->sd = malloc(ch * k * sizeof *t->sd);
    ok &= t->wu && t->bu && t->uout && t->r && t->gg && t->wd && t->bd && t->gd && t->ld && t->sd;
    return ok ? BN_OK
              : bn_fail(err, BN_ENOMEM, "train: out of memory for %d candidates of %d columns",
                        t->ncand, t->D);
}

/* What a candidate puts into the pass: its direction (d' = d / scale and
 * the intercept part d_b - mean . d'), its residuals, or its point in double. */
static void sw_prepare(sw_ctx *t, sw_cand *k, double *rsum, double *lossg) {
    int D = t->D;
    if (k->state == SW_FWD) {
        const double *d = k->lb.dir;
        double b = d[D];
        for (int j = 0; j < D; j++) {
            float v = (float)(d[j] / t->sdd[j]);
            t->wu[(size_t)k->col * D + j] = v;
            b -= t->mud[j] * (double)v;
        }
        t->bu[k->col] = b;
        t->uout[k->col] = k->u;
    } else if (k->state == SW_START || k->state == SW_BWD) {
        int start = k->state == SW_START;
        lossg[k->col] =
            sw_residuals(t, start ? k->zt : k->zx, start ? NULL : k->px, k->col, &rsum[k->col]);
    } else if (k->state == SW_VERIFY || k->state == SW_DOUBLE) {
        const double *x = k->state == SW_VERIFY ? k->lb.theta : k->lb.xt;
        for (int j = 0; j < D; j++)
            t->wd[(size_t)j * t->nd + k->col] = x[j];
        t->bd[k->col] = x[D];
    }
}

/* What the pass gave the candidate, and its L-BFGS as far as it goes
 * without another pass. */
static int sw_advance(sw_ctx *t, sw_cand *k, const bn_train_opts *o, const double *rsum,
                      const double *lossg, int row_space, bn_error *err) {
    int D = t->D, a = k->col, rc = 1;
    size_t P = (size_t)D + 1;
    double pen = 1.0 / (k->C * t->S);
    if (k->state == SW_FWD) {
        sw_line(t, k);
    } else if (k->state == SW_START || k->state == SW_BWD) {
        const double *x = k->lb.xt; /* theta0 at the start */
        for (int j = 0; j < D; j++)
            k->lb.gt[j] = t->gg[(size_t)a * D + j] + pen * x[j];
        k->lb.gt[D] = rsum[a];
        if (k->state == SW_START) {
            double sq = 0;
            for (int j = 0; j < D; j++)
                sq += x[j] * x[j];
            rc = bn_lbfgs_tell(&k->lb, lossg[a] / t->S + 0.5 * pen * sq);
        } else {
            rc = bn_lbfgs_tell_grad(&k->lb);
            double *z = k->zt; /* the accepted point's margins are theta's now */
            k->zt = k->zx;
            k->zx = z;
        }
        k->state = rc ? SW_FWD : SW_VERIFY;
    } else if (k->state == SW_VERIFY || k->state == SW_DOUBLE) {
        int verify = k->state == SW_VERIFY;
        const double *x = verify ? k->lb.theta : k->lb.xt;
        double *g = k->g, *gx = verify ? g : k->lb.gt, sq = 0;
        for (int j = 0; j < D; j++) {
            gx[j] = t->gd[(size_t)j * t->nd + a] + pen * x[j];
            sq += x[j] * x[j];
        }
        gx[D] = t->sd[a];
        double f = t->ld[a] / t->S + 0.5 * pen * sq;
        if (!verify) {
            k->state = bn_lbfgs_tell(&k->lb, f) ? SW_DOUBLE : SW_FINISHED;
            return BN_OK;
        }
        int it = k->lb.iterations;
        if (bn_lbfgs_gnorm(&k->lb, g) <= o->tol || it >= o->max_iter) {
            k->lb.f = f;
            memcpy(k->lb.g, g, P * sizeof *g);
            k->lb.converged = bn_lbfgs_gnorm(&k->lb, g) <= o->tol;
            k->state = SW_FINISHED;
            return BN_OK;
        }
        /* float32 stopped short of the exact test: go on in double from here */
        double *theta = malloc(P * sizeof *theta);
        if (!theta)
            return bn_fail(err, BN_ENOMEM, "train: out of memory");
        memcpy(theta, k->lb.theta, P * sizeof *theta);
        bn_lbfgs_free(&k->lb);
        const double *shift = k->lb.shift;
        rc = bn_lbfgs_init(&k->lb, P, theta, t->S, o->tol, o->max_iter, row_space, SW_PAIRS, err);
        k->lb.shift = shift;
        free(theta);
        if (rc)
            return rc;
        k->lb.iterations = it;
        memcpy(k->lb.gt, g, P * sizeof *g);
        k->state = bn_lbfgs_tell(&k->lb, f) ? SW_DOUBLE : SW_FINISHED;
    }
    return BN_OK;
}

/* The candidates' own work between passes (directions, line searches,
 * residuals: a third of a sweep's CPU), spread over the pool's threads,
 * whichever takes a candidate; each touches only its own state and
 * columns, so the result does not depend on who did it. */
typedef struct {
    sw_ctx *t;
    sw_cand *cand;
    const bn_train_opts *o;
    double *rsum, *lossg;
    int row_space, advance;
    bn_pool_queue queue;
} sw_cand_job;

static void sw_cands(void *arg, int tid, int nth) {
    (void)tid, (void)nth;
    sw_cand_job *j = arg;
    unsigned c;
    while (bn_pool_take(&j->queue, (unsigned)j->t->ncand, &c)) {
        sw_cand *k = &j->cand[c];
        if (k->col < 0)
            continue;
        if (j->advance)
            k->rc = sw_advance(j->t, k, j->o, j->rsum, j->lossg, j->row_space, &k->err);
        else
            sw_prepare(j->t, k, j->rsum, j->lossg);
    }
}

/* One round: every candidate still in flight gets what it waits for from one
 * pass, then moves on as far as it can without another. A candidate whose
 * float32 run has converged waits for its check in double until no float32
 * work is left, so that the checks share one pass instead of taking one
 * each (a double pass costs about three float32 ones). *more = 0 when no
 * candidate is left. */
static int sw_round(sw_ctx *t, sw_cand *cand, const bn_train_opts *o, double *rsum, double *lossg,
                    bn_sweep_stats *st, int *more, bn_error *err) {
    int floats = 0;
    for (int c = 0; c < t->ncand; c++)
        floats += cand[c].state == SW_FWD || cand[c].state == SW_START || cand[c].state == SW_BWD;
    t->nu = t->ng = t->nd = 0;
    for (int c = 0; c < t->ncand; c++) {
        sw_cand *k = &cand[c];
        k->col = -1;
        if (k->state == SW_FWD)
            k->col = t->nu++;
        else if (k->state == SW_START || k->state == SW_BWD)
            k->col = t->ng++;
        else if ((k->state == SW_VERIFY && !floats) || k->state == SW_DOUBLE)
            k->col = t->nd++;
    }
    *more = t->nu + t->ng + t->nd > 0;
    if (!*more)
        return BN_OK;
    sw_cand_job job = {t, cand, o, rsum, lossg, st->row_space, 0, {0}};
    bn_pool_run(sw_cands, &job, t->nth);
    sw_pass(t, rsum);
    st->rounds++;
    st->double_rounds += t->nd > 0;
    job.advance = 1;
    atomic_store(&job.queue.next, 0);
    bn_pool_run(sw_cands, &job, t->nth);
    for (int c = 0; c < t->ncand; c++)
        if (cand[c].col >= 0 && cand[c].rc) {
            *err = cand[c].err;
            return cand[c].rc;
        }
    return BN_OK;
}

int bn_sweep_train(const bn_data *d, const bn_train_opts *o, const double *Cs, int ncand,
                   bn_model *models, bn_train_info *infos, bn_sweep_stats *stats, bn_error *err) {
    double t0 = bn_progress_now();
    bn_sweep_stats st = {0};
    if (!bn_sweep_supported(d, o))
        return bn_fail(err, BN_EINVAL, "train: a sweep trains binary lbfgs heads only");
    for (int c = 0; c < ncand; c++) {
        memset(&models[c], 0, sizeof models[c]);
        memset(&infos[c], 0, sizeof infos[c]);
        if (!(Cs[c] > 0) || !isfinite(Cs[c]))
            return bn_fail(err, BN_EINVAL, "train: C must be a positive number (got %g)", Cs[c]);
    }
    int dim = d->dim, n = bn_data_rows(d);
    if (dim < 1 || n < 1 || ncand < 1)
        return bn_fail(err, BN_EINVAL, "train: nothing to train (%d rows, dim %d, %d candidates)",
                       n, dim, ncand);
    sw_ctx t;
    memset(&t, 0, sizeof t);
    t.n = n;
    t.ncand = ncand;
    double *mu = malloc((size_t)dim * sizeof *mu), *sd = malloc((size_t)dim * sizeof *sd);
    sw_cand *cand = calloc((size_t)ncand, sizeof *cand);
    double *rsum = malloc((size_t)ncand * sizeof *rsum),
           *lossg = malloc((size_t)ncand * sizeof *lossg);
    double *g = NULL, *w = NULL, *beta = NULL, *zmem = NULL;
    int threads = bn_cpu_threads(), rc = BN_OK, pooled = 0;
    if (!mu || !sd || !cand || !rsum || !lossg) {
        rc = bn_fail(err, BN_ENOMEM, "train: out of memory for a sweep of %d", ncand);
        goto out;
    }
    if ((rc = sw_rows(&t, d, o->balanced, err)))
        goto out;
    bn_train_fit_scaler(d, mu, sd);
    /* Raw rows are centred only, the intercept absorbing the mean: b' = b +
     * w . mean. scikit-learn's gradient (in w, b) is then (g_w + mean g_b',
     * g_b'): the direct path tests exactly that (bn_lbfgs' shift); the row
     * space, whose test is on the Euclidean norm of rotated coordinates,
     * tests against tol / (1 + max |mean|), which implies it. */
    bn_train_opts oo = *o;
    const double *shift = NULL;
    if (!o->standardize) {
        double mmax = 0;
        for (int j = 0; j < dim; j++) {
            sd[j] = 1.0;
            mmax = fmax(mmax, fabs(mu[j]));
        }
        if (dim >= 2 * n)
            oo.tol = o->tol / (1.0 + mmax);
        else
            shift = mu;
    }
    o = &oo;
    /* The row space pays K (n^2 dim) and its factor (n^3 / 3) once to
     * make each pass cost n rank instead of n dim: worth it when dim is well
     * above n (measured, 1,024 dims: 1,000 rows were slower that way). */
    /* Every product below runs on the pool's threads, each BLAS call on one
     * thread: which thread computes what never changes a result, so results
     * do not depend on the thread count (OpenBLAS' own threads split its
     * sums differently for different counts). */
    t.nch = n >= SW_CHUNKS * SW_BLOCK ? SW_CHUNKS : 1;
    t.nth = threads < 1 ? 1 : threads > t.nch ? t.nch : threads;
    if (t.nth > SW_MAX_THREADS)
        t.nth = SW_MAX_THREADS;
    openblas_set_num_threads(1);
    (void)bn_pool_acquire(threads); /* fewer threads if some cannot start: slower, not wrong */
    pooled = 1;
    if (dim >= 2 * n) { /* the same rule as above */
        st.row_space = 1;
        if ((rc = sw_row_space(&t, dim, mu, sd, err)))
            goto out;
    } else {
        t.D = dim;
        t.mud = mu;
        t.sdd = sd;
        t.rows = t.xrows;
        t.ld_rows = (size_t)dim;
    }
    st.rank = t.D;
    if ((rc = sw_alloc(&t, err)))
        goto out;
    size_t P = (size_t)t.D + 1;
    g = calloc((size_t)(ncand + 1) * P, sizeof *g); /* theta0 = 0, then each check's gradient */
    zmem = calloc((size_t)4 * n * ncand, sizeof *zmem);
    if (!g || !zmem) {
        rc = bn_fail(err, BN_ENOMEM, "train: out of memory for %d x %d margins", ncand, n);
        goto out;
    }
    for (int c = 0; c < ncand; c++) {
        sw_cand *k = &cand[c];
        if ((rc = bn_lbfgs_init(&k->lb, P, g, t.S, o->tol, o->max_iter, st.row_space, SW_PAIRS,
                                err)))
            goto out;
        k->lb.shift = shift;
        k->C = Cs[c];
        k->state = SW_START; /* theta0 = 0: every margin 0 */
        k->zt = zmem + (size_t)4 * n * c;
        k->zx = k->zt + n;
        k->u = k->zx + n;
        k->px = k->u + n;
        k->g = g + (size_t)(c + 1) * P;
    }
    st.setup_seconds = bn_progress_now() - t0;

    for (int more = 1; more && rc == BN_OK;)
        rc = sw_round(&t, cand, o, rsum, lossg, &st, &more, err);
    if (rc)
        goto out;

    /* Results: w of every candidate in the (centred, scaled) original coordinates. */
    beta = malloc((size_t)ncand * t.D * sizeof *beta);
    w = malloc((size_t)dim * ncand * sizeof *w);
    if (!beta || !w) {
        rc = bn_fail(err, BN_ENOMEM, "train: out of memory");
        goto out;
    }
    for (int c = 0; c < ncand; c++)
        memcpy(beta + (size_t)c * t.D, cand[c].lb.theta, (size_t)t.D * sizeof *beta);
    if (st.row_space) {
        if ((rc = sw_row_space_back(&t, dim, mu, sd, beta, ncand, w, err)))
            goto out;
    } else {
        for (int c = 0; c < ncand; c++)
            for (int j = 0; j < dim; j++)
                w[(size_t)j * ncand + c] = beta[(size_t)c * dim + j];
    }
    double seconds = bn_progress_now() - t0;
    for (int c = 0; c < ncand && rc == BN_OK; c++) {
        bn_model *m = &models[c];
        const bn_lbfgs *lb = &cand[c].lb;
        if ((rc = bn_model_init(m, dim, 2, err)))
            break;
        for (int j = 0; j < dim; j++)
            m->w[j] = w[(size_t)j * ncand + c];
        m->b[0] = lb->theta[t.D];
        if (o->standardize) {
            m->mean = malloc((size_t)dim * sizeof *m->mean);
            m->scale = malloc((size_t)dim * sizeof *m->scale);
            if (!m->mean || !m->scale) {
                rc = bn_fail(err, BN_ENOMEM, "train: out of memory for standardisation");
                break;
            }
            memcpy(m->mean, mu, (size_t)dim * sizeof *mu);
            memcpy(m->scale, sd, (size_t)dim * sizeof *sd);
        } else {
            for (int j = 0; j < dim; j++)
                m->b[0] -= m->w[j] * mu[j]; /* back from centred rows */
        }
        bn_train_info *info = &infos[c];
        info->iterations = lb->iterations;
        info->converged = lb->converged;
        info->objective = lb->f * Cs[c] * t.S;
        info->grad_max = bn_lbfgs_gnorm(lb, lb->g);
        info->seconds = seconds / ncand;
    }
out:
    if (pooled) {
        bn_pool_release();
        openblas_set_num_threads(threads);
    }
    if (rc)
        for (int c = 0; c < ncand; c++)
            bn_model_free(&models[c]);
    for (int c = 0; cand && c < ncand; c++)
        bn_lbfgs_free(&cand[c].lb);
    free(cand), free(rsum), free(lossg), free(g), free(w), free(beta), free(zmem);
    free(mu), free(sd); /* t.mud and t.sdd may point here */
    sw_ctx_free(&t);
    if (stats)
        *stats = st;
    return rc;
}
