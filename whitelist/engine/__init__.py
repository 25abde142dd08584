"""The engine layer: the only code that touches python-socketio's, python-engineio's or
eventlet's internals. ``REACH.md`` lists every reach; ``contracts`` checks each at start-up.
"""
