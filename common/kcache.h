/*
 * kcache.h: transformed convolution kernels kept on disk between runs.
 *
 * Owns: the kernel cache directory and its files. An engine that rearranges
 * a layer's kernel at prepare time (the Winograd engine: U = G g G^T, 418 MB
 * for VGG16) asks here first; a hit maps the stored bytes from the page
 * cache instead of computing them into fresh memory. Why: in a new process,
 * fresh memory costs more than the arithmetic (first touch of 418 MB: 0.1 to
 * 1.6 s on the hosts we run on), while a warm file maps in about 0.1 s
 * (docs/PERFORMANCE.md, *Start-up*).
 *
 * A cache is never trusted: every entry names its kind and key in its header
 * and carries a checksum of its bytes, verified on every load. An entry that
 * is truncated, corrupt, stale (another key or kind under its name) or
 * unreadable is a miss; the caller computes the bytes and bn_kcache_store
 * replaces the entry, written to a temporary file and renamed, so a reader
 * sees a complete file or none. Nothing here fails the caller: a directory
 * that cannot be written only means no cache (counted in the stats).
 *
 * Where: $BOTTLENECK_KERNEL_CACHE if set (`off` disables the cache), else
 * <user cache>/kernels ($XDG_CACHE_HOME/bottleneck/kernels or
 * ~/.cache/bottleneck/kernels). Entries are not evicted: the directory may
 * be deleted at any time.
 */
#ifndef BN_KCACHE_H
#define BN_KCACHE_H

#include <stddef.h>
#include <stdint.h>

/* What identifies an entry: a 128-bit digest of the engine's kind string
 * (layout and version), the layer's dimensions and the kernel's bytes. */
typedef struct {
    uint64_t h[2];
} bn_kcache_key;

/* The 128-bit digest (not cryptographic: it guards against accidents, not
 * against an attacker who can write the cache directory) of `bytes` bytes. */
bn_kcache_key bn_kcache_digest(const void *data, size_t bytes, uint64_t seed);

/* The key of a kernel: kind (e.g. "winograd-f6x6-u32-v1"), up to 8
 * dimensions, and the kernel's bytes. */
bn_kcache_key bn_kcache_key_of(const char *kind, const int *dims, int ndims, const void *kernel,
                               size_t bytes);

/* The verified bytes of the entry (kind, key), exactly `bytes` long,
 * mapped read-only; NULL on a miss (absent, invalid, cache off), at a 2 MiB-aligned address so that
 * the kernel can map it with huge pages. Release with bn_kcache_release. */
const void *bn_kcache_map(const char *kind, bn_kcache_key key, size_t bytes);

/* Store `bytes` bytes as the entry (kind, key), replacing any entry there.
 * Returns 0 when stored, -1 otherwise (cache off, directory not writable,
 * disk full, or another process writing the same entry right now: counted,
 * never reported). */
int bn_kcache_store(const char *kind, bn_kcache_key key, const void *data, size_t bytes);

/* If p came from bn_kcache_map, unmap it and return 1; otherwise 0 (the
 * caller frees its own memory). */
int bn_kcache_release(const void *p);

/* The cache directory into out; -1 when the cache is off or no directory
 * can be named. */
int bn_kcache_dir(char *out, size_t n);

/* Counters since the process started (all threads). */
typedef struct {
    long hits;     /* entries mapped and verified */
    long misses;   /* no entry */
    long rejected; /* entries present but truncated, corrupt or stale */
    long stored;   /* entries written */
    long failed;   /* entries that could not be written */
    long busy;     /* not written: another process was writing that entry */
} bn_kcache_stats;
void bn_kcache_get_stats(bn_kcache_stats *out);

#endif
