"""Domain events: types, CloudEvents envelopes and the transactional outbox."""
