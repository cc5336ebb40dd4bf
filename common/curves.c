/*
 * curves.c: ROC, precision-recall and calibration curves (see curves.h).
 *
 * ROC and precision-recall share sklearn's _binary_clf_curve: the rows
 * sorted by score, descending, and the cumulative true and false positives
 * at each distinct score (a threshold). Sorting is the only cost:
 * O(n log n) for 100,000 predictions is a few milliseconds.
 */
#include "curves.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void bn_curves_free(bn_curve *c) {
    free(c->x);
    memset(c, 0, sizeof *c);
}

static int curve_alloc(bn_curve *c, int n, bn_error *err) {
    c->n = 0;
    c->x = malloc(2 * (size_t)(n > 0 ? n : 1) * sizeof *c->x);
    if (!c->x)
        return bn_fail(err, BN_ENOMEM, "curves: out of memory for %d points", n);
    c->y = c->x + (n > 0 ? n : 1);
    return BN_OK;
}

typedef struct {
    double score;
    unsigned char pos;
} curve_row;

static int curve_row_desc(const void *a, const void *b) {
    double x = ((const curve_row *)a)->score, y = ((const curve_row *)b)->score;
    return (x < y) - (x > y);
}

/* Cumulative (tps, fps) at each distinct score, descending: sklearn's
 * _binary_clf_curve. *m thresholds; tps/fps malloc'ed in one block. */
static int curve_counts(const double *score, const unsigned char *positive, int n, double **tps,
                        double **fps, int *m, bn_error *err) {
    curve_row *r = malloc((size_t)n * sizeof *r);
    double *t = malloc(2 * (size_t)n * sizeof *t);
    if (!r || !t) {
        free(r);
        free(t);
        return bn_fail(err, BN_ENOMEM, "curves: out of memory for %d scores", n);
    }
    for (int i = 0; i < n; i++) {
        r[i].score = score[i];
        r[i].pos = positive[i] != 0;
    }
    qsort(r, (size_t)n, sizeof *r, curve_row_desc);
    double tp = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        tp += r[i].pos;
        if (i == n - 1 || r[i + 1].score != r[i].score) {
            t[k] = tp;
            t[n + k] = (double)(i + 1) - tp;
            k++;
        }
    }
    free(r);
    memmove(t + k, t + n, (size_t)k * sizeof *t);
    *tps = t;
    *fps = t + k;
    *m = k;
    return BN_OK;
}

int bn_curves_roc(const double *score, const unsigned char *positive, int n, bn_curve *out,
                  double *auc, bn_error *err) {
    memset(out, 0, sizeof *out);
    double *tps, *fps;
    int m, rc = curve_counts(score, positive, n, &tps, &fps, &m, err);
    if (rc)
        return rc;
    double P = tps[m - 1], N = fps[m - 1];
    if (P == 0 || N == 0) {
        free(tps);
        return bn_fail(err, BN_EINVAL, "ROC curve: only one class present (%g positive of %d)", P,
                       n);
    }
    if ((rc = curve_alloc(out, m + 1, err))) {
        free(tps);
        return rc;
    }
    /* drop_intermediate: keep the ends and every point where the second
     * difference of fps or tps is not zero (a corner). */
    out->x[0] = 0, out->y[0] = 0;
    int k = 1;
    for (int i = 0; i < m; i++) {
        int keep = i == 0 || i == m - 1 || m <= 2;
        if (!keep)
            keep = fps[i + 1] - 2 * fps[i] + fps[i - 1] != 0 ||
                   tps[i + 1] - 2 * tps[i] + tps[i - 1] != 0;
        if (keep) {
            out->x[k] = fps[i] / N;
            out->y[k] = tps[i] / P;
            k++;
        }
    }
    out->n = k;
    free(tps);
    if (auc)
        *auc = bn_curves_area(out);
    return BN_OK;
}

int bn_curves_pr(const double *score, const unsigned char *positive, int n, bn_curve *out,
                 double *ap, bn_error *err) {
    memset(out, 0, sizeof *out);
    double *tps, *fps;
    int m, rc = curve_counts(score, positive, n, &tps, &fps, &m, err);
    if (rc)
        return rc;
    double P = tps[m - 1];
    if (P == 0) {
        free(tps);
        return bn_fail(err, BN_EINVAL, "precision-recall curve: no positive row among %d", n);
    }
    if ((rc = curve_alloc(out, m + 1, err))) {
        free(tps);
        return rc;
    }
    /* Reversed: recall decreasing, then (0, 1). */
    for (int i = 0; i < m; i++) {
        int j = m - 1 - i;
        out->x[i] = tps[j] / P;
        out->y[i] = tps[j] / (tps[j] + fps[j]);
    }
    out->x[m] = 0, out->y[m] = 1;
    out->n = m + 1;
    free(tps);
    if (ap) {
        /* -sum(diff(recall) * precision[:-1]) */
        double s = 0;
        for (int i = 0; i < m; i++)
            s -= (out->x[i + 1] - out->x[i]) * out->y[i];
        *ap = s;
    }
    return BN_OK;
}

int bn_curves_calibration(const double *score, const unsigned char *positive, int n, int nbins,
                          bn_curve *out, int *count, bn_error *err) {
    memset(out, 0, sizeof *out);
    if (nbins < 1)
        return bn_fail(err, BN_EINVAL, "calibration curve: %d bins", nbins);
    double *sum = calloc(3 * (size_t)nbins, sizeof *sum);
    if (!sum)
        return bn_fail(err, BN_ENOMEM, "calibration curve: out of memory");
    double *pos = sum + nbins, *cnt = pos + nbins;
    double step = 1.0 / nbins;
    for (int i = 0; i < n; i++) {
        double s = score[i];
        if (!(s >= 0 && s <= 1)) {
            free(sum);
            return bn_fail(err, BN_EINVAL, "calibration curve: probability %g outside [0, 1]", s);
        }
        /* numpy.searchsorted(edges[1:-1], s), side left: bin b holds
         * (edge b, edge b+1], edge i = i * step as numpy.linspace makes it. */
        int b = 0;
        while (b < nbins - 1 && s > (b + 1) * step)
            b++;
        sum[b] += s;
        pos[b] += positive[i] != 0;
        cnt[b] += 1;
    }
    int rc = curve_alloc(out, nbins, err);
    if (rc == BN_OK) {
        for (int b = 0; b < nbins; b++) {
            if (count)
                count[b] = (int)cnt[b];
            if (cnt[b] > 0) {
                out->x[out->n] = sum[b] / cnt[b];
                out->y[out->n] = pos[b] / cnt[b];
                out->n++;
            }
        }
    }
    free(sum);
    return rc;
}

double bn_curves_area(const bn_curve *c) {
    double a = 0;
    for (int i = 1; i < c->n; i++)
        a += (c->x[i] - c->x[i - 1]) * (c->y[i] + c->y[i - 1]) * 0.5;
    return fabs(a);
}

void bn_curves_thin(bn_curve *c, double eps, int max_points) {
    if (c->n <= max_points || c->n <= 2)
        return;
    int k = 1;
    for (int i = 1; i < c->n - 1; i++)
        if (fabs(c->x[i] - c->x[k - 1]) > eps || fabs(c->y[i] - c->y[k - 1]) > eps) {
            c->x[k] = c->x[i];
            c->y[k] = c->y[i];
            k++;
        }
    c->x[k] = c->x[c->n - 1];
    c->y[k] = c->y[c->n - 1];
    c->n = k + 1;
}
