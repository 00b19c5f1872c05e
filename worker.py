"""RQ worker (and, with --scheduler, the periodic-job scheduler) for Backoffice: backoffice/workers/main.py.

    python worker.py                 # serve the high, default and low queues
    python worker.py --burst         # drain the queues and exit (tests, one-off runs)
    python worker.py --scheduler     # enqueue the periodic jobs of backoffice/schedule.py
    python worker.py --processes 2   # two workers side by side, one per core
"""
import sys

from backoffice.workers.main import main

if __name__ == "__main__":
    sys.exit(main())
