-- bottleneck schema: the arithmetic a feature set's vectors were computed in.
--
-- bottleneck-extract --precision fp32|fast|bf16|fp16 (fast resolves to what
-- the CPU runs fastest). The precision actually used is part of a feature
-- set's identity, like its weights and layer: vectors of different
-- precisions never share a feature set, so an extract in bf16 next to an
-- fp32 one creates a second feature set (named '<...>/f32/bf16') and neither
-- skips nor overwrites the other's vectors. Each vector's own engine id
-- (vectors.engine, 003_provenance.sql) says it too: 'winograd-avx512-bf16'.
--
--   precision   'fp32': exact to 1e-4 relative L2 (every set made before this
--               migration, and every import); 'bf16': the Winograd products
--               in bfloat16 with FP32 sums (docs/PERFORMANCE.md has the
--               accuracy per network); 'fp16' is reserved for the FP16
--               products.
ALTER TABLE featuresets ADD COLUMN precision TEXT NOT NULL DEFAULT 'fp32'
    CHECK (precision IN ('fp32', 'bf16', 'fp16'));
