/*
 * config_table.c - the table of advrecd's configuration keys: the single
 * source of truth for each key's name, type, struct field, range, default,
 * group and documentation. Parsing (config.c), the effective-config dump
 * and the generated conf/advrecd.conf, docs/CONFIG.md and man/advrecd.conf.5
 * (config_write.c) all read it; test_config fails when the committed files
 * drift from it.
 *
 * To add a key: one field in advrec_conf_t (config.h), one row below, the
 * mapping into a module's parameters in params.c, then regenerate the three
 * committed files (the unit test says how).
 */
#include "config_int.h"

#include "log.h"

/*
 * The offset of a field, which also fails to compile when the field's type is
 * not ctype: subtracting pointers of different types is a constraint error.
 */
#define FIELD(field, ctype)           \
    (offsetof(advrec_conf_t, field) + \
     0 * sizeof(&((advrec_conf_t *)0)->field - (ctype *)0))

#define ROW_BOOL(nm, field, def_, grp, doc_)                         \
    {                                                                \
        .name = nm, .type = CONF_BOOL, .offset = FIELD(field, bool), \
        .def = def_, .group = grp, .doc = doc_                       \
    }
#define ROW_INT(nm, field, lo, hi, def_, grp, doc_)                    \
    {                                                                  \
        .name = nm, .type = CONF_INT, .offset = FIELD(field, int64_t), \
        .imin = lo, .imax = hi, .def = def_, .group = grp, .doc = doc_ \
    }
#define ROW_SIZE(nm, field, lo, hi, def_, grp, doc_)                    \
    {                                                                   \
        .name = nm, .type = CONF_SIZE, .offset = FIELD(field, int64_t), \
        .imin = lo, .imax = hi, .def = def_, .group = grp, .doc = doc_  \
    }
#define ROW_DUR(nm, field, lo, hi, def_, grp, doc_)                         \
    {                                                                       \
        .name = nm, .type = CONF_DURATION, .offset = FIELD(field, int64_t), \
        .imin = lo, .imax = hi, .def = def_, .group = grp, .doc = doc_      \
    }
#define ROW_DBL(nm, field, lo, hi, def_, grp, doc_)                      \
    {                                                                    \
        .name = nm, .type = CONF_DOUBLE, .offset = FIELD(field, double), \
        .dmin = lo, .dmax = hi, .def = def_, .group = grp, .doc = doc_   \
    }
#define ROW_STR(nm, field, minlen, flags_, def_, grp, doc_)              \
    {                                                                    \
        .name = nm, .type = CONF_STRING, .offset = FIELD(field, char *), \
        .imin = minlen, .flags = flags_, .def = def_, .group = grp,      \
        .doc = doc_                                                      \
    }
#define ROW_ENUM(nm, field, words_, def_, grp, doc_)                \
    {                                                               \
        .name = nm, .type = CONF_ENUM, .offset = FIELD(field, int), \
        .words = words_, .def = def_, .group = grp, .doc = doc_     \
    }

static const conf_word_t sync_words[] = {
    {"none", ADVREC_CONF_SYNC_NONE},
    {"commit", ADVREC_CONF_SYNC_COMMIT},
    {NULL, 0},
};

static const conf_word_t missing_words[] = {
    {"fail", ADVREC_CONF_MISSING_FAIL},
    {"earliest", ADVREC_CONF_MISSING_EARLIEST},
    {"committed", ADVREC_CONF_MISSING_COMMITTED},
    {NULL, 0},
};

static const conf_word_t retrieval_words[] = {
    {"exact", ADVREC_CONF_RETRIEVAL_EXACT},
    {"ann", ADVREC_CONF_RETRIEVAL_ANN},
    {"auto", ADVREC_CONF_RETRIEVAL_AUTO},
    {NULL, 0},
};

static const conf_word_t backlog_words[] = {
    {"consume", ADVREC_CONF_BACKLOG_CONSUME},
    {"pause", ADVREC_CONF_BACKLOG_PAUSE},
    {NULL, 0},
};

