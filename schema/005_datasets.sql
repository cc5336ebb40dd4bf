-- bottleneck schema, version 5: datasets. A database holds several datasets,
-- each the images of one folder (or of an import, or of files given to
-- `predict`), kept apart: two datasets may hold the same relative path.
--
-- Public interface: the `datasets` table, the new `dataset` columns of images,
-- failures, sweeps and runs, and the `embeddings` view, which gains a
-- `dataset` column (the dataset's name) after its old ones. Old columns stay.
--
-- Identity: a dataset is named (default: the name of its root folder,
-- `bottleneck-extract --dataset NAME` to choose) rather than known by an
-- absolute path only, so that a dataset keeps its identity when its folder
-- moves, and when databases made on several machines are merged. The root
-- folder is recorded too.
--
-- Self-contained: it only needs migrations 1 and 2 (3, provenance, and 4, models, add
-- columns to vectors and feature sets only, which this one leaves alone). The tables images and
-- failures are rebuilt (their UNIQUE (path) becomes UNIQUE (dataset, path));
-- store.c runs migrations with foreign keys off, so rebuilding images keeps
-- the predictions that point at its rows (ids are kept).

CREATE TABLE datasets (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,   -- 'catsdogs'; what --dataset and SQL select by
    kind       TEXT NOT NULL CHECK (kind IN ('default', 'folder', 'import', 'files')),
                                       -- 'default': the dataset every database starts
                                       --   with (older databases' images migrate into
                                       --   it); the first extract adopts it: it gets
                                       --   that extract's name, root and kind 'folder';
                                       -- 'folder': extracted from the folder `root`; a
                                       --   re-extract makes its rows follow the folder;
                                       -- 'import': made by `bottleneck-extract import`;
                                       -- 'files': images given to `bottleneck-classify
                                       --   predict` one by one (paths as typed); never
                                       --   trained on unless asked
    root       TEXT,                   -- absolute path of the folder last extracted, or NULL
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
INSERT INTO datasets (id, name, kind) VALUES (1, 'default', 'default');

-- Views name the tables they read: dropped before the rebuild, created again below.
DROP VIEW embeddings;
DROP VIEW run_predictions;

-- One row per image file of a dataset. label is NULL for an image without a
-- known class (a file given to predict outside class folders).
CREATE TABLE images_v3 (
    id       INTEGER PRIMARY KEY,
    dataset  INTEGER NOT NULL DEFAULT 1 REFERENCES datasets(id) ON DELETE CASCADE,
    path     TEXT NOT NULL,             -- relative to the dataset root, '/' separated
    label    TEXT,                      -- class folder name ('cat', 'dog', ...), or NULL
    split    TEXT,                      -- 'train', 'validation', 'test', ... or NULL
    sha256   TEXT NOT NULL,             -- lowercase hex of the file's bytes
    width    INTEGER,                   -- pixels, after EXIF orientation
    height   INTEGER,
    bytes    INTEGER,                   -- file size
    added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    UNIQUE (dataset, path)
);
INSERT INTO images_v3 (id, dataset, path, label, split, sha256, width, height, bytes, added_at)
SELECT id, 1, path, NULLIF(label, ''), split, sha256, width, height, bytes, added_at FROM images;
DROP TABLE images;
ALTER TABLE images_v3 RENAME TO images;
CREATE INDEX images_sha256 ON images(sha256);
CREATE INDEX images_split_label ON images(split, label); -- as before: query plans rely on it
-- (dataset, path) is indexed by its UNIQUE constraint.

-- Files of a dataset that could not be used, with the decoder's reason. A
-- path has either an image row or a failure row, never both.
CREATE TABLE failures_v3 (
    id      INTEGER PRIMARY KEY,
    dataset INTEGER NOT NULL DEFAULT 1 REFERENCES datasets(id) ON DELETE CASCADE,
    path    TEXT NOT NULL,               -- relative to the dataset root
    sha256  TEXT,                        -- NULL when the file could not even be read
    reason  TEXT NOT NULL,
    at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    UNIQUE (dataset, path)
);
INSERT INTO failures_v3 (id, dataset, path, sha256, reason, at)
SELECT id, 1, path, sha256, reason, at FROM failures;
DROP TABLE failures;
ALTER TABLE failures_v3 RENAME TO failures;

-- The dataset a sweep and its runs were trained on (NULL: older runs, or the
-- dataset was deleted; the recorded metrics stay either way).
ALTER TABLE sweeps ADD COLUMN dataset INTEGER REFERENCES datasets(id) ON DELETE SET NULL;
ALTER TABLE runs ADD COLUMN dataset INTEGER REFERENCES datasets(id) ON DELETE SET NULL;
-- `train --holdout F`: the fraction of the training rows held out (NULL: none).
ALTER TABLE sweeps ADD COLUMN holdout REAL;

-- The images a `--holdout` sweep held out (stratified, seeded), so that
-- `predict --run N --split holdout` and reports know them; every other image
-- of the sweep's training rows was trained on.
CREATE TABLE holdouts (
    sweep INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
    image INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    PRIMARY KEY (sweep, image)
) WITHOUT ROWID;

-- The public view: one row per (image, feature set) that has a vector. The
-- columns of version 1, then the dataset's name.
CREATE VIEW embeddings AS
SELECT i.path    AS path,
       i.label   AS label,
       i.split   AS split,
       f.name    AS featureset,
       f.dim     AS dim,
       f.dtype   AS dtype,
       v.vector  AS vector,
       d.name    AS dataset
FROM images i
JOIN datasets d ON d.id = i.dataset
JOIN vectors v ON v.sha256 = i.sha256
JOIN featuresets f ON f.id = v.featureset;

-- Predictions with the image's path, dataset and true label. correct is NULL
-- for an image without a label (not a mistake).
CREATE VIEW run_predictions AS
SELECT p.run                     AS run,
       i.path                    AS path,
       i.label                   AS label,
       i.split                   AS split,
       p.predicted               AS predicted,
       p.probability             AS probability,
       (p.predicted = i.label)   AS correct,
       p.probabilities           AS probabilities,
       d.name                    AS dataset
FROM predictions p
JOIN images i ON i.id = p.image
JOIN datasets d ON d.id = i.dataset;
