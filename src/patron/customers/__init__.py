"""Customers: profiles, identities, upsert, search, merge, block, interaction."""
