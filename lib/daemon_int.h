/*
 * daemon_int.h - the pipeline's internals shared by its files (not API):
 * daemon.c (the round, stop), daemon_build.c (building from the
 * configuration, teardown), daemon_commit.c (offsets noted,
 * state commits and their finish, the flags they carry), daemon_kafka.c
 * (the Kafka clients, their callbacks, start), daemon_reload.c (SIGHUP
 * reloads), daemon_registry.c (the Schema Registry: ids, held partitions)
 * and daemon_cache.c (the user cache of a memory budget). The
 * pipeline is one module split along those seams; nothing outside lib/daemon*
 * includes this.
 */
#ifndef ADVREC_DAEMON_INT_H
#define ADVREC_DAEMON_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "broker.h"
#include "codec.h"
#include "daemon.h"
#include "detect.h"
#include "engine.h"
#include "http.h"
#include "kafka.h"
#include "memlimit.h"
#include "metrics.h"
#include "outbox.h"
#include "registry.h"
#include "store.h"

#define TOPIC_CLICKS         0
#define TOPIC_PURCHASES      1
#define TOPIC_CONTROL        2 /* forget requests (topic.control), or none */
#define FLUSH_TIMEOUT_MS     30000
#define DLQ_LOG_PER_INTERVAL 20
/* Outputs recorded and not yet acknowledged before consumption pauses:
 * the stored set stays bounded while the broker is away, and nothing is
 * dropped to keep it so. */
#define OUTBOX_MAX_RECORDS 16384
#define OUTBOX_MAX_BYTES   ((size_t)64 << 20)
/* Value bytes kept of a dead letter the broker refuses as too large. */
#define DLQ_TRUNCATE_BYTES 65536
/* With an HTTP endpoint: librdkafka's statistics (consumer lag) this often,
 * RocksDB's size properties read at most this often. */
#define LAG_INTERVAL_MS 5000
#define STORE_SIZES_MS  1000
/* Offsets are committed to Kafka (with the state's lineage as metadata) at
 * most this often, and at a clean stop; reading them back at assignment
 * waits at most COMMITTED_TIMEOUT_MS. */
#define KAFKA_COMMIT_MS      1000
#define COMMITTED_TIMEOUT_MS 10000
#define LOSS_EWMA_ALPHA      0.01 /* per training step */
/* Rows changed since the last commit that make a commit due before
 * state.commit.interval.ms: the WriteBatch stays within tens of MiB. */
#define COMMIT_MAX_ROWS 65536
/* recs.backlog.policy=pause: at most one pause (and its end) logged this
 * often; the others are counted. */
#define BACKLOG_LOG_MS 10000

typedef struct advrec_daemon_changelog_s advrec_daemon_changelog_t;
typedef struct advrec_daemon_model_s advrec_daemon_model_t;

struct advrec_daemon_s {
    advrec_conf_t *conf;           /* owned */
    advrec_daemon_changelog_t *cl; /* topic.changelog, or NULL: off */
    advrec_daemon_model_t *model;  /* topic.model, or NULL: off */
    /* Input partitions watched for a fetch that stopped (librdkafka's
     * statistics, every LAG_INTERVAL_MS): advrec_daemon__stall_check. */
    struct advrec_daemon_stall_s {
        int topic;
        int32_t partition;
        int64_t next;  /* this run's next offset when last seen moving */
        int64_t since; /* clock ms since it is behind and not moving; 0 */
        int64_t lag;
        int restart; /* fetch it again at the next round */
        char state[24];
    } stall[ADVREC_METRICS_LAG_MAX];
    uint32_t n_stall;
    advrec_codec_t *codec;
    advrec_engine_t *engine;
    advrec_detect_t *detect; /* the anomaly detectors, the engine's judge */
    advrec_store_t *store;   /* RocksDB state, or NULL: state.dir = "" */
    advrec_broker_t *broker; /* embedded broker, or NULL */
    advrec_outbox_t *outbox; /* every output owed */
    advrec_metrics_t *metrics;
    advrec_counters_t *c; /* the metrics' writer counters */
    advrec_kafka_t *consumer;
    advrec_kafka_t *producer;
    rd_kafka_queue_t *cq; /* the consumer's queue, for batch polls */
    int32_t rec_schema_id;
    int32_t anomaly_schema_id;
    const char *inputs[3]; /* input topic names, by TOPIC_* (NULL: none) */
    atomic_int stop;
    atomic_int checkpoint; /* requested by advrec_daemon_checkpoint() */
    atomic_int reload;     /* requested by advrec_daemon_reload() */
    char *reload_path;     /* where a reload reads from; owned */
    char **reload_sets;    /* ... and its -X, in order; owned */
    size_t n_reload_sets;
    char fatal[1024];       /* first fatal error seen */
    advrec_err_t fatal_err; /* its code: KAFKA, STORE, NOMEM */
    int paused;             /* consumption paused: outbox full */
    /* recs.backlog.policy=pause (daemon.c, backlog_hold): consumption
     * paused for the refresh backlog, since when; when the consumer queue
     * was last polled, and half of its max.poll.interval.ms (read at the
     * first pause): paused or not, it is polled at least that often. */
    int backlog_paused;
    int64_t backlog_since_ms;
    int64_t backlog_log_ms; /* the last pause logged (BACKLOG_LOG_MS) */
    int backlog_logged;     /* this pause was logged: so is its end */
    int backlog_unlogged;   /* a pause went without a line since */
    int64_t polled_ms;
    int64_t poll_guard_ms;
    uint64_t dlq_logged;   /* DLQ records logged since the last stats line */
    advrec_err_t flag_err; /* while taking a round's flags */
    advrec_http_t *http;   /* the HTTP endpoint, or NULL */
    uint64_t preq_seen;    /* events seen by the prequential sampler */
    int64_t sizes_ms;      /* when the store's sizes were last read */
    int64_t mem_ms;        /* when the memory gauges were last computed */

