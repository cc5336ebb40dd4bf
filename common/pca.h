/*
 * pca.h: principal component analysis of feature vectors, for the report's
 * embedding map: the top components of the centred rows by a symmetric
 * eigensolver (LAPACK dsyevr), as sklearn.decomposition.PCA finds them (up
 * to each component's sign, chosen here so that its largest loading is
 * positive).
 *
 * Of the covariance (dim x dim) when dim <= rows, else of the Gram matrix of
 * the rows (rows x rows), whose eigenvectors give the same components: the
 * cost is the smaller of the two cubes. Callers cap the rows they fit on
 * (the report samples at most 2,000).
 */
#ifndef BN_PCA_H
#define BN_PCA_H

#include "error.h"

#define BN_PCA_MAX_COMPONENTS 8

typedef struct {
    int dim, ncomp;
    double *mean;                           /* (dim) */
    double *components;                     /* (ncomp, dim), unit rows, strongest first */
    double variance[BN_PCA_MAX_COMPONENTS]; /* explained variance (n - 1 denominator) */
    double ratio[BN_PCA_MAX_COMPONENTS];    /* explained_variance_ratio_ */
} bn_pca;

/* Fit on x (n, dim) row-major, n >= 2, 1 <= ncomp <= min(n - 1, dim, BN_PCA_MAX_COMPONENTS). */
int bn_pca_fit(const float *x, int n, int dim, int ncomp, bn_pca *out, bn_error *err);

/* Coordinates of one row (dim) on the components: out (ncomp). */
void bn_pca_project(const bn_pca *p, const float *row, double *out);

void bn_pca_free(bn_pca *p);

#endif
