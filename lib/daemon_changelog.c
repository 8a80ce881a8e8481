/*
 * daemon_changelog.c - user state that follows its partition
 * (topic.changelog; docs/STATE.md, "Changelog"; docs/ARCHITECTURE.md,
 * "Scaling out").
 *
 * Several daemons share the input as one consumer group. A user's events
 * are keyed by user id, so a user lives in one partition of each input
 * topic; the group assigns topic.clicks and each daemon takes the same
 * partition of topic.purchases and topic.control with it (all three have
 * the same number of partitions), so a user's every input is one daemon's.
 *
 * Writing: every state commit also produces the whole state of each user
 * it changed (lib/changelog) to the changelog partition of the user's
 * input partition, with the input position of that commit. Once every
 * record produced to a partition is acknowledged, a marker with the
 * position of the last commit staged follows them: everything before the
 * marker reflects the input up to that position.
 *
 * Restoring: a partition assigned whose local state is not known to be
 * the changelog's latest (the end offset of the changelog partition is not
 * the one this state recorded with its offsets) is restored first: its
 * records are read from the beginning to the end, each user's latest row
 * replaces the local one (a tombstone deletes it), and the input resumes at
 * the latest marker's position. A row written after that marker already
 * reflects some of the input from there: its position says how much, and
 * that user's records before it are skipped (counted), so per-user state is
 * exactly once across moves and crashes. Compaction keeps the latest row
 * of each user, which is all a restore needs.
 *
 * A record that fails to be delivered is produced again from the user's
 * current row at the next commit, and no marker is written for the
 * partition until it is; when the row cannot be produced again (the user
 * left memory meanwhile) the partition gets no more markers in this run:
 * a restore then replays more input, from the last marker, and stays
 * exact.
 *
 * One concern, the changelog's protocol, kept in one file on purpose: the
 * writer (records, markers, delivery reports), the restore and the skip
 * map share the per-partition state (cl_part_t: what was staged, marked,
 * acknowledged, what the state recorded) and each half is only correct
 * against the other's rules. The generic topic helpers it uses (partition
 * count, topic creation, the reader) are daemon_topics.c's.
 */
#include "daemon_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "changelog.h"
#include "log.h"
#include "params.h"

#define CL_SLOT_NONE   0x3fffffffu /* markers and tombstones */
#define CL_META_PREFIX "changelog/"
#define CL_TIMEOUT_MS  10000  /* metadata, watermarks, topic creation */
#define CL_STALL_MS    120000 /* a restore with no record for this long */
#define CL_PROGRESS_MS 2000
#define CL_FLUSH_MS    10000

/* What a state records of a changelog partition with its commits
 * (meta changelog/<partition>): the end offset the changelog had when its
 * last record from this state was acknowledged, and the positions of
 * restored users' rows still ahead of the input. */
typedef struct cl_record_s {
    int64_t end;
    advrec_changelog_pos_t skip_hi;
} cl_record_t;

typedef struct cl_part_s {
    uint8_t owned;      /* assigned now */
    uint8_t repair;     /* a row failed: produced again at the next stage */
    uint8_t broken;     /* no more markers this run */
    uint8_t positioned; /* restored by the assignment under way */
    uint8_t have_staged;
    uint64_t outstanding;          /* records produced, not yet reported */
    advrec_changelog_pos_t staged; /* position at the last stage */
    advrec_changelog_pos_t marked; /* in the last marker produced */
    int64_t end;                   /* 1 + our highest acknowledged offset */
    advrec_changelog_pos_t skip_hi;
    uint32_t n_skip; /* skip entries of this partition */
} cl_part_t;

/* A restored user whose row is ahead of the input (open addressing). */
typedef struct skip_s {
    char *id; /* NULL: empty */
    int32_t partition;
    advrec_changelog_pos_t pos;
} skip_t;

struct advrec_daemon_changelog_s {
    const char *topic;
    int32_t n; /* partitions of each input topic and of the changelog */
    cl_part_t *parts;
    advrec_kafka_t *reader;
    advrec_changelog_buf_t buf;
    skip_t *skip;
    size_t skip_cap, skip_n;
    int quiet; /* the restore's commit: its rows are the changelog's */
};

/* --- positions ----------------------------------------------------------- */

static void pos_none(advrec_changelog_pos_t *p)
{
    for (int t = 0; t < ADVREC_CHANGELOG_TOPICS; t++)
        p->next[t] = -1;
}

