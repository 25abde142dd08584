// The official socket.io-client 4.x against the real runsocket.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { connectOnce } from "./client.mjs";
import { startServer } from "./server.mjs";

const ALLOWED = "http://allowed.test:8080";
const REFUSAL = "Who invited you to this party?";
let server;

before(async () => {
  server = await startServer({ rules: [ALLOWED, "{tls}"] });
});

after(async () => {
  await server?.stop();
});

for (const transport of ["websocket", "polling"]) {
  describe(`over ${transport}`, () => {
    test("an allowed origin is welcomed", async () => {
      const outcome = await connectOnce(server.url, { origin: ALLOWED, transports: [transport] });
      assert.equal(outcome.error, null);
      // The recipe's plain message first, then the details.
      assert.deepEqual(outcome.welcomeArgs, [
        "Okay, you're cool.",
        { origin: ALLOWED, rule: ALLOWED, transport },
      ]);
      assert.equal(outcome.hello.protocol, "ws://");
    });

    test("a refused origin gets the message and the reason", async () => {
      const outcome = await connectOnce(server.url, {
        origin: "https://evil.test",
        transports: [transport],
      });
      assert.equal(outcome.welcome, null);
      assert.equal(outcome.error.message, REFUSAL);
      assert.deepEqual(outcome.error.data, { reason: "origin-not-allowed", origin: "https://evil.test" });
    });

    test("a look-alike origin is refused", async () => {
      const outcome = await connectOnce(server.url, {
        origin: "http://allowed.test:8080.evil.test",
        transports: [transport],
      });
      assert.equal(outcome.error.message, REFUSAL);
    });

    test("a namespace added without the guard is guarded", async () => {
      const outcome = await connectOnce(server.url, {
        origin: "https://evil.test",
        transports: [transport],
        path: "/late",
      });
      assert.equal(outcome.error.message, REFUSAL);
      assert.equal(outcome.error.data.reason, "origin-not-allowed");
    });
  });
}

test("polling that upgrades to websocket stays welcomed", async () => {
  const outcome = await connectOnce(server.url, { origin: ALLOWED, transports: ["polling", "websocket"] });
  assert.equal(outcome.welcome.message, "Okay, you're cool.");
});

for (const transport of ["websocket", "polling"]) {
  test(`wss:// with the development certificate over ${transport} is told wss://`, async () => {
    const outcome = await connectOnce(server.tlsUrl, {
      origin: server.tlsUrl,
      transports: [transport],
      ca: server.ca,
    });
    assert.equal(outcome.error, null);
    assert.equal(outcome.welcome.message, "Okay, you're cool.");
    const sent = {
      websocket: "using the wss:// protocol",
      polling: "by long-polling over https://, before any upgrade to wss://",
    };
    assert.deepEqual(outcome.hello, {
      message: `This is a message from the server. It was sent ${sent[transport]}`,
      protocol: "wss://",
      secure: true,
    });
  });
}

test("wss:// without trusting the development certificate fails", async () => {
  const outcome = await connectOnce(server.tlsUrl, { origin: server.tlsUrl, transports: ["websocket"] });
  assert.equal(outcome.welcome, null);
  assert.notEqual(outcome.error.message, REFUSAL);
});
