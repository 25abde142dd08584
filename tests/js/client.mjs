// Connects once with the official socket.io-client and reports what the server decided.
import { io } from "socket.io-client";

export function connectOnce(url, { origin, transports = ["websocket"], ca, path, timeout = 15_000 } = {}) {
  return new Promise((done, fail) => {
    const extraHeaders = origin ? { Origin: origin } : {};
    const socket = io(url + (path || ""), {
      transports,
      extraHeaders,
      ca,
      reconnection: false,
      forceNew: true,
      timeout,
    });
    const outcome = { welcome: null, welcomeArgs: null, hello: null, error: null, transport: null };
    const timer = setTimeout(() => {
      socket.close();
      fail(new Error(`no outcome within ${timeout} ms: ${JSON.stringify(outcome)}`));
    }, timeout);
    const finish = () => {
      clearTimeout(timer);
      socket.close();
      done(outcome);
    };
    socket.on("connect", () => (outcome.transport = socket.io.engine.transport.name));
    // The plain message first (as the recipe's client expects), then the details.
    socket.on("permission.message", (message, details) => {
      outcome.welcomeArgs = [message, details];
      outcome.welcome = { message, ...details };
      if (outcome.hello) finish();
    });
    socket.on("hello.client", (payload) => {
      outcome.hello = payload;
      if (outcome.welcome) finish();
    });
    socket.on("connect_error", (err) => {
      outcome.error = { message: err.message, data: err.data };
      finish();
    });
  });
}
