"""The WSGI gate in front of Socket.IO: CORS, JSONP and handshake refusals, health, metrics."""
