/*
 * test_dataset: folder scanning (common/dataset.c) through its C API.
 *   - a split layout built here: items sorted by path with the class and
 *     split of their folders, images found at any depth by extension in any
 *     case, hidden files and folders skipped, a link loop entered once, a
 *     folder also reached through links scanned under its own name, and
 *     files that are not images or that sit outside a class folder listed
 *     as ignored;
 *   - a flat layout: split NULL;
 *   - explicit paths (predict): a file has no label, a folder is a root, a
 *     file given several ways is one image;
 *   - shards: a function of the path, disjoint, covering every item;
 *   - the real ../shared/data/catsdogs: 3,000 images whose labels and splits
 *     match its MANIFEST.tsv line by line.
 */
#include "check.h"
#include "dataset.h"
#include "support.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void touch(const char *rel) {
    const char *p = support_tmp_path(rel);
    char dir[700];
    snprintf(dir, sizeof dir, "%s", p);
    for (char *s = strchr(dir + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(dir, 0755);
        *s = '/';
    }
    FILE *f = fopen(p, "w");
    if (f) {
        fputs("x", f);
        fclose(f);
    }
}

/* Links in the temp tree: n pairs of (target, where), where relative to it. */
static void make_links(const char *const links[][2], size_t n) {
    for (size_t i = 0; i < n; i++) {
        char at[700];
        snprintf(at, sizeof at, "%s", support_tmp_path(links[i][1]));
        CHECK(symlink(links[i][0], at) == 0);
    }
}

/* Item i as "split|label|path" ("-" for NULL). */
static const char *item(const bn_dataset *ds, size_t i) {
    static char buf[600];
    if (i >= ds->n)
        return "(none)";
    snprintf(buf, sizeof buf, "%s|%s|%s", ds->items[i].split ? ds->items[i].split : "-",
             ds->items[i].label ? ds->items[i].label : "-", ds->items[i].path);
    return buf;
}

static void check_manifest(void) {
    bn_dataset ds;
    bn_error err;
    CHECK_MSG(bn_dataset_scan(&ds, shared_path("data/catsdogs"), &err) == BN_OK, "%s", err.msg);
    FILE *f = fopen(shared_path("data/catsdogs/MANIFEST.tsv"), "r");
    CHECK(f != NULL);
    char line[2048];
    size_t rows = 0, agree = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *rel = strtok(line, "\t"), *label = strtok(NULL, "\t");
        if (!rel || !label || strcmp(rel, "relpath") == 0)
            continue;
        rows++;
        char want[600];
        snprintf(want, sizeof want, "%.*s|%s|%s", (int)strcspn(rel, "/"), rel, label, rel);
        for (size_t i = 0; i < ds.n; i++)
            if (strcmp(ds.items[i].path, rel) == 0) {
                agree += strcmp(item(&ds, i), want) == 0;
                break;
            }
    }
    if (f)
        fclose(f);
    CHECK_INT((long long)rows, 3000);
    CHECK_INT((long long)ds.n, 3000);
    CHECK_INT((long long)agree, 3000);
    for (size_t i = 1; i < ds.n; i++)
        if (strcmp(ds.items[i - 1].path, ds.items[i].path) >= 0) {
            CHECK_MSG(0, "not sorted at %s", ds.items[i].path);
            break;
        }
    bn_dataset_free(&ds);
}

