"""The append-only consent ledger of a customer (API.md "Profile data")."""