static int pos_eq(const advrec_changelog_pos_t *a,
                  const advrec_changelog_pos_t *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

/* Whether position a is at or past b in every topic b has. */
static int pos_reached(const advrec_changelog_pos_t *a,
                       const advrec_changelog_pos_t *b)
{
    for (int t = 0; t < ADVREC_CHANGELOG_TOPICS; t++)
        if (b->next[t] >= 0 && a->next[t] < b->next[t])
            return 0;
    return 1;
}

/* The run's own position of partition p (-1 where none). */
static void run_pos(const advrec_daemon_t *d, int32_t p,
                    advrec_changelog_pos_t *pos)
{
    for (int t = 0; t < ADVREC_CHANGELOG_TOPICS; t++)
        pos->next[t] =
            d->inputs[t] && p < d->run_next_cap[t] && d->run_next[t][p] > 0
                ? d->run_next[t][p]
                : -1;
}

/* --- the skip map ----------------------------------------------------------
 */

static uint64_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return h;
}

static skip_t *skip_find(advrec_daemon_changelog_t *cl, const char *id)
{
    size_t i;

    if (!cl->skip_n)
        return NULL;
    for (i = hash_id(id) & (cl->skip_cap - 1); cl->skip[i].id;
         i = (i + 1) & (cl->skip_cap - 1))
        if (strcmp(cl->skip[i].id, id) == 0)
            return &cl->skip[i];
    return NULL;
}

static int skip_grow(advrec_daemon_changelog_t *cl)
{
    size_t cap = cl->skip_cap ? 2 * cl->skip_cap : 1024;
    skip_t *old = cl->skip, *s = calloc(cap, sizeof(*s));
    size_t old_cap = cl->skip_cap;

    if (!s)
        return -1;
    cl->skip = s;
    cl->skip_cap = cap;
    for (size_t j = 0; j < old_cap; j++) {
        size_t i;
        if (!old[j].id)
            continue;
        for (i = hash_id(old[j].id) & (cap - 1); s[i].id;
             i = (i + 1) & (cap - 1))
            ;
        s[i] = old[j];
    }
    free(old);
    return 0;
}

/* Notes that user id's row is at pos (replacing an earlier note). */
static int skip_put(advrec_daemon_changelog_t *cl, const char *id,
                    int32_t partition, const advrec_changelog_pos_t *pos)
{
    skip_t *e = skip_find(cl, id);
    size_t i;

    if (e) {
        e->pos = *pos;
        return 0;
    }
    if ((cl->skip_n + 1) * 2 > cl->skip_cap && skip_grow(cl))
        return -1;
    for (i = hash_id(id) & (cl->skip_cap - 1); cl->skip[i].id;
         i = (i + 1) & (cl->skip_cap - 1))
        ;
    if (!(cl->skip[i].id = strdup(id)))
        return -1;
    cl->skip[i].partition = partition;
    cl->skip[i].pos = *pos;
    cl->skip_n++;
    cl->parts[partition].n_skip++;
    return 0;
}

/* Drops the entries of partition p (every one, or those reached by upto)
 * and recomputes the partition's highest position. Rehashes the rest. */
static void skip_prune(advrec_daemon_changelog_t *cl, int32_t p,
                       const advrec_changelog_pos_t *upto)
{
    skip_t *old = cl->skip;
    size_t cap = cl->skip_cap;
    cl_part_t *cp = &cl->parts[p];

    if (!cp->n_skip)
        return;
    cl->skip = calloc(cap, sizeof(*cl->skip));
    if (!cl->skip) {
        cl->skip = old; /* kept whole: only more lookups */
        return;
    }
    cl->skip_n = 0;
    cp->n_skip = 0;
    pos_none(&cp->skip_hi);
    for (size_t j = 0; j < cap; j++) {
        size_t i;
        if (!old[j].id)
            continue;
        if (old[j].partition == p &&
            (!upto || pos_reached(upto, &old[j].pos))) {
            free(old[j].id);
            continue;
        }
        for (i = hash_id(old[j].id) & (cap - 1); cl->skip[i].id;
             i = (i + 1) & (cap - 1))
            ;
        cl->skip[i] = old[j];
        cl->skip_n++;
        if (old[j].partition == p) {
            cp->n_skip++;
            for (int t = 0; t < ADVREC_CHANGELOG_TOPICS; t++)
                if (old[j].pos.next[t] > cp->skip_hi.next[t])
                    cp->skip_hi.next[t] = old[j].pos.next[t];
        }
    }
    free(old);
}

int advrec_daemon__changelog_skip(advrec_daemon_t *d, const char *id, int topic,
                                  int32_t partition, int64_t offset)
{
    skip_t *e;

    if (!d->cl || !d->cl->skip_n || !(e = skip_find(d->cl, id)) ||
        e->partition != partition || topic < 0 ||
        topic >= ADVREC_CHANGELOG_TOPICS || offset >= e->pos.next[topic])
        return 0;
    d->c->cl_skipped++;
    return 1;
}

/* --- the record kept with the state --------------------------------------- */

static void record_key(char *key, size_t size, int32_t p)
{
    snprintf(key, size, CL_META_PREFIX "%d", (int)p);
}

