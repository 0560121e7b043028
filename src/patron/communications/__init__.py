"""The history of contacts with a customer (API.md "Profile data")."""
