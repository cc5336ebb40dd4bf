-- bottleneck schema, version 1: images, feature sets, vectors, failures.
--
-- Public interface: the `embeddings` view at the end of this file. Its columns
-- (path, label, split, featureset, dim, dtype, vector) are stable; users' own
-- SQL should read embeddings through it. The tables below may gain columns in
-- later migrations but keep the ones listed here.
--
-- Vectors are content-addressed: they are keyed by the image's SHA-256, not by
-- its path, so a renamed or copied image shares the vector already computed and
-- is never run through the network again.

-- One row per image file, by its path relative to the dataset root.
CREATE TABLE images (
    id       INTEGER PRIMARY KEY,
    path     TEXT NOT NULL UNIQUE,      -- relative to the dataset root, '/' separated
    label    TEXT NOT NULL,             -- class folder name ('cat', 'dog', ...)
    split    TEXT,                      -- 'train', 'validation', 'test', ... or NULL
    sha256   TEXT NOT NULL,             -- lowercase hex of the file's bytes
    width    INTEGER,                   -- pixels, after EXIF orientation
    height   INTEGER,
    bytes    INTEGER,                   -- file size
    added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX images_sha256 ON images(sha256);
CREATE INDEX images_split_label ON images(split, label);

-- What produced a set of vectors. Two extractions with the same settings share
-- one feature set; any difference in model, weights, layer, pooling, size,
-- resize or preprocess makes a new one, so many coexist in one database.
CREATE TABLE featuresets (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,  -- e.g. 'vgg16/block5_pool/none/224/squash/caffe/f32'
    source         TEXT NOT NULL DEFAULT 'extract', -- 'extract' or 'import'
    model          TEXT NOT NULL,         -- 'vgg16', or the name given to an import
    weights_sha256 TEXT,                  -- SHA-256 of the weights file (NULL for imports)
    layer          TEXT,                  -- 'block3_pool' | 'block4_pool' | 'block5_pool'
    pooling        TEXT,                  -- 'none' (flatten, Keras y,x,c order) | 'avg' | 'max'
    size           INTEGER,               -- network input is size x size
    resize         TEXT,                  -- 'squash' | 'crop'
    preprocess     TEXT,                  -- 'caffe' | 'torch'
    dim            INTEGER NOT NULL CHECK (dim > 0),
    dtype          TEXT NOT NULL CHECK (dtype IN ('f32', 'f16')),
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- One vector per (feature set, image content). The BLOB is headerless
-- little-endian: dim float32 values (4*dim bytes) or, for dtype 'f16', dim
-- IEEE half floats (2*dim bytes). numpy.frombuffer and sqlite-vec read it as is.
CREATE TABLE vectors (
    featureset INTEGER NOT NULL REFERENCES featuresets(id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL,
    vector     BLOB NOT NULL,
    PRIMARY KEY (featureset, sha256)
) WITHOUT ROWID;

-- Files that could not be used, with the decoder's reason. A file that later
-- succeeds (fixed in place) has its failure row removed.
CREATE TABLE failures (
    id      INTEGER PRIMARY KEY,
    path    TEXT NOT NULL UNIQUE,        -- relative to the dataset root
    sha256  TEXT,                        -- NULL when the file could not even be read
    reason  TEXT NOT NULL,
    at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- The public view: one row per (image, feature set) that has a vector.
CREATE VIEW embeddings AS
SELECT i.path    AS path,
       i.label   AS label,
       i.split   AS split,
       f.name    AS featureset,
       f.dim     AS dim,
       f.dtype   AS dtype,
       v.vector  AS vector
FROM images i
JOIN vectors v ON v.sha256 = i.sha256
JOIN featuresets f ON f.id = v.featureset;