static int record_get(advrec_daemon_t *d, int32_t p, cl_record_t *rec)
{
    char key[64], why[256];
    unsigned char v[8 + 8 * ADVREC_CHANGELOG_TOPICS];
    size_t len;

    if (!d->store)
        return 0;
    record_key(key, sizeof(key), p);
    if (advrec_store_get_meta(d->store, key, v, sizeof(v), &len, why,
                              sizeof(why)) ||
        len != sizeof(v))
        return 0;
    memcpy(&rec->end, v, 8);
    memcpy(rec->skip_hi.next, v + 8, 8 * ADVREC_CHANGELOG_TOPICS);
    return 1;
}

static void record_stage(advrec_daemon_t *d, int32_t p)
{
    char key[64];
    unsigned char v[8 + 8 * ADVREC_CHANGELOG_TOPICS];
    cl_part_t *cp = &d->cl->parts[p];

    if (!d->store)
        return;
    record_key(key, sizeof(key), p);
    memcpy(v, &cp->end, 8);
    memcpy(v + 8, cp->skip_hi.next, 8 * ADVREC_CHANGELOG_TOPICS);
    (void)advrec_store_stage_meta(d->store, key, v, sizeof(v));
}

/* --- producing --------------------------------------------------------------
 */

static void *tag_of(uint32_t uid, uint32_t slot)
{
    return (void *)(uintptr_t)((uint64_t)uid << 32 | (uint64_t)slot << 2 |
                               ADVREC_TAG_CHANGELOG);
}

static int produce(advrec_daemon_t *d, int32_t p, const char *key,
                   size_t key_len, const void *value, size_t len, void *tag)
{
    rd_kafka_resp_err_t kerr = rd_kafka_producev(
        advrec_kafka_rk(d->producer), RD_KAFKA_V_TOPIC(d->cl->topic),
        RD_KAFKA_V_PARTITION(p), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)value, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(tag),
        RD_KAFKA_V_END);

    while (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        /* Room comes with delivery reports (served here). */
        rd_kafka_poll(advrec_kafka_rk(d->producer), 100);
        advrec_metrics_watchdog(d->metrics, now_ms());
        kerr = rd_kafka_producev(
            advrec_kafka_rk(d->producer), RD_KAFKA_V_TOPIC(d->cl->topic),
            RD_KAFKA_V_PARTITION(p), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(tag),
            RD_KAFKA_V_END);
    }
    if (kerr) {
        if (!d->cl->parts[p].broken)
            log_err("changelog: cannot produce to %s [%d]: %s; no more "
                    "markers for it in this run (a restore replays from the "
                    "last one)",
                    d->cl->topic, (int)p, rd_kafka_err2str(kerr));
        d->cl->parts[p].broken = 1;
        return -1;
    }
    d->cl->parts[p].outstanding++;
    d->c->cl_bytes += key_len + len;
    return 0;
}

/* The marker of partition p, when everything before it is acknowledged and
 * the position moved since the last one. */
static void maybe_mark(advrec_daemon_t *d, int32_t p)
{
    advrec_daemon_changelog_t *cl = d->cl;
    cl_part_t *cp = &cl->parts[p];
    advrec_changelog_marker_t m;

    if (!cp->owned || cp->broken || cp->repair || cp->outstanding ||
        !cp->have_staged || pos_eq(&cp->staged, &cp->marked))
        return;
    memset(&m, 0, sizeof(m));
    m.pos = cp->staged;
    snprintf(m.lineage, sizeof(m.lineage), "%s",
             d->store ? advrec_store_id(d->store) : "");
    m.seq = d->store ? advrec_store_seq(d->store) : 0;
    if (advrec_changelog_encode_marker(&cl->buf, &m))
        return; /* no memory: the next round tries again */
    if (produce(d, p, ADVREC_CHANGELOG_MARKER_KEY, 0, cl->buf.p, cl->buf.len,
                tag_of(UINT32_MAX, CL_SLOT_NONE)) == 0) {
        cp->marked = cp->staged;
        d->c->cl_markers++;
    }
}

void advrec_daemon__changelog_round(advrec_daemon_t *d)
{
    if (!d->cl)
        return;
    for (int32_t p = 0; p < d->cl->n; p++)
        maybe_mark(d, p);
}

