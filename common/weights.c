/*
 * weights.c: the VGG16 conv base's 13 kernels and biases from a Keras HDF5
 * file, and where that file is looked for.
 *
 * Owns:
 *   - bn_vgg16_convs, the 13 convolutions' names and channel counts: the one
 *     copy, which this loader checks the file against and vgg16.c builds
 *     the graph from;
 *   - bn_weights_load: reads the file with libhdf5 the way Keras' own
 *     loader does (root `layer_names` attribute -> one group per layer ->
 *     the group's `weight_names` attribute -> datasets, [kernel, bias]).
 *     Because the names are followed, not guessed, the legacy spelling
 *     (block1_conv1/block1_conv1_W_1:0), the newer nested one
 *     (block1_conv1/block1_conv1/kernel:0), full-model files with top layers
 *     (ignored) and full-model saves (layers under /model_weights) all load.
 *     Every shape is checked; float64 (or any float) data is converted to
 *     float32 by libhdf5 on read; anything else is one line naming the file
 *     and the problem;
 *   - bn_weights_cache_dir / bn_weights_locate: --weights, then
 *     $BOTTLENECK_WEIGHTS, then the user cache;
 *   - bn_weights_download: the official file into the cache (download.c does
 *     the transfer, md5 check and atomic rename);
 *   - the file's SHA-256, remembered between runs (weights_sha256).
 *
 * libhdf5's own error printing is switched off for the duration of a load
 * (and restored after); its innermost error message is folded into ours
 * when it says more than we can (e.g. "truncated file: eof = ...").
 */
#include "weights.h"
#include "download.h"
#include "hash.h"
#include "kcache.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const bn_vgg16_conv_spec bn_vgg16_convs[BN_VGG16_NCONV] = {
    {"block1_conv1", 3, 64},    {"block1_conv2", 64, 64},   {"block2_conv1", 64, 128},
    {"block2_conv2", 128, 128}, {"block3_conv1", 128, 256}, {"block3_conv2", 256, 256},
    {"block3_conv3", 256, 256}, {"block4_conv1", 256, 512}, {"block4_conv2", 512, 512},
    {"block4_conv3", 512, 512}, {"block5_conv1", 512, 512}, {"block5_conv2", 512, 512},
    {"block5_conv3", 512, 512},
};

/* ---- libhdf5 helpers ---------------------------------------------------- */

/* H5Ewalk2 callback: keep the description of the innermost error (the first
 * one walking upward), which is where libhdf5 says what it actually saw. */
static herr_t h5_innermost(unsigned n, const H5E_error2_t *e, void *data) {
    if (n == 0 && e->desc)
        snprintf(data, 256, "%s", e->desc);
    return 0;
}

/* The innermost message of the current HDF5 error stack, or "". */
static const char *h5_detail(char buf[256]) {
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_innermost, buf);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

/* Does `path` (relative to loc, may contain '/') name an existing object?
 * Each component is tested in turn: H5Lexists on "a/b" is itself an error
 * when "a" is missing. */
static int h5_path_exists(hid_t loc, const char *path) {
    char buf[1024];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        htri_t ok = H5Lexists(loc, buf, H5P_DEFAULT);
        buf[i] = saved;
        if (ok <= 0)
            return 0;
    }
    return 1;
}

typedef struct {
    char **s;
    int n;
} strlist;

