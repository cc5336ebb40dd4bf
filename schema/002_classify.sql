-- bottleneck schema, version 2: classify runs, their metrics, trained heads and
-- predictions.
--
-- Public interface: the tables below and the `run_predictions` view at the end
-- of this file. Their columns are stable; later migrations may add columns but
-- keep these. Users' own SQL may read everything here, e.g. the mistakes of a run:
--
--   SELECT path, label, predicted, probability FROM run_predictions
--   WHERE run = 7 AND NOT correct ORDER BY probability DESC;
--
-- The model. A head is one dense layer over a feature set's vectors, trained
-- with the objective of scikit-learn's LogisticRegression (lbfgs, L2):
--
--   minimise  0.5 * ||W||^2 + C * sum_i sw_i * loss_i
--
-- where loss_i is the cross-entropy of training row i, sw_i its class weight
-- (1, or n / (k * n_class) for 'balanced'), W the weights (the intercept is not
-- penalised). --l2 L is the same as C = 1/L. With two classes the head is
-- binary logistic regression (one output, the probability of the second class
-- in sorted order, as scikit-learn's coef_ of shape (1, dim)); with k > 2
-- classes it is a k-way softmax. Standardisation, when asked, is fitted on the
-- training rows and folded into the stored weights (see heads).

-- A sweep is one `bottleneck-classify train` invocation: one or more candidate
-- runs (a grid of hyperparameters), the choice among them, and optionally a
-- final run refitted with the chosen hyperparameters.
CREATE TABLE sweeps (
    id         INTEGER PRIMARY KEY,
    featureset INTEGER NOT NULL REFERENCES featuresets(id) ON DELETE CASCADE,
    select_by  TEXT NOT NULL,           -- metric that chose: 'accuracy', 'log_loss', ...
    select_on  TEXT NOT NULL,           -- where it was measured: a split name, or 'cv'
    folds      INTEGER,                 -- K of K-fold cross-validation, NULL if none
    candidates INTEGER NOT NULL,        -- number of candidate runs
    chosen     INTEGER REFERENCES runs(id) ON DELETE SET NULL, -- best candidate
    final      INTEGER REFERENCES runs(id) ON DELETE SET NULL, -- run holding the final head
    seconds    REAL,                    -- wall time of the whole sweep, loading included
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- One trained (or cross-validated) model: its data, hyperparameters and outcome.
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    sweep        INTEGER REFERENCES sweeps(id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('candidate', 'refit')),
                                        -- 'candidate': a grid point, trained on train_splits;
                                        -- 'refit': the chosen point trained again on more data
    featureset   INTEGER NOT NULL REFERENCES featuresets(id) ON DELETE CASCADE,
    train_splits TEXT NOT NULL,         -- split(s) trained on, ',' separated: 'train', 'train,validation'
    folds        INTEGER,               -- K when the candidate was scored by K-fold CV
    solver       TEXT NOT NULL CHECK (solver IN ('lbfgs', 'newton', 'sgd', 'adam')),
    C            REAL NOT NULL CHECK (C > 0), -- inverse L2 strength (scikit-learn's C)
    class_weight TEXT NOT NULL CHECK (class_weight IN ('none', 'balanced')),
    standardize  INTEGER NOT NULL CHECK (standardize IN (0, 1)),
    max_iter     INTEGER,               -- lbfgs: iteration limit
    tol          REAL,                  -- lbfgs/newton: stop when max |gradient of f / C|
                                        -- <= tol (scikit-learn's criterion and default)
    epochs       INTEGER,               -- sgd/adam: epoch limit
    lr           REAL,                  -- sgd/adam: learning rate
    batch_size   INTEGER,               -- sgd/adam
    patience     INTEGER,               -- sgd/adam: early-stopping patience, in epochs
    seed         INTEGER NOT NULL,      -- shuffling and fold assignment
    params       TEXT NOT NULL,         -- every hyperparameter above, as one JSON object
    classes      TEXT NOT NULL,         -- JSON array of class labels, in index order
    n_train      INTEGER NOT NULL,      -- training rows (all folds' training rows for CV)
    dim          INTEGER NOT NULL,
    iterations   INTEGER,               -- lbfgs/newton iterations, or sgd/adam epochs run
                                        -- (cross-validation: the most any fold took)
    converged    INTEGER,               -- 1 if the stopping criterion was met (lbfgs/newton),
                                        -- or early stopping triggered (sgd/adam)
    objective    REAL,                  -- final 0.5*||W||^2 + C*sum(sw*loss) on the training
                                        -- rows (NULL for cross-validation candidates)
    seconds      REAL NOT NULL,         -- training time (all folds for CV)
    chosen       INTEGER NOT NULL DEFAULT 0, -- 1 for the sweep's chosen candidate
    note         TEXT,                  -- free text from --note
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX runs_featureset ON runs(featureset);
CREATE INDEX runs_sweep ON runs(sweep);

-- Metrics of a run on a split (or 'cv': the mean over the K held-out folds).
-- Definitions are scikit-learn's. Overall values have class NULL:
--   accuracy, log_loss, roc_auc (binary: of the second class's probability;
--   k > 2: macro one-vs-rest), precision_macro, recall_macro, f1_macro, n (rows).
-- Per-class values name the class: precision, recall, f1, support.
-- A metric that is undefined (roc_auc with one class present) is absent.
CREATE TABLE run_metrics (
    run    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    split  TEXT NOT NULL,
    metric TEXT NOT NULL,
    class  TEXT,
    value  REAL NOT NULL
);
CREATE UNIQUE INDEX run_metrics_key ON run_metrics(run, split, metric, coalesce(class, ''));

-- Confusion matrix of a run on a split: rows of (actual, predicted, count),
-- zero cells included, so a k-class matrix has k*k rows.
CREATE TABLE run_confusion (
    run       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    split     TEXT NOT NULL,
    actual    TEXT NOT NULL,
    predicted TEXT NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (run, split, actual, predicted)
) WITHOUT ROWID;

-- The trained head of a run (cross-validation candidates have none).
-- weights and bias apply directly to the stored vectors, standardisation folded
-- in: logit_j = dot(vector, weights row j) + bias_j. BLOBs are headerless
-- little-endian float32 like vectors, so vec_dot(vector, vec_slice(weights, ...))
-- works in SQL. mean and scale are the standardisation fitted on the training
-- rows (NULL when not standardised): weights * scale are the coefficients on
-- standardised features.
CREATE TABLE heads (
    run     INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    dim     INTEGER NOT NULL CHECK (dim > 0),
    outputs INTEGER NOT NULL CHECK (outputs > 0), -- 1 (binary: sigmoid) or k (softmax)
    weights BLOB NOT NULL,               -- outputs x dim float32, row-major
    bias    BLOB NOT NULL,               -- outputs float32
    mean    BLOB,                        -- dim float32, or NULL
    scale   BLOB                         -- dim float32, or NULL
);

-- Predictions of a run for stored images (`predict --run ID [--split S]`).
-- Re-predicting replaces a run's rows for those images.
CREATE TABLE predictions (
    run           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    image         INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    predicted     TEXT NOT NULL,         -- the most probable class
    probability   REAL NOT NULL,         -- its probability
    probabilities BLOB NOT NULL,         -- k float32, one per class in runs.classes order
    at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (run, image)
) WITHOUT ROWID;

-- The public view of predictions, with the image's path and true label.
CREATE VIEW run_predictions AS
SELECT p.run                     AS run,
       i.path                    AS path,
       i.label                   AS label,
       i.split                   AS split,
       p.predicted               AS predicted,
       p.probability             AS probability,
       (p.predicted = i.label)   AS correct,
       p.probabilities           AS probabilities
FROM predictions p
JOIN images i ON i.id = p.image;
