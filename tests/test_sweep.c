/*
 * test_sweep: grids of C trained together (sweep.h) against scikit-learn and
 * against bn_train, on the real GoogLeNet embeddings of ../shared.
 *
 * 1. Ten values of C on train (2,000 x 1,024), raw and standardised: every
 *    candidate's objective within 1e-6 relative of scikit-learn's optimum
 *    and the same validation accuracy (1,000 rows), at the default tol; the
 *    exact gradient (bn_train_objective, double) meets scikit-learn's test.
 * 2. The row space (dims >= 2 x rows: 400 and 300 training rows of 1,024
 *    dims): the same optimum as bn_train run to tol 1e-8 on the same rows,
 *    and the same predictions on the 1,000 validation rows; raw, and
 *    standardised with balanced class weights on an imbalanced subset.
 * 3. Rows in two blocks (as cross-validation folds): the optimum and the
 *    predictions of bn_train on the same rows.
 * 4. The thread count (1, 2, 3) does not change a bit of the result, on the
 *    rows and in the row space; rows all equal: w = 0, b = log(n1 / n0).
 * 5. Bad input: three classes, C <= 0, a single class, another solver.
 *
 * Reference values: scikit-learn 1.2.1 (Debian bookworm python3-sklearn),
 * /usr/bin/python3:
 *
 *   import numpy as np, csv
 *   from sklearn.linear_model import LogisticRegression
 *   from sklearn.preprocessing import StandardScaler
 *   d = '../shared/features/googlenet/catsdogs/'
 *   X = np.load(d + 'embeddings.npy').astype(np.float64)
 *   rows = list(csv.DictReader(open(d + 'index.tsv'), delimiter='\t'))
 *   split = np.array([r['split'] for r in rows])
 *   y = np.array([r['label'] == 'dog' for r in rows], int)
 *   tr, va = split == 'train', split == 'validation'
 *   for std in (False, True):
 *       Xt, Xv = X[tr], X[va]
 *       if std:
 *           sc = StandardScaler().fit(Xt); Xt, Xv = sc.transform(Xt), sc.transform(Xv)
 *       for C in [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1, 3]:
 *           m = LogisticRegression(C=C, solver='lbfgs', tol=1e-10,
 *                                  max_iter=100000).fit(Xt, y[tr])
 *           z = Xt @ m.coef_.ravel() + m.intercept_[0]
 *           f = 0.5 * np.sum(m.coef_ ** 2) + C * np.sum(np.logaddexp(0, z) - y[tr] * z)
 *           print('{%g, %d, %.10g, %.4f},' % (C, std, f, (m.predict(Xv) == y[va]).mean()))
 */
#include "check.h"
#include "cpu.h"
#include "metrics.h"
#include "support.h"
#include "sweep.h"

static bn_data data1(const float *x, const int *y, int n, int dim, int k) {
    bn_data d = {.dim = dim, .k = k, .nblocks = 1};
    d.block[0] = (bn_block){x, y, n};
    return d;
}

/* Predicted classes of x (n rows) by model m. */
static void predict(const bn_model *m, const float *x, int n, int *out) {
    bn_error err;
    bn_head h;
    double *p = malloc((size_t)n * 2 * sizeof *p);
    CHECK(bn_head_from_model(m, &h, &err) == BN_OK);
    CHECK(bn_head_predict(&h, x, n, p, &err) == BN_OK);
    for (int i = 0; i < n; i++)
        out[i] = p[2 * i + 1] > p[2 * i];
    bn_head_free(&h);
    free(p);
}

/* The head bn_train fits on d with o at C, tolerance 1e-8 (its options in
 * *oc, its objective in *ref_f), against m: on how many of the validation
 * rows the two predict the same class. p1, p2: scratch of g->nv. */
static int same_as_train(const support_gnet *g, const bn_data *d, const bn_train_opts *o, double C,
                         const bn_model *m, int *p1, int *p2, bn_train_opts *oc, double *ref_f) {
    *oc = *o;
    oc->C = C;
    oc->tol = 1e-8;
    bn_model ref = {0};
    bn_train_info ri = {0};
    bn_error err;
    CHECK(bn_train(d, NULL, oc, &ref, &ri, &err) == BN_OK);
    predict(m, g->xv, g->nv, p1);
    predict(&ref, g->xv, g->nv, p2);
    int same = 0;
    for (int i = 0; i < g->nv; i++)
        same += p1[i] == p2[i];
    *ref_f = ri.objective;
    bn_model_free(&ref);
    return same;
}