int main(void) {
    const char *tmpdir = support_mkdtemp("bn-test-dataset");
    if (!tmpdir)
        return 1;
    touch("split/train/dog/b.PNG");
    touch("split/train/cat/deep/er/a.jpg");
    touch("split/train/cat/notes.txt");
    touch("split/train/cat/.hidden.jpg");
    touch("split/train/.secret/x.jpg");
    touch("split/validation/cat/c.jpeg");
    touch("split/test/dog/d.webp");
    touch("split/README.txt");
    char loop[700];
    snprintf(loop, sizeof loop, "%s", support_tmp_path("split/train/cat/deep/loop"));
    CHECK(symlink("..", loop) == 0);

    bn_dataset ds;
    bn_error err;
    char root[700];
    snprintf(root, sizeof root, "%s", support_tmp_path("split"));
    CHECK_MSG(bn_dataset_scan(&ds, root, &err) == BN_OK, "%s", err.msg);
    CHECK_INT((long long)ds.n, 4);
    CHECK_STR(item(&ds, 0), "test|dog|test/dog/d.webp");
    CHECK_STR(item(&ds, 1), "train|cat|train/cat/deep/er/a.jpg");
    CHECK_STR(item(&ds, 2), "train|dog|train/dog/b.PNG");
    CHECK_STR(item(&ds, 3), "validation|cat|validation/cat/c.jpeg");
    CHECK_INT((long long)ds.nignored, 2);
    CHECK_INT((long long)ds.skipped_files, 2);
    if (ds.nignored == 2) {
        CHECK_STR(ds.ignored[0], "README.txt");
        CHECK_STR(ds.ignored[1], "train/cat/notes.txt");
    }
    bn_dataset_free(&ds);

    /* Flat: class folders at the top. */
    touch("flat/cat/1.jpg");
    touch("flat/dog/2.jpg");
    snprintf(root, sizeof root, "%s", support_tmp_path("flat"));
    CHECK(bn_dataset_scan(&ds, root, &err) == BN_OK);
    CHECK_INT((long long)ds.n, 2);
    CHECK_STR(item(&ds, 0), "-|cat|cat/1.jpg");
    CHECK_STR(item(&ds, 1), "-|dog|dog/2.jpg");
    bn_dataset_free(&ds);

    /* A class folder also reachable through links (one named before it, one
     * after; a split folder too): scanned once, under its own name, whatever
     * order the file system lists them in. */
    touch("linked/train/cat/1.jpg");
    touch("linked/train/dog/2.jpg");
    const char *const links[][2] = {
        {"cat", "linked/train/a_cat"}, {"cat", "linked/train/kitty"}, {"train", "linked/a_train"}};
    make_links(links, sizeof links / sizeof *links);
    snprintf(root, sizeof root, "%s", support_tmp_path("linked"));
    CHECK_MSG(bn_dataset_scan(&ds, root, &err) == BN_OK, "%s", err.msg);
    CHECK_INT((long long)ds.n, 2);
    CHECK_STR(item(&ds, 0), "train|cat|train/cat/1.jpg");
    CHECK_STR(item(&ds, 1), "train|dog|train/dog/2.jpg");
    bn_dataset_free(&ds);

    /* A link inside one class folder to another class's folder (both ways
     * round, and in a split): those images are the other class's, under
     * their own paths, not filed under the class whose walk met the link
     * first. */
    touch("cross/cat/1.jpg");
    touch("cross/dog/2.jpg");
    touch("cross/train/cat/3.jpg");
    touch("cross/train/dog/4.jpg");
    const char *const cross[][2] = {{"../dog", "cross/cat/more"},
                                    {"../cat", "cross/dog/zz"},
                                    {"../dog", "cross/train/cat/dogs"}};
    make_links(cross, sizeof cross / sizeof *cross);
    snprintf(root, sizeof root, "%s", support_tmp_path("cross"));
    CHECK_MSG(bn_dataset_scan(&ds, root, &err) == BN_OK, "%s", err.msg);
    CHECK_INT((long long)ds.n, 4);
    if (ds.n == 4) {
        CHECK_STR(item(&ds, 0), "-|cat|cat/1.jpg");
        CHECK_STR(item(&ds, 1), "-|dog|dog/2.jpg");
        CHECK_STR(item(&ds, 2), "train|cat|train/cat/3.jpg");
        CHECK_STR(item(&ds, 3), "train|dog|train/dog/4.jpg");
    }
    bn_dataset_free(&ds);

    /* Explicit paths: a file has no label; a folder is scanned as a root. */
    touch("loose/z.jpg");
    char file[700], folder[700];
    snprintf(file, sizeof file, "%s", support_tmp_path("loose/z.jpg"));
    snprintf(folder, sizeof folder, "%s", support_tmp_path("flat"));
    char *paths[2] = {file, folder};
    CHECK_MSG(bn_dataset_from_paths(&ds, paths, 2, &err) == BN_OK, "%s", err.msg);
    CHECK_INT((long long)ds.n, 3);
    int unlabelled = 0, cats = 0;
    for (size_t i = 0; i < ds.n; i++) {
        unlabelled += ds.items[i].label == NULL && strstr(ds.items[i].path, "loose/z.jpg");
        cats += ds.items[i].label && strcmp(ds.items[i].label, "cat") == 0 &&
                strstr(ds.items[i].path, "flat/cat/1.jpg");
    }
    CHECK(unlabelled == 1 && cats == 1);
    bn_dataset_free(&ds);

    /* The same file given several ways (twice, with ./ and //, and inside a
     * folder given with a trailing /) is one image, spelled plainly, with
     * the label its class folder gives it. */
    char dup[4][720];
    snprintf(dup[0], sizeof dup[0], "%s", support_tmp_path("flat/cat/1.jpg"));
    snprintf(dup[1], sizeof dup[1], "%s", support_tmp_path("flat/./cat//1.jpg"));
    snprintf(dup[2], sizeof dup[2], "%s/", support_tmp_path("flat"));
    snprintf(dup[3], sizeof dup[3], "%s", support_tmp_path("flat/cat/1.jpg"));
    char *dups[4] = {dup[0], dup[1], dup[2], dup[3]};
    CHECK_MSG(bn_dataset_from_paths(&ds, dups, 4, &err) == BN_OK, "%s", err.msg);
    CHECK_INT((long long)ds.n, 2); /* cat/1.jpg once, dog/2.jpg */
    if (ds.n == 2) {
        CHECK_STR(ds.items[0].path, dup[0]);
        CHECK(ds.items[0].label && strcmp(ds.items[0].label, "cat") == 0);
        CHECK(strstr(ds.items[1].path, "flat/dog/2.jpg") && !strstr(ds.items[1].path, "//"));
    }
    bn_dataset_free(&ds);

    /* The current folder given as "." and "./": its files once, as "cat/1.jpg". */
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(support_tmp_path("flat")) == 0);
    char dot[] = ".", dotslash[] = "./";
    char *here[2] = {dot, dotslash};
    CHECK_MSG(bn_dataset_from_paths(&ds, here, 2, &err) == BN_OK, "%s", err.msg);
    CHECK_INT((long long)ds.n, 2);
    CHECK_STR(item(&ds, 0), "-|cat|cat/1.jpg");
    CHECK_STR(item(&ds, 1), "-|dog|dog/2.jpg");
    bn_dataset_free(&ds);
    CHECK(chdir(cwd) == 0);

    /* Shards of the real data: disjoint, covering, a function of the path. */
    CHECK(bn_dataset_scan(&ds, shared_path("data/catsdogs"), &err) == BN_OK);
    size_t all = ds.n, sum = 0;
    int stable = 1;
    for (int k = 1; k <= 3; k++) {
        bn_dataset part;
        CHECK(bn_dataset_scan(&part, shared_path("data/catsdogs"), &err) == BN_OK);
        bn_dataset_keep_shard(&part, k, 3);
        sum += part.n;
        for (size_t i = 0; i < part.n; i++)
            stable &= bn_dataset_shard_of(part.items[i].path, 3) == k;
        CHECK_MSG(part.n > all / 4, "shard %d of 3 has %zu of %zu items", k, part.n, all);
        bn_dataset_free(&part);
    }
    CHECK_INT((long long)sum, (long long)all);
    CHECK(stable);
    bn_dataset_free(&ds);

    check_manifest();
    support_remove_tree(tmpdir);
    return check_done();
}
