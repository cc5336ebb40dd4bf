/*
 * train.h: the output layer and its training loop.
 *
 * The model is one dense layer over feature vectors: with k = 2 classes,
 * binary logistic regression (one output z, P(class 1) = sigmoid(z)); with
 * k > 2, a k-way softmax. It is trained on the objective of scikit-learn's
 * LogisticRegression(penalty='l2', solver='lbfgs'):
 *
 *   f(W, b) = 0.5 * ||W||^2 + C * sum_i sw_i * loss_i(W, b)
 *
 * loss_i the cross-entropy of row i, sw_i its class weight (1, or with
 * 'balanced' n / (k * n_{y_i}) counted on the training rows), the intercept b
 * not penalised. An L2 strength L (--l2) means C = 1/L:
 * f/C = sum_i sw_i * loss_i + (L/2) * ||W||^2. (A Keras l2(lambda) kernel
 * regulariser on the mean batch loss, mean_i loss_i + lambda * ||W||^2, is
 * L = 2 * n * lambda.)
 *
 * Standardisation (optional) is StandardScaler fitted on the training rows:
 * W applies to (x - mean) / scale, scale the population standard deviation,
 * 1 for constant features. It is applied implicitly (the rows are never
 * copied): the penalty is on W in standardised units, exactly as a
 * StandardScaler + LogisticRegression pipeline.
 *
 * Solvers:
 *   lbfgs  full batch L-BFGS (10 pairs, strong Wolfe line search) to the optimum
 *          of f; stops when max |grad (f / C)| <= tol, exactly scikit-learn's
 *          criterion and default (1e-4), or when f no longer decreases
 *          measurably (scipy's ftol = 64 eps on f / C), or after max_iter.
 *   newton full batch Newton with a Cholesky solve (LAPACK) of the (dim+1) x
 *          (dim+1) Hessian: binary problems with dim <= 4096 only; a few
 *          iterations to machine precision.
 *   sgd / adam  mini-batches of the same objective (each batch an unbiased
 *          estimate of f / (C * sum sw)), --epochs, --lr, --batch-size; with
 *          validation rows, early stopping when the validation log loss has
 *          not improved for `patience` epochs, keeping the best epoch.
 * All arithmetic on features is float32 x double accumulated in double, in a
 * fixed order: results are identical from run to run, and with --seed the
 * stochastic solvers are too. Full passes over many rows run on
 * bn_cpu_threads() threads (cpu.h), on fixed chunks of rows whose partial sums
 * are added in chunk order, so the thread count does not change any result.
 *
 * Tensors: rows are float32 (n, dim) row-major; W is (nout, dim), nout = 1
 * when k = 2 else k; probabilities are (n, k).
 */
#ifndef BN_TRAIN_H
#define BN_TRAIN_H

#include "error.h"
#include <stdint.h>

typedef enum { BN_SOLVER_LBFGS, BN_SOLVER_NEWTON, BN_SOLVER_SGD, BN_SOLVER_ADAM } bn_solver;

int bn_solver_parse(const char *s, bn_solver *out); /* "lbfgs"|"newton"|"sgd"|"adam" */
const char *bn_solver_name(bn_solver s);

typedef struct {
    bn_solver solver;
    double C;        /* inverse regularisation strength, > 0 */
    int balanced;    /* class_weight='balanced' */
    int standardize; /* fit StandardScaler on the training rows */
    int max_iter;    /* lbfgs/newton iterations (default 1000) */
    double tol;      /* lbfgs/newton: max |grad (f / C)| to stop (default 1e-4) */
    int epochs;      /* sgd/adam: at most this many passes (default 100) */
    int batch_size;  /* sgd/adam (default 32) */
    int patience;    /* sgd/adam: epochs without validation improvement (default 5) */
    double lr;       /* sgd/adam learning rate (default 0.001) */
    uint64_t seed;   /* shuffling */
} bn_train_opts;

