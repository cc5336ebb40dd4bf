/*
 * engine_probe.c: prints which convolution code this process would run, as
 * one line "auto=ID winograd=ID": the code that `--conv auto` (the default)
 * and `--conv winograd` run ("direct", "winograd-avx512" or
 * "winograd-portable"). Asked of the library itself, through the call that
 * names the engine recorded with every vector, so the answer cannot drift
 * from what runs.
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
     * record it: "direct", "winograd-avx512" or "winograd-portable". */
    printf("auto=%s winograd=%s\n", bn_conv_engine_id(BN_CONV_AUTO),
           bn_conv_engine_id(BN_CONV_WINOGRAD));
    return 0;
}
