/*
 * params.c - the configuration -> module parameters mapping (params.h).
 * Owns nothing: each function copies fields.
 */
#include "params.h"

#include <string.h>

/* recs.exclude's config value -> the ranking policy. */
static int rank_exclude(int conf_exclude)
{
    switch (conf_exclude) {
    case ADVREC_CONF_EXCLUDE_SEEN:
        return ADVREC_RANK_EXCLUDE_SEEN;
    case ADVREC_CONF_EXCLUDE_NONE:
        return ADVREC_RANK_EXCLUDE_NONE;
    default:
        return ADVREC_RANK_EXCLUDE_PURCHASED;
    }
}

void advrec_params_engine(advrec_engine_params_t *p, const advrec_conf_t *conf)
{
    memset(p, 0, sizeof(*p));
    advrec_apr_params_default(&p->apr);
    p->apr.k = (int)conf->model_k;
    p->apr.lr = (float)conf->model_lr;
    p->apr.reg = (float)conf->model_reg;
    p->apr.adv_lambda = (float)conf->model_adv_lambda;
    p->apr.adv_eps = (float)conf->model_adv_eps;
    p->apr.adv_warmup = (uint32_t)conf->model_adv_warmup;
    p->apr.adv_steps = (int)conf->model_adv_steps;
    p->apr.use_bias = conf->model_bias;
    p->apr.init_std = (float)conf->model_init_std;
    p->apr.seed = (uint64_t)conf->model_seed;
    p->state.k = (uint32_t)conf->model_k;
    p->state.history = (uint32_t)conf->recs_history;
    p->state.purchased_max = (uint32_t)conf->recs_exclude_purchased_max;
    /* Seen sets cost memory on every active user: kept only when used. */
    p->state.seen_max = conf->recs_exclude == ADVREC_CONF_EXCLUDE_SEEN
                            ? (uint32_t)conf->recs_exclude_seen_max
                            : 0;
    p->state.max_users = (uint32_t)conf->model_max_users;
    p->state.max_items = (uint32_t)conf->model_max_items;
    p->negatives = (uint32_t)conf->model_negatives;
    p->weight_click = (float)conf->model_weight_click;
    p->weight_purchase = (float)conf->model_weight_purchase;
    p->recs_n = (uint32_t)conf->recs_n;
    p->debounce_ms = conf->recs_debounce_ms;
    p->max_staleness_ms = conf->recs_max_staleness_ms;
    p->exclude = rank_exclude(conf->recs_exclude);
    p->cold_events = (uint32_t)conf->recs_cold_events;
    p->popularity_halflife_s = conf->recs_popularity_halflife_s;
}

void advrec_params_store(advrec_store_params_t *p, const advrec_conf_t *conf)
{
    memset(p, 0, sizeof(*p));
    p->k = (uint32_t)conf->model_k;
    p->history = (uint32_t)conf->recs_history;
    p->sync = conf->state_sync == ADVREC_CONF_SYNC_COMMIT
                  ? ADVREC_STORE_SYNC_COMMIT
                  : ADVREC_STORE_SYNC_NONE;
}

void advrec_params_detect(advrec_detect_params_t *p, const advrec_conf_t *conf)
{
    memset(p, 0, sizeof(*p));
    p->enable = conf->anomaly_enable;
    p->min_events = (uint32_t)conf->anomaly_min_events;
    p->rate_window_s = conf->anomaly_rate_window_s;
    p->rate_max = conf->anomaly_rate_max;
    p->gap_logstd_max = conf->anomaly_gap_logstd_max;
    p->nopurchase_clicks = (uint32_t)conf->anomaly_nopurchase_clicks;
    p->diversity_min = conf->anomaly_diversity_min;
    p->young_s = conf->anomaly_young_s;
    p->item_window_s = conf->anomaly_item_window_s;
    p->item_min_events = conf->anomaly_item_min_events;
    p->item_share = conf->anomaly_item_share;
    p->item_surge_factor = conf->anomaly_item_surge_factor;
    p->flag_score = conf->anomaly_flag_score;
    p->quarantine_score = conf->anomaly_quarantine_score;
    p->clear_score = conf->anomaly_clear_score;
    p->weight_flagged = (float)conf->anomaly_weight_flagged;
}

void advrec_params_detect_default(advrec_detect_params_t *p)
{
    advrec_conf_t *conf = advrec_conf_new(NULL, 0);

    memset(p, 0, sizeof(*p));
    if (conf)
        advrec_params_detect(p, conf);
    advrec_conf_destroy(conf);
}
