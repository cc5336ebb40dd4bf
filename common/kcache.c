/*
 * kcache.c: transformed kernels kept on disk between runs (kcache.h).
 *
 * One file per entry, <dir>/<kind>-<key>.bin: a header (magic, kind, key,
 * payload size, payload digest, header digest), then the payload at 2 MiB
 * (KC_PAYLOAD). A load checks the size, the header and the payload's digest
 * before handing anything out; the payload is mapped with MAP_POPULATE,
 * since the digest reads every page anyway.
 *
 * Writes go to a temporary file in the same directory, renamed over the
 * entry. No fsync: after a crash the renamed file may hold garbage on some
 * file systems, and the digest turns that into a miss, which rewrites it;
 * forcing 400 MB to disk would cost the first run seconds for nothing.
 * A mapping outlives a concurrent replacement (rename leaves the old inode
 * to its readers).
 */
#include "kcache.h"
#include "cpu.h"
#include "pool.h"
#include "weights.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KC_HEADER 4096
/* The payload starts 2 MiB into the file (a hole after the header: no disk),
 * and is mapped at a 2 MiB-aligned address: then the kernel maps the page
 * cache's large folios with huge-page entries (/proc/PID/smaps:
 * FilePmdMapped), and the products that stream U pay no more TLB misses than
 * with the transparent huge pages of a computed U. */
#define KC_PAYLOAD ((size_t)2 << 20)
#define KC_KIND 48
/* A temporary entry file this old was left by a writer that died: writing
 * 418 MB takes seconds, not minutes. */
#define KC_STALE_SECONDS 600
static const char kc_magic[8] = {'B', 'N', 'K', 'C', 'A', 'C', 'H', '1'};

typedef struct {
    char magic[8];
    char kind[KC_KIND];
    uint64_t key[2];
    uint64_t bytes;
    uint64_t sum[2];     /* digest of the payload */
    uint64_t hdr_sum[2]; /* digest of the fields above */
} kc_header;

/* ---- the digest ------------------------------------------------------------ */

#define KC_P1 0x9E3779B185EBCA87ULL
#define KC_P2 0xC2B2AE3D27D4EB4FULL
#define KC_P3 0x165667B19E3779F9ULL