int advrec_daemon__changelog_delivered(advrec_daemon_t *d,
                                       const rd_kafka_message_t *m)
{
    uintptr_t tag = (uintptr_t)m->_private;
    uint32_t uid = (uint32_t)((uint64_t)tag >> 32);
    uint32_t slot = (uint32_t)(tag >> 2) & CL_SLOT_NONE;
    cl_part_t *cp;

    if (ADVREC_TAG_KIND(tag) != ADVREC_TAG_CHANGELOG || !d->cl)
        return 0;
    if (m->partition < 0 || m->partition >= d->cl->n)
        return 1;
    cp = &d->cl->parts[m->partition];
    if (cp->outstanding)
        cp->outstanding--;
    if (!m->err) {
        d->c->cl_acked++;
        if (m->offset + 1 > cp->end)
            cp->end = m->offset + 1;
        return 1;
    }
    d->c->cl_failed++;
    if (slot != CL_SLOT_NONE) {
        advrec_state_t *state = advrec_engine_state(d->engine);
        advrec_rows_t *users = advrec_state_users(state);
        advrec_user_ext_t *ux = advrec_state_user_ext(state);
        if (slot < users->n && ux->uid[slot] == uid) {
            advrec_rows_touch(users, slot); /* the next commit re-sends */
            cp->repair = 1;
            return 1;
        }
    } else if (m->key_len == 0) {
        cp->marked.next[0] = -2; /* a marker: made again next round */
        return 1;
    }
    if (!cp->broken)
        log_err("changelog: a record for %s [%d] failed (%s) and cannot be "
                "produced again; no more markers for it in this run (a "
                "restore replays from the last one)",
                d->cl->topic, (int)m->partition, rd_kafka_err2str(m->err));
    cp->broken = 1;
    return 1;
}

/*
 * Before a commit (advrec_daemon__commit_state): the position of every
 * partition consumed since the last one, the whole state of every user
 * the commit writes (to their partition, owned ones only), and what the
 * state records of each owned partition. A row that cannot be encoded
 * stops the partition's markers (as a failed delivery would).
 */
void advrec_daemon__changelog_stage(advrec_daemon_t *d)
{
    advrec_daemon_changelog_t *cl = d->cl;
    advrec_state_t *state;
    advrec_rows_t *users;
    advrec_user_ext_t *ux;
    unsigned char det[ADVREC_DETECT_ROW_MAX];
    size_t det_len;

    if (!cl)
        return;
    state = advrec_engine_state(d->engine);
    users = advrec_state_users(state);
    ux = advrec_state_user_ext(state);
    for (size_t j = 0; j < d->n_offs; j++) {
        int32_t p = d->offs[j].partition;
        if (p < 0 || p >= cl->n || !cl->parts[p].owned)
            continue;
        run_pos(d, p, &cl->parts[p].staged);
        cl->parts[p].have_staged = 1;
    }
    for (uint32_t j = 0; !cl->quiet && j < users->n_dirty; j++) {
        uint32_t u = users->dirty_list[j];
        int32_t p = ux->last[u].partition;
        const char *id = advrec_state_user_name(state, u);
        int owed;
        if (!id || p < 0 || p >= cl->n || !cl->parts[p].owned ||
            ux->last[u].offset < 0)
            continue;
        owed = ux->stale_since[u] != 0 || advrec_outbox_owes(d->outbox, u);
        det_len = d->detect ? advrec_detect_encode_user(d->detect, u, det) : 0;
        if (advrec_changelog_encode_user(
                &cl->buf, state, u, &cl->parts[p].staged, owed, det, det_len)) {
            cl->parts[p].broken = 1;
            continue;
        }
        if (produce(d, p, id, strlen(id), cl->buf.p, cl->buf.len,
                    tag_of(ux->uid[u], u)) == 0)
            d->c->cl_rows++;
    }
    for (int32_t p = 0; p < cl->n; p++) {
        cl_part_t *cp = &cl->parts[p];
        if (!cp->owned)
            continue;
        cp->repair = 0;
        if (cp->n_skip) {
            advrec_changelog_pos_t now;
            run_pos(d, p, &now);
            skip_prune(cl, p, &now);
        }
        record_stage(d, p);
    }
}

void advrec_daemon__changelog_gone(advrec_daemon_t *d, const char *id,
                                   int32_t p)
{
    skip_t *e;

    if (!d->cl || p < 0 || p >= d->cl->n || !d->cl->parts[p].owned)
        return;
    if ((e = skip_find(d->cl, id)))
        e->pos.next[0] = e->pos.next[1] = e->pos.next[2] = -1;
    if (produce(d, p, id, strlen(id), NULL, 0,
                tag_of(UINT32_MAX, CL_SLOT_NONE)) == 0)
        d->c->cl_tombstones++;
}

/* --- assignment ---------------------------------------------------------- */

void advrec_daemon__changelog_expand(advrec_daemon_t *d,
                                     rd_kafka_topic_partition_list_t *parts)
{
    int n = parts->cnt;

    if (!d->cl)
        return;
    for (int i = 0; i < n; i++) {
        int32_t p = parts->elems[i].partition;
        if (strcmp(parts->elems[i].topic, d->inputs[TOPIC_CLICKS]) != 0)
            continue;
        for (int t = TOPIC_PURCHASES; t <= TOPIC_CONTROL; t++)
            if (d->inputs[t] &&
                !rd_kafka_topic_partition_list_find(parts, d->inputs[t], p))
                rd_kafka_topic_partition_list_add(parts, d->inputs[t], p);
    }
}

/* The end offset of changelog partition p, or -1 (logged). A partition
 * without a leader yet (a topic just created, a broker moving it) is
 * asked again for up to CL_TIMEOUT_MS. */
