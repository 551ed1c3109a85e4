"""Content-addressed step cache: keys, object store, file digests, locks, gc."""
from slim.cache.keys import canonical_json, hash_material, key_material, lib_versions, step_key
from slim.cache.store import ObjectStore, default_cache_dir

__all__ = ["canonical_json", "hash_material", "key_material", "lib_versions", "step_key",
           "ObjectStore", "default_cache_dir"]
