/*
 * memlimit.c - the process's memory limit and the thread that watches it
 * (memlimit.h says why it is a thread and not part of the round).
 *
 * Owns: the cgroup v2 directory found at start, the monitor thread, and
 * its state (memory short or not, a stall reported or not). Every file is
 * read with open/read into stack buffers: nothing here calls malloc after
 * advrec_memlimit_new, so the watch goes on when allocations fail.
 */
#include "memlimit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define MIB(b) ((long long)((b) >> 20))
/* The monitor's stack: a log line's buffers and a copy of the counters. */
#define MONITOR_STACK ((size_t)256 << 10)

struct advrec_memlimit_s {
    advrec_metrics_t *metrics; /* the caller's */
    int64_t interval_ms, stall_ms;
    char cgroup[1024]; /* our cgroup v2 directory; "" none */
    pthread_t thread;
    int started;
    pthread_mutex_t lock; /* guards stop */
    pthread_cond_t cond;
    int stop;
    /* The monitor thread's own. */
    int short_of;       /* memory short (logged as an error) */
    int stall_logged;   /* the stalled loop was reported while short */
    int limit_logged;   /* the limit in effect was logged once */
    int64_t last_limit; /* the limit of the last reading */
};

/* Reads path into buf (NUL-terminated, at most size - 1 bytes); its
 * length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;

    if (fd < 0)
        return -1;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* Calls fn on each line of path (without its newline) until fn returns
 * non-zero; lines longer than the buffer are skipped. -1 when path cannot
 * be opened, else fn's last return. */
static int each_line(const char *path, int (*fn)(char *line, void *arg),
                     void *arg)
{
    char buf[4096];
    size_t have = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0, skipping = 0;

    if (fd < 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        char *start = buf, *nl;
        while ((nl = memchr(start, '\n', have - (size_t)(start - buf)))) {
            *nl = '\0';
            if (!skipping && (rc = fn(start, arg)))
                goto out;
            skipping = 0;
            start = nl + 1;
        }
        have -= (size_t)(start - buf);
        memmove(buf, start, have);
        if (have == sizeof(buf) - 1) { /* a line too long: skip it */
            have = 0;
            skipping = 1;
        }
    }
    if (have && !skipping) {
        buf[have] = '\0';
        rc = fn(buf, arg);
    }
out:
    close(fd);
    return rc;
}

/* "0::/path" of /proc/self/cgroup: the cgroup v2 path. */
static int cgroup_line(char *line, void *arg)
{
    char *path = arg;

    if (strncmp(line, "0::", 3) != 0)
        return 0;
    size_t n = strnlen(line + 3, 1023);

    /* A longer path is cut (then not found): as good as no cgroup. */
    memcpy(path, line + 3, n);
    path[n] = '\0';
    return 1;
}

typedef struct mount_s {
    char root[1024], point[1024];
} mount_t;

/* A mountinfo line of the cgroup2 file system: its root and mount point
 * (fields 4 and 5; the file system type follows " - "). */
static int mount_line(char *line, void *arg)
{
    mount_t *mt = arg;
    char *sep = strstr(line, " - "), *f[5], *save = NULL;

    if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
        return 0;
    *sep = '\0';
    f[0] = strtok_r(line, " ", &save);
    for (int i = 1; i < 5; i++)
        if (!(f[i] = strtok_r(NULL, " ", &save)))
            return 0;
    snprintf(mt->root, sizeof(mt->root), "%s", f[3]);
    snprintf(mt->point, sizeof(mt->point), "%s", f[4]);
    return 1;
}

int advrec_memlimit_cgroup_dir(char *dir, size_t size,
                               const advrec_memlimit_paths_t *paths)
{
    char path[1024] = "";
    mount_t mt = {"", ""};
    const char *rel;
    size_t rlen;

    if (each_line(paths && paths->proc_cgroup ? paths->proc_cgroup
                                              : "/proc/self/cgroup",
                  cgroup_line, path) != 1 ||
        each_line(paths && paths->mountinfo ? paths->mountinfo
                                            : "/proc/self/mountinfo",
                  mount_line, &mt) != 1)
        return -1;
    /* A mount of a sub-tree (its root is not "/") shows the paths under
     * it relative to that root. */
    rel = path;
    rlen = strlen(mt.root);
    if (strcmp(mt.root, "/") != 0 && strncmp(path, mt.root, rlen) == 0 &&
        (path[rlen] == '/' || path[rlen] == '\0'))
        rel = path + rlen;
    if (strcmp(rel, "/") == 0)
        rel = "";
    if ((size_t)snprintf(dir, size, "%s%s", mt.point, rel) >= size)
        return -1;
    return 0;
}

