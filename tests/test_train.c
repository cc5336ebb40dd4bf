/*
 * test_train: the training loop against known answers.
 *
 * 1. One-dimensional problems whose optimum the test finds on its own:
 *    a symmetric separable one (b = 0 by symmetry, w the root of a scalar
 *    equation, by bisection) and an asymmetric non-separable one, plain and
 *    with balanced class weights (the test's own gradient must vanish at the
 *    returned point, and its objective must equal the minimum found by a
 *    nested golden-section search over (w, b)).
 * 2. A three-class problem (a formula generates the points) against
 *    scikit-learn's multinomial LogisticRegression: coefficients, objective,
 *    probabilities; plain, and standardised with balanced weights.
 * 3. The real GoogLeNet embeddings of ../shared (train 2,000 rows, validation
 *    1,000) against scikit-learn: validation accuracy within 0.3 points, log
 *    loss within 2e-5, the objective within 1e-7 relative; lbfgs and newton,
 *    raw and standardised, balanced weights on an imbalanced subset; warm
 *    starts; Adam and SGD near the optimum, deterministic per seed; the
 *    same rows cut into several blocks (as cross-validation feeds them) give
 *    the same model.
 * 4. Bad input: one class, C <= 0, newton on three classes, a diverging lr.
 *
 * Reference values: scikit-learn 1.2.1, numpy 1.24.2 (Debian bookworm
 * python3-sklearn), /usr/bin/python3, with these scripts:
 *
 * -- three classes --
 *   import numpy as np
 *   from sklearn.linear_model import LogisticRegression
 *   from sklearn.preprocessing import StandardScaler
 *   from sklearn.pipeline import make_pipeline
 *   i = np.arange(60); a = i * 0.7
 *   X = np.stack([np.sin(a) * (1 + (i % 5) * 0.3), np.cos(1.3 * a) + (i % 3)], 1)
 *   X = X.astype(np.float32).astype(np.float64)
 *   y = np.where(i % 6 < 3, 0, np.where(i % 6 < 5, 1, 2))
 *   for C, std, cw in [(1.0, False, None), (0.5, True, 'balanced')]:
 *       lr = LogisticRegression(C=C, solver='newton-cg', tol=1e-12, max_iter=100000,
 *                               class_weight=cw)
 *       m = make_pipeline(StandardScaler(), lr) if std else lr
 *       m.fit(X, y)
 *       Xt = m[0].transform(X) if std else X
 *       Z = Xt @ lr.coef_.T + lr.intercept_
 *       lse = np.log(np.exp(Z).sum(1))
 *       sw = np.ones(60) if cw is None else (60 / (3 * np.bincount(y)))[y]
 *       f = 0.5 * np.sum(lr.coef_ ** 2) + C * np.sum(sw * (lse - Z[np.arange(60), y]))
 *       print(f, lr.coef_.ravel(), m.predict_proba(X[:3]).ravel())
 *
 * -- GoogLeNet --
 *   import numpy as np, csv
 *   from sklearn.linear_model import LogisticRegression
 *   from sklearn.preprocessing import StandardScaler
 *   from sklearn.pipeline import make_pipeline
 *   from sklearn.metrics import accuracy_score, log_loss
 *   d = '../shared/features/googlenet/catsdogs/'
 *   X = np.load(d + 'embeddings.npy').astype(np.float64)
 *   rows = list(csv.DictReader(open(d + 'index.tsv'), delimiter='\t'))
 *   split = np.array([r['split'] for r in rows])
 *   y = np.array([r['label'] == 'dog' for r in rows], int)
 *   tr, va = split == 'train', split == 'validation'
 *   dogs = np.flatnonzero(tr & (y == 1))[:250]   # imbalanced: all cats, 250 dogs
 *   sub = np.zeros(len(y), bool); sub[np.flatnonzero(tr & (y == 0))] = True; sub[dogs] = True
 *   for C, std, cw, rows_ in [(1.0, False, None, tr), (0.1, True, None, tr),
 *                             (1.0, True, None, tr), (0.01, False, None, sub),
 *                             (0.01, False, 'balanced', sub)]:
 *       lr = LogisticRegression(C=C, solver='newton-cholesky', tol=1e-12,
 *                               max_iter=1000, class_weight=cw)
 *       m = make_pipeline(StandardScaler(), lr) if std else lr
 *       m.fit(X[rows_], y[rows_])
 *       p = m.predict_proba(X[va])
 *       Xt = m[0].transform(X[rows_]) if std else X[rows_]
 *       z = Xt @ lr.coef_[0] + lr.intercept_[0]
 *       n = rows_.sum()
 *       sw = np.ones(n) if cw is None else (n / (2 * np.bincount(y[rows_])))[y[rows_]]
 *       f = 0.5 * np.sum(lr.coef_ ** 2) + C * np.sum(sw * (np.logaddexp(0, z) - y[rows_] * z))
 *       print(accuracy_score(y[va], p.argmax(1)), log_loss(y[va], p), f)
 *
 * (The Newton solvers at tol 1e-12 reach the optimum to the last digits
 * shown: their gradients are below 1e-7. solver='lbfgs' stops earlier, on
 * scipy's relative-decrease test: 2e-5 off in the three-class W, 1e-6 in the
 * GoogLeNet log loss.)
 */
