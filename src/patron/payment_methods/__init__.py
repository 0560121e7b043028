"""Tokenized payment methods of a customer (API.md "Profile data")."""