static void strlist_free(strlist *l) {
    for (int i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
    l->s = NULL;
    l->n = 0;
}

static int strlist_push(strlist *l, const char *s, size_t len) {
    char **grown = realloc(l->s, (size_t)(l->n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    l->s = grown;
    char *copy = strndup(s, len);
    if (!copy)
        return -1;
    /* Fixed-length strings may be space padded (H5T_STR_SPACEPAD). */
    size_t k = strlen(copy);
    while (k > 0 && copy[k - 1] == ' ')
        copy[--k] = '\0';
    l->s[l->n++] = copy;
    return 0;
}

enum { ATTR_OK = 0, ATTR_MISSING = -1, ATTR_NOT_STRINGS = -2, ATTR_UNREADABLE = -3 };

/* Append the strings of one attribute (fixed- or variable-length, scalar or
 * 1-D) to out. */
static int read_one_string_attr(hid_t obj, const char *name, strlist *out) {
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    if (attr < 0)
        return ATTR_UNREADABLE;
    hid_t ftype = H5Aget_type(attr);
    hid_t space = H5Aget_space(attr);
    hid_t mtype = -1;
    int rc = ATTR_UNREADABLE;
    void *buf = NULL;
    if (ftype < 0 || space < 0)
        goto done;
    if (H5Tget_class(ftype) != H5T_STRING) {
        rc = ATTR_NOT_STRINGS;
        goto done;
    }
    hssize_t count = H5Sget_simple_extent_npoints(space);
    if (count < 0)
        goto done;
    if (count == 0) {
        rc = ATTR_OK;
        goto done;
    }
    mtype = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mtype, H5Tget_cset(ftype));
    htri_t vlen = H5Tis_variable_str(ftype);
    if (vlen > 0) {
        H5Tset_size(mtype, H5T_VARIABLE);
        char **v = calloc((size_t)count, sizeof *v);
        buf = v;
        if (!v || H5Aread(attr, mtype, v) < 0)
            goto done;
        rc = ATTR_OK;
        for (hssize_t i = 0; i < count && rc == ATTR_OK; i++)
            if (strlist_push(out, v[i] ? v[i] : "", v[i] ? strlen(v[i]) : 0) != 0)
                rc = ATTR_UNREADABLE;
        H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, v);
    } else if (vlen == 0) {
        size_t size = H5Tget_size(ftype);
        H5Tset_size(mtype, size);
        H5Tset_strpad(mtype, H5Tget_strpad(ftype));
        char *f = calloc((size_t)count, size);
        buf = f;
        if (!f || H5Aread(attr, mtype, f) < 0)
            goto done;
        rc = ATTR_OK;
        for (hssize_t i = 0; i < count && rc == ATTR_OK; i++)
            if (strlist_push(out, f + (size_t)i * size, size) != 0)
                rc = ATTR_UNREADABLE;
    }
done:
    free(buf);
    if (mtype >= 0)
        H5Tclose(mtype);
    if (space >= 0)
        H5Sclose(space);
    if (ftype >= 0)
        H5Tclose(ftype);
    H5Aclose(attr);
    return rc;
}

/* A Keras string-list attribute. Keras splits lists that would exceed
 * HDF5's 64 KiB attribute limit into name0, name1, ...; both forms read. */
static int read_string_attr(hid_t obj, const char *name, strlist *out) {
    out->s = NULL;
    out->n = 0;
    if (H5Aexists(obj, name) > 0) {
        int rc = read_one_string_attr(obj, name, out);
        if (rc != ATTR_OK)
            strlist_free(out);
        return rc;
    }
    char chunk[128];
    int k = 0;
    for (;; k++) {
        snprintf(chunk, sizeof chunk, "%s%d", name, k);
        if (H5Aexists(obj, chunk) <= 0)
            break;
        int rc = read_one_string_attr(obj, chunk, out);
        if (rc != ATTR_OK) {
            strlist_free(out);
            return rc;
        }
    }
    return k > 0 ? ATTR_OK : ATTR_MISSING;
}

/* "(3,3,64,256)" */
static void shape_str(char *out, size_t n, int rank, const hsize_t *dims) {
    size_t used = (size_t)snprintf(out, n, "(");
    for (int i = 0; i < rank && used < n; i++)
        used +=
            (size_t)snprintf(out + used, n - used, "%s%" PRIuMAX, i ? "," : "", (uintmax_t)dims[i]);
    if (used < n)
        snprintf(out + used, n - used, ")");
}

/* ---- the loader --------------------------------------------------------- */

typedef struct {
    const char *path; /* as the caller named the file: every message starts with it */
    bn_error *err;
} loader;

/* Read one weight dataset of `layer` (what = "kernel"/"bias") at `dname`
 * inside group g, check it has exactly `rank` dims `want`, and return it as
 * a malloc'd float32 array. */
static int load_array(loader *L, hid_t g, const char *layer, const char *what, const char *dname,
                      int rank, const hsize_t *want, float **out) {
    char detail[256], got_s[128], want_s[128];
    *out = NULL;
    if (!h5_path_exists(g, dname))
        return bn_fail(L->err, BN_EFORMAT, "%s: %s %s dataset '%s' is missing", L->path, layer,
                       what, dname);
    hid_t d = H5Dopen2(g, dname, H5P_DEFAULT);
    if (d < 0)
        return bn_fail(L->err, BN_EFORMAT, "%s: %s %s '%s' is not a readable dataset (%s)", L->path,
                       layer, what, dname, h5_detail(detail));
    int rc = BN_OK;
    hid_t type = H5Dget_type(d), space = H5Dget_space(d);
    if (type < 0 || space < 0) {
        rc = bn_fail(L->err, BN_EFORMAT, "%s: cannot read %s %s (%s)", L->path, layer, what,
                     h5_detail(detail));
        goto done;
    }
    if (H5Tget_class(type) != H5T_FLOAT) {
        const char *cls = H5Tget_class(type) == H5T_INTEGER  ? "integer"
                          : H5Tget_class(type) == H5T_STRING ? "string"
                                                             : "non-numeric";
        rc = bn_fail(L->err, BN_EFORMAT, "%s: %s %s has %s data, expected float32", L->path, layer,
                     what, cls);
        goto done;
    }
    hsize_t dims[H5S_MAX_RANK];
    int r = H5Sget_simple_extent_ndims(space);
    if (r < 0 || r > H5S_MAX_RANK || H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        rc = bn_fail(L->err, BN_EFORMAT, "%s: %s %s has an unreadable shape", L->path, layer, what);
        goto done;
    }
    int same = r == rank;
    for (int i = 0; same && i < rank; i++)
        same = dims[i] == want[i];
    if (!same) {
        shape_str(got_s, sizeof got_s, r, dims);
        shape_str(want_s, sizeof want_s, rank, want);
        rc = bn_fail(L->err, BN_EFORMAT, "%s: %s %s has shape %s, expected %s", L->path, layer,
                     what, got_s, want_s);
        goto done;
    }
    size_t count = 1;
    for (int i = 0; i < rank; i++)
        count *= (size_t)want[i];
    float *data = malloc(count * sizeof *data);
    if (!data) {
        rc = bn_fail(L->err, BN_ENOMEM, "%s: out of memory for %s %s", L->path, layer, what);
        goto done;
    }
    /* libhdf5 converts float64 (or float16) data to native float32 here. */
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        free(data);
        rc = bn_fail(L->err, BN_EFORMAT, "%s: cannot read %s %s (truncated or damaged file: %s)",
                     L->path, layer, what, h5_detail(detail));
        goto done;
    }
    *out = data;
done:
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    H5Dclose(d);
    return rc;
}

