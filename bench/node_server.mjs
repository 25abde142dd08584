// The peer many teams would pick instead: a Node socket.io 4 server that refuses
// origins in an io.use() middleware, with the same welcome events as Guardsite.
//   node bench/node_server.mjs PORT RULES_FILE
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { Server } from "socket.io";

const [portText, rulesFile] = process.argv.slice(2);
const exact = new Set();
const suffixes = [];
for (const rule of readFileSync(rulesFile, "utf8").split("\n").filter(Boolean)) {
  if (rule.includes("://*.")) {
    const [scheme, host] = rule.split("://*.");
    suffixes.push({ scheme: scheme + "://", suffix: "." + host });
  } else exact.add(rule);
}
const allowed = (origin) =>
  typeof origin === "string" &&
  (exact.has(origin) || suffixes.some((s) => origin.startsWith(s.scheme) && origin.endsWith(s.suffix)));

const http = createServer();
const io = new Server(http, { cors: { origin: (o, cb) => cb(null, allowed(o)), credentials: true } });
io.use((socket, next) => {
  const origin = socket.handshake.headers.origin;
  if (allowed(origin)) return next();
  const err = new Error("Who invited you to this party?");
  err.data = { reason: "origin-not-allowed", origin };
  next(err);
});
io.on("connection", (socket) => {
  socket.emit("permission.message", "Okay, you're cool.", { origin: socket.handshake.headers.origin });
  socket.on("echo", (data, ack) => ack(data));
  socket.emit("hello.client", { message: "This is a message from the server. It was sent using the ws:// protocol" });
});
http.listen(Number(portText), "127.0.0.1", () => console.log("READY"));
