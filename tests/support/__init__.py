"""Test support: servers to test against (postroom, the redis-server oracle) and a raw RESP client."""