/* One conv layer: find its group by name, follow weight_names. */
static int load_conv(loader *L, hid_t root, const strlist *layers, int idx, bn_conv_weights *cw) {
    const bn_vgg16_conv_spec *c = &bn_vgg16_convs[idx];
    int listed = 0;
    for (int i = 0; i < layers->n && !listed; i++)
        listed = strcmp(layers->s[i], c->name) == 0;
    if (!listed)
        return bn_fail(L->err, BN_EFORMAT, "%s: layer %s is missing (not in layer_names)", L->path,
                       c->name);
    if (H5Lexists(root, c->name, H5P_DEFAULT) <= 0)
        return bn_fail(L->err, BN_EFORMAT, "%s: layer %s is listed but its group is missing",
                       L->path, c->name);
    char detail[256];
    hid_t g = H5Gopen2(root, c->name, H5P_DEFAULT);
    if (g < 0)
        return bn_fail(L->err, BN_EFORMAT, "%s: layer %s is not a readable group (%s)", L->path,
                       c->name, h5_detail(detail));
    strlist names;
    int rc = read_string_attr(g, "weight_names", &names);
    if (rc == ATTR_MISSING)
        rc = bn_fail(L->err, BN_EFORMAT, "%s: layer %s has no weight_names attribute", L->path,
                     c->name);
    else if (rc != ATTR_OK)
        rc = bn_fail(L->err, BN_EFORMAT, "%s: layer %s: weight_names is not a list of strings",
                     L->path, c->name);
    else if (names.n != 2)
        rc =
            bn_fail(L->err, BN_EFORMAT, "%s: layer %s lists %d weight%s, expected 2 (kernel, bias)",
                    L->path, c->name, names.n, names.n == 1 ? "" : "s");
    if (rc == BN_OK) {
        hsize_t kshape[4] = {3, 3, (hsize_t)c->cin, (hsize_t)c->cout};
        hsize_t bshape[1] = {(hsize_t)c->cout};
        rc = load_array(L, g, c->name, "kernel", names.s[0], 4, kshape, &cw->kernel);
        if (rc == BN_OK)
            rc = load_array(L, g, c->name, "bias", names.s[1], 1, bshape, &cw->bias);
        cw->cin = c->cin;
        cw->cout = c->cout;
    }
    strlist_free(&names);
    H5Gclose(g);
    return rc;
}

