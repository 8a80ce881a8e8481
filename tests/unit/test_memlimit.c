/* Unit tests for memlimit.c: finding our cgroup v2, reading a cgroup's
 * memory.max and working set and RLIMIT_AS against VmSize, the margins,
 * and the tightest limit winning. Fake /proc and cgroup files in a
 * temporary directory; RLIMIT_AS is this process's own, set and restored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "memlimit.h"
#include "metrics_int.h"

static char tmp[256];

static void put_file(const char *rel, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmp, rel);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

static void make_dir(const char *rel)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", tmp, rel);
    mkdir(path, 0700);
}

static void test_cgroup_dir(void)
{
    char proc[512], mounts[512], dir[1024], want[1024], line[1024];
    advrec_memlimit_paths_t paths = {proc, mounts, NULL};

    snprintf(proc, sizeof(proc), "%s/cgroup", tmp);
    snprintf(mounts, sizeof(mounts), "%s/mountinfo", tmp);
    /* A hybrid host: v1 lines first, the v2 path last. */
    put_file("cgroup", "4:memory:/x\n0::/system.slice/advrecd.service\n");
    snprintf(line, sizeof(line),
             "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw\n"
             "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw\n"
             "41 31 0:38 / %s/cg rw,relatime - cgroup2 cgroup2 rw\n",
             tmp);
    put_file("mountinfo", line);
    CHECK_INT(advrec_memlimit_cgroup_dir(dir, sizeof(dir), &paths), 0);
    snprintf(want, sizeof(want), "%s/cg/system.slice/advrecd.service", tmp);
    CHECK_STR(dir, want);
    /* The root cgroup is the mount point itself. */
    put_file("cgroup", "0::/\n");
    CHECK_INT(advrec_memlimit_cgroup_dir(dir, sizeof(dir), &paths), 0);
    snprintf(want, sizeof(want), "%s/cg", tmp);
    CHECK_STR(dir, want);
    /* A mount of a sub-tree: paths under its root are relative to it. */
    put_file("cgroup", "0::/system.slice/a.service\n");
    snprintf(line, sizeof(line),
             "41 31 0:38 /system.slice %s/cg rw - cgroup2 cgroup2 rw\n", tmp);
    put_file("mountinfo", line);
    CHECK_INT(advrec_memlimit_cgroup_dir(dir, sizeof(dir), &paths), 0);
    snprintf(want, sizeof(want), "%s/cg/a.service", tmp);
    CHECK_STR(dir, want);
    /* No cgroup2 mounted, or no v2 line: none. */
    put_file("mountinfo", "35 31 0:32 / /m rw - cgroup cgroup rw\n");
    CHECK_INT(advrec_memlimit_cgroup_dir(dir, sizeof(dir), &paths), -1);
    put_file("cgroup", "4:memory:/x\n");
    CHECK_INT(advrec_memlimit_cgroup_dir(dir, sizeof(dir), &paths), -1);
}

/* Sets RLIMIT_AS's soft limit to unlimited (when the hard one allows):
 * the cgroup cases below must not see this process's own. 0, or -1. */
static int as_unlimited(struct rlimit *saved)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_AS, saved))
        return -1;
    rl = *saved;
    rl.rlim_cur = rl.rlim_max;
    return rl.rlim_cur == RLIM_INFINITY && setrlimit(RLIMIT_AS, &rl) == 0 ? 0
                                                                          : -1;
}

static void test_cgroup_limit(void)
{
    char dir[512];
    advrec_memlimit_reading_t r;
    struct rlimit saved;

    if (as_unlimited(&saved)) {
        fprintf(stderr, "skipped: RLIMIT_AS cannot be lifted here\n");
        return;
    }
    make_dir("cg2");
    make_dir("cg2/svc");
    put_file("cg2/cgroup.procs", "");
    put_file("cg2/svc/cgroup.procs", "");
    put_file("cg2/memory.max", "max\n");
    put_file("cg2/memory.current", "5000000000\n");
    /* 1 GiB; 1000 MiB charged of which 10 MiB inactive page cache: a
     * working set of 990 MiB, 34 MiB left, under the 102 MiB margin. */
    put_file("cg2/svc/memory.max", "1073741824\n");
    put_file("cg2/svc/memory.current", "1048576000\n");
    put_file("cg2/svc/memory.stat", "anon 1\nfile 2\nactive_file 3\n"
                                    "inactive_file 10485760\nslab 4\n");
    snprintf(dir, sizeof(dir), "%s/cg2/svc", tmp);
    advrec_memlimit_read(&r, dir, NULL);
    CHECK_INT(r.limit, 1073741824);
    CHECK_INT(r.used, 1038090240);
    CHECK_INT(r.margin, 107374182);
    CHECK_INT(r.short_of, 1);
    CHECK(strstr(r.what, "memory.max of cgroup") != NULL);
    CHECK(strstr(r.what, "cg2/svc") != NULL);
    /* 500 MiB: not short. */
    put_file("cg2/svc/memory.current", "524288000\n");
    advrec_memlimit_read(&r, dir, NULL);
    CHECK_INT(r.limit, 1073741824);
    CHECK_INT(r.short_of, 0);
    /* A tighter ancestor wins: 600 MiB with 590 MiB in use. */
    put_file("cg2/memory.max", "629145600\n");
    put_file("cg2/memory.current", "618659840\n");
    advrec_memlimit_read(&r, dir, NULL);
    CHECK_INT(r.limit, 629145600);
    CHECK_INT(r.margin, (int64_t)64 << 20);
    CHECK_INT(r.short_of, 1);
    /* No cgroup, no RLIMIT_AS: no limit. */
    advrec_memlimit_read(&r, NULL, NULL);
    CHECK_INT(r.limit, -1);
    CHECK_INT(r.used, -1);
    CHECK_INT(r.short_of, 0);
    setrlimit(RLIMIT_AS, &saved);
}