#include "check.h"
#include "cpu.h"
#include "metrics.h"
#include "support.h"
#include "train.h"

#include <stdint.h>

static double sigmoid(double z) {
    return 1.0 / (1.0 + exp(-z));
}
static double softplus(double z) {
    return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
}

/* ---- 1-D problems: the test's own objective and gradient ---------------------------- */

typedef struct {
    const double *x;
    const int *y;
    const double *sw;
    int n;
    double C;
} prob1d;

static double obj1d(const prob1d *p, double w, double b, double *gw, double *gb) {
    double f = 0.5 * w * w, g_w = w, g_b = 0;
    for (int i = 0; i < p->n; i++) {
        double z = w * p->x[i] + b, s = p->sw ? p->sw[i] : 1.0;
        f += p->C * s * (softplus(z) - p->y[i] * z);
        double r = p->C * s * (sigmoid(z) - p->y[i]);
        g_w += r * p->x[i];
        g_b += r;
    }
    if (gw)
        *gw = g_w, *gb = g_b;
    return f;
}

/* min over b of obj1d(w, b): golden section on a convex function. */
static double min_over_b(const prob1d *p, double w, double *bbest) {
    const double r = (sqrt(5.0) - 1) / 2;
    double lo = -50, hi = 50;
    double c = hi - r * (hi - lo), d = lo + r * (hi - lo);
    double fc = obj1d(p, w, c, NULL, NULL), fd = obj1d(p, w, d, NULL, NULL);
    for (int it = 0; it < 200; it++) {
        if (fc < fd)
            hi = d, d = c, fd = fc, c = hi - r * (hi - lo), fc = obj1d(p, w, c, NULL, NULL);
        else
            lo = c, c = d, fc = fd, d = lo + r * (hi - lo), fd = obj1d(p, w, d, NULL, NULL);
    }
    *bbest = 0.5 * (lo + hi);
    return obj1d(p, w, *bbest, NULL, NULL);
}

static double brute_min(const prob1d *p, double *wbest, double *bbest) {
    const double r = (sqrt(5.0) - 1) / 2;
    double lo = -50, hi = 50, b;
    double c = hi - r * (hi - lo), d = lo + r * (hi - lo);
    double fc = min_over_b(p, c, &b), fd = min_over_b(p, d, &b);
    for (int it = 0; it < 200; it++) {
        if (fc < fd)
            hi = d, d = c, fd = fc, c = hi - r * (hi - lo), fc = min_over_b(p, c, &b);
        else
            lo = c, c = d, fc = fd, d = lo + r * (hi - lo), fd = min_over_b(p, d, &b);
    }
    *wbest = 0.5 * (lo + hi);
    return min_over_b(p, *wbest, bbest);
}

static bn_data data1(const float *x, const int *y, int n, int dim, int k) {
    bn_data d = {.dim = dim, .k = k, .nblocks = 1};
    d.block[0] = (bn_block){x, y, n};
    return d;
}