/* max |d (f / C) / d w_j| and |d (f / C) / d b| at m, in double (train.c's own pass). */
static double grad_max(const bn_data *d, const bn_train_opts *o, const bn_model *m) {
    double *gw = malloc((size_t)d->dim * sizeof *gw), gb, g;
    bn_train_objective(d, o, m, gw, &gb);
    g = fabs(gb) / o->C;
    for (int j = 0; j < d->dim; j++)
        g = fmax(g, fabs(gw[j]) / o->C);
    free(gw);
    return g;
}

static void test_grid(const support_gnet *g) {
    static const double Cs[10] = {1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1, 3};
    static const struct {
        double f, acc;
    } ref[2][10] = {
        {{0.05004846433, 0.9780},
         {0.09576939637, 0.9840},
         {0.1908621586, 0.9880},
         {0.3557390056, 0.9890},
         {0.6842516324, 0.9880},
         {1.17025625, 0.9870},
         {1.945271398, 0.9870},
         {2.89804755, 0.9870},
         {4.233544229, 0.9850},
         {5.733557766, 0.9850}},
        {{0.05690356232, 0.9860},
         {0.1088271276, 0.9880},
         {0.2123382482, 0.9910},
         {0.3813063156, 0.9910},
         {0.6946174487, 0.9910},
         {1.132850744, 0.9870},
         {1.807923279, 0.9870},
         {2.620189421, 0.9870},
         {3.741964992, 0.9870},
         {4.988167557, 0.9870}},
    };
    bn_data tr = data1(g->xt, g->yt, g->nt, 1024, 2);
    int *pred = malloc((size_t)g->nv * sizeof *pred);
    for (int std = 0; std < 2; std++) {
        bn_train_opts o;
        bn_train_opts_default(&o);
        o.standardize = std;
        bn_model m[10];
        bn_train_info info[10];
        bn_sweep_stats st;
        bn_error err;
        int rc = bn_sweep_train(&tr, &o, Cs, 10, m, info, &st, &err);
        CHECK_MSG(rc == BN_OK, "%s", err.msg);
        if (rc)
            continue;
        printf("grid std=%d: %d passes (%d with double), %.3f s\n", std, st.rounds,
               st.double_rounds, info[0].seconds * 10);
        CHECK(!st.row_space);
        CHECK_INT(st.rank, 1024);
        for (int c = 0; c < 10; c++) {
            predict(&m[c], g->xv, g->nv, pred);
            int right = 0;
            for (int i = 0; i < g->nv; i++)
                right += pred[i] == g->yv[i];
            double acc = (double)right / g->nv;
            bn_train_opts oc = o;
            oc.C = Cs[c];
            double gm = grad_max(&tr, &oc, &m[c]);
            printf("  C=%-6g %3d it  f %.10g (sklearn %.10g, rel %.1e)  acc %.4f (%.4f)  "
                   "max|grad| %.2e\n",
                   Cs[c], info[c].iterations, info[c].objective, ref[std][c].f,
                   info[c].objective / ref[std][c].f - 1, acc, ref[std][c].acc, gm);
            CHECK(info[c].converged);
            CHECK_NEAR(info[c].objective / ref[std][c].f, 1.0, 1e-6);
            CHECK_NEAR(acc, ref[std][c].acc, 1e-9);
            /* the objective the model really has, recomputed by train.c */
            CHECK_NEAR(bn_train_objective(&tr, &oc, &m[c], NULL, NULL) / info[c].objective, 1.0,
                       1e-9);
            CHECK_MSG(gm <= o.tol, "C=%g std=%d: max |grad| %g", Cs[c], std, gm);
            bn_model_free(&m[c]);
        }
    }
    free(pred);
}

/* n training rows: the first n/2 cats and n/2 dogs of train (dogs fewer when
 * imbalanced: n/2 cats, n/4 dogs). */
static int subset(const support_gnet *g, int n, int imbalanced, float *x, int *y) {
    int cats = 0, dogs = 0, k = 0, want_dogs = imbalanced ? n / 4 : n / 2;
    for (int i = 0; i < g->nt && k < n / 2 + want_dogs; i++) {
        int dog = g->yt[i];
        if ((dog && dogs >= want_dogs) || (!dog && cats >= n / 2))
            continue;
        dogs += dog;
        cats += !dog;
        memcpy(x + (size_t)k * 1024, g->xt + (size_t)i * 1024, 4096);
        y[k++] = dog;
    }
    return k;
}

