"""Meta channels: a Meta app and a Facebook page or Instagram business account tied to a
tenant, with its page access token (API.md "Channels")."""
