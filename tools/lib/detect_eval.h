/*
 * detect_eval.h - offline evaluation of the anomaly detectors (lib/detect)
 * on labelled shilling profiles and on attacks injected into event files,
 * and of the defence's effect on the attacked item (`advrec-eval
 * --detect`).
 *
 * Everything runs through the daemon's own path: events in time order go
 * through advrec_engine_apply() with the detector installed as its judge
 * (advrec_engine_set_judge), so what is measured is what advrecd does. A
 * flag counts when a user reaches FLAGGED or QUARANTINED at any point.
 *
 * Labelled profiles (the shilling-research layout: a ratings file of `user
 * item rating` lines, a labels file of `user label` lines, label 1 =
 * attacker) carry no time: each user's profile becomes one session, its
 * items in a seeded random order with exponential gaps (mean 20 s),
 * genuine sessions starting uniformly over 30 days and attackers' in an
 * attack window (by default one day starting at 80 % of the span; options
 * say otherwise). Every rating is one click.
 *
 * Injected attacks: a target drawn (seeded) among the less popular half of
 * the items with at least one event, n_fake = attack % of the users,
 * fillers = filler % of the items drawn uniformly (a random/average
 * attack), each fake account one session starting in a one-hour window at
 * 80 % of the file's time span.
 */
#ifndef ADVREC_DETECT_EVAL_H
#define ADVREC_DETECT_EVAL_H

/* The `advrec-eval --detect ...` command: argv[0] is "--detect". Prints
 * one summary line per data set on stdout; returns the exit code. */
int advrec_detect_eval_main(int argc, char **argv);

#endif