/* The group holding `layer_names`: the root for weights files, or
 * /model_weights for a Keras full-model save. Returns an open group id. */
static hid_t find_layer_root(loader *L, hid_t file, strlist *layers, int *rc) {
    static const char *const places[] = {"/", "/model_weights"};
    for (size_t i = 0; i < sizeof places / sizeof *places; i++) {
        if (i > 0 && H5Lexists(file, places[i] + 1, H5P_DEFAULT) <= 0)
            continue;
        hid_t g = H5Gopen2(file, places[i], H5P_DEFAULT);
        if (g < 0)
            continue;
        int r = read_string_attr(g, "layer_names", layers);
        if (r == ATTR_OK) {
            *rc = BN_OK;
            return g;
        }
        H5Gclose(g);
        if (r != ATTR_MISSING) {
            *rc = bn_fail(L->err, BN_EFORMAT, "%s: layer_names at %s is not a list of strings",
                          L->path, places[i]);
            return -1;
        }
    }
    H5Eclear2(H5E_DEFAULT);
    *rc = bn_fail(L->err, BN_EFORMAT,
                  "%s: no layer_names attribute at / or /model_weights (not a Keras weights file)",
                  L->path);
    return -1;
}

/* Why H5Fopen refused a file that has the HDF5 signature. */
static int open_failure(loader *L) {
    char detail[256];
    h5_detail(detail);
    unsigned long long eof, stored;
    const char *p = strstr(detail, "truncated file");
    const char *q = strstr(detail, "stored_eof = ");
    if (p && sscanf(p, "truncated file: eof = %llu", &eof) == 1 && q &&
        sscanf(q, "stored_eof = %llu", &stored) == 1)
        return bn_fail(L->err, BN_EFORMAT,
                       "%s: truncated HDF5 file (%llu bytes, its header says %llu)", L->path, eof,
                       stored);
    return bn_fail(L->err, BN_EFORMAT, "%s: damaged HDF5 file (%s)", L->path,
                   detail[0] ? detail : "cannot open");
}

void bn_weights_free(bn_vgg16_weights *w) {
    if (!w)
        return;
    for (int i = 0; i < BN_VGG16_NCONV; i++) {
        free(w->conv[i].kernel);
        free(w->conv[i].bias);
    }
    memset(w, 0, sizeof *w);
}

/* The file's SHA-256 (it names the feature set), remembered in the kernel
 * cache (kcache.h) under a fast digest of the file's content: our SHA-256
 * reads 58 MB at 130-250 MB/s, the digest at several GB/s, so a warm start
 * saves 0.2-0.4 s. Keyed by content, not by name or date: an edited file
 * is a miss, and the entry is checked like any cache entry. */
