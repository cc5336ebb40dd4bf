-- bottleneck schema, version 3: which engine computed each vector.
--
-- Why: versions up to 0.1.0 stored wrong vectors without a warning when the
-- default (Winograd) engine ran a partial batch of some sizes (6 or 7 images
-- at --batch 8, ...). From 0.2.0 on every vector the extractor stores says
-- which engine computed it, so that a database can be checked and repaired
-- (bottleneck-extract verify) and vectors from different engines are told
-- apart. A vector of an extracted feature set with engine NULL was written
-- before this migration: possibly wrong, until verify has checked it.
--
--   engine          'winograd-avx512' | 'winograd-portable' | 'direct'
--                   (the two Winograd builds round differently; each is
--                   bitwise reproducible: the same image gives the same bytes)
--                   'import' for vectors made elsewhere; NULL: not recorded
--   engine_version  the engine's numerical version (2 from bottleneck 0.2.0:
--                   vectors independent of their batch); NULL: not recorded
ALTER TABLE vectors ADD COLUMN engine TEXT;
ALTER TABLE vectors ADD COLUMN engine_version INTEGER;