static const conf_word_t exclude_words[] = {
    {"purchased", ADVREC_CONF_EXCLUDE_PURCHASED},
    {"seen", ADVREC_CONF_EXCLUDE_SEEN},
    {"none", ADVREC_CONF_EXCLUDE_NONE},
    {NULL, 0},
};

static const conf_word_t log_words[] = {
    {"err", ADVREC_LOG_ERR},       {"warning", ADVREC_LOG_WARNING},
    {"notice", ADVREC_LOG_NOTICE}, {"info", ADVREC_LOG_INFO},
    {"debug", ADVREC_LOG_DEBUG},   {NULL, 0},
};

#define MS_DAY  INT64_C(86400000)
#define I32_MAX INT64_C(2147483647)

/* clang-format off */
const conf_row_t advrec_conf__rows[] = {
    ROW_BOOL("broker.embedded", broker_embedded, "true", "broker",
             "Start librdkafka's mock cluster in-process and use it as the broker (data lives in memory only); false: use kafka.bootstrap.servers."),
    ROW_INT("broker.embedded.partitions", broker_embedded_partitions, 1, 1024, "16", "broker",
            "Partitions of each topic created on the embedded broker (it keeps only about 5 MiB per partition)."),

    ROW_STR("topic.clicks", topic_clicks, 1, F_TOPIC, "advrec.clicks", "topic",
            "Input topic of click events (Avro, Confluent framing, keyed by user id)."),
    ROW_STR("topic.purchases", topic_purchases, 1, F_TOPIC, "advrec.purchases", "topic",
            "Input topic of purchase events (Avro, Confluent framing, keyed by user id)."),
    ROW_STR("topic.recommendations", topic_recommendations, 1, F_TOPIC, "advrec.recommendations", "topic",
            "Output topic of top-N recommendations, keyed by user id (compact it: latest wins)."),
    ROW_STR("topic.anomalies", topic_anomalies, 1, F_TOPIC, "advrec.anomalies", "topic",
            "Output topic of anomaly flags (bots, shilling) with their reasons."),
    ROW_STR("topic.dlq", topic_dlq, 1, F_TOPIC, "advrec.dlq", "topic",
            "Dead-letter topic: input records that do not decode or validate, with headers saying why."),
    ROW_STR("topic.control", topic_control, 0, F_TOPIC, "", "topic",
            "Input topic of forget requests (privacy): a tombstone (null value) keyed by a user id deletes that user's rows, history and detector state in the next commit, applied exactly once like any input, and puts a tombstone for their list on topic.recommendations. Any other record there is a dead letter (bad-control). Empty: none (docs/STATE.md, \"Expiry and forgetting\")."),
    ROW_STR("topic.changelog", topic_changelog, 0, F_TOPIC, "", "topic",
            "Scale-out: compacted topic of the state changelog, one partition per input partition (created with cleanup.policy=compact if absent). Every commit also writes the changed users' whole state there, and a marker of the input position once they are acknowledged, so a partition moved to another daemon of the group is restored there from it and resumes exactly once. Needs topic.clicks, topic.purchases (and topic.control) to have the same number of partitions: the group assigns topic.clicks (cooperative-sticky) and each daemon reads the same partition of the others. Empty: off, one daemon owns all its users (docs/ARCHITECTURE.md, \"Scaling out\")."),
    ROW_INT("topic.changelog.replication", topic_changelog_replication, -1, 32767, "-1", "topic",
            "Replication factor of topic.changelog when the daemon creates it; -1: the broker's default.replication.factor."),
    ROW_STR("topic.model", topic_model, 0, F_TOPIC, "", "topic",
            "Scale-out: compacted topic of the item factors shared by the daemons of the group (created with cleanup.policy=compact if absent). Each daemon publishes its own contribution to the items it trained every model.sync.interval.ms and adds the others' (asynchronous data-parallel SGD: docs/ARCHITECTURE.md, \"Shared item factors\"). Empty: off, each daemon's item factors are its own."),
    ROW_STR("group.id", group_id, 1, 0, "advrecd", "topic",
            "Kafka consumer group of the daemons sharing the input partitions (kafka.group.id, if given, wins)."),
    ROW_STR("group.instance.id", group_instance_id, 0, F_KNAME, "auto", "topic",
            "Static group membership: a restarted daemon gets its partitions back at once instead of after the dead member's session.timeout.ms. auto: advrecd.<host>.<absolute state.dir>, sanitized (dynamic membership when state.dir is empty); empty: dynamic membership; anything else: the id itself, which no two running daemons may share (kafka.group.instance.id, if given, wins)."),

    ROW_STR("schema.dir", schema_dir, 0, F_PATH, "", "schema",
            "Directory of the default .avsc files (our reader schemas, always read, and the built-in schema.1 to schema.4); empty: the source tree's schemas/ when run from a build directory, else the installed share/advrec/schemas."),
    ROW_INT("schema.click.id", schema_click_id, 1, I32_MAX, "1", "schema",
            "Confluent schema id written when we encode a click (schema.<N> must map it)."),
    ROW_INT("schema.purchase.id", schema_purchase_id, 1, I32_MAX, "2", "schema",
            "Confluent schema id written when we encode a purchase."),
    ROW_INT("schema.recommendation.id", schema_recommendation_id, 1, I32_MAX, "3", "schema",
            "Confluent schema id written in front of every recommendation we produce."),
    ROW_INT("schema.anomaly.id", schema_anomaly_id, 1, I32_MAX, "4", "schema",
            "Confluent schema id written in front of every anomaly flag we produce."),
    ROW_STR("schema.registry.url", schema_registry_url, 0, 0, "", "schema",
            "Confluent-compatible Schema Registry (e.g. http://host:8081, or Apicurio's http://host:8080/apis/ccompat/v7); empty: none, writer schemas come from schema.<N> only. With a registry, an input id not mapped by an explicit schema.<N> is fetched from it (and kept in the state), the built-in schema.1 to schema.4 do not apply, and our Recommendation and Anomaly schemas are registered under <topic>-value, whose ids replace schema.recommendation.id and schema.anomaly.id (docs/SCHEMAS.md)."),
    ROW_STR("schema.registry.basic.auth.user.info", schema_registry_user_info, 0, 0, "", "schema",
            "user:password for the registry's HTTP basic authentication; empty: none. Never logged or written out."),
    ROW_STR("schema.registry.ssl.ca.location", schema_registry_ca, 0, F_PATH, "", "schema",
            "PEM file of the CA certificates an https:// registry is verified with; empty: the system's."),
    ROW_INT("schema.registry.timeout.ms", schema_registry_timeout_ms, 1, 600000, "5000", "schema",
            "Bound of one request to the registry, connection included."),
    ROW_INT("schema.registry.retry.backoff.ms", schema_registry_backoff_ms, 1, 3600000, "1000", "schema",
            "While the registry cannot be reached, the partitions whose records need it wait this long before they are tried again (doubled on each failure, up to 30 s); the rest goes on."),
    ROW_BOOL("schema.registry.auto.register", schema_registry_auto_register, "true", "schema",
            "true: register our output schemas under <topic>-value (after a compatibility check); false: only look them up there, and refuse to start if they are not registered."),

    ROW_STR("state.dir", state_dir, 0, 0, "/var/lib/advrec", "state",
            "RocksDB directory holding the model, histories, detector state and input offsets; empty: state in memory only, lost at exit."),
    ROW_STR("state.checkpoint.dir", state_checkpoint_dir, 0, 0, "/var/lib/advrec-checkpoints", "state",
            "Where SIGUSR1 makes a consistent copy of the state (a new subdirectory named by UTC time); start a daemon from one with state.dir=<it>. Must not be state.dir or inside it."),
    ROW_ENUM("state.sync", state_sync, sync_words, "commit", "state",
             "commit: fsync each commit's WriteBatch (survives power loss); none: survives a crash of the process only."),
    ROW_INT("state.commit.interval.ms", state_commit_interval_ms, 0, 600000, "1000", "state",
            "How often the state is committed (rows changed since, with the input offsets they reflect, in one WriteBatch); 0: every round. A row changed many times is written once per commit. The batch is written by a thread of its own while the rounds go on (lists do not wait for commits); flags and dead letters are produced once the commit that records them is written, and a crash replays at most this much input."),
    ROW_SIZE("state.memory.limit", state_memory_limit, 0, INT64_MAX, "0", "state",
             "Resident memory the state may take, in bytes (k, M, G suffixes); 0: no limit, every user row stays in memory from start to stop. With a limit (state.dir required), memory holds the items and the users recently active: the start loads no user row, a user not in memory is read back from RocksDB at their next event, and after each commit the least recently active users whose rows are committed, with no list owed, are evicted until the estimate fits. It also bounds librdkafka's queues (kafka.queued.max.messages.kbytes, queue.buffering.max.kbytes and .messages, unless set) and the rows of one commit (docs/STATE.md, \"Memory budget\")."),
    ROW_DUR("state.user.ttl", state_user_ttl_ms, 0, INT64_MAX, "0", "state",
            "Users with no event for this long, by event time (measured back from the latest event time applied; e.g. 90d), are expired: their rows, history and detector state deleted in a commit and a tombstone for their list put on topic.recommendations; checked at each commit, a bounded slice at a time. 0: never. A full user table (model.max.users) never needs it: the least recently active user makes room for a new one."),
    ROW_ENUM("state.offset.missing", state_offset_missing, missing_words, "fail", "state",
             "When the state is behind what was committed to Kafka from it, lost the stored offset of a partition it had consumed, or lost acknowledged commits from its WAL (always logged as an error): fail: exit 65 naming the partitions; earliest: replay everything the state lacks (from its stored offset, or the partition's beginning when it has none); committed: resume at Kafka's committed offset, skipping what the state lost."),

    ROW_INT("round.max.records", round_max_records, 1, 1000000, "1000", "round",
            "Most records polled and committed in one processing round."),
    ROW_INT("round.max.ms", round_max_ms, 1, 60000, "100", "round",
            "Longest a round waits for its first record; it then takes only the records already fetched (up to round.max.records) and applies them at once."),
    ROW_INT("consumer.stall.ms", consumer_stall_ms, 1000, MS_DAY, "30000", "round",
            "An input partition behind its end that makes no progress, or stays in a librdkafka fetch state other than active, this long while the daemon did not pause it is fetched again from where the state stands, logged and counted (advrec_consumer_stalls_total). Checked on librdkafka's statistics, every 5 s (docs/RELIABILITY.md, \"Broker faults\")."),

    ROW_INT("model.k", model_k, 1, 1024, "64", "model",
            "Latent factors per user and item; changing it needs fresh state."),
    ROW_DBL("model.lr", model_lr, 1e-6, 10.0, "0.08", "model",
            "Learning rate of row-wise Adagrad (one accumulator per factor row)."),
    ROW_DBL("model.reg", model_reg, 0.0, 10.0, "0.0175", "model",
            "L2 regularisation of the factors touched by an update."),
    ROW_DBL("model.adv.lambda", model_adv_lambda, 0.0, 100.0, "1.0", "model",
            "Weight of the adversarial loss term (APR's lambda); 0: plain BPR."),
    ROW_DBL("model.adv.eps", model_adv_eps, 0.0, 100.0, "0.5", "model",
            "L2 norm of the adversarial perturbation of each embedding row (APR's epsilon)."),
    ROW_INT("model.adv.warmup", model_adv_warmup, 0, I32_MAX, "5", "model",
            "Updates a row needs before the adversarial term perturbs it (younger rows are not perturbed; a triple with no warm row trains as plain BPR)."),
    ROW_INT("model.adv.steps", model_adv_steps, 1, 100, "1", "model",
            "Gradient steps building the perturbation: 1 is FGSM, more is PGD (stronger, slower)."),
    ROW_INT("model.replay.steps", model_replay_steps, 0, 64, "0", "model",
            "Past interactions of the event's user trained again after each event, each with a negative of its own: positives drawn from the user's history ring (recs.history entries), reproducibly from the record's (seed, topic, partition, offset) stream. One pass over a stream sees each event once; replay revisits the past (docs/MODEL.md, \"Replay\"). 0: none."),
    ROW_INT("model.sync.interval.ms", model_sync_interval_ms, 10, MS_DAY, "1000", "model",
            "With topic.model: how often this daemon publishes its contribution to the items it trained since; with the transport delay, the staleness bound of the others' steps in its item factors."),
    ROW_INT("model.negatives", model_negatives, 1, 100, "24", "model",
            "Uniformly sampled negative items per positive event, each one training step, while the event's partition runs under model.negatives.budget. 24 (chosen on the validation split with lr, reg and init.std, docs/EVALUATION.md \"One pass vs offline\"): one pass in time order reaches 0.90 of the offline model's HR@10 on Amazon Beauty (4: 0.79) and 0.92 on MovieLens, FGSM drop ratio against BPR 0.40 / 0.27, for more work per event (docs/PERFORMANCE.md)."),
    ROW_INT("model.negatives.min", model_negatives_min, 1, 100, "4", "model",
            "The fewest negatives an event trains however fast its partition runs (model.negatives.budget); at most model.negatives."),
    ROW_DBL("model.negatives.budget", model_negatives_budget, 0.0, 1e12, "120000", "model",
            "Negatives per second of event time a partition may train: an event trains budget / rate of them, between model.negatives.min and model.negatives, where rate is its partition's records per second of event time since its user's previous record there (offsets and event times: reproducible, from the record and the user's stored state). An event without a previous record of its user on the same topic and partition (a new user, a purchase after clicks) has no rate and trains model.negatives.min. The default trains 24 up to 5,000 records/s per partition and 4 (the per-event work before 2026-12-04) from 30,000/s, so a partition that fast costs what it did (docs/MODEL.md, \"Negatives on a budget\"). 0: always model.negatives."),
    ROW_DBL("model.init.std", model_init_std, 0.0, 1.0, "0.1", "model",
            "Standard deviation of the normal distribution new factors are drawn from."),
    ROW_INT("model.seed", model_seed, 0, INT64_MAX, "42", "model",
            "Seed of every random choice (derived with the record's topic, partition and offset, or the id)."),
    ROW_BOOL("model.bias", model_bias, "true", "model",
             "Learn an item bias term next to the factors."),
    ROW_DBL("model.weight.click", model_weight_click, 0.0, 1000.0, "1.0", "model",
            "Training weight of a click."),
    ROW_DBL("model.weight.purchase", model_weight_purchase, 0.0, 1000.0, "3.0", "model",
            "Training weight of a purchase."),
    ROW_INT("model.max.items", model_max_items, 1, I32_MAX, "1000000", "model",
            "Most distinct items; events for new items beyond it are not trained on."),
    ROW_INT("model.max.users", model_max_users, 1, INT64_C(1073741823), "10000000", "model",
            "Most users in the state at once. A new user beyond it makes room: the least recently active user is deleted (as state.user.ttl.ms deletes one; counted in advrec_state_users_deleted_total{cause=\"capacity\"}), so no event is refused for lack of room. At most 2^30 - 1 (a list's delivery tag holds the user's slot in 30 bits)."),

    ROW_INT("recs.n", recs_n, 1, 1000, "10", "recs",
            "Items in each recommendation list."),
    ROW_INT("recs.debounce.ms", recs_debounce_ms, 0, MS_DAY, "1000", "recs",
            "A user's list is refreshed at most this often while their events keep coming."),
    ROW_INT("recs.max.staleness.ms", recs_max_staleness_ms, 0, MS_DAY, "10000", "recs",
            "Longest a user's list may lag their latest event; must be >= recs.debounce.ms."),
    ROW_INT("recs.refresh.budget.ms", recs_refresh_budget_ms, 0, 60000, "100", "recs",
            "Time a round spends refreshing lists owed (monotonic clock), oldest first, in batches of recs.refresh.batch users: the budget is checked between batches, and one batch is always refreshed, so 0 means one batch per round. round.max.records also bounds the lists of a round (docs/PERFORMANCE.md, \"Refreshes on a budget\")."),
    ROW_INT("recs.refresh.batch", recs_refresh_batch, 1, 100000, "256", "recs",
            "Users ranked together between two checks of recs.refresh.budget.ms (the scoring batches users 256 at a time)."),
    ROW_ENUM("recs.backlog.policy", recs_backlog_policy, backlog_words, "consume", "recs",
             "When refreshes cannot keep up with the input: consume keeps consuming and lets the lists owed wait longer than recs.max.staleness.ms; pause stops consuming while a list owed is recs.max.staleness.ms old or older (every round then refreshes, oldest first, for at least round.max.ms) and resumes once none is, logging both (at most once per 10 s). Paused or not, the consumer is polled at least every half of kafka.max.poll.interval.ms, so the group does not drop it (docs/OPERATIONS.md, \"Refresh backlog\")."),
    ROW_ENUM("recs.exclude", recs_exclude, exclude_words, "purchased", "recs",
             "Items left out of a user's list: the user's purchased items (recs.exclude.purchased.max), those and every item seen (recs.exclude.seen.max), or none."),
    ROW_INT("recs.exclude.purchased.max", recs_exclude_purchased_max, 0, 65535, "256", "recs",
            "Distinct purchased items remembered per user, the most recent kept, stored with the user's row; under recs.exclude=purchased or seen none of them is recommended again. Independent of recs.history; 0 keeps none."),
    ROW_INT("recs.exclude.seen.max", recs_exclude_seen_max, 0, 65535, "256", "recs",
            "Distinct items seen (clicked or purchased) remembered per user, the most recent kept, stored with the user's row; kept only under recs.exclude=seen, where none of them is recommended. Independent of recs.history."),
    ROW_INT("recs.history", recs_history, 1, 10000, "50", "recs",
            "Recent items remembered per user, in a ring (negative sampling and the detectors; recs.exclude uses its own sets)."),
    ROW_INT("recs.cold.events", recs_cold_events, 0, 1000000, "3", "recs",
            "users with fewer events than this get the time-decayed popularity list instead of model scores"),
    ROW_DBL("recs.popularity.halflife.s", recs_popularity_halflife_s, 1.0, 1e9, "3600", "recs",
            "Half-life of the time-decayed popularity that cold users are recommended from."),
    ROW_ENUM("recs.retrieval", recs_retrieval, retrieval_words, "auto", "recs",
             "How model-scored lists find their items: exact scores every item (the ground truth); ann asks an approximate inner-product index (Faiss IVF, built in a background thread, never stored) for recs.ann.candidates items per user and re-scores them exactly with the current factors; auto is ann from recs.retrieval.auto.items items on, else exact. Lists are exact until the first index is ready (docs/MODEL.md)."),
    ROW_INT("recs.retrieval.auto.items", recs_retrieval_auto_items, 1, I32_MAX, "200000", "recs",
            "Under recs.retrieval=auto, the catalog size from which lists come from the index."),
    ROW_INT("recs.ann.lists", recs_ann_lists, 0, 1000000, "0", "recs",
            "Inverted lists (k-means centroids) of the index; 0 picks 4 * sqrt(items), at most items / 39."),
    ROW_INT("recs.ann.probe", recs_ann_probe, 1, 1000000, "4", "recs",
            "Lists searched per user, at least: with recs.ann.recall above 0 each build's count is tuned from this one up; more is slower and finds more of the exact top-N (docs/PERFORMANCE.md has the trade-off)."),
    ROW_DBL("recs.ann.recall", recs_ann_recall, 0.0, 1.0, "0.97", "recs",
            "At each index build the lists searched per user are raised from recs.ann.probe until the recall@10 of the served lists against the exact top-10 reaches this, on up to 256 users sampled reproducibly (their exact lists over the build's snapshot); 0 keeps recs.ann.probe. The tuned count and the sample's recall are in the metrics (advrec_ann_probe_lists, advrec_ann_sample_recall) and logged at each build."),
    ROW_INT("recs.ann.candidates", recs_ann_candidates, 1, 100000, "50", "recs",
            "Items the index proposes per user, re-scored exactly (at least recs.n plus the user's exclusions are asked for)."),
    ROW_INT("recs.ann.rebuild.ms", recs_ann_rebuild_ms, 0, MS_DAY, "60000", "recs",
            "A new snapshot of the item factors is indexed at most this often (in the background; the centroids are re-trained only when the catalog has doubled). Candidates are re-scored with the current factors, so an older index costs only recall."),
    ROW_BOOL("recs.ann.sq8", recs_ann_sq8, "false", "recs",
             "The index's lists hold 8-bit codes of the rows (a quarter of the index's memory) instead of the rows, scanned by Faiss; the rows themselves are scanned with OpenBLAS, which is faster with Debian's Faiss (docs/PERFORMANCE.md). Candidates are re-scored exactly either way."),

    ROW_BOOL("anomaly.enable", anomaly_enable, "true", "anomaly",
             "Run the bot and shilling detectors: flag to topic.anomalies and down-weight or quarantine flagged entities' events (docs/ANOMALY.md)."),
    ROW_INT("anomaly.min.events", anomaly_min_events, 1, 1000000, "20", "anomaly",
            "Events of a user before its gap regularity and diversity are judged."),
    ROW_DBL("anomaly.rate.window.s", anomaly_rate_window_s, 1.0, 1e7, "300", "anomaly",
            "Time constant (event time) of a user's exponentially decayed event count."),
    ROW_DBL("anomaly.rate.max", anomaly_rate_max, 1.0, 1e9, "60", "anomaly",
            "Decayed event count (about events per rate window) at which a user is high-rate."),
    ROW_DBL("anomaly.gap.logstd.max", anomaly_gap_logstd_max, 0.0, 100.0, "0.2", "anomaly",
            "Standard deviation of a user's log inter-event gaps below which the gaps are machine-regular."),
    ROW_INT("anomaly.nopurchase.clicks", anomaly_nopurchase_clicks, 1, I32_MAX, "20", "anomaly",
            "Clicks without any purchase at which a user counts as never buying."),
    ROW_DBL("anomaly.diversity.min", anomaly_diversity_min, 0.0, 1.0, "0.2", "anomaly",
            "Distinct/total items over a user's last 32 events below which diversity is low."),
    ROW_DBL("anomaly.young.s", anomaly_young_s, 0.0, 1e9, "1800", "anomaly",
            "An account first seen less than this long ago (event time) is young."),
    ROW_DBL("anomaly.item.window.s", anomaly_item_window_s, 1.0, 1e9, "1800", "anomaly",
            "Time constant (event time) of an item's decayed counts of recent events."),
    ROW_DBL("anomaly.item.min.events", anomaly_item_min_events, 1.0, 1e9, "12", "anomaly",
            "Decayed events from young or flagged accounts an item needs before it can be flagged."),
    ROW_DBL("anomaly.item.share", anomaly_item_share, 0.0, 1.0, "0.5", "anomaly",
            "Share of an item's recent events from young or flagged accounts at which it surges."),
    ROW_DBL("anomaly.item.surge.factor", anomaly_item_surge_factor, 1.0, 1000.0, "3", "anomaly",
            "... and that share must be at least this many times the share over all items (the baseline)."),
    ROW_INT("anomaly.group.min.size", anomaly_group_min_size, 0, 1024, "10", "anomaly",
            "Distinct newcomers (accounts young or still in their first session) that, first touching one item within two item windows and making most of its recent and half of all its traffic, make a shilling group: the item is flagged and every one of them quarantined (reason shill-group). 0: no group detection."),
    ROW_INT("anomaly.profile.min.events", anomaly_profile_min_events, 0, 1000000, "40", "anomaly",
            "Events of a new account (young or in its first session) within one profile window before its filler profile is judged (reason filler-profile). 0: no filler-profile detection."),
    ROW_DBL("anomaly.profile.fit.max", anomaly_profile_fit_max, 0.0, 100.0, "0.1", "anomaly",
            "A window is a filler profile when the mean of its items' log(1 + events) is closer to the catalogue's mean than this share of the stream's typical distance (items drawn uniformly, as average and random attacks draw their fillers, sit on the mean; genuine users above it), narrowing as sqrt(anomaly.profile.min.events / window events). Judged once the catalogue's items have 10 events on average."),
    ROW_DBL("anomaly.profile.window.s", anomaly_profile_window_s, 1.0, 1e9, "86400", "anomaly",
            "Length (event time) of a user's profile window: the profile restarts at its first event after this long."),
    ROW_DBL("anomaly.profile.burst.min", anomaly_profile_burst_min, 0.0, 1e9, "0", "anomaly",
            "Events per hour of the profile window a filler profile must also reach (a window shorter than a minute counts as one); 0: any rate."),
    ROW_DBL("anomaly.flag.score", anomaly_flag_score, 0.0, 1.0, "0.6", "anomaly",
            "User score (noisy-OR of its reasons' strengths) at which it is flagged and down-weighted."),
    ROW_DBL("anomaly.quarantine.score", anomaly_quarantine_score, 0.0, 1.0, "0.8", "anomaly",
            "User score at which it is quarantined: its events are counted but not trained on."),
    ROW_DBL("anomaly.clear.score", anomaly_clear_score, 0.0, 1.0, "0.3", "anomaly",
            "User score below which a flag is cleared (hysteresis)."),
    ROW_DBL("anomaly.weight.flagged", anomaly_weight_flagged, 0.0, 1.0, "0.1", "anomaly",
            "Training weight factor of a flagged user's events (and of young accounts' events on a surging item)."),
    ROW_DBL("anomaly.weight.probation", anomaly_weight_probation, 0.0, 1.0, "0", "anomaly",
            "Training weight factor of a young account's event on an item whose recent traffic is mostly young accounts, until the crowd is found a shilling group or turns out normal (probation; docs/ANOMALY.md). What a group trains before it is found stays in an online model."),

    ROW_ENUM("log.level", log_level, log_words, "info", "log",
             "Least severe level logged (syslog levels; journald keeps each line's level)."),
    ROW_INT("stats.interval.ms", stats_interval_ms, 0, MS_DAY, "10000", "log",
            "Interval of the statistics log line (rates, lag, model size); 0: off."),

    ROW_STR("http.listen", http_listen, 0, 0, "127.0.0.1:9464", "http",
            "host:port of the HTTP endpoint serving /metrics (Prometheus text), /health/live and /health/ready (IPv4 address or [IPv6]; port 0: any free port, logged); empty: no endpoint."),
    ROW_INT("http.live.max.ms", http_live_max_ms, 1, MS_DAY, "30000", "http",
            "/health/live answers 503 once the last processing round finished longer ago than this."),
    ROW_INT("metrics.prequential.every", metrics_prequential_every, 0, I32_MAX, "1000", "http",
            "Every Nth applied event, before training on it, rank its user as a list would be published and count whether the event's item is in it (advrec_prequential_*); 0: off."),
};
/* clang-format on */

