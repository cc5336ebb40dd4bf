/*
 * replay.c: a main() for the fuzz harnesses without libFuzzer. Runs the
 * harness once on every file named on the command line, or found in a folder
 * named there, and says how many it ran. A crash or an abort() in a harness
 * fails the test that runs this, like it would stop the fuzzer.
 *
 * A path that does not exist, or a folder without a single input, is an
 * error (exit 1): a misspelt or emptied regressions folder must not turn the
 * test into one that replays nothing and passes.
 */
#include "fuzz.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

static long replayed;

static void replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", path);
        exit(1);
    }
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    replayed++;
}

static void replay(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        exit(1);
    }
    if (!S_ISDIR(st.st_mode)) {
        replay_file(path);
        return;
    }
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        perror(path);
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", path, names[i]->d_name);
            replay(p);
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_FOLDER...\n", argv[0]);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        long before = replayed;
        replay(argv[i]);
        printf("%s: %ld inputs replayed\n", argv[i], replayed - before);
        if (replayed == before) {
            fprintf(stderr, "%s: no inputs to replay\n", argv[i]);
            return 1;
        }
    }
    return 0;
}
