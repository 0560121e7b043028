"""``Idempotency-Key`` on POST (API.md "Conventions"), in the manner of Stripe's API."""