    /* The user cache of state.memory.limit (daemon_cache.c): the slots the
     * user tables are sized for (0: no limit), and whether a commit was
     * written since the last eviction. */
    uint32_t cache_slots;
    int evict_due;
    /* Rows changed that make a commit due before its interval:
     * COMMIT_MAX_ROWS, less under a memory budget (a batch is held in
     * memory several times over: built, in flight, in the memtable). */
    uint32_t commit_max_rows;
    int64_t evict_ms; /* when the last eviction pass ran */
    /* The state's epoch (advrec_state_epoch) of the commit being written,
     * and of the last one written: users whose rows went into a batch of
     * a later epoch are not on disk yet. */
    uint64_t inflight_epoch, written_epoch;

    /* The next offset committed in this run, per input partition (by
     * TOPIC_* and partition; 0: none yet), so a partition that comes back
     * after a rebalance resumes where this process left it, also with
     * state in memory or on the embedded broker. */
    int64_t *run_next[3];
    int32_t run_next_cap[3];

    /* What the next state commit records: the next offset of every input
     * partition consumed since the last one (topic is d->inputs[t]). */
    advrec_store_offset_t *offs;
    size_t n_offs, offs_cap;
    int64_t commit_ms; /* when the state was last committed */
    /* A commit being written by the store's thread (committing), and the
     * offsets it records: Kafka hears of them once it is done. */
    int committing;
    advrec_store_offset_t *c_offs;
    size_t c_n_offs, c_offs_cap;

    /* Offsets committed to the state and not yet to Kafka (NULL: none),
     * and when Kafka last got some. */
    rd_kafka_topic_partition_list_t *kcommit;
    int64_t kcommit_ms;
    /* The state lost acknowledged commits (advrec_store_lost) and
     * state.offset.missing lets the daemon go on: every partition it is
     * assigned is resumed by that policy. */
    int lost;

    /* The Schema Registry (daemon_registry.c), or NULL: none. Partitions
     * held back while it is away, with their records; ids it did not give
     * a usable schema for; when held partitions are tried again. */
    advrec_registry_t *registry;
    struct advrec_daemon_held_s *held;
    size_t n_held, held_cap;
    struct advrec_daemon_refused_s *refused;
    size_t n_refused, refused_cap;
    int64_t registry_retry_ms;
    int64_t registry_backoff_ms;
    size_t registry_cached; /* schemas the state's cache gave at start */

    /* Users leaving the state (daemon_expire.c): ids deleted on disk
     * only, until the commit that deletes them is written (a memory
     * budget must not read them back), with the epoch of that commit;
     * where the visits of the stored users resume; whether the last
     * visit for room found nobody. */
    struct advrec_idmap_s *gone_ids;
    struct gone_s *gone;
    size_t n_gone, gone_cap;
    uint32_t *gone_free;
    size_t n_gone_free;
    uint32_t gone_next;
    uint32_t room_cursor, ttl_cursor, ttl_slot;
    int room_dry;

