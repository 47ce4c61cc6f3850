#!/usr/bin/env node
// HTTP/2 over cleartext with prior knowledge (as gRPC speaks it), both ends, with Node's own
// http2 module: a real HTTP/2 implementation, for the agent's h2c pass-through tests.
//
//   h2c_peer.js server --port P
//       answers every stream with 200, `content-type: application/grpc`, `x-path: <path>`, the
//       request body echoed, then the trailers `grpc-status: 0` and `x-body-bytes: <n>`
//   h2c_peer.js client --url http://127.0.0.1:P --streams N --body-bytes B
//       opens N concurrent POST streams on one connection, each with B bytes, and prints one
//       JSON line: {"results": [{"status", "path", "bodyOk", "trailers"}...]} or {"error"}
"use strict";
const http2 = require("http2");

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function pattern(size, seed) {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

function serve() {
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const chunks = [];
    stream.on("data", (chunk) => chunks.push(chunk));
    stream.on("end", () => {
      const body = Buffer.concat(chunks);
      stream.respond(
        { ":status": 200, "content-type": "application/grpc", "x-path": headers[":path"] },
        { waitForTrailers: true },
      );
      stream.on("wantTrailers", () =>
        stream.sendTrailers({ "grpc-status": "0", "x-body-bytes": String(body.length) }),
      );
      stream.end(body);
    });
  });
  server.listen(Number(option("port", "0")), "127.0.0.1", () => {
    console.log(`h2c server listening on 127.0.0.1:${server.address().port}`);
  });
}

function call(session, index, size) {
  return new Promise((resolve) => {
    const sent = pattern(size, index);
    const path = `/inference.GRPCInferenceService/ModelInfer/${index}`;
    const stream = session.request({ ":method": "POST", ":path": path });
    const result = { status: 0, path: "", bodyOk: false, trailers: {} };
    const chunks = [];
    stream.on("response", (headers) => {
      result.status = headers[":status"];
      result.path = headers["x-path"];
    });
    stream.on("data", (chunk) => chunks.push(chunk));
    stream.on("trailers", (trailers) => {
      result.trailers = { ...trailers };
    });
    stream.on("close", () => {
      result.bodyOk = Buffer.concat(chunks).equals(sent);
      resolve(result);
    });
    stream.on("error", (error) => {
      result.error = String(error);
    });
    stream.end(sent);
  });
}

async function client() {
  const session = http2.connect(option("url"));
  session.on("error", (error) => {
    console.log(JSON.stringify({ error: String(error) }));
    process.exit(1);
  });
  const streams = Number(option("streams", "1"));
  const size = Number(option("body-bytes", "0"));
  const calls = [];
  for (let i = 0; i < streams; i++) calls.push(call(session, i, size));
  const results = await Promise.all(calls);
  console.log(JSON.stringify({ results }));
  session.close();
}

if (process.argv[2] === "server") {
  serve();
} else if (process.argv[2] === "client") {
  client();
} else {
  console.error("usage: h2c_peer.js server --port P | client --url U --streams N --body-bytes B");
  process.exit(2);
}
