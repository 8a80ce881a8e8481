/* Unit tests for changelog.c: a user's state moves between two states that
 * number items differently; markers round-trip; every truncation and a
 * corrupt length are refused without reading past the value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changelog.h"
#include "check.h"
#include "state.h"

#define K 8
#define H 4

static advrec_state_t *new_state(void)
{
    advrec_state_params_t p = {.k = K,
                               .history = H,
                               .max_users = 1000,
                               .max_items = 1000,
                               .purchased_max = 8,
                               .seen_max = 8,
                               .evictable = 1};
    char errstr[128];

    return advrec_state_new(&p, errstr, sizeof(errstr));
}

static advrec_err_t intern(void *opaque, const char *id, uint32_t *idx,
                           char *errstr, size_t errstr_size)
{
    return advrec_state_item(opaque, id, 1, idx, NULL, errstr, errstr_size);
}

/* Gives user "u1" of s six events on items i0..i5 (purchases on even ones),
 * so the ring (4 entries) has wrapped. */
static uint32_t fill(advrec_state_t *s)
{
    advrec_rows_t *users;
    advrec_user_ext_t *ux;
    uint32_t u, it;
    char id[16];

    CHECK_INT(advrec_state_user(s, "u1", 1, &u, NULL, NULL, 0), ADVREC_OK);
    for (int j = 0; j < 6; j++) {
        snprintf(id, sizeof(id), "i%d", j);
        CHECK_INT(advrec_state_item(s, id, 1, &it, NULL, NULL, 0), ADVREC_OK);
        advrec_state_push_history(s, u,
                                  it | (j % 2 == 0 ? ADVREC_HIST_PURCHASE : 0));
        CHECK_INT(advrec_state_remember(s, u, it, j % 2 == 0, NULL, 0),
                  ADVREC_OK);
    }
    users = advrec_state_users(s);
    ux = advrec_state_user_ext(s);
    for (int j = 0; j < K; j++)
        users->w[(size_t)u * K + (size_t)j] = 0.5f * (float)j - 1.0f;
    users->acc[u] = 3.25f;
    users->updates[u] = 17;
    users->clicks[u] = 3;
    users->purchases[u] = 3;
    ux->last[u] = (advrec_origin_t){1, 7, 12345};
    ux->last_ts_ms[u] = 1700000000123;
    return u;
}

static const char *hist_name(advrec_state_t *s, uint32_t u, uint32_t j)
{
    advrec_user_ext_t *ux = advrec_state_user_ext(s);
    uint32_t n = ux->hist_len[u], head = ux->hist_head[u];
    uint32_t e = ux->hist[(size_t)u * H + (n < H ? j : (head + j) % H)];

    return advrec_state_item_name(s, e & ADVREC_HIST_ITEM);
}