static void test_1d(void) {
    bn_error err = {0};
    /* Symmetric and separable: the optimum has b = 0 and w solving
     * w = C * sum_i x_i (y_i - sigmoid(w x_i)). */
    {
        float x[4] = {-2, -1, 1, 2};
        int y[4] = {0, 0, 1, 1};
        double xd[4] = {-2, -1, 1, 2};
        prob1d p = {xd, y, NULL, 4, 3.0};
        double lo = 0, hi = 100;
        for (int it = 0; it < 200; it++) {
            double mid = 0.5 * (lo + hi), gw, gb;
            obj1d(&p, mid, 0, &gw, &gb);
            if (gw > 0)
                hi = mid;
            else
                lo = mid;
        }
        double wstar = 0.5 * (lo + hi);
        bn_data d = data1(x, y, 4, 1, 2);
        for (int s = 0; s < 2; s++) {
            bn_train_opts o;
            bn_train_opts_default(&o);
            o.C = 3.0;
            o.tol = 1e-10;
            o.solver = s ? BN_SOLVER_NEWTON : BN_SOLVER_LBFGS;
            bn_model m = {0};
            bn_train_info info;
            CHECK_MSG(bn_train(&d, NULL, &o, &m, &info, &err) == BN_OK, "%s", err.msg);
            CHECK_NEAR(m.w[0], wstar, 1e-8);
            CHECK_NEAR(m.b[0], 0.0, 1e-8);
            CHECK(info.converged);
            CHECK_NEAR(info.objective, obj1d(&p, wstar, 0, NULL, NULL), 1e-10);
            bn_model_free(&m);
        }
    }
    /* Asymmetric, overlapping classes, with and without balanced weights
     * (5 negatives, 8 positives). */
    {
        float x[13] = {-1.5, -0.5, 0.3, 1.1, -2.0, 0.2, 1.0, 1.7, 2.5, -0.2, 0.9, 0.4, 3.0};
        int y[13] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
        double xd[13]; /* the same float32 values, as the library sees them */
        for (int i = 0; i < 13; i++)
            xd[i] = x[i];
        bn_data d = data1(x, y, 13, 1, 2);
        for (int balanced = 0; balanced < 2; balanced++) {
            double sw[13];
            for (int i = 0; i < 13; i++)
                sw[i] = balanced ? 13.0 / (2.0 * (y[i] ? 8 : 5)) : 1.0;
            prob1d p = {xd, y, sw, 13, 0.7};
            double wb, bb;
            double fmin = brute_min(&p, &wb, &bb);
            for (int s = 0; s < 2; s++) {
                bn_train_opts o;
                bn_train_opts_default(&o);
                o.C = 0.7;
                o.balanced = balanced;
                o.tol = 1e-9;
                o.solver = s ? BN_SOLVER_NEWTON : BN_SOLVER_LBFGS;
                bn_model m = {0};
                bn_train_info info;
                CHECK_MSG(bn_train(&d, NULL, &o, &m, &info, &err) == BN_OK, "%s", err.msg);
                double gw, gb;
                double f = obj1d(&p, m.w[0], m.b[0], &gw, &gb);
                CHECK_MSG(fabs(gw) < 1e-8 && fabs(gb) < 1e-8, "gradient (%g, %g) at (%g, %g)", gw,
                          gb, m.w[0], m.b[0]);
                CHECK_NEAR(f, fmin, 1e-10);
                CHECK_NEAR(m.w[0], wb, 1e-5);
                CHECK_NEAR(m.b[0], bb, 1e-5);
                CHECK_NEAR(info.objective, f, 1e-10);
                /* The library's own objective agrees with the test's. */
                double lgw, lgb;
                CHECK_NEAR(bn_train_objective(&d, &o, &m, &lgw, &lgb), f, 1e-12);
                CHECK_NEAR(lgw, gw, 1e-12);
                CHECK_NEAR(lgb, gb, 1e-12);
                bn_model_free(&m);
            }
        }
    }
}

/* ---- three classes vs scikit-learn ----------------------------------------------------- */