static void test_rlimit_as(void)
{
    char statm[512], text[64];
    advrec_memlimit_paths_t paths = {NULL, NULL, statm};
    advrec_memlimit_reading_t r;
    struct rlimit saved, rl;
    long long page = sysconf(_SC_PAGESIZE), vm = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    int64_t limit;

    CHECK(f && fscanf(f, "%lld", &vm) == 1);
    if (f)
        fclose(f);
    if (getrlimit(RLIMIT_AS, &saved)) {
        CHECK(0);
        return;
    }
    /* Well above what this process maps, so nothing here fails. */
    limit = (int64_t)(vm * page) + ((int64_t)1 << 30);
    if (saved.rlim_max != RLIM_INFINITY && (int64_t)saved.rlim_max < limit) {
        fprintf(stderr, "skipped: RLIMIT_AS's hard limit is too low\n");
        return;
    }
    rl = saved;
    rl.rlim_cur = (rlim_t)limit;
    CHECK_INT(setrlimit(RLIMIT_AS, &rl), 0);
    snprintf(statm, sizeof(statm), "%s/statm", tmp);
    /* 100 MiB left: under the 256 MiB margin. */
    snprintf(text, sizeof(text), "%lld 1 1 1 0 1 0\n",
             (long long)((limit - ((int64_t)100 << 20)) / page));
    put_file("statm", text);
    advrec_memlimit_read(&r, NULL, &paths);
    CHECK_INT(r.limit, limit);
    CHECK_INT(r.margin, ADVREC_MEMLIMIT_AS_MARGIN);
    CHECK(r.limit - r.used >= (int64_t)100 << 20);
    CHECK(r.limit - r.used < ((int64_t)100 << 20) + page);
    CHECK_INT(r.short_of, 1);
    CHECK(strstr(r.what, "RLIMIT_AS") != NULL);
    /* 300 MiB left: not short. */
    snprintf(text, sizeof(text), "%lld 1 1 1 0 1 0\n",
             (long long)((limit - ((int64_t)300 << 20)) / page));
    put_file("statm", text);
    advrec_memlimit_read(&r, NULL, &paths);
    CHECK_INT(r.limit, limit);
    CHECK_INT(r.short_of, 0);
    CHECK_INT(setrlimit(RLIMIT_AS, &saved), 0);
}

/* The monitor starts, reads, and stops promptly; without metrics too. */
static void test_monitor_starts_and_stops(void)
{
    advrec_memlimit_t *ml = NULL;
    advrec_metrics_t *metrics = advrec_metrics_new(0);
    char errstr[256];

    CHECK(metrics != NULL);
    CHECK_INT(
        advrec_memlimit_new(&ml, metrics, 50, 1000, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK(ml != NULL);
    usleep(120000);
    advrec_memlimit_destroy(ml);
    CHECK_INT(
        advrec_memlimit_new(&ml, NULL, 3600000, 1000, errstr, sizeof(errstr)),
        ADVREC_OK);
    advrec_memlimit_destroy(ml); /* must not wait an hour */
    advrec_memlimit_destroy(NULL);
    advrec_metrics_destroy(metrics);
}

/* The gauges follow the monitor: memory short with RLIMIT_AS 100 MiB
 * over this process's VmSize, then cleared once the limit is lifted. */
static int await_short(advrec_metrics_t *metrics, int want, int64_t *limit)
{
    int64_t used;
    int short_of = -1;

    for (int i = 0; i < 200; i++) { /* 2 s at most */
        advrec_metrics__memory(metrics, limit, &used, &short_of);
        if (short_of == want)
            return 1;
        usleep(10000);
    }
    return 0;
}

static void test_monitor_sets_gauges(void)
{
    advrec_memlimit_t *ml = NULL;
    advrec_metrics_t *metrics = advrec_metrics_new(0);
    struct rlimit saved, rl;
    long long vm = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    int64_t limit = 0;
    char errstr[256];

    CHECK(f && fscanf(f, "%lld", &vm) == 1);
    if (f)
        fclose(f);
    if (!metrics || as_unlimited(&saved)) {
        fprintf(stderr, "skipped: RLIMIT_AS cannot be lifted here\n");
        advrec_metrics_destroy(metrics);
        return;
    }
    rl = saved;
    rl.rlim_cur = (rlim_t)(vm * sysconf(_SC_PAGESIZE) + (100 << 20));
    CHECK_INT(setrlimit(RLIMIT_AS, &rl), 0);
    CHECK_INT(
        advrec_memlimit_new(&ml, metrics, 20, 1000, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK(await_short(metrics, 1, &limit));
    CHECK_INT(limit, (int64_t)rl.rlim_cur);
    rl.rlim_cur = RLIM_INFINITY;
    CHECK_INT(setrlimit(RLIMIT_AS, &rl), 0);
    CHECK(await_short(metrics, 0, &limit));
    CHECK_INT(limit, -1);
    advrec_memlimit_destroy(ml);
    advrec_metrics_destroy(metrics);
    setrlimit(RLIMIT_AS, &saved);
}

int main(void)
{
    snprintf(tmp, sizeof(tmp), "%s/test_memlimit.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    make_dir("cg");
    RUN(test_cgroup_dir);
    RUN(test_cgroup_limit);
    RUN(test_rlimit_as);
    RUN(test_monitor_starts_and_stops);
    RUN(test_monitor_sets_gauges);
    {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", tmp);
    }
    return DONE();
}
