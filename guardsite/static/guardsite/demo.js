// Connects with the official Socket.IO client and shows what the server decided.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const show = (id, text) => { $(id).textContent = text == null || text === "" ? "–" : text; };
  const outcome = (state, text) => { $("outcome").dataset.state = state; $("outcome").textContent = text; };
  const protocol = () => (location.protocol === "https:" ? "wss://" : "ws://");

  const socket = io({ reconnection: true });

  // The plain message first, then the details (origin, rule, transport).
  socket.on("permission.message", (message, details) => {
    outcome("allowed", message);
    show("seen-origin", details.origin);
    show("rule", details.rule);
    show("reason", "allowed");
    $("next-step").hidden = true;
  });

  socket.on("hello.client", (payload) => show("hello", payload.message));

  // The server re-checks open sockets when the rules change.
  socket.on("permission.revoked", (message, details) => {
    outcome("refused", message);
    show("reason", details.reason + " (permission revoked)");
    show("rule", "");
    $("next-step").hidden = false;
  });

  socket.on("connect_error", (err) => {
    // A refusal from the server carries the reason; anything else is a network problem.
    if (err.data && err.data.reason) {
      outcome("refused", err.message);
      show("seen-origin", err.data.origin);
      show("reason", err.data.reason);
      show("rule", "");
      $("next-step").hidden = false;
    } else {
      outcome("connecting", "Cannot reach the server: " + err.message);
    }
  });

  socket.on("connect", () => {
    const engine = socket.io.engine;
    show("transport", engine.transport.name);
    show("protocol", engine.transport.name === "websocket" ? protocol() : location.protocol + "//");
    engine.on("upgrade", () => {
      show("transport", engine.transport.name);
      show("protocol", protocol());
    });
  });

  socket.on("disconnect", (reason) => {
    if (reason === "io server disconnect" && $("outcome").dataset.state !== "refused") {
      outcome("disconnected", "The server closed this connection.");
    }
  });
})();