/* A whole number of bytes from a file ("max" or unreadable: -1). */
static int64_t read_bytes(const char *dir, const char *name)
{
    char path[1200], buf[64], *end;
    long long v;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (read_small(path, buf, sizeof(buf)) <= 0)
        return -1;
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (end == buf || errno || v < 0)
        return -1;
    return (int64_t)v;
}

static int inactive_file_line(char *line, void *arg)
{
    int64_t *v = arg;

    if (strncmp(line, "inactive_file ", 14) != 0)
        return 0;
    *v = strtoll(line + 14, NULL, 10);
    return 1;
}

/* Keeps the candidate (limit, used, margin) in r when its headroom over
 * its margin is the smallest so far. */
static void consider(advrec_memlimit_reading_t *r, int64_t limit, int64_t used,
                     int64_t margin, const char *what)
{
    if (r->limit >= 0 &&
        limit - used - margin >= r->limit - r->used - r->margin)
        return;
    r->limit = limit;
    r->used = used;
    r->margin = margin;
    snprintf(r->what, sizeof(r->what), "%s", what);
}

void advrec_memlimit_read(advrec_memlimit_reading_t *r, const char *cgroup,
                          const advrec_memlimit_paths_t *paths)
{
    struct rlimit rl;
    char buf[256], dir[1024], what[sizeof(r->what)];

    r->limit = r->used = -1;
    r->margin = 0;
    r->short_of = 0;
    snprintf(r->what, sizeof(r->what), "no memory limit");
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        read_small(paths && paths->statm ? paths->statm : "/proc/self/statm",
                   buf, sizeof(buf)) > 0) {
        long long pages = strtoll(buf, NULL, 10);
        consider(r, (int64_t)rl.rlim_cur,
                 (int64_t)pages * (int64_t)sysconf(_SC_PAGESIZE),
                 ADVREC_MEMLIMIT_AS_MARGIN,
                 "RLIMIT_AS (address space in use, VmSize)");
    }
    /* Our cgroup and every ancestor up to the hierarchy's root (the first
     * directory without cgroup.procs is above it): any may be the one
     * whose memory.max the kernel enforces first. */
    if (cgroup && cgroup[0])
        snprintf(dir, sizeof(dir), "%s", cgroup);
    else
        dir[0] = '\0';
    while (dir[0]) {
        char path[1200];
        int64_t max, current, inactive = 0;
        char *slash;

        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        if (access(path, F_OK) != 0)
            break;
        max = read_bytes(dir, "memory.max");
        current = read_bytes(dir, "memory.current");
        if (max >= 0 && current >= 0) {
            int64_t margin = max / 10;
            snprintf(path, sizeof(path), "%s/memory.stat", dir);
            each_line(path, inactive_file_line, &inactive);
            if (margin < ADVREC_MEMLIMIT_CG_MARGIN_MIN)
                margin = ADVREC_MEMLIMIT_CG_MARGIN_MIN;
            snprintf(what, sizeof(what),
                     "memory.max of cgroup %.160s (working set: "
                     "memory.current less inactive_file)",
                     dir);
            consider(r, max,
                     current > inactive && inactive > 0 ? current - inactive
                                                        : current,
                     margin, what);
        }
        if (!(slash = strrchr(dir, '/')) || slash == dir)
            break;
        *slash = '\0';
    }
    r->short_of = r->limit >= 0 && r->limit - r->used < r->margin;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One reading, its log lines and gauges (the monitor thread). */
