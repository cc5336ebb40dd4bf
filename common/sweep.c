/*
 * sweep.c: binary heads for a list of C values, trained in lockstep (sweep.h).
 *
 * Layout of this file:
 *   pass        one pass over the rows serves every candidate in flight, in
 *               three groups: margins along a new direction (u = X d, float32
 *               GEMM), gradients at an accepted point (X^T r, float32 GEMM),
 *               full evaluations in double (margins, loss, gradient per block);
 *               SW_CHUNKS fixed chunks of rows spread over the threads
 *   row space   K = X X^T of the centred rows, its eigenvectors -> Z
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
 * (the check); if the exact gradient misses tol it goes on with double
 * evaluations. Reported objectives and gradients are the double ones.
 */
#include "sweep.h"
#include "cpu.h"

#include "lbfgs.h"
#include "progress.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SW_BLOCK 64 /* rows per GEMM block: 64 x 1,024 floats, in L2 for both GEMMs */
#define SW_CHUNKS 8 /* partial sums per pass; fixed, so results do not depend on threads */
#define SW_MAX_THREADS 16
#define SW_COLS 256 /* columns per slab when forming K = X X^T */

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
    float *mf, *gb;       /* (SW_BLOCK, ncand), (D, ncand) */
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
    int *y;
    double *sw, S;
    int nch, nth;
    sw_scratch scratch[SW_MAX_THREADS];
    /* the pass in progress */
    int nu, ng, nd;  /* columns of the three groups */
    float *wu;       /* (D, nu) directions d' = d / scale */
    double *bu;      /* (nu) their intercept parts: d_b - mean . d' */
    double **uout;   /* (nu) where u goes, n doubles each */
    float *r;        /* (n, ng) residuals sw (p - y) / S */
    double *gg;      /* per chunk (nch, D, ng): sum_i r_i x_i */
    double *wd, *bd; /* (D, nd), (nd) points of the double group */
    double *gd;      /* per chunk (nch, D, nd) */
    double *ld, *sd; /* per chunk (nch, nd): sum sw loss, sum r */
} sw_ctx;

/* ---- pass ------------------------------------------------------------------- */

/* The two GEMMs of a pass are skinny (a block of rows times at most 16
 * candidates): OpenBLAS spent as long packing their operands as multiplying
 * (perf: sgemm_oncopy/otcopy 24% of the run, the kernel 15%), so they are
 * done here on the stored rows, 16 candidates ("lanes") at a time, four rows
 * per step so that each weight row loaded serves four FMAs. Compiled for
 * AVX-512, AVX2 and baseline x86-64 (the loader picks once, so results are
 * identical from run to run on one machine). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SW_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SW_CLONES
#endif
#define SW_LANES 16

/* 16 lanes as one value (GCC vector extension: one zmm register with
 * AVX-512, two ymm with AVX2, four xmm otherwise). */
typedef float sw_v16 __attribute__((vector_size(SW_LANES * sizeof(float))));

/* v = 16 floats at p (a macro: a function returning a vector type would
 * change the ABI between the clones) */
#define SW_LOAD(v, p) memcpy(&(v), (p), sizeof(v))

/* out (m, 16) = x (m rows of stride ldx, D columns) w (D, 16). Eight rows
 * per step: eight independent FMA chains cover the FMA latency, and each
 * weight row loaded serves eight rows. */
SW_CLONES static void sw_gemm_fwd(const float *restrict x, size_t ldx, int m, int D,
                                  const float *restrict w, float *restrict out) {
    int r = 0;
    for (; r + 8 <= m; r += 8) {
        sw_v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
        const float *x0 = x + (size_t)r * ldx;
        for (int j = 0; j < D; j++) {
            sw_v16 wj;
            SW_LOAD(wj, w + (size_t)j * SW_LANES);
            a0 += x0[j] * wj;
            a1 += x0[ldx + j] * wj;
            a2 += x0[2 * ldx + j] * wj;
            a3 += x0[3 * ldx + j] * wj;
            a4 += x0[4 * ldx + j] * wj;
            a5 += x0[5 * ldx + j] * wj;
            a6 += x0[6 * ldx + j] * wj;
            a7 += x0[7 * ldx + j] * wj;
        }
        sw_v16 acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
        memcpy(out + (size_t)r * SW_LANES, acc, sizeof acc);
    }
    for (; r < m; r++) {
        sw_v16 a0 = {0};
        const float *x0 = x + (size_t)r * ldx;
        for (int j = 0; j < D; j++) {
            sw_v16 wj;
            SW_LOAD(wj, w + (size_t)j * SW_LANES);
            a0 += x0[j] * wj;
        }
        memcpy(out + (size_t)r * SW_LANES, &a0, sizeof a0);
    }
}

