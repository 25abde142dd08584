// Cross-origin long-polling as a browser does it: the Origin header, CORS answers.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { startServer } from "./server.mjs";

const ALLOWED = "http://allowed.test:8080";
const HANDSHAKE = "/socket.io/?EIO=4&transport=polling";
let server;

before(async () => {
  server = await startServer({ rules: [ALLOWED] });
});

after(async () => {
  await server?.stop();
});

test("an allowed origin may poll with credentials", async () => {
  const response = await fetch(server.url + HANDSHAKE, { headers: { Origin: ALLOWED } });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("access-control-allow-origin"), ALLOWED);
  assert.equal(response.headers.get("access-control-allow-credentials"), "true");
});

test("a refused origin can read the refusal, never with credentials", async () => {
  const response = await fetch(server.url + HANDSHAKE, { headers: { Origin: "https://evil.test" } });
  assert.equal(response.headers.get("access-control-allow-origin"), "https://evil.test");
  assert.equal(response.headers.get("access-control-allow-credentials"), null);
});
