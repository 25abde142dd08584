"""``GuardedServer`` on python-socketio's public API, and what it composes."""
