/*
 * dataset.c: scanning a dataset folder (see dataset.h).
 */
#include "dataset.h"
#include "hash.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const split_names[] = {"train", "training", "validation", "valid",
                                          "val",   "test",     "testing"};

static const char *const image_exts[] = {
    "jpg", "jpeg", "jpe", "jfif", "png",  "gif",  "webp", "tif", "tiff", "bmp", "ppm", "pgm",
    "pbm", "pnm",  "pfm", "heic", "heif", "avif", "jxl",  "jp2", "j2k",  "svg", "hdr", "fits"};

int bn_dataset_is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return 0;
    for (size_t i = 0; i < sizeof image_exts / sizeof *image_exts; i++)
        if (strcasecmp(dot + 1, image_exts[i]) == 0)
            return 1;
    return 0;
}

int bn_dataset_is_split_name(const char *name) {
    for (size_t i = 0; i < sizeof split_names / sizeof *split_names; i++)
        if (strcmp(name, split_names[i]) == 0)
            return 1;
    return 0;
}

/* v (cap elements of sz bytes, n used) with room for one more: v itself,
 * or v grown to twice its size (first elements at the start), or NULL out
 * of memory (v unchanged). */
static void *grow(void *v, size_t *cap, size_t n, size_t sz, size_t first) {
    if (n < *cap)
        return v;
    size_t c = *cap ? 2 * *cap : first;
    void *p = realloc(v, c * sz);
    if (p)
        *cap = c;
    return p;
}

/* Directories visited on this scan, by (device, inode): a symlink loop ends here. */
typedef struct {
    dev_t dev;
    ino_t ino;
} dir_id;

/* A set of them, searched linearly: a dataset has few folders. */
typedef struct {
    dir_id *v;
    size_t n, cap;
} dir_set;

static int dir_set_has(const dir_set *s, const struct stat *st) {
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].dev == st->st_dev && s->v[i].ino == st->st_ino)
            return 1;
    return 0;
}

/* 0 added, -1 out of memory. */
static int dir_set_add(dir_set *s, const struct stat *st) {
    dir_id *p = grow(s->v, &s->cap, s->n, sizeof *p, 64);
    if (!p)
        return -1;
    s->v = p;
    s->v[s->n++] = (dir_id){st->st_dev, st->st_ino};
    return 0;
}

typedef struct {
    bn_dataset *ds;
    dir_set seen; /* every folder walked, and every class folder from the start */
    bn_error *err;
} scan_ctx;

/* 1 if walked before, else 0 (now marked), -1 out of memory. */
static int seen_before(scan_ctx *c, const struct stat *st) {
    if (dir_set_has(&c->seen, st))
        return 1;
    return dir_set_add(&c->seen, st);
}

static char *join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    size_t k = la;
    if (la > 0 && a[la - 1] != '/')
        p[k++] = '/';
    memcpy(p + k, b, lb + 1);
    return p;
}

static int add_item(bn_dataset *ds, const char *rel, const char *label, const char *split) {
    bn_item *p = grow(ds->items, &ds->cap, ds->n, sizeof *p, 256);
    if (!p)
        return -1;
    ds->items = p;
    bn_item *it = &ds->items[ds->n];
    it->path = strdup(rel);
    it->label = label ? strdup(label) : NULL;
    it->split = split ? strdup(split) : NULL;
    if (!it->path || (label && !it->label) || (split && !it->split)) {
        free(it->path);
        free(it->label);
        free(it->split);
        return -1;
    }
    ds->n++;
    return 0;
}

/* Remember a file the scan ignores (counted and listed, never silent). */
static int add_ignored(bn_dataset *ds, const char *rel) {
    char **p = grow(ds->ignored, &ds->capignored, ds->nignored, sizeof *p, 64);
    if (!p)
        return -1;
    ds->ignored = p;
    if (!(ds->ignored[ds->nignored] = strdup(rel)))
        return -1;
    ds->nignored++;
    ds->skipped_files++;
    return 0;
}

/* One entry of a folder: its name, and whether it is a symbolic link. */
typedef struct {
    char *name;
    int link;
} dir_entry;

/* Real entries first, then links, each by name: a folder reached both
 * directly and through a link is scanned under its own name (the link is
 * then a folder already visited), whatever order the file system lists
 * them in. */
static int cmp_entries(const void *a, const void *b) {
    const dir_entry *x = a, *y = b;
    if (x->link != y->link)
        return x->link - y->link;
    return strcmp(x->name, y->name);
}