/* g (D, 16) += x^T rr: x (m rows of stride ldx, D columns), rr (m, 16);
 * eight rows per step, their residuals held in registers, so g is loaded
 * and stored once per eight rows. */
SW_CLONES static void sw_gemm_bwd(const float *restrict x, size_t ldx, int m, int D,
                                  const float *restrict rr, float *restrict g) {
    int r = 0;
    for (; r + 8 <= m; r += 8) {
        const float *x0 = x + (size_t)r * ldx, *rq = rr + (size_t)r * SW_LANES;
        sw_v16 r0, r1, r2, r3, r4, r5, r6, r7;
        SW_LOAD(r0, rq);
        SW_LOAD(r1, rq + SW_LANES);
        SW_LOAD(r2, rq + 2 * SW_LANES);
        SW_LOAD(r3, rq + 3 * SW_LANES);
        SW_LOAD(r4, rq + 4 * SW_LANES);
        SW_LOAD(r5, rq + 5 * SW_LANES);
        SW_LOAD(r6, rq + 6 * SW_LANES);
        SW_LOAD(r7, rq + 7 * SW_LANES);
        for (int j = 0; j < D; j++) {
            sw_v16 s0 = x0[j] * r0 + x0[ldx + j] * r1 + x0[2 * ldx + j] * r2 + x0[3 * ldx + j] * r3;
            sw_v16 s1 = x0[4 * ldx + j] * r4 + x0[5 * ldx + j] * r5 + x0[6 * ldx + j] * r6 +
                        x0[7 * ldx + j] * r7;
            sw_v16 gj;
            SW_LOAD(gj, g + (size_t)j * SW_LANES);
            gj += s0 + s1;
            memcpy(g + (size_t)j * SW_LANES, &gj, sizeof gj);
        }
    }
    for (; r < m; r++) {
        const float *x0 = x + (size_t)r * ldx;
        sw_v16 r0;
        SW_LOAD(r0, rr + (size_t)r * SW_LANES);
        for (int j = 0; j < D; j++) {
            sw_v16 gj;
            SW_LOAD(gj, g + (size_t)j * SW_LANES);
            gj += x0[j] * r0;
            memcpy(g + (size_t)j * SW_LANES, &gj, sizeof gj);
        }
    }
}

/* Column a of a lane-grouped (groups, rows, 16) array: its index at row i. */
static inline size_t sw_lane(int rows, int i, int a) {
    return ((size_t)(a / SW_LANES) * rows + i) * SW_LANES + a % SW_LANES;
}