static int64_t end_of(advrec_daemon_t *d, int32_t p)
{
    int64_t lo = 0, hi = 0, deadline = now_ms() + CL_TIMEOUT_MS;
    rd_kafka_resp_err_t kerr;

    for (;;) {
        kerr = rd_kafka_query_watermark_offsets(advrec_kafka_rk(d->cl->reader),
                                                d->cl->topic, p, &lo, &hi,
                                                CL_TIMEOUT_MS);
        if (!kerr || now_ms() >= deadline ||
            (kerr != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
             kerr != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
             kerr != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
             kerr != RD_KAFKA_RESP_ERR__TRANSPORT &&
             kerr != RD_KAFKA_RESP_ERR__TIMED_OUT))
            break;
        advrec_metrics_watchdog(d->metrics, now_ms());
        usleep(100 * 1000); /* the leader is elected meanwhile */
    }
    if (kerr) {
        log_err("changelog: cannot read the end of %s [%d]: %s", d->cl->topic,
                (int)p, rd_kafka_err2str(kerr));
        return -1;
    }
    return hi;
}

/* The state's own offset of (topic t, partition p), or -1. */
static int64_t local_next(advrec_daemon_t *d, int t, int32_t p)
{
    int64_t off;
    char why[256];

    if (p < d->run_next_cap[t] && d->run_next[t][p] > 0)
        return d->run_next[t][p];
    if (d->store && !d->broker &&
        advrec_store_offset(d->store, d->inputs[t], p, &off, why,
                            sizeof(why)) == ADVREC_OK)
        return off;
    return -1;
}

/* Deletes a user of the changelog's tombstone from this state (no output:
 * its owner produced them). */
static advrec_err_t restore_gone(advrec_daemon_t *d, const char *id)
{
    return advrec_daemon__delete_quietly(d, id);
}

typedef struct restore_s {
    int64_t read, users, gone, bad;
    int have_marker;
    advrec_changelog_marker_t marker;
} restore_t;

static advrec_err_t intern_item(void *opaque, const char *id, uint32_t *idx,
                                char *errstr, size_t errstr_size)
{
    advrec_daemon_t *d = opaque;
    return advrec_engine_intern(d->engine, 1, id, idx, errstr, errstr_size);
}

/* One changelog record of partition p into the state. */
static advrec_err_t restore_one(advrec_daemon_t *d, int32_t p,
                                const rd_kafka_message_t *m, restore_t *r)
{
    advrec_daemon_changelog_t *cl = d->cl;
    advrec_changelog_kind_t kind;
    advrec_changelog_user_t u;
    advrec_changelog_marker_t mk;
    char id[ADVREC_ID_MAX + 1], why[512];
    uint32_t idx;
    advrec_err_t err;

    r->read++;
    if (!m->key || m->key_len >= sizeof(id) ||
        memchr(m->key, '\0', m->key_len)) {
        log_err("changelog: %s [%d] @%lld: a record without a usable key, "
                "skipped",
                cl->topic, (int)p, (long long)m->offset);
        r->bad++;
        return ADVREC_OK;
    }
    memcpy(id, m->key, m->key_len);
    id[m->key_len] = '\0';
    if (!m->payload) {
        if (m->key_len && (err = restore_gone(d, id)))
            return err;
        r->gone++;
        return ADVREC_OK;
    }
    if (advrec_changelog_decode(m->payload, m->len, &kind, &u, &mk, why,
                                sizeof(why))) {
        log_err("changelog: %s [%d] @%lld (key \"%s\"): %s; skipped: that "
                "user's state from this partition is lost",
                cl->topic, (int)p, (long long)m->offset, id, why);
        r->bad++;
        return ADVREC_OK;
    }
    if (kind == ADVREC_CHANGELOG_MARKER) {
        r->have_marker = 1;
        r->marker = mk;
        return ADVREC_OK;
    }
    if (m->key_len == 0)
        return ADVREC_OK;
    if ((err =
             advrec_engine_intern(d->engine, 0, id, &idx, why, sizeof(why))) ||
        (err = advrec_changelog_apply_user(advrec_engine_state(d->engine), idx,
                                           &u, intern_item, d, why,
                                           sizeof(why)))) {
        if (err == ADVREC_ERR_NOMEM || err == ADVREC_ERR_FULL) {
            advrec_daemon__fail(d, err,
                                "cannot restore a user from the "
                                "changelog",
                                why);
            return err;
        }
        log_err("changelog: %s [%d] @%lld (user \"%s\"): %s; skipped",
                cl->topic, (int)p, (long long)m->offset, id, why);
        r->bad++;
        return ADVREC_OK;
    }
    if (u.owed)
        advrec_engine_mark_stale(d->engine, idx, now_ms());
    /* The user's detector statistics, into memory and the state (key as
     * lib/detect_store's: 'u' + id). */
    if (u.det_len && d->detect) {
        char key[ADVREC_ID_MAX + 2];
        if (advrec_detect_restore(d->detect, ADVREC_DETECT_ROW_USER, idx, u.det,
                                  u.det_len, why, sizeof(why))) {
            log_warning("changelog: %s [%d] @%lld (user \"%s\"): detector "
                        "row: %s; their statistics start afresh",
                        cl->topic, (int)p, (long long)m->offset, id, why);
        } else if (d->store) {
            key[0] = 'u';
            memcpy(key + 1, id, m->key_len);
            (void)advrec_store_stage_detector(d->store, key, m->key_len + 1,
                                              u.det, u.det_len);
        }
    }
    if (skip_put(cl, id, p, &u.pos)) {
        advrec_daemon__fail(d, ADVREC_ERR_NOMEM, "out of memory", NULL);
        return ADVREC_ERR_NOMEM;
    }
    r->users++;
    return ADVREC_OK;
}