static inline uint64_t kc_rotl(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

/* One lane's step: the xxHash64 round (multiply, rotate, multiply). */
static inline uint64_t kc_round(uint64_t acc, uint64_t w) {
    acc += w * KC_P2;
    return kc_rotl(acc, 31) * KC_P1;
}

static inline uint64_t kc_avalanche(uint64_t h) {
    h ^= h >> 33;
    h *= KC_P2;
    h ^= h >> 29;
    h *= KC_P3;
    return h ^ (h >> 32);
}

/* Eight independent lanes over 64-byte stripes, so the multiplies of one
 * stripe overlap: about 10 GB/s, faster than the page cache delivers. */
bn_kcache_key bn_kcache_digest(const void *data, size_t bytes, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t lane[8];
    for (int i = 0; i < 8; i++)
        lane[i] = seed + KC_P1 * (uint64_t)(i + 1);
    size_t full = bytes / 64;
    for (size_t s = 0; s < full; s++, p += 64) {
        uint64_t w[8];
        memcpy(w, p, 64);
        for (int i = 0; i < 8; i++)
            lane[i] = kc_round(lane[i], w[i]);
    }
    uint64_t w[8] = {0};
    memcpy(w, p, bytes % 64);
    for (int i = 0; i < 8; i++)
        lane[i] = kc_round(lane[i], w[i] ^ (uint64_t)bytes);
    bn_kcache_key k = {{(uint64_t)bytes * KC_P3, seed ^ KC_P2}};
    for (int i = 0; i < 8; i++) {
        k.h[0] = (k.h[0] ^ kc_avalanche(lane[i])) * KC_P1 + KC_P2;
        k.h[1] = kc_rotl(k.h[1] ^ kc_avalanche(lane[7 - i] + (uint64_t)i), 27) * KC_P2 + KC_P3;
    }
    k.h[0] = kc_avalanche(k.h[0]);
    k.h[1] = kc_avalanche(k.h[1] ^ k.h[0]);
    return k;
}

bn_kcache_key bn_kcache_key_of(const char *kind, const int *dims, int ndims, const void *kernel,
                               size_t bytes) {
    /* kind and dims first, then the kernel seeded with their digest */
    char head[KC_KIND + 8 * 12];
    memset(head, 0, sizeof head);
    snprintf(head, KC_KIND, "%s", kind);
    for (int i = 0; i < ndims && i < 8; i++)
        memcpy(head + KC_KIND + 4 * i, &dims[i], sizeof(int));
    bn_kcache_key h = bn_kcache_digest(head, sizeof head, 0);
    bn_kcache_key a = bn_kcache_digest(kernel, bytes, h.h[0]);
    bn_kcache_key b = bn_kcache_digest(&a, sizeof a, h.h[1]);
    return b;
}

/* The payload's digest: the digest of the digests of its 4 MiB chunks, so
 * that the pool's threads share the work (a 67 MB layer: 9 ms instead of
 * 18 at about 7 GB/s per core) and the result does not depend on how many
 * there are. */
#define KC_CHUNK ((size_t)4 << 20)

typedef struct {
    const unsigned char *data;
    size_t bytes, nchunks;
    bn_kcache_key *sums;
    bn_pool_queue q;
} kc_sum_job;

static void kc_sum_work(void *arg, int tid, int nth) {
    (void)tid;
    (void)nth;
    kc_sum_job *j = arg;
    unsigned c;
    while (bn_pool_take(&j->q, (unsigned)j->nchunks, &c)) {
        size_t at = (size_t)c * KC_CHUNK;
        size_t n = j->bytes - at < KC_CHUNK ? j->bytes - at : KC_CHUNK;
        j->sums[c] = bn_kcache_digest(j->data + at, n, 2);
    }
}

static int kc_payload_sum(const void *data, size_t bytes, bn_kcache_key *out) {
    kc_sum_job j = {.data = data, .bytes = bytes, .nchunks = (bytes + KC_CHUNK - 1) / KC_CHUNK};
    j.sums = malloc(j.nchunks * sizeof *j.sums);
    if (!j.sums)
        return -1;
    bn_pool_run(kc_sum_work, &j, j.nchunks > 1 ? bn_cpu_threads() : 1);
    *out = bn_kcache_digest(j.sums, j.nchunks * sizeof *j.sums, 3);
    free(j.sums);
    return 0;
}

/* ---- state: the mappings handed out, and the counters ------------------------ */

typedef struct kc_map {
    void *payload;
    size_t len;
    struct kc_map *next;
} kc_map;

static pthread_mutex_t kc_mu = PTHREAD_MUTEX_INITIALIZER;
static kc_map *kc_maps;
static bn_kcache_stats kc_stats;

static void kc_count(long *counter) {
    pthread_mutex_lock(&kc_mu);
    (*counter)++;
    pthread_mutex_unlock(&kc_mu);
}

void bn_kcache_get_stats(bn_kcache_stats *out) {
    pthread_mutex_lock(&kc_mu);
    *out = kc_stats;
    pthread_mutex_unlock(&kc_mu);
}

/* ---- files ------------------------------------------------------------------- */

int bn_kcache_dir(char *out, size_t n) {
    const char *env = getenv("BOTTLENECK_KERNEL_CACHE");
    if (env && (!strcmp(env, "off") || !strcmp(env, "0")))
        return -1;
    int len;
    if (env && *env) {
        len = snprintf(out, n, "%s", env);
    } else {
        char base[4096];
        if (bn_weights_cache_dir(base, sizeof base, NULL) != 0)
            return -1;
        len = snprintf(out, n, "%s/kernels", base);
    }
    return len > 0 && (size_t)len < n ? 0 : -1;
}

static int kc_path(char *out, size_t n, const char *kind, bn_kcache_key key) {
    char dir[4096];
    if (bn_kcache_dir(dir, sizeof dir) != 0)
        return -1;
    int len = snprintf(out, n, "%s/%s-%016llx%016llx.bin", dir, kind, (unsigned long long)key.h[0],
                       (unsigned long long)key.h[1]);
    return len > 0 && (size_t)len < n ? 0 : -1;
}

static void kc_fill_header(kc_header *h, const char *kind, bn_kcache_key key, uint64_t bytes,
                           bn_kcache_key sum) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, kc_magic, sizeof kc_magic);
    snprintf(h->kind, sizeof h->kind, "%s", kind);
    h->key[0] = key.h[0];
    h->key[1] = key.h[1];
    h->bytes = bytes;
    h->sum[0] = sum.h[0];
    h->sum[1] = sum.h[1];
    bn_kcache_key hs = bn_kcache_digest(h, offsetof(kc_header, hdr_sum), 1);
    h->hdr_sum[0] = hs.h[0];
    h->hdr_sum[1] = hs.h[1];
}

/* Map len bytes of fd from offset off (a multiple of KC_PAYLOAD) at an
 * address aligned to KC_PAYLOAD: reserve more, map inside, trim. */