static void test_row_space(const support_gnet *g) {
    float *x = malloc((size_t)400 * 1024 * 4);
    int y[400], *p1 = malloc((size_t)g->nv * sizeof *p1), *p2 = malloc((size_t)g->nv * sizeof *p2);
    for (int variant = 0; variant < 2; variant++) {
        int n = subset(g, 400, variant, x, y);
        bn_data d = data1(x, y, n, 1024, 2);
        bn_train_opts o;
        bn_train_opts_default(&o);
        o.standardize = variant;
        o.balanced = variant;
        static const double Cs[4] = {0.001, 0.01, 0.1, 1};
        bn_model m[4];
        bn_train_info info[4];
        bn_sweep_stats st;
        bn_error err;
        int rc = bn_sweep_train(&d, &o, Cs, 4, m, info, &st, &err);
        CHECK_MSG(rc == BN_OK, "%s", err.msg);
        if (rc)
            continue;
        printf("row space, %d rows, std=%d balanced=%d: rank %d, %d passes, %.3f s\n", n, variant,
               variant, st.rank, st.rounds, info[0].seconds * 4);
        CHECK(st.row_space);
        CHECK(st.rank <= n - 1 && st.rank > n / 2);
        for (int c = 0; c < 4; c++) {
            bn_train_opts oc;
            double rf;
            int same = same_as_train(g, &d, &o, Cs[c], &m[c], p1, p2, &oc, &rf);
            double gm = grad_max(&d, &oc, &m[c]);
            printf("  C=%-5g %3d it  f %.10g (bn_train %.10g, rel %.1e)  same predictions "
                   "%d/%d  max|grad| %.2e\n",
                   Cs[c], info[c].iterations, info[c].objective, rf, info[c].objective / rf - 1,
                   same, g->nv, gm);
            CHECK(info[c].converged);
            CHECK_NEAR(info[c].objective / rf, 1.0, 1e-6);
            CHECK_NEAR(bn_train_objective(&d, &oc, &m[c], NULL, NULL) / info[c].objective, 1.0,
                       1e-9);
            CHECK_INT(same, g->nv);
            CHECK_MSG(gm <= o.tol, "C=%g: max |grad| %g", Cs[c], gm);
            bn_model_free(&m[c]);
        }
    }
    free(x), free(p1), free(p2);
}

/* Rows in two blocks, as cross-validation passes them (the folds before and
 * after the held-out one): chunks of rows then cross a block's end. */
static void test_blocks(const support_gnet *g) {
    /* 1,500 rows: 0-699 and 1,200-1,999 of train (both classes in each) */
    bn_data d = {.dim = 1024, .k = 2, .nblocks = 2};
    d.block[0] = (bn_block){g->xt, g->yt, 700};
    d.block[1] = (bn_block){g->xt + (size_t)1200 * 1024, g->yt + 1200, 800};
    bn_train_opts o;
    bn_train_opts_default(&o);
    o.standardize = 1;
    static const double Cs[2] = {0.01, 1};
    bn_model m[2];
    bn_train_info info[2];
    bn_error err;
    int rc = bn_sweep_train(&d, &o, Cs, 2, m, info, NULL, &err);
    CHECK_MSG(rc == BN_OK, "%s", err.msg);
    if (rc)
        return;
    int *p1 = malloc((size_t)g->nv * sizeof *p1), *p2 = malloc((size_t)g->nv * sizeof *p2);
    for (int c = 0; c < 2; c++) {
        bn_train_opts oc;
        double rf;
        int same = same_as_train(g, &d, &o, Cs[c], &m[c], p1, p2, &oc, &rf);
        printf("two blocks C=%g: f %.10g (bn_train %.10g), same predictions %d/%d\n", Cs[c],
               info[c].objective, rf, same, g->nv);
        CHECK_NEAR(info[c].objective / rf, 1.0, 1e-6);
        CHECK_INT(same, g->nv);
        CHECK(grad_max(&d, &oc, &m[c]) <= o.tol);
        bn_model_free(&m[c]);
    }
    free(p1), free(p2);
}

/* The result does not depend on the thread count, bit for bit: chunks of
 * rows and candidates are handed to whichever pool thread is free, and each
 * writes only its own sums. Six candidates use both product kernels (a tile
 * of four, then one by one); the row space too (400 rows: rank 399, not a
 * multiple of the 16 columns of a vector). */
