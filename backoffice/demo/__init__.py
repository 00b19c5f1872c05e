"""Demo data: Stripe lifecycles driven through the sandbox, and the SaaS's own tables around them."""