static int weights_sha256(const char *path, char hex[65]) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
        if (fd >= 0)
            close(fd);
        return bn_hash_sha256_file(path, hex);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return bn_hash_sha256_file(path, hex);
    static const char kind[] = "sha256-of-file";
    bn_kcache_key key = bn_kcache_key_of(kind, NULL, 0, p, (size_t)st.st_size);
    const char *memo = bn_kcache_map(kind, key, 64);
    int ok = memo != NULL;
    for (int i = 0; ok && i < 64; i++)
        ok = strchr("0123456789abcdef", memo[i]) != NULL && memo[i] != '\0';
    if (ok) {
        memcpy(hex, memo, 64);
        hex[64] = '\0';
    } else {
        bn_hash_sha256_hex(p, (size_t)st.st_size, hex);
        (void)bn_kcache_store(kind, key, hex, 64);
    }
    bn_kcache_release(memo);
    munmap(p, (size_t)st.st_size);
    return 0;
}

/* Not reentrant across threads with other libhdf5 users that rely on the
 * automatic error printer: it is switched off while the file is read. */
int bn_weights_load(bn_vgg16_weights *w, const char *path, bn_error *err) {
    memset(w, 0, sizeof *w);
    loader L = {path, err};

    /* Cheap checks first: they give plainer messages than libhdf5 would. */
    struct stat st;
    if (stat(path, &st) != 0)
        return bn_fail(err, BN_EIO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return bn_fail(err, BN_EIO, "%s: is a directory, expected a weights file", path);
    if (access(path, R_OK) != 0)
        return bn_fail(err, BN_EIO, "%s: %s", path, strerror(errno));
    if (st.st_size == 0)
        return bn_fail(err, BN_EFORMAT, "%s: not an HDF5 file (empty)", path);

    /* libhdf5 shuts itself down at exit and, after some damaged files (it
     * leaks an object when H5Fopen fails on them), prints "HDF5: infinite
     * loop closing library" and a line of junk to stderr there. The process
     * ends anyway: skip that shutdown. Only works before libhdf5's first
     * call; a harmless error after. */
    H5dont_atexit();

    H5E_auto2_t old_func;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

    int rc = BN_OK;
    hid_t file = -1, root = -1, fapl = -1;
    strlist layers = {NULL, 0};
    if (H5Fis_hdf5(path) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        rc = bn_fail(err, BN_EFORMAT, "%s: not an HDF5 file", path);
        goto done;
    }
    /* STRONG: closing the file closes anything a failure path left open. */
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (file < 0) {
        rc = open_failure(&L);
        goto done;
    }
    root = find_layer_root(&L, file, &layers, &rc);
    if (root < 0)
        goto done;
    for (int i = 0; i < BN_VGG16_NCONV && rc == BN_OK; i++)
        rc = load_conv(&L, root, &layers, i, &w->conv[i]);
    if (rc == BN_OK && weights_sha256(path, w->sha256) != 0)
        rc = bn_fail(err, BN_EIO, "%s: %s", path, strerror(errno));

done:
    strlist_free(&layers);
    if (root >= 0)
        H5Gclose(root);
    if (file >= 0)
        H5Fclose(file);
    if (fapl >= 0)
        H5Pclose(fapl);
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
    if (rc != BN_OK)
        bn_weights_free(w);
    return rc;
}

/* ---- where the file lives ---------------------------------------------- */

/* $XDG_CACHE_HOME/bottleneck if that is an absolute path (the XDG spec says
 * to ignore relative ones), else $HOME/.cache/bottleneck, else the passwd
 * entry's home. */
int bn_weights_cache_dir(char *out, size_t n, bn_error *err) {
    const char *xdg = getenv("XDG_CACHE_HOME");
    int len;
    if (xdg && xdg[0] == '/') {
        len = snprintf(out, n, "%s/bottleneck", xdg);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : NULL;
        }
        if (!home || !*home)
            return bn_fail(err, BN_EINVAL,
                           "no cache directory: neither $XDG_CACHE_HOME nor $HOME is set");
        len = snprintf(out, n, "%s/.cache/bottleneck", home);
    }
    if (len < 0 || (size_t)len >= n)
        return bn_fail(err, BN_EINVAL, "cache directory path is too long");
    return BN_OK;
}