/* Reads changelog partition p from its beginning to end into the state. */
static advrec_err_t restore(advrec_daemon_t *d, int32_t p, int64_t end,
                            restore_t *r)
{
    advrec_daemon_changelog_t *cl = d->cl;
    rd_kafka_t *rk = advrec_kafka_rk(cl->reader);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    int64_t next = 0, t0 = now_ms(), last = t0, logged = t0;
    advrec_err_t err = ADVREC_OK;

    if (!l)
        return ADVREC_ERR_NOMEM;
    rd_kafka_topic_partition_list_add(l, cl->topic, p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, l)) {
        rd_kafka_topic_partition_list_destroy(l);
        return ADVREC_ERR_KAFKA;
    }
    rd_kafka_topic_partition_list_destroy(l);
    while (next < end && !err) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        int64_t now = now_ms();
        advrec_metrics_watchdog(d->metrics, now);
        if (!m) {
            if (now - last > CL_STALL_MS) {
                err = ADVREC_ERR_TIMEOUT;
                advrec_daemon__fail(d, err, "changelog restore stalled",
                                    "no record for two minutes");
            }
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->offset >= next)
                next = m->offset;
            if (next >= end)
                end = next; /* compaction or a short end: done */
        } else if (m->err) {
            log_warning("changelog: restoring %s [%d]: %s", cl->topic, (int)p,
                        rd_kafka_message_errstr(m));
        } else if (m->partition == p) {
            err = restore_one(d, p, m, r);
            next = m->offset + 1;
            last = now;
            d->c->cl_restore_records++;
        }
        rd_kafka_message_destroy(m);
        if (now - logged >= CL_PROGRESS_MS) {
            log_notice("changelog: restoring %s [%d]: %lld of %lld records, "
                       "%lld users",
                       cl->topic, (int)p, (long long)next, (long long)end,
                       (long long)r->users);
            logged = now;
        }
    }
    (void)rd_kafka_assign(rk, NULL);
    return err;
}

/*
 * Partitions assigned (before the state's own offsets are looked at): each
 * partition of topic.clicks whose local state is not the changelog's
 * latest is restored, and its partitions of every input topic are
 * positioned at the marker (advrec_daemon__changelog_positioned says
 * which). Pending rows are committed first, the restored ones after, in a
 * commit of their own that does not produce them again.
 */
