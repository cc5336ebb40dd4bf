/*
 * precision.h: which arithmetic the extraction runs in (--precision).
 *
 * Owns: the names (fp32, fast, bf16, fp16, amx), and resolving a request to a
 * precision this CPU runs (conv.h's bn_precision). `fast` is decided by the
 * CPU's features, then by a microbenchmark of the Winograd products kernel
 * in each candidate precision against FP32 (features mislead: some Intel
 * Xeons have avx512_bf16 whose vdpbf16ps runs at half the FP32 FMA rate).
 * The measurement takes about 50 ms; it is cached per host in
 * $XDG_CACHE_HOME/bottleneck/precision.tsv (else ~/.cache/...), one line per
 * CPU model and feature set, written atomically (temp file + rename). A
 * cache that cannot be read or written only costs the measurement again.
 */
#ifndef BN_PRECISION_H
#define BN_PRECISION_H

#include "conv.h"
#include "error.h"

#include <stddef.h>

/* "fp32" | "fast" | "bf16" | "fp16" | "amx" (BN_EINVAL otherwise). */
int bn_precision_parse(const char *s, bn_precision *out);
const char *bn_precision_name(bn_precision p);

/* The precision to run for a request: FP32 as is; BF16 and FP16 if this CPU
 * runs them (else BN_EINVAL saying why); FAST the quickest available, FP32
 * when no reduced precision is faster here. why (may be NULL): one line for
 * the user saying what was chosen and why ("bf16: vdpbf16ps products 1.9x
 * FP32 (measured)"). */
int bn_precision_resolve(bn_precision request, bn_precision *out, char *why, size_t nwhy,
                         bn_error *err);

/* Below this ratio of the reduced-precision kernel's rate to FP32's, `fast`
 * stays FP32: the products are 80% of the time, and a reduced precision
 * that is not clearly faster only costs accuracy. */
#define BN_PRECISION_MIN_GAIN 1.3

#endif
