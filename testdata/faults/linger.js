// Answers every request with an empty result and never exits by itself:
// not on stdin EOF (it reports it, with the unfinished line it got), and,
// with the argument "ignore-sigterm", not on SIGTERM either.
const {send, onMessage} = require("./mini.js");
let rest = "";
process.stdin.on("data", d => { rest = (rest + d).split("\n").pop(); });
process.stdin.on("end", () => console.error("server stdin EOF, unfinished line " + JSON.stringify(rest)));
onMessage(m => { if (m.id !== undefined) send({jsonrpc: "2.0", id: m.id, result: {}}); });
process.on("SIGTERM", () => {
  if (process.argv[2] === "ignore-sigterm") { console.error("server got SIGTERM, ignores it"); return; }
  console.error("server got SIGTERM");
  process.exit(0);
});
setInterval(() => {}, 1000);
