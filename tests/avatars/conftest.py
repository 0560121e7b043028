from tests.storage.fixtures import local_storage, s3_endpoint, s3_storage, storage

__all__ = ["local_storage", "s3_endpoint", "s3_storage", "storage"]