static void test_multiclass(void) {
    float x[120];
    int y[60];
    for (int i = 0; i < 60; i++) {
        double a = i * 0.7;
        x[2 * i] = (float)(sin(a) * (1 + (i % 5) * 0.3));
        x[2 * i + 1] = (float)(cos(1.3 * a) + (i % 3));
        y[i] = i % 6 < 3 ? 0 : i % 6 < 5 ? 1 : 2;
    }
    static const struct {
        double C;
        int std, balanced;
        double f, W[6], P[9];
    } ref[2] = {
        {1.0,
         0,
         0,
         52.9231209423,
         {0.0072794754, 0.0259511688, 0.0420401382, -0.7912140473, -0.0493196136, 0.7652628785},
         {0.5621745526, 0.3059658573, 0.13185959, 0.5911989526, 0.200616166, 0.2081848814,
          0.593450034, 0.1843426241, 0.2222073419}},
        {0.5,
         1,
         1,
         27.6983878809,
         {0.0156837899, 0.0071761605, 0.0595153672, -0.8314360434, -0.0751991571, 0.8242598829},
         {0.393912577, 0.3311906657, 0.2748967573, 0.3874391171, 0.2073934557, 0.4051674272,
          0.3859866782, 0.1904280185, 0.4235853032}},
    };
    bn_error err = {0};
    bn_data d = data1(x, y, 60, 2, 3);
    for (int r = 0; r < 2; r++) {
        bn_train_opts o;
        bn_train_opts_default(&o);
        o.C = ref[r].C;
        o.standardize = ref[r].std;
        o.balanced = ref[r].balanced;
        o.tol = 1e-10;
        bn_model m = {0};
        bn_train_info info;
        CHECK_MSG(bn_train(&d, NULL, &o, &m, &info, &err) == BN_OK, "%s", err.msg);
        CHECK_INT(m.nout, 3);
        CHECK_NEAR(info.objective, ref[r].f, 1e-8);
        for (int j = 0; j < 6; j++)
            CHECK_MSG(fabs(m.w[j] - ref[r].W[j]) < 2e-8, "case %d W[%d] = %.10f, sklearn %.10f", r,
                      j, m.w[j], ref[r].W[j]);
        bn_head h;
        CHECK(bn_head_from_model(&m, &h, &err) == BN_OK);
        double P[9];
        CHECK(bn_head_predict(&h, x, 3, P, &err) == BN_OK);
        for (int j = 0; j < 9; j++)
            CHECK_MSG(fabs(P[j] - ref[r].P[j]) < 1e-7, "case %d P[%d] = %.10f, sklearn %.10f", r, j,
                      P[j], ref[r].P[j]);
        /* The softmax gradient, computed here, vanishes (standardised
         * coordinates when asked). */
        double g[6] = {0};
        for (int i = 0; i < 60; i++) {
            double xs[2], z[3], zmax = -1e300, sum = 0;
            for (int j = 0; j < 2; j++)
                xs[j] = m.mean ? (x[2 * i + j] - m.mean[j]) / m.scale[j] : x[2 * i + j];
            for (int c = 0; c < 3; c++) {
                z[c] = m.w[2 * c] * xs[0] + m.w[2 * c + 1] * xs[1] + m.b[c];
                zmax = fmax(zmax, z[c]);
            }
            for (int c = 0; c < 3; c++)
                sum += exp(z[c] - zmax);
            int cnt[3] = {30, 20, 10};
            double sw = o.balanced ? 60.0 / (3 * cnt[y[i]]) : 1;
            for (int c = 0; c < 3; c++) {
                double rr = o.C * sw * (exp(z[c] - zmax) / sum - (c == y[i]));
                g[2 * c] += rr * xs[0];
                g[2 * c + 1] += rr * xs[1];
            }
        }
        for (int j = 0; j < 6; j++)
            CHECK_MSG(fabs(g[j] + m.w[j]) < 2e-7, "case %d gradient[%d] = %g", r, j, g[j] + m.w[j]);
        bn_head_free(&h);

        /* Implicit standardisation equals training on standardised rows. */
        if (ref[r].std) {
            float xs[120];
            for (int i = 0; i < 60; i++)
                for (int j = 0; j < 2; j++)
                    xs[2 * i + j] = (float)((x[2 * i + j] - m.mean[j]) / m.scale[j]);
            bn_data ds = data1(xs, y, 60, 2, 3);
            o.standardize = 0;
            bn_model m2 = {0};
            CHECK(bn_train(&ds, NULL, &o, &m2, &info, &err) == BN_OK);
            for (int j = 0; j < 6; j++)
                CHECK_NEAR(m2.w[j], m.w[j], 1e-6);
            bn_model_free(&m2);
        }
        bn_model_free(&m);
    }
}

/* ---- GoogLeNet embeddings ----------------------------------------------------------------- */

static void eval_valid(const support_gnet *g, const bn_model *m, double *acc, double *ll) {
    bn_error err;
    bn_head h;
    double *p = malloc((size_t)g->nv * 2 * sizeof *p);
    bn_metrics mt = {0};
    *acc = *ll = NAN;
    if (bn_head_from_model(m, &h, &err) == BN_OK &&
        bn_head_predict(&h, g->xv, g->nv, p, &err) == BN_OK &&
        bn_metrics_compute(g->yv, p, g->nv, 2, &mt, &err) == BN_OK) {
        *acc = mt.accuracy;
        *ll = mt.log_loss;
    }
    bn_metrics_free(&mt);
    bn_head_free(&h);
    free(p);
}

