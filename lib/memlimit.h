/*
 * memlimit.h - the process's memory limit, how close it is, and a thread
 * that says so.
 *
 * Near a memory limit the daemon does not fail where we can see it: with
 * RLIMIT_AS the processing thread's first sgemm spins inside OpenBLAS (its
 * 128 MiB buffer's mmap fails and is retried for ever, without a word),
 * so the thread never comes back to the round to report anything
 * (docs/RELIABILITY.md, "Resource limits"). So the check runs on a thread of
 * its own, not in the round: every interval it reads the tightest limit that
 * applies (RLIMIT_AS against the address space in use; cgroup v2 memory.max of
 * our cgroup and its ancestors against the working set), logs one error when
 * the headroom falls under a margin, one more if the processing loop has then
 * stopped finishing rounds, one notice when it clears, and sets the memory
 * gauges of metrics.
 *
 * The thread allocates nothing once started (stack buffers, open/read),
 * so it keeps working where malloc does not.
 */
#ifndef ADVREC_MEMLIMIT_H
#define ADVREC_MEMLIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "metrics.h"

/* Headroom under RLIMIT_AS below which memory is short: the largest
 * single reservations the daemon's libraries make must still fit
 * (OpenBLAS maps a 128 MiB buffer at the first sgemm of a thread; glibc
 * maps 128 MiB to carve out a thread's 64 MiB arena). */
#define ADVREC_MEMLIMIT_AS_MARGIN ((int64_t)256 << 20)
/* Headroom under a cgroup's memory.max below which memory is short: a
 * tenth of the limit, and at least this. */
#define ADVREC_MEMLIMIT_CG_MARGIN_MIN ((int64_t)64 << 20)

/* One reading of the tightest memory limit. */
typedef struct advrec_memlimit_reading_s {
    int64_t limit;  /* bytes; -1: no limit found */
    int64_t used;   /* bytes counted against it; -1 without a limit */
    int64_t margin; /* headroom under which memory is short */
    int short_of;   /* 1: limit - used < margin */
    char what[256]; /* which limit, and what "used" is */
} advrec_memlimit_reading_t;

/* Where the readings come from; NULL members: the real files. For tests. */
typedef struct advrec_memlimit_paths_s {
    const char *proc_cgroup; /* /proc/self/cgroup */
    const char *mountinfo;   /* /proc/self/mountinfo */
    const char *statm;       /* /proc/self/statm */
} advrec_memlimit_paths_t;

typedef struct advrec_memlimit_s advrec_memlimit_t;

/*
 * Reads the limits now (any thread; allocates nothing): RLIMIT_AS's soft
 * limit against the address space in use (VmSize), and memory.max of our
 * cgroup v2 and of each ancestor against its working set (memory.current
 * less inactive_file, the page cache reclaimed first); the one with the
 * least headroom over its margin is reported. cgroup is the directory of
 * our cgroup v2 (advrec_memlimit_new finds it), or NULL: RLIMIT_AS only.
 * paths may be NULL. An unreadable file is no limit.
 */
void advrec_memlimit_read(advrec_memlimit_reading_t *reading,
                          const char *cgroup,
                          const advrec_memlimit_paths_t *paths);

/*
 * Finds our cgroup v2 directory (from /proc/self/cgroup and the cgroup2
 * mount in /proc/self/mountinfo) into dir; 0, or -1 when there is none
 * (no cgroup v2 mounted, a cgroup v1-only host). paths may be NULL.
 */
int advrec_memlimit_cgroup_dir(char *dir, size_t size,
                               const advrec_memlimit_paths_t *paths);

/*
 * Starts the monitor thread: a reading now, then every interval_ms; the
 * log lines on each change (error on memory short, error when the
 * processing loop has also finished no round for stall_ms while short,
 * notice when it clears) and advrec_metrics_set_memory(metrics) on each
 * reading. metrics stays the caller's and must outlive the monitor.
 * Errors: ADVREC_ERR_NOMEM; ADVREC_ERR_IO when the thread cannot be made
 * (errstr says why; the caller may go on without it).
 */
advrec_err_t advrec_memlimit_new(advrec_memlimit_t **memlimitp,
                                 advrec_metrics_t *metrics, int64_t interval_ms,
                                 int64_t stall_ms, char *errstr,
                                 size_t errstr_size);

/* Stops the thread and frees the monitor; NULL is fine. */
void advrec_memlimit_destroy(advrec_memlimit_t *memlimit);

#endif
