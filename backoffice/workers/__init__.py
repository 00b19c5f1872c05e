"""The processes worker.py starts: an RQ worker, or the periodic-job scheduler, each riding out Redis and
PostgreSQL outages (main.py says how)."""