const size_t advrec_conf__rows_cnt =
    sizeof(advrec_conf__rows) / sizeof(advrec_conf__rows[0]);

/* Display order and titles of the groups the rows name. */
const conf_group_t advrec_conf__groups[] = {
    {"broker", "where the Kafka cluster is"},
    {"topic", "topics and the consumer group"},
    {"schema", "Avro schemas and the ids we write"},
    {"state", "the RocksDB state store"},
    {"round", "one processing round"},
    {"model", "the online APR (adversarial BPR-MF) model"},
    {"recs", "recommendation lists"},
    {"anomaly", "bot and shilling detectors (docs/ANOMALY.md)"},
    {"log", "logging and statistics"},
    {"http", "the HTTP endpoint: metrics and health (docs/OPERATIONS.md)"},
};

const size_t advrec_conf__groups_cnt =
    sizeof(advrec_conf__groups) / sizeof(advrec_conf__groups[0]);

/* The default schema.<N> map: files inside schema.dir. */
const conf_default_schema_t advrec_conf__default_schemas[] = {
    {1, "click.avsc"},
    {2, "purchase.avsc"},
    {3, "recommendation.avsc"},
    {4, "anomaly.avsc"},
};

const size_t advrec_conf__default_schemas_cnt =
    sizeof(advrec_conf__default_schemas) /
    sizeof(advrec_conf__default_schemas[0]);

void advrec_conf__words_join(const conf_word_t *words, const char *sep,
                             char *buf, size_t size)
{
    size_t n = 0;

    buf[0] = '\0';
    for (const conf_word_t *w = words; w->word && n < size; w++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", w == words ? "" : sep,
                              w->word);
}