static void *kc_map_aligned(int fd, size_t len, off_t off) {
    size_t span = len + KC_PAYLOAD;
    char *r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
        return MAP_FAILED;
    char *a = (char *)(((uintptr_t)r + KC_PAYLOAD - 1) & ~(uintptr_t)(KC_PAYLOAD - 1));
    void *p = mmap(a, len, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_POPULATE, fd, off);
    if (p == MAP_FAILED) {
        munmap(r, span);
        return MAP_FAILED;
    }
    if (a > r)
        munmap(r, (size_t)(a - r));
    size_t tail = (size_t)(r + span - (a + len));
    if (tail > 0)
        munmap(a + len, tail);
    return p;
}

const void *bn_kcache_map(const char *kind, bn_kcache_key key, size_t bytes) {
    char path[4400];
    if (bytes == 0 || strlen(kind) >= KC_KIND || kc_path(path, sizeof path, kind, key) != 0)
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        kc_count(errno == ENOENT ? &kc_stats.misses : &kc_stats.rejected);
        return NULL;
    }
    struct stat st;
    kc_header h;
    void *payload = MAP_FAILED;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
             (uint64_t)st.st_size == KC_PAYLOAD + bytes &&
             pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h;
    if (ok) {
        /* the header as it must be for this entry, down to its digest */
        kc_header want;
        kc_fill_header(&want, kind, key, bytes, (bn_kcache_key){{h.sum[0], h.sum[1]}});
        ok = memcmp(&h, &want, sizeof h) == 0;
    }
    if (ok)
        payload = kc_map_aligned(fd, bytes, (off_t)KC_PAYLOAD);
    close(fd);
    if (payload == MAP_FAILED) {
        kc_count(&kc_stats.rejected);
        return NULL;
    }
    bn_kcache_key sum;
    kc_map *m = malloc(sizeof *m);
    if (!m || kc_payload_sum(payload, bytes, &sum) != 0 || sum.h[0] != h.sum[0] ||
        sum.h[1] != h.sum[1]) {
        free(m);
        munmap(payload, bytes);
        kc_count(&kc_stats.rejected);
        return NULL;
    }
    *m = (kc_map){payload, bytes, NULL};
    pthread_mutex_lock(&kc_mu);
    m->next = kc_maps;
    kc_maps = m;
    kc_stats.hits++;
    pthread_mutex_unlock(&kc_mu);
    return payload;
}

int bn_kcache_release(const void *p) {
    if (!p)
        return 0;
    pthread_mutex_lock(&kc_mu);
    kc_map **link = &kc_maps;
    while (*link && (*link)->payload != p)
        link = &(*link)->next;
    kc_map *m = *link;
    if (m)
        *link = m->next;
    pthread_mutex_unlock(&kc_mu);
    if (!m)
        return 0;
    munmap(m->payload, m->len);
    free(m);
    return 1;
}

static int kc_write_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* mkdir -p, each component 0755 */
static int kc_mkdirs(const char *dir) {
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        buf[i] = i < n ? '/' : '\0';
    }
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    errno = ENOTDIR; /* not EEXIST from a mkdir above: that means busy to the caller */
    return -1;
}

int bn_kcache_store(const char *kind, bn_kcache_key key, const void *data, size_t bytes) {
    char dir[4096], path[4400], tmp[4400];
    if (strlen(kind) >= KC_KIND || bn_kcache_dir(dir, sizeof dir) != 0 ||
        kc_path(path, sizeof path, kind, key) != 0)
        return -1;
    /* One temporary name per entry, created exclusively: when many
     * processes start together on an empty cache (a job array on one
     * node, or nodes sharing a home directory), one writes the entry and
     * the others go on without, instead of each writing 418 MB. A
     * temporary file older than KC_STALE_SECONDS was left by a killed
     * writer: removed, and this process writes. */
    int len = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = len > 0 && (size_t)len < sizeof tmp && kc_mkdirs(dir) == 0
                 ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)
                 : -1;
    struct stat st;
    if (fd < 0 && errno == EEXIST && stat(tmp, &st) == 0 &&
        time(NULL) - st.st_mtime > KC_STALE_SECONDS && unlink(tmp) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        kc_count(errno == EEXIST ? &kc_stats.busy : &kc_stats.failed);
        return -1;
    }
    kc_header h;
    bn_kcache_key sum;
    if (kc_payload_sum(data, bytes, &sum) != 0) {
        close(fd);
        unlink(tmp);
        kc_count(&kc_stats.failed);
        return -1;
    }
    kc_fill_header(&h, kind, key, bytes, sum);
    char header[KC_HEADER];
    memset(header, 0, sizeof header);
    memcpy(header, &h, sizeof h);
    int ok = kc_write_all(fd, header, sizeof header) == 0 &&
             lseek(fd, (off_t)KC_PAYLOAD, SEEK_SET) == (off_t)KC_PAYLOAD &&
             kc_write_all(fd, data, bytes) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        unlink(tmp);
        kc_count(&kc_stats.failed);
        return -1;
    }
    kc_count(&kc_stats.stored);
    return 0;
}
