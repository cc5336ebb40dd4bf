/*
 * curves.h: the curves a report draws, computed from predicted probabilities
 * with scikit-learn's definitions (1.2), so that a plot can be checked
 * against sklearn point for point.
 *
 *   bn_curves_roc          sklearn.metrics.roc_curve(y, score) with its default
 *                         drop_intermediate=True (collinear points removed,
 *                         which leaves the area unchanged), (0, 0) first;
 *                         area: sklearn.metrics.auc (trapezoids)
 *   bn_curves_pr           sklearn.metrics.precision_recall_curve(y, score):
 *                         recall decreasing, the point (recall 0, precision 1)
 *                         last; average precision is average_precision_score,
 *                         sum_n (R_n - R_{n-1}) P_n (no interpolation)
 *   bn_curves_calibration  sklearn.calibration.calibration_curve(y, score,
 *                         n_bins, strategy='uniform'): bins (i/n, (i+1)/n],
 *                         the first closed, empty bins left out
 *   bn_curves_thin         fewer points for drawing, each dropped point within
 *                         a given distance of a kept one
 *
 * Inputs: score (n) of one class (binary: the second class; one-vs-rest for
 * more) and positive (n): 1 where that class is the true label.
 */
#ifndef BN_CURVES_H
#define BN_CURVES_H

#include "error.h"

/* A curve: n points (x[i], y[i]); both arrays in one allocation. */
typedef struct {
    int n;
    double *x, *y;
} bn_curve;

void bn_curves_free(bn_curve *c);

/* ROC: x = false positive rate, y = true positive rate. *auc (may be NULL)
 * gets the trapezoidal area. BN_EINVAL if all rows are positive or none. */
int bn_curves_roc(const double *score, const unsigned char *positive, int n, bn_curve *out,
                  double *auc, bn_error *err);

/* Precision-recall: x = recall, y = precision. *ap (may be NULL) gets the
 * average precision. BN_EINVAL if no row is positive. */
int bn_curves_pr(const double *score, const unsigned char *positive, int n, bn_curve *out,
                 double *ap, bn_error *err);

/* Reliability diagram with nbins uniform bins: x = mean predicted
 * probability, y = fraction of positives, count (may be NULL; nbins ints)
 * gets the rows per bin (empty bins included there). */
int bn_curves_calibration(const double *score, const unsigned char *positive, int n, int nbins,
                          bn_curve *out, int *count, bn_error *err);

/* Area under the polyline by trapezoids (x monotone, either direction). */
double bn_curves_area(const bn_curve *c);

/* Keep the first and last points and every point farther than eps (in the
 * curve's units, max of |dx| and |dy|) from the previous kept one; in place.
 * A curve with at most max_points points is left as it is. */
void bn_curves_thin(bn_curve *c, double eps, int max_points);

#endif
