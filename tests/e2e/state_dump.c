/*
 * state_dump - a test-only dump of a whole advrecd state dir, for the
 * durability tests (tests/e2e/durability.cmake).
 *
 *   state_dump STATE_DIR [--factors]
 *
 * Opens STATE_DIR read-only (a RocksDB secondary instance: works while the
 * daemon runs, writes nothing there), loads every row with the daemon's own
 * loader (lib/store) and prints one line per stored offset, user and item:
 *
 *   offset TOPIC PARTITION NEXT
 *   user ID CLICKS PURCHASES UPDATES [BIAS BIAS_ACC W[0..k) ACC[0..k)]
 *   item ID CLICKS PURCHASES UPDATES [BIAS BIAS_ACC W[0..k) ACC[0..k)]
 *
 * --factors adds the float fields in C99 hex (%a), exact to the bit, so two
 * dumps compare byte for byte iff the rows are bit-identical. Exit 0, 66
 * when the state cannot be opened or loaded.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "state.h"
#include "store.h"

static int print_offset(void *opaque, const advrec_store_offset_t *off)
{
    (void)opaque;
    printf("offset %s %d %" PRId64 "\n", off->topic, (int)off->partition,
           off->next);
    return 0;
}

static void dump_rows(const char *kind, advrec_state_t *state,
                      advrec_rows_t *rows, int items, int factors)
{
    for (uint32_t r = 0; r < rows->n; r++) {
        const char *id = items ? advrec_state_item_name(state, r)
                               : advrec_state_user_name(state, r);
        printf("%s %s %" PRIu64 " %" PRIu64 " %u", kind, id, rows->clicks[r],
               rows->purchases[r], rows->updates[r]);
        if (factors) {
            printf(" %a %a", (double)rows->bias[r], (double)rows->bias_acc[r]);
            for (uint32_t j = 0; j < rows->k; j++)
                printf(" %a", (double)rows->w[(size_t)r * rows->k + j]);
            printf(" %a", (double)rows->acc[r]);
        }
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    advrec_store_t *store = NULL;
    advrec_state_t *state = NULL;
    advrec_store_summary_t sum;
    advrec_state_params_t stp = {0};
    char errstr[1024];
    int factors = argc > 2 && strcmp(argv[2], "--factors") == 0;
    int rc = EX_NOINPUT;

    if (argc < 2) {
        fprintf(stderr, "usage: state_dump STATE_DIR [--factors]\n");
        return EX_USAGE;
    }
    if (advrec_store_open_readonly(argv[1], &store, errstr, sizeof(errstr)) ||
        advrec_store_summary(store, &sum, errstr, sizeof(errstr)))
        goto out;
    stp.k = advrec_store_params(store)->k;
    stp.history = advrec_store_params(store)->history;
    stp.max_users = sum.users + 16;
    stp.max_items = sum.items + 16;
    stp.purchased_max = ADVREC_ITEMSET_MAX; /* what is stored, as it is */
    stp.seen_max = ADVREC_ITEMSET_MAX;
    if (!(state = advrec_state_new(&stp, errstr, sizeof(errstr))) ||
        advrec_store_load(store, state, NULL, NULL, errstr, sizeof(errstr)) ||
        advrec_store_offsets_foreach(store, print_offset, NULL, errstr,
                                     sizeof(errstr)))
        goto out;
    dump_rows("user", state, advrec_state_users(state), 0, factors);
    dump_rows("item", state, advrec_state_items(state), 1, factors);
    rc = EX_OK;

out:
    if (rc)
        fprintf(stderr, "state_dump: %s\n", errstr);
    advrec_state_destroy(state);
    advrec_store_close(store);
    return rc;
}