static void test_user_moves_between_states(void)
{
    advrec_state_t *a = new_state(), *b = new_state();
    advrec_changelog_buf_t buf = {0};
    advrec_changelog_pos_t pos = {{100, 200, -1}};
    advrec_changelog_kind_t kind;
    advrec_changelog_user_t cu;
    advrec_changelog_marker_t cm;
    const unsigned char det[5] = {3, 1, 2, 3, 4};
    uint32_t ua, ub, it;
    char errstr[256];

    ua = fill(a);
    /* b numbers items the other way round, and has a user first. */
    CHECK_INT(advrec_state_user(b, "other", 1, &ub, NULL, NULL, 0), ADVREC_OK);
    CHECK_INT(advrec_state_item(b, "i5", 1, &it, NULL, NULL, 0), ADVREC_OK);
    CHECK_INT(advrec_state_item(b, "i3", 1, &it, NULL, NULL, 0), ADVREC_OK);
    CHECK_INT(
        advrec_changelog_encode_user(&buf, a, ua, &pos, 1, det, sizeof(det)),
        ADVREC_OK);
    CHECK_INT(advrec_changelog_decode(buf.p, buf.len, &kind, &cu, &cm, errstr,
                                      sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(kind, ADVREC_CHANGELOG_USER);
    CHECK_INT(cu.pos.next[0], 100);
    CHECK_INT(cu.pos.next[1], 200);
    CHECK_INT(cu.pos.next[2], -1);
    CHECK_INT(cu.owed, 1);
    CHECK_INT(cu.n_hist, H);
    CHECK_INT(cu.det_len, sizeof(det));
    CHECK(cu.det && memcmp(cu.det, det, sizeof(det)) == 0);

    CHECK_INT(advrec_state_user(b, "u1", 1, &ub, NULL, NULL, 0), ADVREC_OK);
    CHECK_INT(advrec_changelog_apply_user(b, ub, &cu, intern, b, errstr,
                                          sizeof(errstr)),
              ADVREC_OK);
    {
        advrec_rows_t *ra = advrec_state_users(a), *rb = advrec_state_users(b);
        advrec_user_ext_t *xa = advrec_state_user_ext(a);
        advrec_user_ext_t *xb = advrec_state_user_ext(b);
        CHECK(memcmp(ra->w + (size_t)ua * K, rb->w + (size_t)ub * K, 4 * K) ==
              0);
        CHECK(rb->acc[ub] == 3.25f);
        CHECK_INT(rb->updates[ub], 17);
        CHECK_INT(rb->clicks[ub], 3);
        CHECK_INT(rb->purchases[ub], 3);
        CHECK_INT(xb->last[ub].topic, 1);
        CHECK_INT(xb->last[ub].partition, 7);
        CHECK_INT(xb->last[ub].offset, 12345);
        CHECK_INT(xb->last_ts_ms[ub], 1700000000123);
        CHECK_INT(xb->hist_len[ub], H);
        /* The same items, in the same order, by name. */
        for (uint32_t j = 0; j < H; j++)
            CHECK_STR(hist_name(b, ub, j), hist_name(a, ua, j));
        CHECK_STR(hist_name(b, ub, 0), "i2");
        CHECK_STR(hist_name(b, ub, H - 1), "i5");
        CHECK_INT(advrec_itemset_count(xb->seen[ub]), 6);
        CHECK_INT(advrec_itemset_count(xb->purchased[ub]), 3);
        CHECK_INT(advrec_state_item(b, "i4", 0, &it, NULL, NULL, 0), ADVREC_OK);
        CHECK(advrec_itemset_has(xb->purchased[ub], it));
        CHECK(advrec_state_in_history(b, ub, it, 1));
        CHECK_INT(advrec_state_item(b, "i5", 0, &it, NULL, NULL, 0), ADVREC_OK);
        CHECK(!advrec_itemset_has(xb->purchased[ub], it));
        CHECK(advrec_itemset_has(xb->seen[ub], it));
        CHECK(rb->dirty[ub]);
        (void)xa;
    }
    free(buf.p);
    advrec_state_destroy(a);
    advrec_state_destroy(b);
}

static void test_marker_round_trip(void)
{
    advrec_changelog_buf_t buf = {0};
    advrec_changelog_marker_t m = {{{5, 6, 7}}, "0123abcd", 99}, got;
    advrec_changelog_kind_t kind;
    advrec_changelog_user_t cu;
    char errstr[256];

    CHECK_INT(advrec_changelog_encode_marker(&buf, &m), ADVREC_OK);
    CHECK_INT(advrec_changelog_decode(buf.p, buf.len, &kind, &cu, &got, errstr,
                                      sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(kind, ADVREC_CHANGELOG_MARKER);
    CHECK_INT(got.pos.next[0], 5);
    CHECK_INT(got.pos.next[2], 7);
    CHECK_STR(got.lineage, "0123abcd");
    CHECK_INT(got.seq, 99);
    free(buf.p);
}

/* Every proper prefix of a record, and a record with a length byte made
 * huge, is refused (ASan would see a read past the copy). */
static void test_truncated_and_corrupt_records_are_refused(void)
{
    advrec_state_t *a = new_state();
    advrec_changelog_buf_t buf = {0};
    advrec_changelog_pos_t pos = {{1, 2, 3}};
    advrec_changelog_kind_t kind;
    advrec_changelog_user_t cu;
    advrec_changelog_marker_t cm;
    char errstr[256];
    uint32_t u = fill(a);

    CHECK_INT(advrec_changelog_encode_user(&buf, a, u, &pos, 0, "xy", 2),
              ADVREC_OK);
    for (size_t n = 0; n < buf.len; n++) {
        unsigned char *copy = malloc(n ? n : 1);
        memcpy(copy, buf.p, n);
        CHECK_INT(advrec_changelog_decode(copy, n, &kind, &cu, &cm, errstr,
                                          sizeof(errstr)),
                  ADVREC_ERR_DECODE);
        free(copy);
    }
    /* The first history entry's id length (after the fixed part). */
    {
        size_t at = 2 + 24 + 1 + 2 + 4 + 16 + 4 * K + 4 + 1 + 4 + 16 + 2 + 1;
        unsigned char *copy = malloc(buf.len);
        memcpy(copy, buf.p, buf.len);
        copy[at] = 0xff;
        copy[at + 1] = 0xff;
        CHECK_INT(advrec_changelog_decode(copy, buf.len, &kind, &cu, &cm,
                                          errstr, sizeof(errstr)),
                  ADVREC_ERR_DECODE);
        copy[0] = 9;
        CHECK_INT(advrec_changelog_decode(copy, buf.len, &kind, &cu, &cm,
                                          errstr, sizeof(errstr)),
                  ADVREC_ERR_DECODE);
        CHECK(strstr(errstr, "format 9") != NULL);
        free(copy);
    }
    free(buf.p);
    advrec_state_destroy(a);
}

int main(void)
{
    RUN(test_user_moves_between_states);
    RUN(test_marker_round_trip);
    RUN(test_truncated_and_corrupt_records_are_refused);
    return DONE();
}
