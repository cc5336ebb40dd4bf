/*
 * forward.c: predict and report in bottleneck-classify, the program without
 * the image code: both run in bottleneck-classify-images (the same main.c
 * with every command), which this execs with the same arguments.
 *
 * Why two programs: linking libvips, HDF5, curl and protobuf-c costs every
 * process ~40 ms of dynamic loading (about 90 shared libraries mapped and
 * relocated) before main, a fifth of a 10-value sweep on 2,000 x 1,024
 * (docs/PERFORMANCE.md, Sweeps of output layers). train, runs and show need
 * none of it; predict (new photos go through the network) and report
 * (thumbnails) do, and pay one exec (a few ms) on top.
 *
 * Where the other program is looked for, in order: beside this executable
 * (the build tree); CL_LIBEXECDIR_REL from this executable's directory (an
 * install, wherever it was moved or staged); CL_LIBEXECDIR (the configured
 * install path). Not found: one line naming the places, exit 1.
 */
#include "classify.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CL_IMAGES_NAME "bottleneck-classify-images"

/* exec dir/name with argv if it exists; returns only when it could not. */
static int try_exec(const char *dir, const char *rel, char **argv, int *first_errno) {
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s%s%s/" CL_IMAGES_NAME, dir, *rel ? "/" : "", rel);
    if (n < 0 || (size_t)n >= sizeof path)
        return -1;
    execv(path, argv);
    if (errno != ENOENT && !*first_errno)
        *first_errno = errno;
    return -1;
}

static int forward(const cl_opts *o, const char *cmd) {
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    int err = 0;
    char dir[PATH_MAX] = "";
    if (len > 0) {
        self[len] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(dir, sizeof dir, "%s", self);
            try_exec(dir, "", o->argv, &err);
            if (CL_LIBEXECDIR_REL[0])
                try_exec(dir, CL_LIBEXECDIR_REL, o->argv, &err);
        }
    }
    try_exec(CL_LIBEXECDIR, "", o->argv, &err);
    if (err)
        return cl_failf("%s needs " CL_IMAGES_NAME ", which cannot be run: %s", cmd, strerror(err));
    return cl_failf("%s needs " CL_IMAGES_NAME " (the image code), found neither in %s nor in "
                    "%s: reinstall bottleneck",
                    cmd, dir[0] ? dir : "this program's directory", CL_LIBEXECDIR);
}

int cl_predict(const cl_opts *o) {
    return forward(o, "predict");
}

int cl_report(const cl_opts *o) {
    return forward(o, "report");
}
