#!/usr/bin/env python3
"""bench/seeds.py's bootstrap interval of the APR/BPR ratio of mean FGSM
drops over the seeds: it holds the ratio of the means, is the same on
every run, is wide when the seeds disagree and narrow when they agree,
and is not given for fewer than three seeds."""
import importlib.util
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "seeds", os.path.join(here, "..", "..", "bench", "seeds.py"))
seeds = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seeds)


def check(what, ok):
    if not ok:
        sys.exit(f"seeds_interval: {what}: failed")
    print(f"ok: {what}")


# Beauty's settings on MovieLens, seeds 6-10 (docs/EVALUATION.md).
db = [0.034, 0.058, 0.026, 0.065, 0.053]
da = [0.003, 0.049, 0.021, 0.026, 0.032]
lo, hi = seeds.bootstrap_ratio(db, da)
ratio = sum(da) / sum(db)
check("the interval holds the ratio of the means", lo < ratio < hi)
check("deterministic", seeds.bootstrap_ratio(db, da) == [lo, hi])
check("seeds that disagree: an interval wider than 0.2", hi - lo > 0.2)
lo2, hi2 = seeds.bootstrap_ratio([0.04] * 5, [0.02, 0.021, 0.019, 0.02,
                                               0.02])
check("seeds that agree: a narrow interval around 0.5",
      0.47 < lo2 <= 0.5 <= hi2 < 0.53 and hi2 - lo2 < 0.05)
check("fewer than three seeds: none",
      seeds.bootstrap_ratio([0.04, 0.05], [0.02, 0.02]) is None)
check("BPR lost nothing on any seed: none, not a crash",
      seeds.bootstrap_ratio([0.0, 0.0, 0.0], [0.01, 0.0, 0.0]) is None)
