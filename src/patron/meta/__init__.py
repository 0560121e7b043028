"""Meta (Facebook Messenger, Instagram): the Graph API client and the profile cache.

No database: :class:`GraphClient` makes the calls (``graph.py``), :class:`ProfileFetcher`
caches them (``cache.py``), :mod:`patron.meta.errors` holds what they raise.
"""

from patron.meta.cache import ProfileFetcher, build_profile_fetcher
from patron.meta.graph import (
    GraphClient,
    GraphCredentials,
    InstagramProfile,
    MessengerProfile,
    Platform,
    appsecret_proof,
)

__all__ = [
    "GraphClient",
    "GraphCredentials",
    "InstagramProfile",
    "MessengerProfile",
    "Platform",
    "ProfileFetcher",
    "appsecret_proof",
    "build_profile_fetcher",
]