/* Rows in several blocks (cross-validation trains on the folds before and
 * after the held-out one): the same rows give the same model however they are
 * cut, wherever the blocks lie in memory. 500 training rows (350 cats, 150
 * dogs) are cut into four blocks at uneven points, the pieces stored in
 * reverse order (so no block follows the one before it in memory), for
 * lbfgs, newton with standardisation (mean and scale over all blocks), lbfgs
 * with balanced weights (class counts over all blocks) and Adam (a shuffle
 * over all rows): against one block, the objective to 1e-13 relative and
 * every weight to 1e-12 (observed: bit for bit equal; the bounds leave room
 * for summation order only), Adam and the standardisation bit for bit. Then
 * the cross-validation shape: two blocks around a held-out hole of the full
 * matrix against a contiguous copy of the same rows. */
static void test_blocks(const support_gnet *g) {
    enum { N = 500, D = 1024 };
    float *x = malloc((size_t)N * D * 4), *cut = malloc((size_t)N * D * 4);
    int y[N], ycut[N];
    /* 350 cats and 150 dogs, interleaved (7 of every 10 rows are cats), so
     * that balanced weights are not all 1 and every block has both. */
    for (int i = 0, cat = 0, dog = 0; i < N; i++) {
        int want = i % 10 < 7 ? 0 : 1, *next = want ? &dog : &cat;
        while (g->yt[*next] != want)
            ++*next;
        memcpy(x + (size_t)i * D, g->xt + (size_t)*next * D, D * 4);
        y[i] = want;
        ++*next;
    }
    static const int at[5] = {0, 7, 240, 251, N}; /* blocks [at[b], at[b+1]) */
    bn_data one = data1(x, y, N, D, 2), four = {.dim = D, .k = 2, .nblocks = 4};
    size_t pos = 0;
    for (int b = 3; b >= 0; b--) { /* last block first in memory */
        int n = at[b + 1] - at[b];
        memcpy(cut + pos * D, x + (size_t)at[b] * D, (size_t)n * D * 4);
        memcpy(ycut + pos, y + at[b], (size_t)n * sizeof *y);
        four.block[b] = (bn_block){cut + pos * D, ycut + pos, n};
        pos += (size_t)n;
    }
    CHECK_INT(bn_data_rows(&four), N);
    static const struct {
        bn_solver solver;
        int std, balanced;
    } cases[] = {{BN_SOLVER_LBFGS, 0, 0},
                 {BN_SOLVER_NEWTON, 1, 0},
                 {BN_SOLVER_LBFGS, 0, 1},
                 {BN_SOLVER_ADAM, 1, 0}};
    bn_error err = {0};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        bn_train_opts o;
        bn_train_opts_default(&o);
        o.C = 0.1;
        o.solver = cases[c].solver;
        o.standardize = cases[c].std;
        o.balanced = cases[c].balanced;
        o.tol = 1e-8;
        o.epochs = 5;
        bn_model m1 = {0}, m4 = {0};
        bn_train_info i1, i4;
        CHECK_MSG(bn_train(&one, NULL, &o, &m1, &i1, &err) == BN_OK, "%s", err.msg);
        CHECK_MSG(bn_train(&four, NULL, &o, &m4, &i4, &err) == BN_OK, "%s", err.msg);
        double dw = 0;
        for (int j = 0; j < D + 1; j++)
            dw = fmax(dw, fabs(m1.w[j] - m4.w[j]));
        printf("blocks: %s std=%d balanced=%d: 1 block f %.12g, 4 blocks f %.12g, max |dw| %.2g\n",
               bn_solver_name(o.solver), o.standardize, o.balanced, i1.objective, i4.objective, dw);
        CHECK_NEAR(i4.objective / i1.objective, 1.0, 1e-13);
        CHECK_MSG(dw <= 1e-12, "%s: weights differ by %g with 4 blocks", bn_solver_name(o.solver),
                  dw);
        if (o.solver == BN_SOLVER_ADAM)
            CHECK(memcmp(m1.w, m4.w, (D + 1) * sizeof(double)) == 0);
        if (o.standardize)
            for (int j = 0; j < D; j++)
                CHECK_MSG(m1.mean[j] == m4.mean[j] && m1.scale[j] == m4.scale[j],
                          "standardisation differs at %d", j);
        bn_model_free(&m1), bn_model_free(&m4);
    }
    /* A held-out hole [150, 350): blocks before and after it in the
     * original matrix, against the same 300 rows copied together. */
    bn_data hole = {.dim = D, .k = 2, .nblocks = 2};
    hole.block[0] = (bn_block){x, y, 150};
    hole.block[1] = (bn_block){x + (size_t)350 * D, y + 350, N - 350};
    memcpy(cut, x, (size_t)150 * D * 4);
    memcpy(cut + (size_t)150 * D, x + (size_t)350 * D, (size_t)(N - 350) * D * 4);
    memcpy(ycut, y, 150 * sizeof *y);
    memcpy(ycut + 150, y + 350, (N - 350) * sizeof *y);
    bn_data copy = data1(cut, ycut, 300, D, 2);
    bn_train_opts o;
    bn_train_opts_default(&o);
    o.C = 0.1;
    o.standardize = 1;
    o.tol = 1e-8;
    bn_model mh = {0}, mc = {0};
    bn_train_info ih, ic;
    CHECK(bn_train(&hole, NULL, &o, &mh, &ih, &err) == BN_OK);
    CHECK(bn_train(&copy, NULL, &o, &mc, &ic, &err) == BN_OK);
    printf("blocks: around a hole f %.12g, copied together f %.12g\n", ih.objective, ic.objective);
    CHECK_NEAR(ih.objective / ic.objective, 1.0, 1e-13);
    CHECK_NEAR(bn_train_objective(&hole, &o, &mh, NULL, NULL) / ih.objective, 1.0, 1e-13);
    bn_model_free(&mh), bn_model_free(&mc);
    free(x), free(cut);
}