/* A path the user named must exist as a readable regular file. */
static int check_readable(const char *path, const char *how, bn_error *err) {
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0)
        return bn_fail(err, BN_EIO, "%s: %s (%s)", path, strerror(errno), how);
    if (S_ISDIR(st.st_mode))
        return bn_fail(err, BN_EIO, "%s: is a directory, expected a weights file (%s)", path, how);
    return BN_OK;
}

static int copy_out(char *out, size_t n, const char *path, bn_error *err) {
    if (strlen(path) >= n)
        return bn_fail(err, BN_EINVAL, "%s: path is too long", path);
    memcpy(out, path, strlen(path) + 1);
    return BN_OK;
}

/* The first place that is set decides: an explicit path or
 * $BOTTLENECK_WEIGHTS that names a missing file is an error (not a silent
 * fall-through to the cache, which would hide a typo). */
int bn_weights_locate(char *out, size_t n, const char *explicit_path, bn_error *err) {
    if (explicit_path && *explicit_path) {
        int rc = check_readable(explicit_path, "given with --weights", err);
        return rc ? rc : copy_out(out, n, explicit_path, err);
    }
    const char *env = getenv("BOTTLENECK_WEIGHTS");
    if (env && *env) {
        int rc = check_readable(env, "from $BOTTLENECK_WEIGHTS", err);
        return rc ? rc : copy_out(out, n, env, err);
    }
    char dir[4096], path[4200];
    int rc = bn_weights_cache_dir(dir, sizeof dir, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/%s", dir, BN_VGG16_WEIGHTS_FILE);
    if (access(path, R_OK) == 0)
        return copy_out(out, n, path, err);
    return bn_fail(
        err, BN_EIO,
        "no VGG16 weights found: tried --weights (not given), $BOTTLENECK_WEIGHTS (not "
        "set), %s (%s); fetch them with bottleneck-extract --download, or pass --weights "
        "FILE",
        path, strerror(errno));
}

int bn_weights_download_to(const char *dest, int replace, const char *url,
                           bn_download_progress progress, void *ctx, bn_error *err) {
    const char *env_url = getenv("BOTTLENECK_WEIGHTS_URL");
    const char *env_md5 = getenv("BOTTLENECK_WEIGHTS_MD5");
    if (!url)
        url = env_url && *env_url ? env_url : BN_VGG16_WEIGHTS_URL;
    const char *md5 = env_md5 && *env_md5 ? env_md5 : BN_VGG16_WEIGHTS_MD5;
    /* dest's md5, read once: a finished download is not fetched again, and
     * a file of other contents is named by it */
    char have[33];
    int read = access(dest, R_OK) == 0 && bn_hash_md5_file(dest, have) == 0;
    if (read && strcasecmp(have, md5) == 0)
        return BN_OK;
    if (!replace && access(dest, F_OK) == 0)
        return bn_fail(err, BN_EINVAL,
                       "%s: exists and is not the file to download (md5 %s, expected %s): left "
                       "as it is; remove it or name another file",
                       dest, read ? have : "unreadable", md5);
    int rc = bn_download(url, dest, md5, progress, ctx, err);
    /* A machine without internet access is the usual reason: say what
     * works there. */
    if (rc == BN_ENET && err) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        bn_fail(err, rc,
                "%s (no network here? fetch the file elsewhere and pass it with --weights "
                "FILE, or name a mirror in $BOTTLENECK_WEIGHTS_URL)",
                why);
    }
    return rc;
}

int bn_weights_download(char *out_path, size_t n, const char *url, bn_download_progress progress,
                        void *ctx, bn_error *err) {
    char dir[4096], path[4200];
    int rc = bn_weights_cache_dir(dir, sizeof dir, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/%s", dir, BN_VGG16_WEIGHTS_FILE);
    if (strlen(path) >= n)
        return bn_fail(err, BN_EINVAL, "%s: path is too long", path);
    if ((rc = bn_weights_download_to(path, 1, url, progress, ctx, err)))
        return rc;
    memcpy(out_path, path, strlen(path) + 1);
    return BN_OK;
}
