"""The one table of defaults that the options, the snapshot extension, `lmbehave diff` and `explore` all read."""

from __future__ import annotations

# Raised whenever a change to the in-process decoding can change which token a row picks (the draw, the warpers,
# their order): part of the environment fingerprint, so recorded snapshots and --lm-cache entries name it.
DECODING_VERSION = "1"
TOP = 5  # candidates a failure shows and a snapshot records
REPORT_TOP = 10  # candidates a report keeps per distribution (--lm-report-top)
TOLERANCE = 1e-3  # how far a snapshot's probabilities, scores and margins may move (numerical noise is ~1e-4)
NEAR_TIE = 0.05  # nats: a flip is a near-tie when the recorded and the new margin are both below this
DRIFT_PROB = 0.01  # `lmbehave diff`: largest probability change still counted as none
DRIFT_KL = 0.01  # `lmbehave diff`: nats of KL divergence between top-k distributions still counted as none
DRIFT_SCORE = 0.05  # `lmbehave diff`: nats of log-likelihood (scores, margins) still counted as none
EXPLORE_TOP = 10  # `lmbehave explore`: next-token candidates shown
MARGIN_ROUNDING = 1e-3  # generation margins are recorded to 3 decimals: two roundings move a difference this much
DRAWS = (
    2000  # lm.draws' count: each known wrong sampler rejected with power 1.00 at T = 1 (docs/explanation/statistics.md)
)
DIRECTION_BY = 0.05  # assert_direction: the least move of a label's probability that counts (docs/how-to/behaviour-under-change.md)
CHANGE_TOP = 20  # behaviour under change: candidates whose KL is taken when a distribution is not whole (a server)
DRAWS_DECODED = 1000  # where each draw is a decode of its own (a server), to fit make test's time; power in docs/explanation/statistics.md
MEMO_MB = 64  # whole distributions a runtime keeps in memory; one let go is read again, exactly (runtime/memo.py)
