"""runsocket's servers: eventlet's (the default) and gevent's, with the same guarantees.

``addresses`` binds what the command line names, ``closing`` says how a
connection the server will not serve is closed and logged, and each server
module holds the one upstream WSGI server it extends.
"""
