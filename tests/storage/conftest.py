from tests.storage.fixtures import broken_storage, local_storage, s3_endpoint, s3_storage, storage

__all__ = ["broken_storage", "local_storage", "s3_endpoint", "s3_storage", "storage"]
