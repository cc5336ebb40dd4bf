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
 *     each round one pass over the rows serves all of them: for a block of
 *     rows, the margins along every new direction (u = X d) are one GEMM and
 *     the gradients at every accepted point (X^T r) a second, while the
 *     block is in cache; blocks spread over bn_cpu_threads() threads of the
 *     pool (results independent of the thread count);
 *   - line searches on margins: the trial points of an iteration lie on one
 *     line, so their margins are z + alpha u with z (the current point's
 *     margins) kept in double: each trial costs O(rows), not a pass, and F
 *     and its slope come from double sums; the GEMMs run in float32, whose
 *     rounding enters only through alpha u and shrinks with the steps;
 *   - a check in double: a candidate that has converged is evaluated once in
 *     double at its result; only if that exact gradient misses tol does it go
 *     on with double evaluations. Reported objectives and gradients are the
 *     double ones, held to bn_train's test (raw rows: on the gradient in
 *     scikit-learn's own coordinates, see sweep.c);
 *   - row space: with at least twice as many dimensions as rows (VGG16's
 *     25,088 on a few thousand images) the problem is solved in the span of
 *     the rows: K = X X^T of the centred (standardised) rows once (n x n),
 *     its pivoted Cholesky factor P^T K P = L L^T, and the candidates train
 *     on Z = P L (n x rank columns, Z Z^T = K), where margins and ||w|| are
 *     those of w = X^T a with Z^T a = beta.
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
 * models[i] are initialised here, whatever they held (not freed: pass
 * fresh ones), and bn_model_free them after a success (a failure leaves
 * none to free); infos[i] as
 * bn_train's, seconds the sweep's wall time shared out evenly. stats may be
 * NULL. */
int bn_sweep_train(const bn_data *d, const bn_train_opts *o, const double *Cs, int ncand,
                   bn_model *models, bn_train_info *infos, bn_sweep_stats *stats, bn_error *err);

#endif
