/*
 * fuzz.h: what the libFuzzer harnesses of tests/fuzz/ share.
 *
 * Each harness (fuzz_*.c) defines LLVMFuzzerTestOneInput. Built with clang
 * and -fsanitize=fuzzer it is a libFuzzer binary (meson -Dfuzz=true); linked
 * with replay.c instead it runs given inputs once each, which is how the
 * seeds and every crash ever found (tests/fuzz/regressions/) are replayed by
 * the ordinary test suite.
 *
 * The loaders under test take a path, so an input is handed over as a file:
 * one temporary file per process (in $TMPDIR, else /dev/shm, else /tmp),
 * rewritten for each input and removed at exit; a process that crashes
 * leaves it behind, so tests/fuzz/run.sh and replay.sh point TMPDIR at a
 * folder they remove. (Not a memfd: libhdf5 resolves the real path of what
 * it opens, and /proc/self/fd/N of a memfd has none.)
 */
#ifndef BN_FUZZ_H
#define BN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[4096];

static void fuzz_remove_file(void) {
    unlink(fuzz_path);
}

/* The input as a file: returns its path (the same for every input). */
static inline const char *fuzz_as_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    if (fd < 0) {
        const char *dir = getenv("TMPDIR");
        if (!dir || !*dir)
            dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_path, sizeof fuzz_path, "%s/bn-fuzz-input.XXXXXX", dir);
        fd = mkstemp(fuzz_path);
        if (fd < 0) {
            perror(fuzz_path);
            abort();
        }
        atexit(fuzz_remove_file);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror(fuzz_path);
        abort();
    }
    return fuzz_path;
}

#endif