static void check(advrec_memlimit_t *ml)
{
    advrec_memlimit_reading_t r;
    int64_t left;

    advrec_memlimit_read(&r, ml->cgroup[0] ? ml->cgroup : NULL, NULL);
    left = r.limit - r.used;
    if (r.limit >= 0 && (!ml->limit_logged || r.limit != ml->last_limit)) {
        log_info("memory: the limit is %s: %lld MiB, %lld MiB in use "
                 "(memory is short under %lld MiB left)",
                 r.what, MIB(r.limit), MIB(r.used), MIB(r.margin));
        ml->limit_logged = 1;
    }
    ml->last_limit = r.limit;
    if (!ml->short_of && r.short_of) {
        ml->short_of = 1;
        ml->stall_logged = 0;
        log_err("memory: near the limit: %lld MiB of %lld MiB in use, %lld "
                "MiB left (under the %lld MiB margin), limit: %s. "
                "Allocations fail or are about to; libraries retry some "
                "without a word (OpenBLAS for ever), so consumption may "
                "stall "
                "(nothing is lost: it resumes once memory is available). "
                "Raise the limit (prlimit --as, LimitAS=, MemoryMax=), or "
                "set or lower state.memory.limit so the working set fits",
                MIB(r.used), MIB(r.limit), MIB(left), MIB(r.margin), r.what);
    } else if (ml->short_of &&
               (r.limit < 0 || left >= r.margin + r.margin / 4)) {
        /* A quarter of the margin of hysteresis: a use that wavers at
         * the margin does not log twice a second. */
        ml->short_of = 0;
        if (r.limit < 0)
            log_notice("memory: no limit any more: memory is no longer "
                       "short");
        else
            log_notice("memory: no longer short: %lld MiB of %lld MiB in "
                       "use, %lld MiB left, limit: %s",
                       MIB(r.used), MIB(r.limit), MIB(left), r.what);
    }
    if (ml->short_of && !ml->stall_logged && ml->metrics) {
        advrec_counters_t c;
        int64_t age;
        advrec_metrics_read(ml->metrics, &c);
        age = mono_ms() - c.round_end_ms;
        if (c.round_end_ms > 0 && !c.stopping && age >= ml->stall_ms) {
            ml->stall_logged = 1;
            log_err("memory: no processing round has finished for %lld s "
                    "with memory short (%lld MiB of %lld MiB in use): the "
                    "processing thread is stalled on an allocation that "
                    "keeps failing; it goes on by itself once the limit is "
                    "raised",
                    (long long)(age / 1000), MIB(r.used), MIB(r.limit));
        }
    }
    if (ml->metrics)
        advrec_metrics_set_memory(ml->metrics, r.limit, r.used, ml->short_of);
}

static void *monitor_main(void *arg)
{
    advrec_memlimit_t *ml = arg;
    struct timespec until;

    pthread_mutex_lock(&ml->lock);
    while (!ml->stop) {
        pthread_mutex_unlock(&ml->lock);
        check(ml);
        pthread_mutex_lock(&ml->lock);
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += ml->interval_ms / 1000;
        until.tv_nsec += (long)(ml->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!ml->stop &&
               pthread_cond_timedwait(&ml->cond, &ml->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&ml->lock);
    return NULL;
}

advrec_err_t advrec_memlimit_new(advrec_memlimit_t **mlp,
                                 advrec_metrics_t *metrics, int64_t interval_ms,
                                 int64_t stall_ms, char *errstr,
                                 size_t errstr_size)
{
    advrec_memlimit_t *ml;
    pthread_condattr_t ca;
    pthread_attr_t ta;
    int rc;

    *mlp = NULL;
    if (!(ml = calloc(1, sizeof(*ml))))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    ml->metrics = metrics;
    ml->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    ml->stall_ms = stall_ms;
    ml->last_limit = -1;
    if (advrec_memlimit_cgroup_dir(ml->cgroup, sizeof(ml->cgroup), NULL))
        ml->cgroup[0] = '\0';
    pthread_mutex_init(&ml->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ml->cond, &ca);
    pthread_condattr_destroy(&ca);
    /* A small stack: under RLIMIT_AS every byte of address space counts. */
    pthread_attr_init(&ta);
    pthread_attr_setstacksize(&ta, MONITOR_STACK);
    rc = pthread_create(&ml->thread, &ta, monitor_main, ml);
    pthread_attr_destroy(&ta);
    if (rc) {
        advrec_memlimit_destroy(ml);
        return advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                             "cannot start the memory monitor thread: %s",
                             strerror(rc));
    }
    pthread_setname_np(ml->thread, "advrec:memory");
    ml->started = 1;
    *mlp = ml;
    return ADVREC_OK;
}

void advrec_memlimit_destroy(advrec_memlimit_t *ml)
{
    if (!ml)
        return;
    if (ml->started) {
        pthread_mutex_lock(&ml->lock);
        ml->stop = 1;
        pthread_cond_signal(&ml->cond);
        pthread_mutex_unlock(&ml->lock);
        pthread_join(ml->thread, NULL);
    }
    pthread_cond_destroy(&ml->cond);
    pthread_mutex_destroy(&ml->lock);
    free(ml);
}