void bn_train_opts_default(bn_train_opts *o);

/* splitmix64: a small, well-mixed generator whose whole stream follows from
 * the seed (*s, advanced). Shuffles use it: SGD's epochs here, the folds and
 * the holdout of a train job (trainjob.c). _below: uniform in [0, n) by
 * Lemire's multiply-shift. */
uint64_t bn_train_rng_next(uint64_t *s);
uint32_t bn_train_rng_below(uint64_t *s, uint32_t n);

/* Labelled rows, possibly in several separate blocks (cross-validation trains
 * on the folds before and after the held-out one; a refit on train plus
 * validation spans two matrices), so rows are never copied. */
#define BN_DATA_MAX_BLOCKS 4
typedef struct {
    const float *x; /* (n, dim) */
    const int *y;   /* (n) class indices in [0, k) */
    int n;
} bn_block;

typedef struct {
    int dim, k;
    int nblocks;
    bn_block block[BN_DATA_MAX_BLOCKS];
} bn_data;

int bn_data_rows(const bn_data *d);

/* A model in training coordinates (double). */
typedef struct {
    int dim, k, nout;
    double *w;     /* (nout, dim), on standardised features when mean != NULL */
    double *b;     /* (nout), stored right after w in the same allocation */
    double *mean;  /* (dim) or NULL */
    double *scale; /* (dim) or NULL */
} bn_model;

int bn_model_init(bn_model *m, int dim, int k, bn_error *err); /* zeros, no standardisation */
void bn_model_free(bn_model *m);

typedef struct {
    int iterations;   /* lbfgs/newton iterations, or sgd/adam epochs run */
    int converged;    /* lbfgs/newton: tol reached; sgd/adam: early stopping triggered */
    int best_epoch;   /* sgd/adam: epoch kept (1-based), 0 without validation */
    double objective; /* f at the result, on the training rows */
    double grad_max;  /* max |grad (f / C)| at the result, tol's scale */
    double seconds;
} bn_train_info;

/* Train on `train` (>= 1 row; at least two classes present). valid may be
 * NULL; sgd/adam use it for early stopping. On entry, a model whose w is
 * allocated with the right shape is a warm start for lbfgs/newton (the optimum
 * does not depend on it); otherwise the model is (re)initialised to zeros.
 * Fills model (standardisation included) and info. */
int bn_train(const bn_data *train, const bn_data *valid, const bn_train_opts *o, bn_model *model,
             bn_train_info *info, bn_error *err);

/* StandardScaler on the rows of d: mean (dim) and population standard
 * deviation (dim), 1 for constant features (scikit-learn's rule). */
void bn_train_fit_scaler(const bn_data *d, double *mean, double *scale);

/* f(W, b) of o's C and class weights on d, and optionally its gradient
 * (grad_w (nout, dim) and grad_b (nout); either may be NULL). For tests and
 * diagnostics; the model's own standardisation is used. */
double bn_train_objective(const bn_data *d, const bn_train_opts *o, const bn_model *m,
                          double *grad_w, double *grad_b);

/* The trained head as stored and applied: float32 weights on the raw
 * features, standardisation folded in (w / scale, b - (w / scale) . mean). */
typedef struct {
    int dim, k, nout;
    float *w;     /* (nout, dim) */
    float *b;     /* (nout) */
    float *mean;  /* (dim) or NULL: the standardisation, kept for the record */
    float *scale; /* (dim) or NULL */
} bn_head;

int bn_head_from_model(const bn_model *m, bn_head *h, bn_error *err);
/* An empty head of this shape (for loading a stored one). */
int bn_head_alloc(bn_head *h, int dim, int k, int standardized, bn_error *err);
void bn_head_free(bn_head *h);

/* x (n, dim) -> proba (n, k): logits in double from the float32 weights. */
int bn_head_predict(const bn_head *h, const float *x, int n, double *proba, bn_error *err);

#endif