    /* The memory limit's watch (lib/memlimit: its own thread), or NULL. */
    advrec_memlimit_t *memlimit;

    /* Round scratch, allocated once. */
    rd_kafka_message_t **batch;
    advrec_scored_item_t *rec_items;
    unsigned char *enc;
    size_t enc_size;
};

static inline int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records next as the committed next offset of (topic, partition) in this
 * run; a topic that is not an input is ignored. -1 on no memory (the
 * partition then resumes from the store or Kafka, as before). */
/*
 * Finishes the state commit being written in the background, if any: when
 * its write is done (block: after waiting for it), its flags and dead
 * letters become due and its offsets are queued for Kafka. A failed write
 * stops the daemon (advrec_daemon__fail) and is returned. Anything that
 * commits the store directly calls this first.
 */
advrec_err_t advrec_daemon__commit_finish(advrec_daemon_t *d, int block);

int advrec_daemon__run_offset_set(advrec_daemon_t *d, const char *topic,
                                  int32_t partition, int64_t next);

/* --- state commits (daemon_commit.c) --- */

/* Commits what was applied since the last state commit: before a
 * checkpoint, at a revocation, at stop, and when advrec_daemon__commit_due
 * says so. */
advrec_err_t advrec_daemon__commit(advrec_daemon_t *d);

/* Whether the state is due for a commit after this round (at now, ms). */
int advrec_daemon__commit_due(advrec_daemon_t *d, int64_t now);

/* Commits the state (in the store's thread when background), as
 * advrec_daemon__commit does but without resetting the interval's clock. A
 * failure stops the daemon and is returned. */
advrec_err_t advrec_daemon__commit_state(advrec_daemon_t *d, int background);

/* Stops run() after the round with err and a message "what: why" (the
 * first one wins; why may be NULL). */
void advrec_daemon__fail(advrec_daemon_t *d, advrec_err_t err, const char *what,
                         const char *why);

/* Commits the offsets of d->kcommit to Kafka with the state's lineage as
 * their metadata ("advrec1 <id> <seq>"), asynchronously or not, and
 * empties it. Failures are logged at debug level: Kafka's committed
 * offsets show progress and witness the state's (docs/STATE.md), the
 * state's own offsets are what the daemon resumes from. */
void advrec_daemon__kafka_commit(advrec_daemon_t *d, int async);

/* What advrec_daemon__apply did with a record. */
typedef enum advrec_daemon_apply_e {
    ADVREC_APPLY_DONE = 0, /* applied, or recorded as a dead letter */
    ADVREC_APPLY_HELD = 1, /* not touched: it needs the registry, away */
} advrec_daemon_apply_t;

/*
 * Decodes and applies one input record (daemon.c); anything wrong with it
 * goes to the dead-letter topic. A record held back is left as it was:
 * the caller keeps it (advrec_daemon__registry_hold) and does not count its
 * offset. m stays the caller's.
 */
advrec_daemon_apply_t advrec_daemon__apply(advrec_daemon_t *d,
                                           const rd_kafka_message_t *m,
                                           int64_t now);

/* Records the offsets after the records msgs[0..n) (NULL entries and
 * consumer errors skipped) as where the state in memory stands (daemon.c).
 * -1 on no memory: the daemon stops. */
int advrec_daemon__note_offsets(advrec_daemon_t *d, rd_kafka_message_t **msgs,
                                ssize_t n);

/* --- the Schema Registry (daemon_registry.c) --- */

/* Builds the registry client when schema.registry.url is set, and
 * registers the schemas the state cached in the codec. Errors: as
 * advrec_registry_new, and the store's. */
advrec_err_t advrec_daemon__registry_new(advrec_daemon_t *d, char *errstr,
                                         size_t errstr_size);

/* Our Recommendation and Anomaly ids (d->rec_schema_id, ...) from the
 * registry, or from the state's record of them while it is away; waits for
 * the registry when neither knows them, until stopped (ids then -1,
 * ADVREC_OK). ADVREC_ERR_SCHEMA when the registry refuses them. */
advrec_err_t advrec_daemon__registry_outputs(advrec_daemon_t *d, char *errstr,
                                             size_t errstr_size);

/* What advrec_daemon__registry_resolve found for a record whose writer id
 * the codec does not know. */