static void test_googlenet(void) {
    support_gnet g;
    if (support_load_gnet(&g) != 0) {
        CHECK_MSG(0, "cannot read the GoogLeNet embeddings under %s", shared_path(""));
        return;
    }
    bn_error err = {0};
    bn_data tr = data1(g.xt, g.yt, g.nt, 1024, 2), va = data1(g.xv, g.yv, g.nv, 1024, 2);

    /* Imbalanced subset: every training cat, the first 250 training dogs. */
    float *xs = malloc((size_t)1250 * 1024 * 4);
    int ys[1250], ns = 0, dogs = 0;
    for (int i = 0; i < g.nt; i++)
        if (g.yt[i] == 0 || dogs++ < 250) {
            memcpy(xs + (size_t)ns * 1024, g.xt + (size_t)i * 1024, 4096);
            ys[ns++] = g.yt[i];
        }
    CHECK_INT(ns, 1250);
    bn_data sub = data1(xs, ys, ns, 1024, 2);

    static const struct {
        double C;
        int std, balanced, imbalanced;
        bn_solver solver;
        double acc, ll, f;
    } ref[] = {
        {1.0, 0, 0, 0, BN_SOLVER_LBFGS, 0.9850, 0.039134600, 4.233544183},
        {0.1, 1, 0, 0, BN_SOLVER_LBFGS, 0.9870, 0.032731110, 1.807923221},
        {0.1, 1, 0, 0, BN_SOLVER_NEWTON, 0.9870, 0.032731110, 1.807923221},
        {1.0, 1, 0, 0, BN_SOLVER_LBFGS, 0.9870, 0.041976732, 3.741964976},
        {0.01, 0, 0, 1, BN_SOLVER_LBFGS, 0.9790, 0.056298275, 0.393115141},
        {0.01, 0, 1, 1, BN_SOLVER_LBFGS, 0.9870, 0.042349351, 0.432942287},
    };
    for (size_t r = 0; r < sizeof ref / sizeof ref[0]; r++) {
        bn_train_opts o;
        bn_train_opts_default(&o);
        o.C = ref[r].C;
        o.standardize = ref[r].std;
        o.balanced = ref[r].balanced;
        o.solver = ref[r].solver;
        o.tol = 1e-7;
        bn_model m = {0};
        bn_train_info info;
        int rc = bn_train(ref[r].imbalanced ? &sub : &tr, NULL, &o, &m, &info, &err);
        CHECK_MSG(rc == BN_OK, "%s", err.msg);
        double acc, ll;
        eval_valid(&g, &m, &acc, &ll);
        printf("googlenet C=%g std=%d balanced=%d %s: %d it, %.2f s, acc %.4f (sklearn %.4f), "
               "log loss %.9f (%.9f), f %.9f (%.9f)\n",
               ref[r].C, ref[r].std, ref[r].balanced, bn_solver_name(ref[r].solver),
               info.iterations, info.seconds, acc, ref[r].acc, ll, ref[r].ll, info.objective,
               ref[r].f);
        CHECK(info.converged);
        CHECK_NEAR(acc, ref[r].acc, 0.003);
        CHECK_NEAR(ll, ref[r].ll, 2e-5);
        CHECK_NEAR(info.objective / ref[r].f, 1.0, 1e-7);
        bn_model_free(&m);
    }

    /* Warm start from another C's optimum reaches the same optimum. */
    {
        bn_train_opts o;
        bn_train_opts_default(&o);
        o.C = 0.01;
        bn_model m = {0};
        bn_train_info info;
        CHECK(bn_train(&tr, NULL, &o, &m, &info, &err) == BN_OK);
        o.C = 1.0;
        o.tol = 1e-7;
        CHECK(bn_train(&tr, NULL, &o, &m, &info, &err) == BN_OK);
        CHECK_NEAR(info.objective / 4.233544183, 1.0, 1e-7);
        bn_model_free(&m);
    }

    /* Adam and SGD minimise the same objective: run long enough without
     * early stopping, they come near the optimum f = 3.741964976 (C = 1,
     * standardised). With validation rows they stop early, keep the best
     * epoch, and classify as well. One seed, one result. */
    {
        bn_train_opts o;
        bn_train_opts_default(&o);
        o.C = 1.0;
        o.standardize = 1;
        o.solver = BN_SOLVER_ADAM;
        o.epochs = 100;
        o.lr = 1e-3;
        o.seed = 7;
        bn_model m1 = {0}, m2 = {0}, m3 = {0}, m4 = {0};
        bn_train_info i1, i2, i3;
        double acc, ll;
        CHECK_MSG(bn_train(&tr, NULL, &o, &m1, &i1, &err) == BN_OK, "%s", err.msg);
        eval_valid(&g, &m1, &acc, &ll);
        printf("adam: %d epochs, f %.6f, acc %.4f, log loss %.6f\n", i1.iterations, i1.objective,
               acc, ll);
        CHECK_INT(i1.iterations, 100);
        CHECK(i1.objective < 3.741964976 * 1.10);
        CHECK(i1.objective >= 3.741964976 * (1 - 1e-9));
        CHECK_NEAR(acc, 0.987, 0.01);

        o.epochs = 50;
        CHECK(bn_train(&tr, &va, &o, &m2, &i2, &err) == BN_OK);
        CHECK(bn_train(&tr, &va, &o, &m3, &i3, &err) == BN_OK);
        CHECK(memcmp(m2.w, m3.w, 1025 * sizeof(double)) == 0);
        eval_valid(&g, &m2, &acc, &ll);
        printf("adam, early stopping: %d epochs (best %d), acc %.4f, log loss %.6f\n",
               i2.iterations, i2.best_epoch, acc, ll);
        CHECK(i2.converged && i2.best_epoch >= 1 && i2.iterations == i2.best_epoch + o.patience);
        CHECK_NEAR(acc, 0.987, 0.01);
        o.seed = 8;
        CHECK(bn_train(&tr, &va, &o, &m3, &i3, &err) == BN_OK);
        CHECK(memcmp(m2.w, m3.w, 1025 * sizeof(double)) != 0);

        o.solver = BN_SOLVER_SGD;
        o.lr = 0.1;
        o.epochs = 100;
        CHECK_MSG(bn_train(&tr, NULL, &o, &m4, &i1, &err) == BN_OK, "%s", err.msg);
        eval_valid(&g, &m4, &acc, &ll);
        printf("sgd: %d epochs, f %.6f, acc %.4f, log loss %.6f\n", i1.iterations, i1.objective,
               acc, ll);
        CHECK(i1.objective < 3.741964976 * 1.05);
        CHECK_NEAR(acc, 0.987, 0.01);
        bn_model_free(&m1), bn_model_free(&m2), bn_model_free(&m3), bn_model_free(&m4);
    }

    /* Large passes run on several threads over fixed chunks of rows: the
     * same weights whatever the thread count, and the objective agrees with
     * a plain loop. Three classes (cat; dogs by row parity) make
     * 2000 x 3 x 1024 values, above the threshold for chunks. */
    {
        int *y3 = malloc((size_t)g.nt * sizeof *y3);
        for (int i = 0; i < g.nt; i++)
            y3[i] = g.yt[i] == 0 ? 0 : 1 + (i % 2);
        bn_data d3 = data1(g.xt, y3, g.nt, 1024, 3);
        bn_train_opts o;
        bn_train_opts_default(&o);
        o.C = 0.01;
        o.standardize = 1;
        bn_model m1 = {0}, m2 = {0};
        bn_train_info i1, i2;
        bn_cpu_set_threads(1);
        CHECK_MSG(bn_train(&d3, NULL, &o, &m1, &i1, &err) == BN_OK, "%s", err.msg);
        bn_cpu_set_threads(2);
        CHECK(bn_train(&d3, NULL, &o, &m2, &i2, &err) == BN_OK);
        CHECK_INT(i1.iterations, i2.iterations);
        CHECK(memcmp(m1.w, m2.w, (3 * 1024 + 3) * sizeof(double)) == 0);
        /* f by a plain loop over the rows (standardised coordinates). */
        double f = 0;
        for (int j = 0; j < 3 * 1024; j++)
            f += 0.5 * m1.w[j] * m1.w[j];
        for (int i = 0; i < g.nt; i++) {
            double z[3], zmax = -1e300, sum = 0;
            for (int c = 0; c < 3; c++) {
                z[c] = m1.b[c];
                for (int j = 0; j < 1024; j++)
                    z[c] += m1.w[c * 1024 + j] *
                            ((g.xt[(size_t)i * 1024 + j] - m1.mean[j]) / m1.scale[j]);
                zmax = fmax(zmax, z[c]);
            }
            for (int c = 0; c < 3; c++)
                sum += exp(z[c] - zmax);
            f += o.C * (zmax + log(sum) - z[y3[i]]);
        }
        CHECK_NEAR(i1.objective / f, 1.0, 1e-12);
        CHECK_NEAR(bn_train_objective(&d3, &o, &m1, NULL, NULL) / f, 1.0, 1e-12);
        bn_model_free(&m1), bn_model_free(&m2);
        free(y3);
    }

    /* A learning rate far too large diverges: an error, not NaN weights. */
    {
        bn_train_opts o;
        bn_train_opts_default(&o);
        o.solver = BN_SOLVER_SGD;
        o.lr = 1e300;
        o.epochs = 3;
        bn_model m = {0};
        bn_train_info info;
        CHECK(bn_train(&tr, NULL, &o, &m, &info, &err) == BN_EINVAL);
        CHECK_MSG(strstr(err.msg, "diverged") != NULL, "%s", err.msg);
        bn_model_free(&m);
    }
    free(xs);
    test_blocks(&g);
    support_free_gnet(&g);
}

