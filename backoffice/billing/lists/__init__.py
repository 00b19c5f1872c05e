"""The ledger as operators list it (DESIGN §8, reference §6): billing events and their lenses, invoices, the
effective history of an account, and the failed events."""
