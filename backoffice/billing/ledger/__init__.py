"""The ledger's rules (DESIGN §4): the vocabulary, the order of a customer's events, the readers of each API
version, the pricing and catalog, the rules that turn events into rows and payments, and net revenue. Pure where
it can be: only the catalog and the rulebook read the database."""