/* The visible entries of dir (hidden ones skipped) in that order. */
static int list_dir(const char *dir, char ***names, size_t *n, bn_error *err) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return bn_fail(err, BN_EIO, "%s: cannot open folder: %s", dir, strerror(errno));
    dir_entry *ents = NULL;
    size_t cap = 0, m = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        dir_entry *p = grow(ents, &cap, m, sizeof *p, 64);
        if (!p)
            goto oom;
        ents = p;
        int link = 0;
#ifdef DT_LNK
        if (e->d_type != DT_UNKNOWN)
            link = e->d_type == DT_LNK;
        else
#endif
        {
            char *path = join(dir, e->d_name);
            struct stat st;
            link = path && lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
            free(path);
        }
        if (!(ents[m].name = strdup(e->d_name)))
            goto oom;
        ents[m++].link = link;
    }
    closedir(d);
    d = NULL;
    if (m > 1)
        qsort(ents, m, sizeof *ents, cmp_entries);
    if (m > 0 && !(*names = malloc(m * sizeof **names)))
        goto oom;
    for (size_t i = 0; i < m; i++)
        (*names)[i] = ents[i].name;
    *n = m;
    free(ents);
    return BN_OK;
oom:
    if (d)
        closedir(d);
    for (size_t i = 0; i < m; i++)
        free(ents[i].name);
    free(ents);
    return bn_fail(err, BN_ENOMEM, "%s: out of memory listing the folder", dir);
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Add every image below abs (relative name rel) with this label and split. */
static int walk_class(scan_ctx *c, const char *abs, const char *rel, const char *label,
                      const char *split) {
    char **names;
    size_t n;
    int rc = list_dir(abs, &names, &n, c->err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && rc == BN_OK; i++) {
        char *a = join(abs, names[i]), *r = join(rel, names[i]);
        struct stat st;
        if (!a || !r) {
            rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", abs);
        } else if (stat(a, &st) != 0) {
            /* A dangling link or a file that vanished: let extract record
             * it as a failure when it tries to read it. */
            if (bn_dataset_is_image_name(names[i]) && add_item(c->ds, r, label, split))
                rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", abs);
        } else if (S_ISDIR(st.st_mode)) {
            /* A link to a class folder (this one's or another's) is seen
             * already: every class folder is marked before any walk, so
             * its images are that class's whatever the order. */
            int seen = seen_before(c, &st);
            if (seen < 0)
                rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", abs);
            else if (!seen)
                rc = walk_class(c, a, r, label, split);
        } else if (bn_dataset_is_image_name(names[i])) {
            if (add_item(c->ds, r, label, split))
                rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", abs);
        } else if (add_ignored(c->ds, r)) {
            rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", abs);
        }
        free(a);
        free(r);
    }
    free_names(names, n);
    return rc;
}

/* 1 if dir holds a folder (its own or through a link), 0 if not or it
 * cannot be read (its walk reports that), -1 out of memory. */
static int has_subdir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = join(dir, e->d_name);
        struct stat st;
        found = !p ? -1 : stat(p, &st) == 0 && S_ISDIR(st.st_mode);
        free(p);
    }
    closedir(d);
    return found;
}

static int cmp_items(const void *a, const void *b) {
    return strcmp(((const bn_item *)a)->path, ((const bn_item *)b)->path);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A class folder: where it is, its name under the root ("cat",
 * "train/cat"), and its class and split (rel's last and first parts). */
typedef struct {
    char *abs, *rel, *split;
    const char *label; /* inside rel */
} class_dir;

typedef struct {
    class_dir *v;
    size_t n, cap;
} class_list;

static void class_list_free(class_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].abs);
        free(l->v[i].rel);
        free(l->v[i].split);
    }
    free(l->v);
}

/* Append the class folder abs (name rel, class the part of rel after
 * split's '/'); takes abs and rel, which may be NULL (out of memory
 * already). -1 out of memory (both freed). */
static int class_list_add(class_list *l, char *abs, char *rel, const char *split) {
    if (!abs || !rel)
        goto oom;
    class_dir *p = grow(l->v, &l->cap, l->n, sizeof *p, 16);
    if (!p)
        goto oom;
    l->v = p;
    class_dir *d = &l->v[l->n];
    d->abs = abs;
    d->rel = rel;
    d->split = NULL;
    d->label = rel + (split ? strlen(split) + 1 : 0);
    if (split && !(d->split = strdup(split)))
        goto oom;
    l->n++;
    return 0;
oom:
    free(abs);
    free(rel);
    return -1;
}