static inline int sw_groups(int cols) {
    return (cols + SW_LANES - 1) / SW_LANES;
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
    double *gg = t->gg + (size_t)c * sw_groups(ng) * D * SW_LANES, *gd = t->gd + (size_t)c * D * nd;
    double *ld = t->ld + (size_t)c * nd, *sd = t->sd + (size_t)c * nd;
    memset(gd, 0, (size_t)D * nd * sizeof *gd);
    memset(ld, 0, (size_t)nd * sizeof *ld);
    memset(sd, 0, (size_t)nd * sizeof *sd);
    memset(s->gb, 0, (size_t)sw_groups(ng) * D * SW_LANES * sizeof *s->gb);
    for (int i0 = lo; i0 < hi;) {
        /* up to SW_BLOCK rows that are contiguous in memory (blocks of bn_data) */
        const float *x0 = t->rows[i0];
        int m = 1;
        while (m < SW_BLOCK && i0 + m < hi && t->rows[i0 + m] == x0 + (size_t)m * t->ld_rows)
            m++;
        for (int gi = 0; gi < sw_groups(nu); gi++) {
            sw_gemm_fwd(x0, t->ld_rows, m, D, t->wu + (size_t)gi * D * SW_LANES, s->mf);
            int lanes = nu - gi * SW_LANES < SW_LANES ? nu - gi * SW_LANES : SW_LANES;
            for (int l = 0; l < lanes; l++) { /* each candidate's u in order (was 82% of
                                               * this function's time lane-major) */
                int a = gi * SW_LANES + l;
                double *u = t->uout[a] + i0, b = t->bu[a];
                for (int r = 0; r < m; r++)
                    u[r] = (double)s->mf[r * SW_LANES + l] + b;
            }
        }
        for (int gi = 0; gi < sw_groups(ng); gi++)
            sw_gemm_bwd(x0, t->ld_rows, m, D, t->r + sw_lane(t->n, i0, gi * SW_LANES),
                        s->gb + (size_t)gi * D * SW_LANES);
        if (nd) {
            const double *x = t->zd ? t->zd + (size_t)i0 * D : s->xd;
            if (!t->zd)
                for (int r = 0; r < m; r++) {
                    const float *row = x0 + (size_t)r * t->ld_rows;
                    double *out = s->xd + (size_t)r * D;
                    for (int j = 0; j < D; j++)
                        out[j] = ((double)row[j] - t->mud[j]) / t->sdd[j];
                }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, nd, D, 1.0, x, D, t->wd, nd,
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
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, nd, m, 1.0, x, D, s->rd, nd,
                        1.0, gd, nd);
        }
        i0 += m;
    }
    for (size_t q = 0; q < (size_t)sw_groups(ng) * D * SW_LANES; q++)
        gg[q] = (double)s->gb[q];
}

typedef struct {
    sw_ctx *t;
    int id;
} sw_worker;

static void *sw_worker_main(void *arg) {
    sw_worker *w = arg;
    for (int c = w->id; c < w->t->nch; c += w->t->nth)
        sw_chunk(w->t, &w->t->scratch[w->id], c);
    return NULL;
}

/* One pass: chunks on nth threads, then added in chunk order into chunk 0.
 * rsum (ng): sum_i r_i of the gradient group, for the mapping back. */
static void sw_pass(sw_ctx *t, const double *rsum) {
    pthread_t tid[SW_MAX_THREADS];
    sw_worker w[SW_MAX_THREADS];
    int started = 1;
    for (int i = 1; i < t->nth; i++) {
        w[i] = (sw_worker){t, i};
        if (pthread_create(&tid[i], NULL, sw_worker_main, &w[i]) != 0)
            break;
        started = i + 1;
    }
    /* This thread takes its own chunks and those of threads that did not start. */
    for (int c = 0; c < t->nch; c++)
        if (c % t->nth == 0 || c % t->nth >= started)
            sw_chunk(t, &t->scratch[0], c);
    for (int i = 1; i < started; i++)
        pthread_join(tid[i], NULL);
    size_t pg = (size_t)sw_groups(t->ng) * t->D * SW_LANES, pd = (size_t)t->D * t->nd;
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
    for (int j = 0; j < t->D; j++)
        for (int a = 0; a < t->ng; a++)
            t->gg[sw_lane(t->D, j, a)] =
                (t->gg[sw_lane(t->D, j, a)] - t->mud[j] * rsum[a]) / t->sdd[j];
}

/* ---- row space ------------------------------------------------------------------ */

/* Columns [j0, j0 + cw) of the centred, scaled rows into xc (n, cw), double. */
static void sw_slab(const sw_ctx *t, const double *mu, const double *sd, int j0, int cw,
                    double *xc) {
    for (int i = 0; i < t->n; i++)
        for (int j = 0; j < cw; j++)
            xc[(size_t)i * cw + j] = ((double)t->xrows[i][j0 + j] - mu[j0 + j]) / sd[j0 + j];
}

/* K = X X^T (n x n) of the centred rows, slab by slab (dsyrk, OpenBLAS'
 * threads); its eigenvectors; Z = U L^(1/2) over the eigenvalues above
 * n eps lambda_max (the rest is rounding: the centred rows have rank <= n-1). */
