/*
 * test_cpu_caches.c: the data cache sizes the Winograd engine sizes its
 * blocks by (cpu.h's bn_cpu_caches).
 *
 * 1. The $BN_CACHES parser: every key, the K/M/G units, partial overrides
 *    (keys not given keep their value), and a list of malformed values that
 *    must each be refused with a reason and leave the sizes untouched.
 * 2. The sysfs reader on fake trees this test writes: this host's layout
 *    (AMD EPYC: 48K L1d, 32K L1i to be ignored, 1M L2, 32M L3 shared by
 *    "0-1"), an Intel-like one with the indexes out of order and a list
 *    "0-55,112-167", a machine without L3 (L2 becomes the last level), and
 *    trees that must be refused (no L2, a broken size).
 * 3. This machine: sysfs and CPUID (when they answer) agree on the L1d and
 *    L2, and bn_cpu_caches() takes $BN_CACHES when it is valid and reports
 *    "BN_CACHES ignored" when it is not (in child processes: the caches are
 *    read once per process).
 * 4. A virtual machine's claim that its 2 CPUs own a 260 MiB L3 becomes 2
 *    MiB a CPU, and says so; real shares (the AMD EPYC VMs' 16 MiB, a Xeon's
 *    105 MiB over 56 CPUs, an X3D's 96 over 16) are kept; what
 *    bn_cpu_caches() detects here never has a larger share.
 */
#include "check.h"
#include "cpu.h"
#include "support.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define K ((size_t)1 << 10)
#define M ((size_t)1 << 20)

static bn_cpu_cache_sizes base(void) {
    bn_cpu_cache_sizes c = {.l1d = 32 * K, .l2 = 1 * M, .l3 = 32 * M, .l3_cpus = 2, .line = 64};
    return c;
}

static void test_parse(void) {
    bn_cpu_cache_sizes c = base();
    const char *why = "x";
    CHECK_INT(bn_cpu_caches_parse("l1d=48K,l2=2M,l3=105M,l3_cpus=56", &c, &why), 0);
    CHECK(why == NULL);
    CHECK(c.l1d == 48 * K && c.l2 == 2 * M && c.l3 == 105 * M && c.l3_cpus == 56 && c.line == 64);
    c = base();
    CHECK_INT(bn_cpu_caches_parse("l2=262144", &c, &why), 0); /* plain bytes, one key */
    CHECK(c.l2 == 256 * K && c.l1d == 32 * K && c.l3 == 32 * M && c.l3_cpus == 2);
    CHECK_INT(bn_cpu_caches_parse("l3=1g,line=128,l1d=64k", &c, &why), 0);
    CHECK(c.l3 == ((size_t)1 << 30) && c.line == 128 && c.l1d == 64 * K);

    static const char *const bad[] = {
        "",
        "l2",
        "l2=",
        "=1M",
        "l2=1M,",
        ",l2=1M",
        "l2=1M,,l3=2M",
        "l2=1X",
        "l2=1MB",
        "l2=-1M",
        "l2= 1M",
        "L2=1M",
        "l4=1M",
        "l2=1M;l3=2M",
        "l3_cpus=2K",
        "line=48",
        "line=0",
        "l3_cpus=0",
        "l2=0",
        "l1d=1",
        "l2=2G",
        "l2=99999999999999999999999M",
        "l3=18446744073709551615",
        "l2=1M l3=32M",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = base();
        why = NULL;
        CHECK_MSG(bn_cpu_caches_parse(bad[i], &c, &why) == -1, "accepted \"%s\"", bad[i]);
        CHECK_MSG(why && *why, "no reason for \"%s\"", bad[i]);
        bn_cpu_cache_sizes b = base();
        CHECK_MSG(c.l1d == b.l1d && c.l2 == b.l2 && c.l3 == b.l3 && c.l3_cpus == b.l3_cpus &&
                      c.line == b.line,
                  "\"%s\" changed the sizes", bad[i]);
    }
    char buf[192];
    c = base();
    c.l3 = 105 * M;
    snprintf(c.source, sizeof c.source, "test");
    bn_cpu_caches_format(&c, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "l1d=32K l2=1M l3=105M l3_cpus=2 line=64 (test)"), "%s", buf);
}

