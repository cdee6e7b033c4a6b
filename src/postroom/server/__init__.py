"""The asyncio network server around the broker."""

from .app import Server, install_event_loop_policy, run

__all__ = ["Server", "install_event_loop_policy", "run"]