void advrec_daemon__changelog_assign(advrec_daemon_t *d,
                                     rd_kafka_topic_partition_list_t *parts)
{
    advrec_daemon_changelog_t *cl = d->cl;
    int restored = 0;

    if (!cl)
        return;
    for (int32_t p = 0; p < cl->n; p++)
        cl->parts[p].positioned = 0;
    for (int i = 0; i < parts->cnt && !d->fatal[0]; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int32_t p = tp->partition;
        cl_part_t *cp;
        cl_record_t rec;
        int have_rec, valid = 1;
        int64_t end;
        restore_t r;

        if (strcmp(tp->topic, d->inputs[TOPIC_CLICKS]) != 0 || p < 0 ||
            p >= cl->n)
            continue;
        cp = &cl->parts[p];
        cp->owned = 1;
        cp->broken = cp->repair = 0;
        cp->outstanding = 0;
        pos_none(&cp->marked);
        if ((end = end_of(d, p)) < 0) {
            advrec_daemon__fail(d, ADVREC_ERR_KAFKA,
                                "cannot read the changelog's end", NULL);
            break;
        }
        have_rec = record_get(d, p, &rec);
        if (!have_rec && cp->end > 0) { /* this run's own, in memory */
            rec.end = cp->end;
            rec.skip_hi = cp->skip_hi;
            have_rec = 1;
        }
        if (have_rec) {
            advrec_changelog_pos_t here;
            for (int t = 0; t < ADVREC_CHANGELOG_TOPICS; t++)
                here.next[t] = d->inputs[t] ? local_next(d, t, p) : -1;
            valid = rec.end == end && pos_reached(&here, &rec.skip_hi);
        } else {
            valid = end == 0; /* nothing written yet: nothing to restore */
        }
        cp->end = end;
        if (valid) {
            if (have_rec)
                cp->skip_hi = rec.skip_hi;
            log_info("changelog: %s [%d]: the local state is the latest "
                     "(end %lld)",
                     cl->topic, (int)p, (long long)end);
            continue;
        }
        /* Rows changed before the move go out (and to the state) first. */
        if (!restored++ && advrec_daemon__commit(d))
            break;
        memset(&r, 0, sizeof(r));
        skip_prune(cl, p, NULL);
        d->c->cl_restores++;
        d->c->cl_restoring++;
        log_notice("changelog: restoring %s [%d] (%lld records) into the "
                   "state",
                   cl->topic, (int)p, (long long)end);
        {
            int64_t t0 = now_ms();
            advrec_err_t err = restore(d, p, end, &r);
            d->c->cl_restoring--;
            if (err) {
                if (!d->fatal[0])
                    advrec_daemon__fail(d, err, "changelog restore failed",
                                        advrec_err2str(err));
                break;
            }
            if (r.have_marker)
                skip_prune(cl, p, &r.marker.pos);
            d->c->cl_restored_users += (uint64_t)r.users;
            log_notice("changelog: restored %s [%d]: %lld records, %lld "
                       "user rows, %lld deleted, %lld unreadable, in %.1f s; "
                       "input resumes at %s",
                       cl->topic, (int)p, (long long)r.read, (long long)r.users,
                       (long long)r.gone, (long long)r.bad,
                       (double)(now_ms() - t0) / 1000.0,
                       r.have_marker ? "the latest marker"
                                     : "the beginning (no marker yet)");
        }
        /* Position every input partition p at the marker. */
        for (int t = 0; t < ADVREC_CHANGELOG_TOPICS; t++) {
            int64_t at = r.have_marker && r.marker.pos.next[t] >= 0
                             ? r.marker.pos.next[t]
                             : RD_KAFKA_OFFSET_BEGINNING;
            rd_kafka_topic_partition_t *e;
            if (!d->inputs[t])
                continue;
            e = rd_kafka_topic_partition_list_find(parts, d->inputs[t], p);
            if (e)
                e->offset = at;
            (void)advrec_daemon__run_offset_set(d, d->inputs[t], p,
                                                at >= 0 ? at : 0);
        }
        cp->positioned = 1;
        pos_none(&cp->staged);
        if (r.have_marker)
            cp->staged = cp->marked = r.marker.pos;
        cp->have_staged = r.have_marker;
    }
    if (restored && !d->fatal[0]) {
        /* The restored rows into the state, with each partition's record
         * (the end read, the rows still ahead of the input), not to the
         * changelog again. */
        cl->quiet = 1;
        if (d->store) {
            advrec_err_t err = ADVREC_OK;
            char why[512];
            /* With the restored partitions' positions (the marker's, 0 for
             * their beginning): a crash right after must not resume them
             * from what this state stored when it owned them before. */
            advrec_store_offset_t *offs = calloc(
                (size_t)cl->n * ADVREC_CHANGELOG_TOPICS + 1, sizeof(*offs));
            size_t n_offs = 0;
            if (!offs)
                err = ADVREC_ERR_NOMEM;
            for (int32_t p = 0; offs && p < cl->n; p++) {
                if (!cl->parts[p].positioned)
                    continue;
                record_stage(d, p);
                for (int t = 0; t < ADVREC_CHANGELOG_TOPICS; t++)
                    if (d->inputs[t] && p < d->run_next_cap[t])
                        offs[n_offs++] = (advrec_store_offset_t){
                            d->inputs[t], p, d->run_next[t][p]};
            }
            (void)advrec_daemon__commit_finish(d, 1);
            if (!err)
                err = advrec_store_commit(d->store,
                                          advrec_engine_state(d->engine),
                                          advrec_engine_popularity(d->engine),
                                          advrec_engine_version(d->engine),
                                          offs, n_offs, why, sizeof(why));
            else
                snprintf(why, sizeof(why), "out of memory");
            free(offs);
            if (err)
                advrec_daemon__fail(d, err, "state commit failed", why);
        } else {
            advrec_state_clear_dirty(advrec_engine_state(d->engine));
        }
        cl->quiet = 0;
    }
}

int advrec_daemon__changelog_positioned(const advrec_daemon_t *d,
                                        const rd_kafka_topic_partition_t *tp)
{
    return d->cl && tp->partition >= 0 && tp->partition < d->cl->n &&
           d->cl->parts[tp->partition].positioned;
}

/*
 * Partitions revoked, after their rows were committed: their records are
 * flushed, the marker follows, and the state records the changelog's end,
 * so that taking them back unchanged needs no restore.
 */
