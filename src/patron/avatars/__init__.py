"""Customer avatars: uploaded, checked by decoding, re-encoded without metadata."""
