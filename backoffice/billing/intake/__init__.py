"""Stripe webhook intake (DESIGN §2.1): the hot path from a signed delivery to the archive."""
