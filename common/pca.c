/*
 * pca.c: the top principal components of a few thousand rows (see pca.h).
 *
 * The centred rows are never stored whole: the cross-product matrix is
 * accumulated in double from blocks of centred values (rows of dim values
 * for the covariance, or columns of n values for the Gram matrix) with
 * dsyrk, so 2,000 rows of 25,088 features take a 32 MB Gram matrix and an
 * 8 MB block, not a 400 MB double copy.
 */
#include "pca.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PCA_BLOCK 256

void bn_pca_free(bn_pca *p) {
    free(p->mean);
    free(p->components);
    memset(p, 0, sizeof *p);
}

void bn_pca_project(const bn_pca *p, const float *row, double *out) {
    for (int c = 0; c < p->ncomp; c++) {
        const double *v = p->components + (size_t)c * p->dim;
        double s = 0;
        for (int j = 0; j < p->dim; j++)
            s += ((double)row[j] - p->mean[j]) * v[j];
        out[c] = s;
    }
}

int bn_pca_fit(const float *x, int n, int dim, int ncomp, bn_pca *out, bn_error *err) {
    memset(out, 0, sizeof *out);
    if (n < 2 || dim < 1 || ncomp < 1 || ncomp > BN_PCA_MAX_COMPONENTS || ncomp > n - 1 ||
        ncomp > dim)
        return bn_fail(err, BN_EINVAL, "PCA: %d components of %d rows of dim %d", ncomp, n, dim);
    int gram = dim > n; /* eigen-decompose the smaller matrix */
    int m = gram ? n : dim;
    out->dim = dim;
    out->ncomp = ncomp;
    out->mean = calloc((size_t)dim, sizeof *out->mean);
    out->components = calloc((size_t)ncomp * dim, sizeof *out->components);
    double *a = calloc((size_t)m * m, sizeof *a);
    double *blk = malloc((size_t)PCA_BLOCK * (gram ? n : dim) * sizeof *blk);
    double *w = malloc((size_t)m * sizeof *w);
    double *z = malloc((size_t)m * ncomp * sizeof *z);
    lapack_int *support = malloc(2 * (size_t)m * sizeof *support);
    int rc = BN_OK;
    if (!out->mean || !out->components || !a || !blk || !w || !z || !support) {
        rc = bn_fail(err, BN_ENOMEM, "PCA: out of memory for %d x %d", m, m);
        goto done;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dim; j++)
            out->mean[j] += x[(size_t)i * dim + j];
    for (int j = 0; j < dim; j++)
        out->mean[j] /= n;
    if (!gram) {
        /* covariance * (n - 1) = sum over row blocks of B^T B, B (rows, dim) */
        for (int i0 = 0; i0 < n; i0 += PCA_BLOCK) {
            int rows = n - i0 < PCA_BLOCK ? n - i0 : PCA_BLOCK;
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < dim; j++)
                    blk[(size_t)i * dim + j] = x[(size_t)(i0 + i) * dim + j] - out->mean[j];
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, rows, 1.0, blk, dim, 1.0, a,
                        dim);
        }
    } else {
        /* Gram = sum over column blocks of B B^T, B (n, cols) */
        for (int j0 = 0; j0 < dim; j0 += PCA_BLOCK) {
            int cols = dim - j0 < PCA_BLOCK ? dim - j0 : PCA_BLOCK;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < cols; j++)
                    blk[(size_t)i * cols + j] = x[(size_t)i * dim + j0 + j] - out->mean[j0 + j];
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, cols, 1.0, blk, cols, 1.0, a,
                        n);
        }
    }
    double total = 0; /* trace: the sum of squared centred values, either way */
    for (int i = 0; i < m; i++)
        total += a[(size_t)i * m + i];
    lapack_int found = 0;
    lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', m, a, m, 0, 0, m - ncomp + 1,
                                     m, 0.0, &found, w, z, ncomp, support);
    if (info != 0 || found != ncomp) {
        rc = bn_fail(err, BN_EINVAL, "PCA: the eigensolver failed (LAPACK info %d)", (int)info);
        goto done;
    }
    /* dsyevr returns eigenvalues ascending: component c is column ncomp-1-c. */
    for (int c = 0; c < ncomp; c++) {
        int col = ncomp - 1 - c;
        double lambda = w[col] > 0 ? w[col] : 0;
        double *v = out->components + (size_t)c * dim;
        if (!gram) {
            for (int j = 0; j < dim; j++)
                v[j] = z[(size_t)j * ncomp + col];
        } else {
            /* v = Xc^T u / |Xc^T u|: the covariance eigenvector of the same value */
            for (int i = 0; i < n; i++) {
                double u = z[(size_t)i * ncomp + col];
                for (int j = 0; j < dim; j++)
                    v[j] += u * (x[(size_t)i * dim + j] - out->mean[j]);
            }
            double norm = 0;
            for (int j = 0; j < dim; j++)
                norm += v[j] * v[j];
            norm = sqrt(norm);
            for (int j = 0; j < dim; j++)
                v[j] = norm > 0 ? v[j] / norm : 0;
        }
        /* sign: the largest loading positive, so that runs are comparable */
        int big = 0;
        for (int j = 1; j < dim; j++)
            if (fabs(v[j]) > fabs(v[big]))
                big = j;
        if (v[big] < 0)
            for (int j = 0; j < dim; j++)
                v[j] = -v[j];
        out->variance[c] = lambda / (n - 1);
        out->ratio[c] = total > 0 ? lambda / total : 0;
    }
done:
    free(a);
    free(blk);
    free(w);
    free(z);
    free(support);
    if (rc)
        bn_pca_free(out);
    return rc;
}
