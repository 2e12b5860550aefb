"""Content-keyed caches: keys change with any byte, dtype or shape; least recently used goes."""

import numpy as np
import pytest

from grasp_semantics.models.cache import ContentCache, content_key


def test_content_key_follows_the_content_not_the_object():
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert content_key(a, "x") == content_key(a.copy(), "x")
    assert content_key(a[:, :2]) == content_key(np.ascontiguousarray(a[:, :2]))  # a view
    changed = a.copy()
    changed[3, 2] += 1e-6
    others = [
        content_key(changed, "x"),
        content_key(a.astype(np.float64), "x"),  # same values, other bytes
        content_key(a.reshape(3, 4), "x"),  # same bytes, other shape
        content_key(a, "y"),
        content_key(a, None),
        content_key(a),
    ]
    assert len({content_key(a, "x"), *others}) == len(others) + 1
    assert content_key("ab", "c") != content_key("a", "bc")


def test_content_cache_drops_the_least_recently_used():
    cache: ContentCache[int] = ContentCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2 and cache.get("b") is None
    cache.clear()
    assert not cache


def test_content_cache_of_size_zero_keeps_nothing():
    cache: ContentCache[int] = ContentCache(0)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0
    with pytest.raises(ValueError, match=">= 0"):
        ContentCache(-1)