/* root/cpu0/cache/index<i>/{level,type,size,shared_cpu_list,coherency_line_size} */
static void fake_index(const char *root, int i, const char *level, const char *type,
                       const char *size, const char *list) {
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/cpu0", root);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/cpu0/cache", root);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/cpu0/cache/index%d", root, i);
    CHECK(mkdir(dir, 0755) == 0);
    const char *names[] = {"level", "type", "size", "shared_cpu_list", "coherency_line_size"};
    const char *values[] = {level, type, size, list, "64"};
    for (int k = 0; k < 5; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        if (f) {
            fprintf(f, "%s\n", values[k]);
            fclose(f);
        }
    }
}

static void test_sysfs(void) {
    const char *tmp = support_mkdtemp("caches");
    char root[4096];
    bn_cpu_cache_sizes c;

    /* This host (AMD EPYC, 2 vCPUs). */
    snprintf(root, sizeof root, "%s/amd", tmp);
    mkdir(root, 0755);
    fake_index(root, 0, "1", "Data", "48K", "0");
    fake_index(root, 1, "1", "Instruction", "32K", "0");
    fake_index(root, 2, "2", "Unified", "1024K", "0");
    fake_index(root, 3, "3", "Unified", "32768K", "0-1");
    CHECK_INT(bn_cpu_caches_read_sysfs(root, &c), 0);
    CHECK(c.l1d == 48 * K && c.l2 == 1 * M && c.l3 == 32 * M && c.l3_cpus == 2 && c.line == 64);
    CHECK(!strcmp(c.source, "sysfs"));

    /* Intel-like: indexes in another order, a gap, a long shared list. */
    snprintf(root, sizeof root, "%s/intel", tmp);
    mkdir(root, 0755);
    fake_index(root, 3, "1", "Data", "48K", "0,112");
    fake_index(root, 1, "2", "Unified", "2048K", "0,112");
    fake_index(root, 5, "3", "Unified", "107520K", "0-55,112-167");
    CHECK_INT(bn_cpu_caches_read_sysfs(root, &c), 0);
    CHECK(c.l1d == 48 * K && c.l2 == 2 * M && c.l3 == 105 * M && c.l3_cpus == 112);

    /* No L3: the L2 is the last level, one CPU's own. */
    snprintf(root, sizeof root, "%s/nol3", tmp);
    mkdir(root, 0755);
    fake_index(root, 0, "1", "Data", "32K", "0");
    fake_index(root, 1, "2", "Unified", "512K", "0");
    CHECK_INT(bn_cpu_caches_read_sysfs(root, &c), 0);
    CHECK(c.l3 == 512 * K && c.l3_cpus == 1);

    /* Refused, *out untouched: no L2; an L2 whose size is not a size; no tree. */
    bn_cpu_cache_sizes keep = base();
    snprintf(root, sizeof root, "%s/nol2", tmp);
    mkdir(root, 0755);
    fake_index(root, 0, "1", "Data", "32K", "0");
    fake_index(root, 1, "3", "Unified", "8M", "0-3");
    c = keep;
    CHECK_INT(bn_cpu_caches_read_sysfs(root, &c), -1);
    CHECK(c.l2 == keep.l2 && c.l3 == keep.l3);
    snprintf(root, sizeof root, "%s/broken", tmp);
    mkdir(root, 0755);
    fake_index(root, 0, "1", "Data", "32K", "0");
    fake_index(root, 1, "2", "Unified", "lots", "0");
    CHECK_INT(bn_cpu_caches_read_sysfs(root, &c), -1);
    snprintf(root, sizeof root, "%s/absent", tmp);
    CHECK_INT(bn_cpu_caches_read_sysfs(root, &c), -1);
    CHECK(c.l1d == keep.l1d);
    support_remove_tree(tmp);
}

/* The caches are read once per process: a fresh one (this program again,
 * with --expect) must see l2 and a source containing `source` under
 * BN_CACHES=env. */
static const char *self;