static void test_threads(const support_gnet *g) {
    static const double Cs[6] = {0.001, 0.003, 0.01, 0.1, 1, 3};
    float *x = malloc((size_t)400 * 1024 * sizeof *x);
    int y[400], n = subset(g, 400, 0, x, y);
    for (int rs = 0; rs < 2; rs++) {
        bn_data tr = rs ? data1(x, y, n, 1024, 2) : data1(g->xt, g->yt, g->nt, 1024, 2);
        bn_train_opts o;
        bn_train_opts_default(&o);
        o.standardize = rs;
        bn_model m[3][6];
        bn_train_info in[3][6];
        bn_sweep_stats st;
        bn_error err;
        int threads = bn_cpu_threads(), ok = 1;
        for (int t = 0; t < 3; t++) {
            bn_cpu_set_threads(t + 1);
            ok &= bn_sweep_train(&tr, &o, Cs, 6, m[t], in[t], &st, &err) == BN_OK;
        }
        bn_cpu_set_threads(threads);
        CHECK_MSG(ok, "%s", err.msg);
        if (!ok)
            continue;
        CHECK_INT(st.row_space, rs);
        for (int c = 0; c < 6; c++) {
            for (int t = 1; t < 3; t++) {
                CHECK_MSG(memcmp(m[0][c].w, m[t][c].w, 1024 * sizeof *m[0][c].w) == 0,
                          "row space %d, C=%g, %d threads", rs, Cs[c], t + 1);
                CHECK(m[0][c].b[0] == m[t][c].b[0]);
                CHECK(in[0][c].objective == in[t][c].objective);
                CHECK_INT(in[0][c].iterations, in[t][c].iterations);
            }
            CHECK(in[0][c].converged);
            for (int t = 0; t < 3; t++)
                bn_model_free(&m[t][c]);
        }
    }
    free(x);
}

/* Rows that are all equal (the row space: 1,024 dims, 12 rows): centred,
 * they are 0, nothing but the intercept can be learned. The optimum is w =
 * 0 and b = log(n1 / n0) (the penalty only shrinks w), for every C. */
static void test_flat(const support_gnet *g) {
    float *x = malloc((size_t)12 * 1024 * sizeof *x);
    int y[12] = {1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0}; /* 3 of 12 */
    for (int i = 0; i < 12; i++)
        memcpy(x + (size_t)i * 1024, g->xt, 1024 * sizeof *x);
    bn_data d = data1(x, y, 12, 1024, 2);
    bn_train_opts o;
    bn_train_opts_default(&o);
    static const double Cs[2] = {0.01, 10};
    bn_model m[2];
    bn_train_info in[2];
    bn_sweep_stats st;
    bn_error err;
    int rc = bn_sweep_train(&d, &o, Cs, 2, m, in, &st, &err);
    CHECK_MSG(rc == BN_OK, "%s", err.msg);
    if (rc == BN_OK) {
        CHECK(st.row_space);
        for (int c = 0; c < 2; c++) {
            double wmax = 0;
            for (int j = 0; j < 1024; j++)
                wmax = fmax(wmax, fabs(m[c].w[j]));
            CHECK(wmax == 0);
            CHECK_NEAR(m[c].b[0], log(3.0 / 9.0), 1e-4);
            CHECK(in[c].converged);
            bn_model_free(&m[c]);
        }
    }
    free(x);
}

static void test_errors(void) {
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    int y3[4] = {0, 1, 2, 0}, y1[4] = {1, 1, 1, 1};
    bn_train_opts o;
    bn_train_opts_default(&o);
    bn_model m[2];
    bn_train_info info[2];
    bn_error err;
    double C[2] = {1, 0};
    bn_data d3 = data1(x, y3, 4, 2, 3), d1 = data1(x, y1, 4, 2, 2);
    CHECK(!bn_sweep_supported(&d3, &o));
    CHECK(bn_sweep_train(&d3, &o, C, 1, m, info, NULL, &err) == BN_EINVAL);
    CHECK(bn_sweep_train(&d1, &o, C, 2, m, info, NULL, &err) == BN_EINVAL);
    CHECK(strstr(err.msg, "C must be a positive number") != NULL);
    CHECK(bn_sweep_train(&d1, &o, C, 1, m, info, NULL, &err) == BN_EINVAL);
    CHECK(strstr(err.msg, "has no training rows") != NULL);
    o.solver = BN_SOLVER_NEWTON;
    bn_data d2 = data1(x, y3, 4, 2, 2);
    CHECK(bn_sweep_train(&d2, &o, C, 1, m, info, NULL, &err) == BN_EINVAL);
}

int main(void) {
    support_gnet g;
    if (support_load_gnet(&g) != 0) {
        CHECK_MSG(0, "cannot read the GoogLeNet embeddings under $BN_SHARED");
        return check_done();
    }
    test_grid(&g);
    test_row_space(&g);
    test_blocks(&g);
    test_threads(&g);
    test_flat(&g);
    test_errors();
    support_free_gnet(&g);
    return check_done();
}