static int sw_row_space(sw_ctx *t, int dim, const double *mu, const double *sd, bn_error *err) {
    int n = t->n;
    double *K = calloc((size_t)n * n, sizeof *K), *lam = malloc((size_t)n * sizeof *lam);
    double *xc = malloc((size_t)n * SW_COLS * sizeof *xc);
    if (!K || !lam || !xc) {
        free(K), free(lam), free(xc);
        return bn_fail(err, BN_ENOMEM, "train: out of memory for the %d x %d row-space matrix", n,
                       n);
    }
    for (int j0 = 0; j0 < dim; j0 += SW_COLS) {
        int cw = dim - j0 < SW_COLS ? dim - j0 : SW_COLS;
        sw_slab(t, mu, sd, j0, cw, xc);
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, cw, 1.0, xc, cw, 1.0, K, n);
    }
    free(xc);
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', n, K, n, lam);
    if (info != 0) {
        free(K), free(lam);
        return bn_fail(err, BN_EINVAL,
                       "train: eigendecomposition of the %d x %d row-space "
                       "matrix failed (LAPACK dsyevd info %d)",
                       n, n, (int)info);
    }
    double floor_ = lam[n - 1] * n * DBL_EPSILON;
    int r = 0;
    while (r < n && lam[n - 1 - r] > floor_)
        r++;
    if (r == 0) /* every row equal: no direction to learn, only the intercept */
        r = 1, lam[n - 1] = fmax(lam[n - 1], 0);
    t->D = r;
    t->zd = malloc((size_t)n * r * sizeof *t->zd);
    t->zf = malloc((size_t)n * r * sizeof *t->zf);
    if (!t->zd || !t->zf) {
        free(K), free(lam);
        return bn_fail(err, BN_ENOMEM, "train: out of memory for %d x %d components", n, r);
    }
    for (int i = 0; i < n; i++)
        for (int q = 0; q < r; q++) {
            double v = K[(size_t)i * n + (n - 1 - q)] * sqrt(lam[n - 1 - q]);
            t->zd[(size_t)i * r + q] = v;
            t->zf[(size_t)i * r + q] = (float)v;
        }
    free(K), free(lam);
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

/* w (dim, ncand) = X^T Z L^-1 beta: the coefficients of the original
 * (centred, scaled) coordinates. L = the column norms^2 of Z. */
static int sw_row_space_back(sw_ctx *t, int dim, const double *mu, const double *sd,
                             const double *beta, int ncand, double *w, bn_error *err) {
    int n = t->n, r = t->D;
    double *a = calloc((size_t)n * ncand, sizeof *a), *lam = calloc((size_t)r, sizeof *lam);
    double *b = malloc((size_t)r * ncand * sizeof *b);
    double *xc = malloc((size_t)n * SW_COLS * sizeof *xc);
    if (!a || !lam || !b || !xc) {
        free(a), free(lam), free(b), free(xc);
        return bn_fail(err, BN_ENOMEM, "train: out of memory mapping back %d components", r);
    }
    for (int i = 0; i < n; i++)
        for (int q = 0; q < r; q++)
            lam[q] += t->zd[(size_t)i * r + q] * t->zd[(size_t)i * r + q];
    for (int q = 0; q < r; q++)
        for (int c = 0; c < ncand; c++)
            b[(size_t)q * ncand + c] = beta[(size_t)c * r + q] / lam[q];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, ncand, r, 1.0, t->zd, r, b, ncand,
                0.0, a, ncand);
    for (int j0 = 0; j0 < dim; j0 += SW_COLS) {
        int cw = dim - j0 < SW_COLS ? dim - j0 : SW_COLS;
        sw_slab(t, mu, sd, j0, cw, xc);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cw, ncand, n, 1.0, xc, cw, a, ncand,
                    0.0, w + (size_t)j0 * ncand, ncand);
    }
    free(a), free(lam), free(b), free(xc);
    return BN_OK;
}

/* ---- line search ------------------------------------------------------------------ */