/* The class folders of root (root/CLASS, or root/SPLIT/CLASS when SPLIT is
 * a split's name and holds folders), each marked seen, in the order the
 * walk takes them; files beside them are listed as ignored. Marking all
 * of them before any walk is what files a link from one class's folder
 * into another's under the other class. */
static int list_classes(scan_ctx *c, const char *root, class_list *out) {
    char **names;
    size_t n;
    int rc = list_dir(root, &names, &n, c->err);
    for (size_t i = 0; rc == BN_OK && i < n; i++) {
        char *a = join(root, names[i]);
        struct stat st;
        int seen = 0, split = 0; /* a second way to a folder listed already; a split's folder */
        if (!a) {
            rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", root);
        } else if (stat(a, &st) != 0 || !S_ISDIR(st.st_mode)) {
            if (add_ignored(c->ds, names[i])) /* files at the top have no class */
                rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", root);
        } else if ((seen = seen_before(c, &st)) != 0) {
            if (seen < 0)
                rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", root);
        } else if (bn_dataset_is_split_name(names[i]) && (split = has_subdir(a)) < 0) {
            rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", root);
        } else if (split) {
            char **classes;
            size_t nc;
            rc = list_dir(a, &classes, &nc, c->err);
            for (size_t j = 0; rc == BN_OK && j < nc; j++) {
                char *ca = join(a, classes[j]), *cr = join(names[i], classes[j]);
                struct stat cs;
                int twice = 0;
                if (!ca || !cr) {
                    rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", root);
                } else if (stat(ca, &cs) != 0 || !S_ISDIR(cs.st_mode)) {
                    if (add_ignored(c->ds, cr)) /* a file beside the class folders */
                        rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", root);
                } else if ((twice = seen_before(c, &cs)) < 0) {
                    rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", root);
                } else if (!twice) {
                    if (class_list_add(out, ca, cr, names[i]))
                        rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", root);
                    ca = cr = NULL; /* the list owns them (or freed them) */
                }
                free(ca);
                free(cr);
            }
            free_names(classes, nc); /* (none when list_dir failed) */
        } else {
            if (class_list_add(out, a, strdup(names[i]), NULL))
                rc = bn_fail(c->err, BN_ENOMEM, "%s: out of memory", root);
            a = NULL;
        }
        free(a);
    }
    free_names(names, n);
    return rc;
}

