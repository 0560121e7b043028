"""Customer documents: identity and business documents with their files (API.md "Profile data")."""
