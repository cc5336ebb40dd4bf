/*
 * sweep.h: a grid of binary logistic-regression heads that differ only in C,
 * trained together on the same rows.
 *
 * Each candidate is exactly bn_train's lbfgs problem (train.h: scikit-learn's
 * objective 0.5 ||W||^2 + C sum_i sw_i loss_i, intercept unpenalised,
 * optional StandardScaler, the same tol on max |grad (f / C)|), and arrives at
 * the same optimum; what changes is how the work is shared:
 *
 *   - lockstep: every unfinished candidate runs its own L-BFGS (lbfgs.c), and
 *     each round one pass over the rows evaluates all of their trial points:
 *     the margins of a block of rows for every candidate are one GEMM, their
 *     gradients a second GEMM on the same block while it is in cache, blocks
 *     spread over bn_get_threads() threads;
 *   - float32 rounds, checked in double: the GEMMs run in float32 (twice the
 *     speed of double); a candidate that converges there is evaluated once in
 *     double at its result, and only if the exact gradient misses tol does it
 *     go on with double passes. The reported objective and gradient are the
 *     double ones, so the answer is held to the same test as bn_train's;
 *   - row space: with more dimensions than rows (VGG16's 25,088 on a few
 *     thousand images) the problem is solved in the span of the rows: K = X X^T
 *     of the centred (standardised) rows once (n x n), K = U L U^T, and the
 *     candidates train on Z = U L^(1/2) (n x rank columns, the principal
 *     components), where margins and ||w|| are those of w = X^T U L^(-1/2) beta.
 *     The optimum's w lies in that span (the penalty only shrinks the rest),
 *     so this is the same problem, not an approximation; the stopping test
 *     uses the Euclidean norm of the gradient, which bounds the max norm of
 *     the gradient in the original coordinates.
 *
 * The rows are always centred inside (the intercept absorbs the mean):
 * better conditioned and less rounding in float32, same objective.
 */
#ifndef BN_SWEEP_H
#define BN_SWEEP_H

#include "train.h"

/* Can bn_sweep_train train candidates with options o on d? (k == 2, lbfgs) */
int bn_sweep_supported(const bn_data *d, const bn_train_opts *o);

typedef struct {
    int rounds;        /* passes over the rows (float32 and double) */
    int double_rounds; /* of which in double */
    int row_space;     /* 1: solved in the row space (rank columns) */
    int rank;          /* columns the candidates trained on */
    double setup_seconds;
} bn_sweep_stats;

/* One model per C (Cs[ncand], each > 0) with the other options of o, on d.
 * models[i] are (re)initialised here (bn_model_free them); infos[i] as
 * bn_train's, seconds the sweep's wall time shared out evenly. stats may be
 * NULL. */
int bn_sweep_train(const bn_data *d, const bn_train_opts *o, const double *Cs, int ncand,
                   bn_model *models, bn_train_info *infos, bn_sweep_stats *stats, bn_error *err);

#endif
