-- bottleneck schema: 'amx', a precision of its own.
--
-- bottleneck-extract --precision amx runs the Winograd products on AMX tiles
-- (tdpbf16ps, Intel Xeons from Sapphire Rapids on). Its values are bf16's,
-- but the tile unit rounds its FP32 sums in another order than vdpbf16ps,
-- so its vectors differ from bf16 ones by about 1e-6 relative L2: a set of
-- its own ('<...>/f32/amx', vectors.engine 'winograd-amx-bf16'), so that
-- verify can demand the same bytes (docs/PERFORMANCE.md, "AMX").
--
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt
-- with the same columns in the same order and the same ids (the migration
-- runs with foreign keys off: dropping the old table deletes nothing that
-- points at it, and the tables that do point at it by name find the new one).
-- The view over it is dropped first and made again as 005_datasets.sql made it.
DROP VIEW embeddings;
CREATE TABLE featuresets_new (
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
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    model_format   TEXT,                  -- 'keras-h5' | 'onnx' (004_models.sql)
    model_path     TEXT,                  -- the ONNX file as given to extract (004_models.sql)
    precision      TEXT NOT NULL DEFAULT 'fp32'
        CHECK (precision IN ('fp32', 'bf16', 'fp16', 'amx'))
);
INSERT INTO featuresets_new (id, name, source, model, weights_sha256, layer, pooling, size,
                             resize, preprocess, dim, dtype, created_at, model_format,
                             model_path, precision)
    SELECT id, name, source, model, weights_sha256, layer, pooling, size, resize, preprocess, dim,
           dtype, created_at, model_format, model_path, precision
    FROM featuresets;
DROP TABLE featuresets;
ALTER TABLE featuresets_new RENAME TO featuresets;
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
