"""Exchange rates: the ECB's daily reference rates (units of a currency per euro), kept in `fx_rates`, and the one
conversion rule every figure in the reporting currency follows (docs/currencies.md).

The rule: an amount in currency C on day D is worth amount × rate(C → R, D) in the reporting currency R, where
rate(C → R, D) = per_eur(R) ÷ per_eur(C) on the latest ECB day on or before D (the ECB publishes on business days
only; the euro is 1). Each converted figure is rounded half-even to the cent once. MRR converts at the rate of
the day shown; revenue at the rate of the payment day. The SQL function `fx_rate(from, to, day)` (migration 0019)
is that rule; Python asks it rather than repeating it.
"""
