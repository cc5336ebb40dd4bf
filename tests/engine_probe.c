/*
 * engine_probe.c: prints which convolution code this process would run, as
 * one line "auto=ID winograd=ID build=ISA": the code that `--conv auto` (the
 * default) and `--conv winograd` run ("direct", "winograd" or
 * "winograd-portable"), and the Winograd build (avx512, avx2, portable:
 * the first two share the id "winograd", the same bytes). Asked of the library itself, through the
 * call that names the engine recorded with every vector, so the answer cannot drift from what runs.
 *
 * Why: under valgrind, CPUID hides AVX-512 (valgrind cannot execute it), so
 * a memcheck run of the programs never reaches the fast kernels whatever the
 * machine; tests/reliability_valgrind.sh runs this under valgrind and fails
 * when what it claims to check is not what runs.
 */
#include "conv.h"

#include <stdio.h>

int main(void) {
    /* bn_conv_engine_id names the code a resolved engine runs, as vectors
     * record it: "direct", "winograd" or "winograd-portable"; and which
     * Winograd build runs: the AVX-512 and AVX2 ones share an id. */
    static const char *const builds[] = {"portable", "avx2", "avx512"};
    printf("auto=%s winograd=%s build=%s\n", bn_conv_engine_id(BN_CONV_AUTO),
           bn_conv_engine_id(BN_CONV_WINOGRAD), builds[bn_conv_winograd_isa()]);
    return 0;
}
