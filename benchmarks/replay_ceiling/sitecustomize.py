"""Imported at start-up by every process of `bench_replay --without-writes`, whose PYTHONPATH puts this folder
first: the replay's batch write (ledger rows, payments, events' states, drift) does nothing, so the run measures
what everything else costs (reading, parsing, linking, the rules, the payment fold, the projection). That is a
ceiling for the replay's speed on this machine, not the replay: the run leaves the books unwritten."""
import os

if os.environ.get("BENCH_REPLAY_WITHOUT_WRITES") == "1":
    from backoffice.billing.replay.replayer import Replayer

    Replayer._write = lambda self, batch: None