static void test_errors(void) {
    bn_error err = {0};
    float x[4] = {1, 2, 3, 4};
    int y1[4] = {1, 1, 1, 1}, y3[4] = {0, 1, 2, 2};
    bn_train_opts o;
    bn_train_opts_default(&o);
    bn_model m = {0};
    bn_train_info info;
    bn_data d = data1(x, y1, 4, 1, 2);
    CHECK(bn_train(&d, NULL, &o, &m, &info, &err) == BN_EINVAL);
    CHECK_MSG(strstr(err.msg, "class 1 of 2 has no training rows") != NULL, "%s", err.msg);
    d = data1(x, y3, 4, 1, 3);
    o.C = 0;
    CHECK(bn_train(&d, NULL, &o, &m, &info, &err) == BN_EINVAL);
    CHECK(strstr(err.msg, "C must be") != NULL);
    o.C = 1;
    o.solver = BN_SOLVER_NEWTON;
    CHECK(bn_train(&d, NULL, &o, &m, &info, &err) == BN_EINVAL);
    CHECK(strstr(err.msg, "two classes only") != NULL);
    d.block[0].n = 0;
    o.solver = BN_SOLVER_LBFGS;
    CHECK(bn_train(&d, NULL, &o, &m, &info, &err) == BN_EINVAL);
    bn_model_free(&m);
}

int main(void) {
    test_1d();
    test_multiclass();
    test_errors();
    test_googlenet();
    return check_done();
}
