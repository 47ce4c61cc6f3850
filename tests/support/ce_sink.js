#!/usr/bin/env node
// A real CloudEvents consumer for the logger tests: an HTTP(S) server that parses every POST with
// the CloudEvents SDK (HTTP.toEvent) and appends one JSON line per accepted event to a file.
//
// Usage: node ce_sink.js --port N --out FILE [--fail-first K] [--fail-status 503]
//                        [--delay-ms D] [--close-after N] [--tls-key KEY --tls-cert CERT]
//   --fail-first K   answer --fail-status (default 503) to the first K requests (not recorded)
//   --delay-ms D     wait D ms before answering; an event whose client gave up meanwhile is not
//                    recorded
//   --close-after N  drop each connection abruptly once N requests were answered on it (further
//                    pipelined requests on it stay unanswered, some of them maybe recorded)
//   --connection-close 1  answer with Connection: close (the connection ends after each answer)
//   --serial 1       with --delay-ms: a connection's requests are handled one at a time, each
//                    delay starting once the previous answer was sent (as most servers handle a
//                    pipeline)
//   --redeliver K    record the first K events, then drop their connection without answering:
//                    the agent sends each again, so the file holds a re-delivery of each
//   --tls-key/--tls-cert   listen on HTTPS with this PEM key and certificate
//
// Each line: {seq, id, type, source, specversion, time, datacontenttype, extensions,
// data_b64 (the exact body bytes), headers (raw, lower-case names), remotePort, error?}.
"use strict";

const fs = require("fs");
const http = require("http");
const https = require("https");
const path = require("path");
const { HTTP } = require(path.join(__dirname, "node_modules", "cloudevents"));

function parseArgs(argv) {
  const options = { port: 0, out: "", failFirst: 0, failStatus: 503, delayMs: 0, closeAfter: 0, serial: 0, connectionClose: 0, redeliver: 0, tlsKey: "", tlsCert: "" };
  const names = {
    "--port": ["port", Number], "--out": ["out", String], "--fail-first": ["failFirst", Number],
    "--fail-status": ["failStatus", Number], "--delay-ms": ["delayMs", Number],
    "--close-after": ["closeAfter", Number], "--serial": ["serial", Number],
    "--connection-close": ["connectionClose", Number], "--redeliver": ["redeliver", Number],
    "--tls-key": ["tlsKey", String], "--tls-cert": ["tlsCert", String],
  };
  for (let i = 0; i < argv.length; i += 2) {
    const entry = names[argv[i]];
    if (!entry || i + 1 >= argv.length) {
      console.error(`ce_sink: bad argument ${argv[i]}`);
      process.exit(2);
    }
    options[entry[0]] = entry[1](argv[i + 1]);
  }
  if (!options.port || !options.out) {
    console.error("ce_sink: --port and --out are required");
    process.exit(2);
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));
const standard = new Set(["id", "type", "source", "specversion", "time", "datacontenttype",
                          "dataschema", "subject", "data", "data_base64"]);
let requests = 0;
let recorded = 0;
let redeliveriesLeft = options.redeliver;

function describe(headers, body, remotePort) {
  const line = { seq: ++recorded, headers, data_b64: body.toString("base64"), remotePort };
  try {
    const event = HTTP.toEvent({ headers, body });
    const extensions = {};
    for (const [key, value] of Object.entries(event)) {
      if (!standard.has(key) && value !== undefined) extensions[key] = value;
    }
    Object.assign(line, {
      id: event.id, type: event.type, source: event.source, specversion: event.specversion,
      time: event.time, datacontenttype: event.datacontenttype, extensions,
    });
  } catch (err) {
    line.error = String(err && err.message ? err.message : err);
  }
  return line;
}

const answeredOn = new WeakMap();
const chains = new WeakMap();

function closeIfDue(socket) {
  if (!options.closeAfter) return;
  const answered = (answeredOn.get(socket) || 0) + 1;
  answeredOn.set(socket, answered);
  if (answered === options.closeAfter) socket.end(() => socket.destroy());
}

function handle(req, res) {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const number = ++requests;
    const answer = () => {
      if (number <= options.failFirst) {
        res.writeHead(options.failStatus, { "Content-Type": "text/plain" });
        res.end("failing on purpose\n");
        return;
      }
      if (req.socket.destroyed) return;
      if (req.method === "POST") {
        const line = describe(req.headers, Buffer.concat(chunks), req.socket.remotePort);
        fs.appendFileSync(options.out, JSON.stringify(line) + "\n");
        if (redeliveriesLeft > 0) {
          --redeliveriesLeft;
          req.socket.destroy();
          return;
        }
      }
      res.writeHead(202, options.connectionClose ? { Connection: "close" } : {});
      res.end();
      closeIfDue(req.socket);
    };
    if (options.delayMs > 0 && options.serial) {
      const previous = chains.get(req.socket) || Promise.resolve();
      chains.set(req.socket, previous.then(() => new Promise((done) => {
        setTimeout(() => { answer(); done(); }, options.delayMs);
      })));
    } else if (options.delayMs > 0) setTimeout(answer, options.delayMs);
    else answer();
  });
}

const server = options.tlsKey
  ? https.createServer({ key: fs.readFileSync(options.tlsKey), cert: fs.readFileSync(options.tlsCert) }, handle)
  : http.createServer(handle);
server.keepAliveTimeout = 60000;
server.listen(options.port, "127.0.0.1", () => {
  console.log(`ce_sink listening on 127.0.0.1:${options.port}${options.tlsKey ? " (https)" : ""}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
