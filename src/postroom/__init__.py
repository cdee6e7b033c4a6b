"""postroom: a message broker in Python that speaks the Redis protocol."""

__version__ = "0.1.0"
#: The Redis version whose semantics postroom follows (INFO ``redis_version``).
REDIS_VERSION = "7.0.15"
