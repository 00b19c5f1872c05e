"""Keeping the local books in step with Stripe (DESIGN §2.3–§2.4, §4.6, §4.11): the platform walk of missed
events, an account's Sync, drift and its sweep, restatement, disaster recovery, and the banners' health figures."""
