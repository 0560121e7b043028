"""Small shared building blocks: crypto, ids, pagination, repositories, validation."""
