/*
 * test_curves: the report's curves and PCA against scikit-learn 1.2.1 (Debian
 * python3-sklearn) on recorded small cases. The reference values come from
 *
 *   import numpy as np
 *   from sklearn.metrics import roc_curve, precision_recall_curve, auc, \
 *       average_precision_score
 *   from sklearn.calibration import calibration_curve
 *   from sklearn.decomposition import PCA
 *   y = np.array([0,0,1,1,0,1,0,1,1,0,1,0])
 *   s = np.array([0.1,0.4,0.35,0.8,0.4,0.4,0.2,0.9,0.65,0.5,0.3,0.3])
 *   f, t, _ = roc_curve(y, s); auc(f, t)
 *   p, r, _ = precision_recall_curve(y, s); average_precision_score(y, s)
 *   calibration_curve(y, s, n_bins=5)
 *   # bin edges: values exactly on an edge belong to the lower bin
 *   calibration_curve([1,0,1,0,1,1], [0.2,0.4,0.6,0.0,1.0,0.2000001], n_bins=5)
 *   for n, d in [(30, 6), (5, 12)]:
 *       X = np.array([[np.sin(i*0.7+j*1.3)*(j+1) + np.cos(i*i*0.11+j)
 *                      for j in range(d)] for i in range(n)], dtype=np.float32)
 *       p = PCA(2).fit(X.astype(np.float64))
 *       p.explained_variance_ratio_, p.explained_variance_, p.components_,
 *       p.transform(X[:1].astype(np.float64))
 */
#include "check.h"
#include "curves.h"
#include "pca.h"

static void check_curve(const bn_curve *c, const double *x, const double *y, int n,
                        const char *what) {
    CHECK_MSG(c->n == n, "%s: %d points, sklearn %d", what, c->n, n);
    for (int i = 0; i < n && i < c->n; i++)
        CHECK_MSG(fabs(c->x[i] - x[i]) < 1e-12 && fabs(c->y[i] - y[i]) < 1e-12,
                  "%s point %d: (%.12g, %.12g), sklearn (%.12g, %.12g)", what, i, c->x[i], c->y[i],
                  x[i], y[i]);
}

static void check_pca(int n, int d, const double ratio[2], const double var[2], const double *comp0,
                      const double *comp1, const double proj[2]) {
    float *x = malloc((size_t)n * d * sizeof *x);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            x[i * d + j] = (float)(sin(i * 0.7 + j * 1.3) * (j + 1) + cos(i * i * 0.11 + j));
    bn_pca p;
    bn_error err = {0};
    CHECK(bn_pca_fit(x, n, d, 2, &p, &err) == BN_OK);
    for (int c = 0; c < 2; c++) {
        CHECK_NEAR(p.ratio[c], ratio[c], 1e-9);
        CHECK_NEAR(p.variance[c], var[c], 1e-7 * var[c]);
        /* components agree up to sign: |<ours, sklearn's>| = 1 */
        const double *ref = c ? comp1 : comp0;
        double dot = 0;
        for (int j = 0; j < d; j++)
            dot += p.components[c * d + j] * ref[j];
        CHECK_NEAR(fabs(dot), 1, 1e-8);
    }
    double z[2];
    bn_pca_project(&p, x, z);
    CHECK_NEAR(fabs(z[0]), fabs(proj[0]), 1e-5);
    CHECK_NEAR(fabs(z[1]), fabs(proj[1]), 1e-5);
    bn_pca_free(&p);
    free(x);
}

