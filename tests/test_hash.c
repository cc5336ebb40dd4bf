/*
 * test_hash.c: SHA-256 and MD5 against published vectors and real files.
 *
 * - FIPS 180-2 appendix B examples (SHA-256) and the RFC 1321 appendix A.5
 *   test suite (MD5), typed in from the documents.
 * - Every padding boundary: the digests of "a" x n for n = 0..199,
 *   concatenated as hex and hashed again. The two constants came from
 *   Python's hashlib:
 *     cat = ''.join(hashlib.new(alg, b'a'*n).hexdigest() for n in range(200))
 *     hashlib.new(alg, cat.encode()).hexdigest()
 * - Streaming in uneven pieces gives the one-shot digest.
 * - Real files: the sha256 column of ../shared/data/catsdogs/MANIFEST.tsv,
 *   and the md5/sha256 of ../shared/models/vgg16_random_notop.h5 as printed by
 *   `md5sum` and `sha256sum` (GNU coreutils 9.1) on that file.
 */
#include "check.h"
#include "hash.h"

#include <errno.h>

static void sha_is(const char *msg, const char *want) {
    char hex[65];
    bn_hash_sha256_hex(msg, strlen(msg), hex);
    CHECK_STR(hex, want);
}

static void md5_is(const char *msg, const char *want) {
    char hex[33];
    bn_hash_md5_hex(msg, strlen(msg), hex);
    CHECK_STR(hex, want);
}

static void test_vectors(void) {
    sha_is("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_is("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_is("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
           "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    sha_is("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnop"
           "qrlmnopqrsmnopqrstnopqrstu",
           "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

    md5_is("", "d41d8cd98f00b204e9800998ecf8427e");
    md5_is("a", "0cc175b9c0f1b6a831c399e269772661");
    md5_is("abc", "900150983cd24fb0d6963f7d28e17f72");
    md5_is("message digest", "f96b697d7cb7938d525a2f31aaf161d0");
    md5_is("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b");
    md5_is("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
           "d174ab98d277d9f5a5611c2c9f419d9f");
    md5_is("1234567890123456789012345678901234567890123456789012345678901234567890123456789"
           "0",
           "57edf4a22be3c955ac49da2e2107b67a");

    /* One million 'a' (FIPS 180-2 B.3), fed in 1000 pieces of 1000. */
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    bn_hash_sha256 s;
    bn_hash_sha256_init(&s);
    for (int i = 0; i < 1000; i++)
        bn_hash_sha256_update(&s, chunk, sizeof chunk);
    char hex[65];
    bn_hash_sha256_final(&s, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_padding_boundaries(void) {
    static char as[200], cat_sha[200 * 64 + 1], cat_md5[200 * 32 + 1];
    memset(as, 'a', sizeof as);
    for (int n = 0; n < 200; n++) {
        char h[65], m[33];
        bn_hash_sha256_hex(as, (size_t)n, h);
        bn_hash_md5_hex(as, (size_t)n, m);
        memcpy(cat_sha + 64 * n, h, 64);
        memcpy(cat_md5 + 32 * n, m, 32);
    }
    char h[65], m[33];
    bn_hash_sha256_hex(cat_sha, 200 * 64, h);
    bn_hash_md5_hex(cat_md5, 200 * 32, m);
    CHECK_STR(h, "019f2b9f1af27a53a1f046da7e98af2c179f431e4b5bebb000e74040917a4123");
    CHECK_STR(m, "49f6cc3eb4491fe05535571716f39a67");
}

/* Pieces of every size from 0 to 130 bytes, so updates start and end at
 * every offset inside a block. */
static void test_streaming(void) {
    enum { N = 20000 };
    static unsigned char buf[N];
    unsigned x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    char want_s[65], want_m[33], got_s[65], got_m[33];
    bn_hash_sha256_hex(buf, N, want_s);
    bn_hash_md5_hex(buf, N, want_m);
    bn_hash_sha256 s;
    bn_hash_md5 m;
    bn_hash_sha256_init(&s);
    bn_hash_md5_init(&m);
    size_t off = 0, piece = 0;
    while (off < N) {
        size_t take = piece % 131;
        if (take > N - off)
            take = N - off;
        bn_hash_sha256_update(&s, buf + off, take);
        bn_hash_md5_update(&m, buf + off, take);
        off += take;
        piece++;
    }
    bn_hash_sha256_final(&s, got_s);
    bn_hash_md5_final(&m, got_m);
    CHECK_STR(got_s, want_s);
    CHECK_STR(got_m, want_m);
}

/* First rows of the manifest: relpath, label, sha256, ... */
static void test_manifest_files(void) {
    FILE *f = fopen(shared_path("data/catsdogs/MANIFEST.tsv"), "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char line[4096];
    int rows = 0, checked = 0;
    while (fgets(line, sizeof line, f) && checked < 8) {
        if (rows++ == 0)
            continue; /* header */
        if (rows % 150 != 2)
            continue; /* a spread of files, cats and dogs */
        char *rel = strtok(line, "\t");
        strtok(NULL, "\t");
        char *want = strtok(NULL, "\t");
        CHECK(rel && want && strlen(want) == 64);
        if (!rel || !want)
            continue;
        char path[4200], hex[65];
        snprintf(path, sizeof path, "%s", shared_path("data/catsdogs"));
        strncat(path, "/", sizeof path - strlen(path) - 1);
        strncat(path, rel, sizeof path - strlen(path) - 1);
        CHECK_INT(bn_hash_sha256_file(path, hex), 0);
        CHECK_MSG(strcmp(hex, want) == 0, "%s: %s, manifest says %s", rel, hex, want);
        checked++;
    }
    fclose(f);
    CHECK_INT(checked, 8);
}

static void test_weights_file(void) {
    const char *w = shared_path("models/vgg16_random_notop.h5");
    char m[33], s[65];
    CHECK_INT(bn_hash_md5_file(w, m), 0);
    CHECK_STR(m, "cf3b0da033d61c1f9d5a6d60b40c3e4f");
    CHECK_INT(bn_hash_sha256_file(w, s), 0);
    CHECK_STR(s, "c974c2ab26fa3cd90860dd16a70601764a5d55517ad54988e107a676085f8ef1");

    errno = 0;
    CHECK_INT(bn_hash_md5_file("/nonexistent/weights.h5", m), -1);
    CHECK_INT(errno, ENOENT);
    errno = 0;
    CHECK_INT(bn_hash_sha256_file("/nonexistent/weights.h5", s), -1);
    CHECK_INT(errno, ENOENT);
}

int main(void) {
    test_vectors();
    test_padding_boundaries();
    test_streaming();
    test_manifest_files();
    test_weights_file();
    return check_done();
}