void advrec_daemon__changelog_revoke(
    advrec_daemon_t *d, const rd_kafka_topic_partition_list_t *parts)
{
    advrec_daemon_changelog_t *cl = d->cl;
    rd_kafka_t *producer;
    int any = 0;

    if (!cl || d->fatal[0])
        return;
    producer = advrec_kafka_rk(d->producer);
    (void)rd_kafka_flush(producer, CL_FLUSH_MS);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        if (strcmp(parts->elems[i].topic, d->inputs[TOPIC_CLICKS]) == 0 &&
            p >= 0 && p < cl->n && cl->parts[p].owned) {
            maybe_mark(d, p);
            any = 1;
        }
    }
    if (!any)
        return;
    (void)rd_kafka_flush(producer, CL_FLUSH_MS);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        if (strcmp(parts->elems[i].topic, d->inputs[TOPIC_CLICKS]) != 0 ||
            p < 0 || p >= cl->n || !cl->parts[p].owned)
            continue;
        if (!cl->parts[p].outstanding && !cl->parts[p].broken)
            record_stage(d, p);
        cl->parts[p].owned = 0;
        skip_prune(cl, p, NULL);
    }
    if (d->store) {
        char why[512];
        advrec_err_t err = advrec_store_commit(
            d->store, advrec_engine_state(d->engine),
            advrec_engine_popularity(d->engine),
            advrec_engine_version(d->engine), NULL, 0, why, sizeof(why));
        if (err)
            advrec_daemon__fail(d, err, "state commit failed", why);
    }
}

/* --- life cycle ------------------------------------------------------------
 */

advrec_err_t advrec_daemon__changelog_start(advrec_daemon_t *d, char *errstr,
                                            size_t errstr_size)
{
    const advrec_conf_t *conf = d->conf;
    rd_kafka_t *rk;
    int counts[ADVREC_CHANGELOG_TOPICS], n;
    advrec_err_t err;

    if (!conf->topic_changelog[0])
        return ADVREC_OK;
    if (!(d->cl = calloc(1, sizeof(*d->cl))))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    d->cl->topic = conf->topic_changelog;
    rk = advrec_kafka_rk(d->consumer); /* no auto-creation from it */
    for (int t = 0; t < ADVREC_CHANGELOG_TOPICS; t++) {
        counts[t] = -1;
        if (!d->inputs[t])
            continue;
        if ((counts[t] = advrec_daemon__topic_partitions(
                 rk, d->inputs[t], errstr, errstr_size)) == -2)
            return ADVREC_ERR_KAFKA;
        if (counts[t] < 0)
            return advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                                 "topic.changelog needs the input topics to "
                                 "exist: %s does not",
                                 d->inputs[t]);
        if (counts[t] != counts[0])
            return advrec_seterr(
                ADVREC_ERR_CONFIG, errstr, errstr_size,
                "topic.changelog needs every input topic to have the same "
                "number of partitions (a user's partition of each goes to "
                "the same daemon): %s has %d, %s has %d",
                d->inputs[0], counts[0], d->inputs[t], counts[t]);
    }
    d->cl->n = counts[0];
    if ((n = advrec_daemon__topic_partitions(rk, d->cl->topic, errstr,
                                             errstr_size)) == -2)
        return ADVREC_ERR_KAFKA;
    if (n < 0) {
        if ((err = advrec_daemon__topic_create(
                 advrec_kafka_rk(d->producer), d->cl->topic, d->cl->n,
                 (int)conf->topic_changelog_replication, errstr, errstr_size)))
            return err;
    } else if (n != d->cl->n) {
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "topic.changelog %s has %d partitions, the "
                             "input topics %d: they must be equal",
                             d->cl->topic, n, d->cl->n);
    }
    if (!(d->cl->parts = calloc((size_t)d->cl->n, sizeof(*d->cl->parts))))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    for (int32_t p = 0; p < d->cl->n; p++) {
        pos_none(&d->cl->parts[p].skip_hi);
        pos_none(&d->cl->parts[p].marked);
    }
    if ((err =
             advrec_daemon__reader(d, &d->cl->reader, 1, errstr, errstr_size)))
        return err;
    log_notice("changelog: %s, %d partitions: users follow their partition",
               d->cl->topic, (int)d->cl->n);
    return ADVREC_OK;
}

void advrec_daemon__changelog_destroy(advrec_daemon_t *d)
{
    advrec_daemon_changelog_t *cl = d->cl;

    if (!cl)
        return;
    if (cl->reader) {
        (void)rd_kafka_consumer_close(advrec_kafka_rk(cl->reader));
        advrec_kafka_destroy(cl->reader);
    }
    for (size_t i = 0; i < cl->skip_cap; i++)
        free(cl->skip[i].id);
    free(cl->skip);
    free(cl->parts);
    free(cl->buf.p);
    free(cl);
    d->cl = NULL;
}