int main(void) {
    bn_error err = {0};
    const int y[12] = {0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0};
    const double s[12] = {0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.2, 0.9, 0.65, 0.5, 0.3, 0.3};
    unsigned char pos[12];
    for (int i = 0; i < 12; i++)
        pos[i] = (unsigned char)y[i];

    /* ROC with drop_intermediate (a tie at 0.4, collinear points dropped) */
    bn_curve c;
    double area;
    CHECK(bn_curves_roc(s, pos, 12, &c, &area, &err) == BN_OK);
    const double fpr[8] = {0, 0, 0, 1 / 6.0, 0.5, 0.5, 2 / 3.0, 1};
    const double tpr[8] = {0, 1 / 6.0, 0.5, 0.5, 2 / 3.0, 5 / 6.0, 1, 1};
    check_curve(&c, fpr, tpr, 8, "roc");
    CHECK_NEAR(area, 0.763888888888889, 1e-12);
    CHECK_NEAR(bn_curves_area(&c), 0.763888888888889, 1e-12);
    bn_curves_free(&c);

    /* precision-recall and average precision */
    CHECK(bn_curves_pr(s, pos, 12, &c, &area, &err) == BN_OK);
    const double prec[10] = {0.5, 6 / 11.0, 0.6, 0.625, 4 / 7.0, 0.75, 1, 1, 1, 1};
    const double rec[10] = {1, 1, 1, 5 / 6.0, 2 / 3.0, 0.5, 0.5, 1 / 3.0, 1 / 6.0, 0};
    check_curve(&c, rec, prec, 10, "pr");
    CHECK_NEAR(area, 0.799404761904762, 1e-12);
    bn_curves_free(&c);

    /* calibration, 5 uniform bins */
    int count[5];
    CHECK(bn_curves_calibration(s, pos, 12, 5, &c, count, &err) == BN_OK);
    check_curve(&c, (const double[]){0.15, 0.358333333333333, 0.5, 0.725, 0.9},
                (const double[]){0, 0.5, 0, 1, 1}, 5, "calibration");
    CHECK_INT(count[0], 2);
    CHECK_INT(count[1], 6);
    bn_curves_free(&c);
    const double s2[6] = {0.2, 0.4, 0.6, 0.0, 1.0, 0.2000001};
    const unsigned char y2[6] = {1, 0, 1, 0, 1, 1};
    CHECK(bn_curves_calibration(s2, y2, 6, 5, &c, count, &err) == BN_OK);
    check_curve(&c, (const double[]){0.1, 0.30000005, 0.6, 1.0}, (const double[]){0.5, 0.5, 1, 1},
                4, "calibration on bin edges");
    CHECK_INT(count[3], 0);
    bn_curves_free(&c);

    /* errors: one class only; a probability outside [0, 1] */
    const unsigned char none[3] = {0, 0, 0};
    CHECK(bn_curves_roc(s, none, 3, &c, NULL, &err) == BN_EINVAL);
    CHECK(strstr(err.msg, "one class") != NULL);
    CHECK(bn_curves_pr(s, none, 3, &c, NULL, &err) == BN_EINVAL);
    CHECK(bn_curves_calibration((const double[]){0.5, 1.5}, pos, 2, 10, &c, NULL, &err) ==
          BN_EINVAL);

    /* thinning: 100,001 points of y = x^2 down to steps of 1e-3; the ends
     * kept, the area within 1e-3 of 1/3 */
    {
        int n = 100001;
        bn_curve big = {n, malloc(2 * (size_t)n * sizeof(double)), NULL};
        big.y = big.x + n;
        for (int i = 0; i < n; i++)
            big.x[i] = (double)i / (n - 1), big.y[i] = big.x[i] * big.x[i];
        bn_curves_thin(&big, 1e-3, 2500);
        CHECK_MSG(big.n > 500 && big.n <= 2002, "thinned to %d points", big.n);
        CHECK(big.x[0] == 0 && big.x[big.n - 1] == 1 && big.y[big.n - 1] == 1);
        CHECK_NEAR(bn_curves_area(&big), 1 / 3.0, 1e-3);
        int before = big.n;
        bn_curves_thin(&big, 1e-3, 2500); /* under the cap: unchanged */
        CHECK_INT(big.n, before);
        bn_curves_free(&big);
    }

    /* PCA through the covariance (30 rows of 6) and the Gram matrix (5 of 12) */
    check_pca(30, 6, (const double[]){0.5687686267050297, 0.4155113048307402},
              (const double[]){30.076287936860133, 21.97209385037146},
              (const double[]){-0.1454462006, -0.1057667014, 0.3153050797, 0.4477750414,
                               -0.2029075808, -0.7915601937},
              (const double[]){-0.041474159, -0.357516588, -0.3065939512, 0.4030725882,
                               0.7825902579, -0.0393307704},
              (const double[]){-1.393057992678674, -6.321657033108631});
    check_pca(5, 12, (const double[]){0.8668579266014557, 0.13300661116207685},
              (const double[]){258.31331439909303, 39.63438241946599},
              (const double[]){-0.0188723493, -0.1312525861, -0.1139818874, 0.1390394544,
                               0.283930176, 0.0021797434, -0.3726604455, -0.2336234942,
                               0.3148002358, 0.4586222641, -0.1130069867, -0.5948207823},
              (const double[]){0.0958269276, 0.0711438353, -0.1523996117, -0.2336500401,
                               0.0750450241, 0.3697896764, 0.1188478624, -0.4021012362,
                               -0.3712964349, 0.2880219958, 0.6072534167, -0.0133029354},
              (const double[]){-18.953372510763074, -6.760529663630448});
    bn_pca p;
    CHECK(bn_pca_fit((const float[]){1, 2}, 1, 2, 2, &p, &err) == BN_EINVAL);
    return check_done();
}