typedef struct {
    bn_lbfgs lb;
    int state, col;
    double C;
    double *zt, *zx, *u; /* (n) margins at theta, at the trial point, along dir */
} sw_cand;

/* The margins z into column a of the residuals (sw (p - y) / S); returns
 * sum_i sw_i loss_i and sum_i r_i in *rsum. */
static double sw_residuals(const sw_ctx *t, const double *z, int a, double *rsum) {
    double loss = 0, rs = 0;
    for (int i = 0; i < t->n; i++) {
        double p;
        loss += t->sw[i] * sw_loss(z[i], t->y[i], &p);
        double res = t->sw[i] * (p - t->y[i]) / t->S;
        t->r[sw_lane(t->n, i, a)] = (float)res;
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
    free(t->xrows), free(t->zf), free(t->zd), free(t->mud0), free(t->sdd0), free(t->y), free(t->sw);
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
    size_t kp = (size_t)sw_groups(t->ncand) * SW_LANES; /* lanes, padded */
    int ok = 1;
    for (int i = 0; i < t->nth; i++) {
        sw_scratch *s = &t->scratch[i];
        if (!t->zd) {
            s->xd = malloc(SW_BLOCK * D * sizeof *s->xd);
            ok &= s->xd != NULL;
        }
        s->mf = malloc(SW_BLOCK * SW_LANES * sizeof *s->mf);
        s->gb = malloc(D * kp * sizeof *s->gb);
        s->md = malloc(SW_BLOCK * k * sizeof *s->md);
        s->rd = malloc(SW_BLOCK * k * sizeof *s->rd);
        ok &= s->mf && s->gb && s->md && s->rd;
    }
    t->wu = calloc(D * kp, sizeof *t->wu);
    t->bu = malloc(k * sizeof *t->bu);
    t->uout = malloc(k * sizeof *t->uout);
    t->r = calloc(n * kp, sizeof *t->r);
    t->gg = malloc(ch * D * kp * sizeof *t->gg);
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

/* One round: every candidate still in flight gets what it waits for from one
 * pass, then moves on as far as it can without another. *more = 0 when no
 * candidate is left. */
static int sw_round(sw_ctx *t, sw_cand *cand, const bn_train_opts *o, double *rsum, double *lossg,
                    double *g, bn_sweep_stats *st, int *more, bn_error *err) {
    int D = t->D;
    size_t P = (size_t)D + 1;
    t->nu = t->ng = t->nd = 0;
    for (int c = 0; c < t->ncand; c++) {
        sw_cand *k = &cand[c];
        if (k->state == SW_FWD)
            k->col = t->nu++;
        else if (k->state == SW_START || k->state == SW_BWD)
            k->col = t->ng++;
        else if (k->state == SW_VERIFY || k->state == SW_DOUBLE)
            k->col = t->nd++;
    }
    *more = t->nu + t->ng + t->nd > 0;
    if (!*more)
        return BN_OK;
    for (int c = 0; c < t->ncand; c++) {
        sw_cand *k = &cand[c];
        if (k->state == SW_FWD) { /* d' = d / scale, its intercept part d_b - mean . d' */
            const double *d = k->lb.dir;
            double b = d[D];
            for (int j = 0; j < D; j++) {
                float v = (float)(d[j] / t->sdd[j]);
                t->wu[sw_lane(D, j, k->col)] = v;
                b -= t->mud[j] * (double)v;
            }
            t->bu[k->col] = b;
            t->uout[k->col] = k->u;
        } else if (k->state == SW_START || k->state == SW_BWD) {
            lossg[k->col] =
                sw_residuals(t, k->state == SW_START ? k->zt : k->zx, k->col, &rsum[k->col]);
        } else if (k->state == SW_VERIFY || k->state == SW_DOUBLE) {
            const double *x = k->state == SW_VERIFY ? k->lb.theta : k->lb.xt;
            for (int j = 0; j < D; j++)
                t->wd[(size_t)j * t->nd + k->col] = x[j];
            t->bd[k->col] = x[D];
        }
    }
    sw_pass(t, rsum);
    st->rounds++;
    st->double_rounds += t->nd > 0;
    for (int c = 0; c < t->ncand; c++) {
        sw_cand *k = &cand[c];
        int a = k->col, rc = 1;
        double pen = 1.0 / (k->C * t->S);
        if (k->state == SW_FWD) {
            sw_line(t, k);
        } else if (k->state == SW_START || k->state == SW_BWD) {
            const double *x = k->lb.xt; /* theta0 at the start */
            for (int j = 0; j < D; j++)
                k->lb.gt[j] = t->gg[sw_lane(D, j, a)] + pen * x[j];
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
            double *gx = verify ? g : k->lb.gt, sq = 0;
            for (int j = 0; j < D; j++) {
                gx[j] = t->gd[(size_t)j * t->nd + a] + pen * x[j];
                sq += x[j] * x[j];
            }
            gx[D] = t->sd[a];
            double f = t->ld[a] / t->S + 0.5 * pen * sq;
            if (!verify) {
                k->state = bn_lbfgs_tell(&k->lb, f) ? SW_DOUBLE : SW_FINISHED;
                continue;
            }
            int it = k->lb.iterations;
            if (bn_lbfgs_gnorm(&k->lb, g) <= o->tol || it >= o->max_iter) {
                k->lb.f = f;
                memcpy(k->lb.g, g, P * sizeof *g);
                k->lb.converged = bn_lbfgs_gnorm(&k->lb, g) <= o->tol;
                k->state = SW_FINISHED;
                continue;
            }
            /* float32 stopped short of the exact test: go on in double from here */
            double *theta = malloc(P * sizeof *theta);
            if (!theta)
                return bn_fail(err, BN_ENOMEM, "train: out of memory");
            memcpy(theta, k->lb.theta, P * sizeof *theta);
            bn_lbfgs_free(&k->lb);
            const double *shift = k->lb.shift;
            rc = bn_lbfgs_init(&k->lb, P, theta, t->S, o->tol, o->max_iter, st->row_space, err);
            k->lb.shift = shift;
            free(theta);
            if (rc)
                return rc;
            k->lb.iterations = it;
            memcpy(k->lb.gt, g, P * sizeof *g);
            k->state = bn_lbfgs_tell(&k->lb, f) ? SW_DOUBLE : SW_FINISHED;
        }
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
    int threads = bn_cpu_threads(), rc = BN_OK;
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
    /* The row space pays K (n^2 dim) and its eigenvectors (~10 n^3) once to
     * make each pass cost n rank instead of n dim: worth it when dim is well
     * above n (measured, 1,024 dims: 1,000 rows were slower that way). */
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
    t.nch = n >= SW_CHUNKS * SW_BLOCK ? SW_CHUNKS : 1;
    t.nth = threads < 1 ? 1 : threads > t.nch ? t.nch : threads;
    if (t.nth > SW_MAX_THREADS)
        t.nth = SW_MAX_THREADS;
    if ((rc = sw_alloc(&t, err)))
        goto out;
    size_t P = (size_t)t.D + 1;
    g = calloc(P, sizeof *g);
    zmem = calloc((size_t)3 * n * ncand, sizeof *zmem);
    if (!g || !zmem) {
        rc = bn_fail(err, BN_ENOMEM, "train: out of memory for %d x %d margins", ncand, n);
        goto out;
    }
    for (int c = 0; c < ncand; c++) {
        sw_cand *k = &cand[c];
        if ((rc = bn_lbfgs_init(&k->lb, P, g, t.S, o->tol, o->max_iter, st.row_space, err)))
            goto out;
        k->lb.shift = shift;
        k->C = Cs[c];
        k->state = SW_START; /* theta0 = 0: every margin 0 */
        k->zt = zmem + (size_t)3 * n * c;
        k->zx = k->zt + n;
        k->u = k->zx + n;
    }
    st.setup_seconds = bn_progress_now() - t0;

    /* The GEMMs are small and already on our threads: OpenBLAS on one. */
    openblas_set_num_threads(1);
    for (int more = 1; more && rc == BN_OK;)
        rc = sw_round(&t, cand, o, rsum, lossg, g, &st, &more, err);
    openblas_set_num_threads(threads);
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
