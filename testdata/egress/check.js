// Runs egress checks from inside an mcpbox sandbox and prints one JSON
// object of results on stdout: {"check": "ok:<body>" | "error:<code>"}.
// Configuration comes from the environment (passed with --env):
// CHECK_PORTS=https,http,raw,other and NODE_EXTRA_CA_CERTS for the test CA;
// LOOPBACK_PORTS=granted,other,http for the checks of this machine's
// loopback (localhost:PORT grants).
"use strict";
const net = require("net");
const tls = require("tls");
const dns = require("dns");
const fs = require("fs");

const [https, http, raw, other] = (process.env.CHECK_PORTS || "").split(",").map(Number);
const [lbGranted, lbOther, lbHTTP] = (process.env.LOOPBACK_PORTS || "").split(",").map(Number);
const ca = process.env.NODE_EXTRA_CA_CERTS ? fs.readFileSync(process.env.NODE_EXTRA_CA_CERTS) : undefined;

const code = (e) => "error:" + ((e.cause && (e.cause.code || e.cause.message)) || e.code || e.message);
const withTimeout = (p, ms = 5000) => Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(Object.assign(new Error("timeout"), { code: "TIMEOUT" })), ms))]);

async function get(url) {
  const r = await fetch(url);
  return "ok:" + (await r.text());
}

// tcp connects, writes what, and resolves with all it reads until close.
function tcp(host, port, what) {
  return new Promise((resolve, reject) => {
    let got = "";
    const s = net.connect({ host, port });
    s.on("connect", () => s.end(what));
    s.on("data", (d) => (got += d));
    s.on("error", reject);
    s.on("close", () => resolve(got ? "ok:" + got : "error:closed-without-data"));
  });
}

// viaConnect speaks HTTP CONNECT to the proxy named by HTTPS_PROXY, as
// proxy-aware clients do, then TLS to host inside the tunnel.
function viaConnect(host, port) {
  return new Promise((resolve, reject) => {
    const proxy = new URL(process.env.HTTPS_PROXY);
    const s = net.connect({ host: proxy.hostname, port: Number(proxy.port) });
    s.on("error", reject);
    s.once("connect", () => s.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`));
    s.once("data", (d) => {
      const status = d.toString().split("\r\n")[0];
      if (!/ 200 /.test(status)) return resolve("error:" + status);
      const t = tls.connect({ socket: s, servername: host, ca });
      let body = "";
      t.on("secureConnect", () => t.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
      t.on("data", (d) => (body += d));
      t.on("error", reject);
      t.on("close", () => resolve("ok:" + body.split("\r\n\r\n").slice(1).join("")));
    });
  });
}

// pipelined sends two requests on one connection, the second for another
// host, and resolves with how many answers came back before it closed.
function pipelined(host, port, second) {
  return new Promise((resolve, reject) => {
    let got = "";
    const s = net.connect({ host, port });
    s.on("connect", () =>
      s.write(`GET /1 HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\nGET /2 HTTP/1.1\r\nHost: ${second}\r\n\r\n`),
    );
    s.on("data", (d) => (got += d));
    s.on("error", reject);
    s.on("close", () => resolve("ok:" + (got.match(/HTTP\/1\.1 200/g) || []).length + " answer(s)"));
  });
}

function tlsWithSNI(host, port, servername) {
  return new Promise((resolve, reject) => {
    const t = tls.connect({ host, port, servername, ca, rejectUnauthorized: false });
    t.on("secureConnect", () => resolve("ok:handshake with " + servername));
    t.on("error", reject);
    t.on("close", () => resolve("error:closed"));
  });
}

function resolveVia(server, name) {
  const r = new dns.promises.Resolver({ timeout: 2000, tries: 1 });
  r.setServers([server]);
  return r.resolve4(name).then((a) => "ok:" + a.join(","));
}

const random = "r" + Math.random().toString(36).slice(2) + ".example";
const checks = {
  fetch_https: () => get(`https://api.test:${https}/`),
  fetch_http: () => get(`http://api.test:${http}/`),
  raw_tcp: () => tcp("api.test", raw, "ping\n"),
  proxy_connect: () => viaConnect("api.test", https),
  denied_name: () => get(`https://evil.test:${https}/`),
  denied_port: () => get(`http://api.test:${other}/`),
  rebinding_loopback: () => get(`https://rebind.test:${https}/`),
  rebinding_private: () => get(`https://private.test:${https}/`),
  sni_mismatch: () => tlsWithSNI("api.test", https, "evil.test"),
  metadata_ip: () => tcp("169.254.169.254", 80, "GET / HTTP/1.0\r\n\r\n"),
  metadata_decimal: () => tcp("2852039166", 80, "GET / HTTP/1.0\r\n\r\n"),
  metadata_hex: () => tcp("0xa9fea9fe", 80, "GET / HTTP/1.0\r\n\r\n"),
  metadata_mapped: () => tcp("::ffff:169.254.169.254", 80, "GET / HTTP/1.0\r\n\r\n"),
  dns_outside_resolver: () => resolveVia("198.51.100.53", random),
  dns_random_name: () => dns.promises.lookup(random).then((a) => "ok:" + a.address),
  direct_connect: () => tcp("192.0.2.1", 443, "x"),
  keepalive_other_host: () => pipelined("api.test", http, "evil.test"),
  host_loopback: () => tcp("127.0.0.1", lbGranted, "ping\n"),
  host_loopback_name: () => tcp("localhost", lbGranted, "ping\n"),
  host_loopback_v6: () => tcp("::1", lbGranted, "ping\n"),
  host_loopback_unspecified: () => tcp("0.0.0.0", lbGranted, "ping\n"),
  host_loopback_other_port: () => tcp("127.0.0.1", lbOther, "ping\n"),
  host_loopback_http: () => get(`http://localhost:${lbHTTP}/`),
};

(async () => {
  const names = process.argv.slice(2);
  const results = { random_name: random };
  for (const name of names) {
    const start = Date.now();
    try {
      results[name] = await withTimeout(checks[name]());
    } catch (e) {
      results[name] = code(e);
    }
    results[name + "_ms"] = Date.now() - start;
  }
  // Exit at once: a timed-out check may still hold a socket open.
  process.stdout.write(JSON.stringify(results) + "\n", () => process.exit(0));
})();