int bn_dataset_scan(bn_dataset *ds, const char *root, bn_error *err) {
    memset(ds, 0, sizeof *ds);
    struct stat st;
    if (stat(root, &st) != 0)
        return bn_fail(err, BN_EIO, "%s: %s", root, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return bn_fail(err, BN_EINVAL, "%s: not a folder (expected class folders inside)", root);
    if (!(ds->root = strdup(root)))
        return bn_fail(err, BN_ENOMEM, "%s: out of memory", root);

    scan_ctx c = {.ds = ds, .err = err};
    class_list classes = {0};
    int rc = seen_before(&c, &st) < 0 ? bn_fail(err, BN_ENOMEM, "%s: out of memory", root)
                                      : list_classes(&c, root, &classes);
    for (size_t i = 0; rc == BN_OK && i < classes.n; i++) {
        const class_dir *d = &classes.v[i];
        rc = walk_class(&c, d->abs, d->rel, d->label, d->split);
    }
    class_list_free(&classes);
    free(c.seen.v);
    if (rc) {
        bn_dataset_free(ds);
        return rc;
    }
    if (ds->n > 1) /* qsort(NULL, 0, ...) is undefined behaviour (UBSan) */
        qsort(ds->items, ds->n, sizeof *ds->items, cmp_items);
    if (ds->nignored > 1)
        qsort(ds->ignored, ds->nignored, sizeof *ds->ignored, cmp_names);
    return BN_OK;
}

int64_t bn_dataset_id(const bn_dataset *ds) {
    return ds->id > 0 ? ds->id : 1;
}

/* p spelled one way: no "." segments, no doubled or trailing '/' ("./a//b/"
 * is "a/b"); ".." is left alone (it depends on links). In place; NULL (an
 * allocation that failed) is left for the caller to report. */
static void tidy_path(char *p) {
    if (!p)
        return;
    char *w = p;
    const char *r = p;
    int absolute = *r == '/';
    if (absolute)
        *w++ = *r++;
    while (*r) {
        while (*r == '/')
            r++;
        if (r[0] == '.' && (r[1] == '/' || r[1] == '\0')) { /* a "." segment */
            r++;
            continue;
        }
        if (!*r)
            break;
        if (w > p + absolute)
            *w++ = '/';
        while (*r && *r != '/')
            *w++ = *r++;
    }
    if (w == p)
        *w++ = '.';
    *w = '\0';
}

/* The images of folder dir as a dataset root, added to ds under dir's
 * name: class folders give labels (and split folders splits), images at
 * its top level get none. */
static int add_folder(bn_dataset *ds, const char *dir, bn_error *err) {
    bn_dataset sub;
    int rc = bn_dataset_scan(&sub, dir, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < sub.n + sub.nignored && rc == BN_OK; i++) {
        int loose = i >= sub.n;
        const char *rel = loose ? sub.ignored[i - sub.n] : sub.items[i].path;
        char *p = join(dir, rel);
        tidy_path(p); /* "./" + "cat/x.jpg" is "cat/x.jpg" */
        if (!p)
            rc = bn_fail(err, BN_ENOMEM, "%s: out of memory", dir);
        else if (!loose)
            rc = add_item(ds, p, sub.items[i].label, sub.items[i].split)
                     ? bn_fail(err, BN_ENOMEM, "%s: out of memory", dir)
                     : BN_OK;
        else if (!strchr(rel, '/') && bn_dataset_is_image_name(rel))
            rc = add_item(ds, p, NULL, NULL) ? bn_fail(err, BN_ENOMEM, "%s: out of memory", dir)
                                             : BN_OK;
        else if (add_ignored(ds, p))
            rc = bn_fail(err, BN_ENOMEM, "%s: out of memory", dir);
        free(p);
    }
    bn_dataset_free(&sub);
    return rc;
}

int bn_dataset_from_paths(bn_dataset *ds, char **paths, int n, bn_error *err) {
    memset(ds, 0, sizeof *ds);
    if (!(ds->root = strdup("")))
        return bn_fail(err, BN_ENOMEM, "out of memory");
    int rc = BN_OK;
    for (int i = 0; i < n && rc == BN_OK; i++) {
        struct stat st;
        char *p = strdup(paths[i]);
        tidy_path(p);
        if (!p)
            rc = bn_fail(err, BN_ENOMEM, "%s: out of memory", paths[i]);
        else if (stat(p, &st) != 0)
            rc = bn_fail(err, BN_EIO, "%s: %s", paths[i], strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = add_folder(ds, p, err);
        else if (add_item(ds, p, NULL, NULL))
            rc = bn_fail(err, BN_ENOMEM, "%s: out of memory", paths[i]);
        free(p);
    }
    if (rc) {
        bn_dataset_free(ds);
        return rc;
    }
    if (ds->n > 1) /* printed and stored in path order, as everything else */
        qsort(ds->items, ds->n, sizeof *ds->items, cmp_items);
    /* A file given twice (by itself and in its folder, or twice over) is one
     * image: the spelling with a label (from a class folder) is kept. */
    size_t kept = 0;
    for (size_t i = 0; i < ds->n; i++) {
        bn_item *it = &ds->items[i];
        if (kept > 0 && strcmp(ds->items[kept - 1].path, it->path) == 0) {
            bn_item *k = &ds->items[kept - 1];
            if (!k->label && it->label) {
                bn_item t = *k;
                *k = *it;
                *it = t;
            }
            free(it->path), free(it->label), free(it->split);
            continue;
        }
        ds->items[kept++] = *it;
    }
    ds->n = kept;
    return BN_OK;
}

void bn_dataset_free(bn_dataset *ds) {
    for (size_t i = 0; i < ds->n; i++) {
        free(ds->items[i].path);
        free(ds->items[i].label);
        free(ds->items[i].split);
    }
    for (size_t i = 0; i < ds->nignored; i++)
        free(ds->ignored[i]);
    free(ds->items);
    free(ds->ignored);
    free(ds->root);
    memset(ds, 0, sizeof *ds);
}

int bn_dataset_shard_of(const char *path, int n) {
    char hex[65];
    bn_hash_sha256_hex(path, strlen(path), hex);
    uint64_t h = 0;
    for (int i = 0; i < 16; i++) { /* 16 hex digits = the first 8 bytes */
        char c = hex[i];
        h = h << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return (int)(h % (uint64_t)n) + 1;
}

void bn_dataset_keep_shard(bn_dataset *ds, int k, int n) {
    size_t kept = 0;
    for (size_t i = 0; i < ds->n; i++) {
        bn_item *it = &ds->items[i];
        if (bn_dataset_shard_of(it->path, n) == k) {
            ds->items[kept++] = *it;
        } else {
            free(it->path);
            free(it->label);
            free(it->split);
        }
    }
    ds->n = kept;
}