typedef enum advrec_daemon_resolve_e {
    ADVREC_RESOLVE_FINAL, /* no usable schema: *reason and why say why */
    ADVREC_RESOLVE_AGAIN, /* registered now: decode again */
    ADVREC_RESOLVE_HOLD,  /* the registry is away: hold the record back */
} advrec_daemon_resolve_t;

advrec_daemon_resolve_t
advrec_daemon__registry_resolve(advrec_daemon_t *d, const rd_kafka_message_t *m,
                                advrec_dlq_reason_t *reason, char *why,
                                size_t why_size);

/* Takes m (1) when its partition is held back: it is kept after the held
 * records, in order. 0: not held, m is still the caller's. */
int advrec_daemon__registry_keep(advrec_daemon_t *d, rd_kafka_message_t *m);

/* Holds m's partition back from m on (takes m; pauses the partition). */
void advrec_daemon__registry_hold(advrec_daemon_t *d, rd_kafka_message_t *m);

/* Once the backoff is over, applies the held records in order while the
 * registry answers; a partition whose records are all applied is resumed. */
void advrec_daemon__registry_retry(advrec_daemon_t *d, int64_t now);

/* Forgets the held records of revoked partitions and resumes them. */
void advrec_daemon__registry_revoked(
    advrec_daemon_t *d, const rd_kafka_topic_partition_list_t *parts);

/* Frees the client and the held records. */
void advrec_daemon__registry_destroy(advrec_daemon_t *d);

/* --- the user cache of a memory budget (daemon_cache.c) --- */

/* After the state is loaded and the outbox made: the outbox's users are
 * stored by uid; with state.memory.limit the engine reads users back
 * (its loader) and the user tables are sized to the budget. */
void advrec_daemon__cache_init(advrec_daemon_t *d);

/* User id's slot: in memory, or read back from the store (*user). NOT_FOUND
 * when the store has none either; another error stops the daemon. */
advrec_err_t advrec_daemon__cache_user(advrec_daemon_t *d, const char *id,
                                       uint32_t *user, char *errstr,
                                       size_t errstr_size);

/* After a commit was written (and every second): evicts the least
 * recently active users whose rows are on disk until the estimate fits the
 * budget (nothing without state.memory.limit), and sets the memory gauges. */
void advrec_daemon__cache_evict(advrec_daemon_t *d);

/* Sets the memory gauges (resident users, bytes per user and per item);
 * scans the users in memory. */
void advrec_daemon__cache_gauges(advrec_daemon_t *d);

/* Reloads the configuration between two rounds (daemon_reload.c). */
void advrec_daemon__reload_conf(advrec_daemon_t *d);

/* --- daemon.c: dead letters ------------------------------------------- */

/* Records m as a dead letter of reason, why in its headers (produced after
 * the commit; no memory for it stops the daemon). */
void advrec_daemon__dead_letter(advrec_daemon_t *d, const rd_kafka_message_t *m,
                                advrec_dlq_reason_t reason, const char *why);

/* --- daemon_expire.c: users leaving the state -------------------------- */

/* Why a user was deleted (the metrics' cause label, in this order:
 * lib/metrics_text.c names them). */
enum {
    ADVREC_DELETE_TTL = 0,      /* no event for state.user.ttl */
    ADVREC_DELETE_FORGET = 1,   /* a forget request on topic.control */
    ADVREC_DELETE_CAPACITY = 2, /* room for a new user */
    ADVREC_DELETE__COUNT = 3
};

/* Makes the engine ask for room when the user table is full; with a store,
 * the set of ids deleted and not yet committed. */
advrec_err_t advrec_daemon__expire_init(advrec_daemon_t *d, char *errstr,
                                        size_t errstr_size);
void advrec_daemon__expire_destroy(advrec_daemon_t *d);

/* Before a commit: deletes the users whose last event is state.user.ttl
 * behind the latest event time (a bounded slice per commit). */
void advrec_daemon__expire(advrec_daemon_t *d);

/* A record of topic.control: a forget request (a tombstone keyed by user
 * id) deletes the user; anything else is a dead letter (bad-control). */
advrec_daemon_apply_t advrec_daemon__forget(advrec_daemon_t *d,
                                            const rd_kafka_message_t *m);

/* Whether id was deleted and the commit deleting it is not written yet. */
int advrec_daemon__gone(const advrec_daemon_t *d, const char *id);

