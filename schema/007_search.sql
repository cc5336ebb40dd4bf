-- bottleneck schema, version 7: the feature sets' vectors also in contiguous
-- chunks, for vec_knn (issue 15).
--
-- `vectors` stays the one source of truth: every program writes there, and
-- the `embeddings` view reads there. `vector_chunks` is a derived copy of one
-- feature set's vectors, rounded to float16 (half the bytes), a few MB per
-- row, that vec_knn (common/vec_knn.c) reads in large sequential pieces
-- instead of one small row at a time. The halves only choose candidates: with
-- each vector's rounding error (`errors`) vec_knn knows how far the true
-- distance can be from the one computed on the halves, and it computes the
-- true distance, from `vectors`, of every vector that could be among the k
-- nearest. Results are those of the float32 vectors, exactly. It is written by
-- vec_knn_pack(featureset) (SQL) or bn_vec_knn_pack() (C), in one
-- transaction, and dropped by the triggers below, in the same transaction as
-- any write to that feature set's vectors: chunks that exist are always
-- exactly the feature set's vectors, whatever crashes in between. Without
-- chunks vec_knn reads `vectors` (slower, same results).
--
-- Plain SQLite and numpy read it: chunk i of feature set F holds `count`
-- vectors, in sha256 order across the chunks,
--   numpy.frombuffer(vectors, '<f2').reshape(count, dim)
-- sha256s is their `count` lowercase hex digests, 64 characters each,
-- concatenated (substr(sha256s, 64 * j + 1, 64) is vector j's),
--   numpy.frombuffer(norms, '<f8')                 |v|^2 of the stored vectors
--   numpy.frombuffer(errors, '<f8').reshape(-1, 2) |v - half(v)|_2, |v - half(v)|_1,
-- rounded up (0 for a float16 feature set, whose halves are the vectors).
CREATE TABLE vector_chunks (
    id         INTEGER PRIMARY KEY,
    featureset INTEGER NOT NULL REFERENCES featuresets(id) ON DELETE CASCADE,
    chunk      INTEGER NOT NULL,    -- 0, 1, ... in sha256 order
    count      INTEGER NOT NULL CHECK (count > 0),
    total      INTEGER NOT NULL,    -- vectors in all of the feature set's chunks
    norms      BLOB NOT NULL,       -- count float64: squared L2 norm of each stored vector
    errors     BLOB NOT NULL,       -- count x 2 float64: rounding error bounds, L2 and L1
    sha256s    TEXT NOT NULL,       -- count x 64 hex characters
    -- last: reading a column after a BLOB of megabytes walks its pages
    vectors    BLOB NOT NULL,       -- count x dim float16, rounded to nearest even
    UNIQUE (featureset, chunk)
);

-- Any change to a feature set's vectors drops its chunks (plain SQL, so that
-- writers that know nothing of chunks, the sqlite3 shell included, keep them
-- honest). The DELETE finds nothing, at the cost of one index probe, while
-- no chunks exist: a running extraction pays it once per vector.
CREATE TRIGGER vector_chunks_insert AFTER INSERT ON vectors BEGIN
    DELETE FROM vector_chunks WHERE featureset = NEW.featureset;
END;
CREATE TRIGGER vector_chunks_delete AFTER DELETE ON vectors BEGIN
    DELETE FROM vector_chunks WHERE featureset = OLD.featureset;
END;
CREATE TRIGGER vector_chunks_update AFTER UPDATE OF featureset, sha256, vector ON vectors BEGIN
    DELETE FROM vector_chunks WHERE featureset IN (OLD.featureset, NEW.featureset);
END;
