"""The keyspace: numbered databases and one module per data type."""

from .database import TYPE_NAMES, WRONGTYPE, Database, register_type, type_name

__all__ = ["TYPE_NAMES", "WRONGTYPE", "Database", "register_type", "type_name"]