static int child_sees(const char *env, size_t l2, const char *source) {
    pid_t pid = fork();
    if (pid == 0) {
        char arg[32];
        snprintf(arg, sizeof arg, "%zu", l2);
        setenv("BN_CACHES", env, 1);
        execl(self, self, "--expect", arg, source, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* The child's side: 0 when bn_cpu_caches() is as expected. */
static int expect(const char *l2, const char *source) {
    const bn_cpu_cache_sizes *c = bn_cpu_caches();
    int ok = c->l2 == (size_t)strtoull(l2, NULL, 10) && strstr(c->source, source) != NULL;
    if (!ok)
        fprintf(stderr, "BN_CACHES=%s: l2 %zu, source %s\n", getenv("BN_CACHES"), c->l2, c->source);
    return ok ? 0 : 1;
}

static void test_this_machine(void) {
    bn_cpu_cache_sizes s, id;
    int have_sysfs = bn_cpu_caches_read_sysfs("/sys/devices/system/cpu", &s) == 0;
    int have_cpuid = bn_cpu_caches_read_cpuid(&id) == 0;
    if (have_sysfs)
        printf("sysfs: l1d %zu l2 %zu l3 %zu l3_cpus %d line %d\n", s.l1d, s.l2, s.l3, s.l3_cpus,
               s.line);
    if (have_cpuid)
        printf("cpuid: l1d %zu l2 %zu l3 %zu l3_cpus %d line %d\n", id.l1d, id.l2, id.l3,
               id.l3_cpus, id.line);
    if (have_sysfs && have_cpuid) /* the L3's sharing differs: CPUID counts the host's CPUs */
        CHECK(s.l1d == id.l1d && s.l2 == id.l2 && s.line == id.line);
    unsetenv("BN_CACHES");
    const bn_cpu_cache_sizes *c = bn_cpu_caches();
    char buf[192];
    bn_cpu_caches_format(c, buf, sizeof buf);
    printf("bn_cpu_caches: %s\n", buf);
    CHECK(c->l1d > 0 && c->l2 > 0 && c->l3 > 0 && c->l3_cpus > 0);
    const char *from = have_sysfs ? "sysfs" : have_cpuid ? "cpuid" : "defaults";
    CHECK_MSG(!strncmp(c->source, from, strlen(from)), "%s", c->source);
    CHECK(c->l3 / (size_t)c->l3_cpus <= BN_CPU_L3_SHARE_MAX);

    /* bn_cpu_caches_force, and back. */
    bn_cpu_cache_sizes f = base();
    f.l2 = 256 * K;
    bn_cpu_caches_force(&f);
    CHECK(bn_cpu_caches()->l2 == 256 * K && !strcmp(bn_cpu_caches()->source, "forced"));
    bn_cpu_caches_force(NULL);
    CHECK(bn_cpu_caches() == c);

    CHECK(child_sees("l2=2M,l3=105M,l3_cpus=56", 2 * M, "BN_CACHES"));
    CHECK(child_sees("l2=3M,l3=105M,l3_cpus=56,", c->l2, "BN_CACHES ignored"));
    CHECK(child_sees("l2=lots", c->l2, "BN_CACHES ignored"));
}

static void test_plausible(void) {
    bn_cpu_cache_sizes c = base();
    c.l2 = 2 * M;
    c.l3 = 260 * M;
    snprintf(c.source, sizeof c.source, "sysfs");
    CHECK_INT(bn_cpu_caches_plausible(&c), 1);
    CHECK_INT(c.l3_cpus, 130);
    CHECK(c.l3 == 260 * M && c.l2 == 2 * M && c.l1d == 32 * K);
    CHECK_MSG(!strcmp(c.source, "sysfs; 2 CPUs cannot own it all: 130 assumed"), "%s", c.source);
    CHECK_INT(bn_cpu_caches_plausible(&c), 0); /* once corrected, it stays */
    CHECK_INT(c.l3_cpus, 130);

    c.l3 = 33 * M; /* rounded up: never more than 2 MiB a CPU */
    c.l3_cpus = 1;
    CHECK_INT(bn_cpu_caches_plausible(&c), 1);
    CHECK_INT(c.l3_cpus, 17);

    c.l3 = 64 * (M << 10); /* the largest L3 the parser takes, on one CPU */
    c.l3_cpus = 1;
    CHECK_INT(bn_cpu_caches_plausible(&c), 1);
    CHECK_INT(c.l3_cpus, 32768);

    struct {
        size_t l3;
        int cpus;
    } real[] = {{32 * M, 2}, {105 * M, 56}, {96 * M, 16}, {16 * M, 1}, {4 * M, 2}};
    for (size_t i = 0; i < sizeof real / sizeof real[0]; i++) {
        bn_cpu_cache_sizes r = base();
        r.l3 = real[i].l3;
        r.l3_cpus = real[i].cpus;
        snprintf(r.source, sizeof r.source, "sysfs");
        CHECK_INT(bn_cpu_caches_plausible(&r), 0);
        CHECK(r.l3_cpus == real[i].cpus && !strcmp(r.source, "sysfs"));
    }
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--expect"))
        return expect(argv[2], argv[3]);
    self = "/proc/self/exe";
    test_parse();
    test_sysfs();
    test_plausible();
    test_this_machine();
    return check_done();
}