/* A commit was written (d->written_epoch): forgets the ids it deleted. */
void advrec_daemon__gone_written(advrec_daemon_t *d);

/* Deletes user id from memory and the state without any output (the
 * changelog's tombstone: its owner produced them). */
advrec_err_t advrec_daemon__delete_quietly(advrec_daemon_t *d, const char *id);

/* Partitions the statistics found stalled are fetched again (a seek to
 * this run's next offset of each), logged and counted. Each round. */
void advrec_daemon__stall_restart(advrec_daemon_t *d);

/* --- daemon_model.c: item factors shared through topic.model ---------- */

/* With topic.model: the exchange over the engine's items, the topic
 * created if absent and read from its beginning. After the state load. */
advrec_err_t advrec_daemon__model_start(advrec_daemon_t *d, char *errstr,
                                        size_t errstr_size);
void advrec_daemon__model_destroy(advrec_daemon_t *d);
/* Every round: the peers' records merged, a publish when due. */
void advrec_daemon__model_round(advrec_daemon_t *d);
/* This daemon's contribution now (also at a clean stop). */
void advrec_daemon__model_publish(advrec_daemon_t *d);
/* A delivery report of a model record: 1 (handled), else 0. */
int advrec_daemon__model_delivered(advrec_daemon_t *d,
                                   const rd_kafka_message_t *m);

/* --- daemon_topics.c: topics made and read back outside the group ---- */

/* Partitions of topic (metadata through rk: use a consumer, which never
 * creates topics), -1 when it does not exist, -2 on an error (errstr). */
int advrec_daemon__topic_partitions(rd_kafka_t *rk, const char *topic,
                                    char *errstr, size_t errstr_size);
/* Creates topic with n partitions, cleanup.policy=compact (replication -1:
 * the broker's default); one that exists already is fine. */
advrec_err_t advrec_daemon__topic_create(rd_kafka_t *rk, const char *topic,
                                         int n, int replication, char *errstr,
                                         size_t errstr_size);
/* A consumer for reading topics back by assignment (never in the group);
 * quick: fetches wait 10 ms, not 500 (one that reads to an end and stops). */
advrec_err_t advrec_daemon__reader(advrec_daemon_t *d, advrec_kafka_t **reader,
                                   int quick, char *errstr, size_t errstr_size);

/* --- daemon_changelog.c: user state that follows its partition ------- */

/* With topic.changelog: checks the input topics' partitions, creates the
 * changelog topic if absent, makes its reader. Before subscribing. */
advrec_err_t advrec_daemon__changelog_start(advrec_daemon_t *d, char *errstr,
                                            size_t errstr_size);
void advrec_daemon__changelog_destroy(advrec_daemon_t *d);
/* The group's partitions of topic.clicks bring the same partitions of the
 * other input topics. */
void advrec_daemon__changelog_expand(advrec_daemon_t *d,
                                     rd_kafka_topic_partition_list_t *parts);
/* Restores the assigned partitions the local state is behind on, and
 * positions them (then advrec_daemon__changelog_positioned). */
void advrec_daemon__changelog_assign(advrec_daemon_t *d,
                                     rd_kafka_topic_partition_list_t *parts);
int advrec_daemon__changelog_positioned(const advrec_daemon_t *d,
                                        const rd_kafka_topic_partition_t *tp);
/* After the revoked partitions' rows were committed. */
void advrec_daemon__changelog_revoke(
    advrec_daemon_t *d, const rd_kafka_topic_partition_list_t *parts);
/* Before a state commit: the changed users' rows to the changelog. */
void advrec_daemon__changelog_stage(advrec_daemon_t *d);
/* Every round: the markers due. */
void advrec_daemon__changelog_round(advrec_daemon_t *d);
/* A delivery report of a changelog record: 1 (handled), else 0. */
int advrec_daemon__changelog_delivered(advrec_daemon_t *d,
                                       const rd_kafka_message_t *m);
/* A user deleted (expired, forgotten, room made): the changelog's
 * tombstone, in partition (the user's), if this daemon owns it. */
void advrec_daemon__changelog_gone(advrec_daemon_t *d, const char *id,
                                   int32_t partition);
/* Whether the record at (topic index, partition, offset) of user id is
 * already in their restored row: then it is skipped (counted). */
int advrec_daemon__changelog_skip(advrec_daemon_t *d, const char *id, int topic,
                                  int32_t partition, int64_t offset);

#endif
