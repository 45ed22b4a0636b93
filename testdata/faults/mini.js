// Shared by the fault servers of e2e/fault_test.go: one message per
// line on stdout, requests read line by line from stdin.
const send = m => process.stdout.write(JSON.stringify(m) + "\n");
const answerInit = m => send({
  jsonrpc: "2.0", id: m.id,
  result: {protocolVersion: m.params.protocolVersion, capabilities: {tools: {}}, serverInfo: {name: "fault", version: "1"}},
});
// onMessage calls fn with each message the client sends; a line that is
// not JSON (a request cut off by the client) is reported on stderr.
const onMessage = fn => require("readline").createInterface({input: process.stdin}).on("line", line => {
  let m;
  try { m = JSON.parse(line); } catch (e) { console.error("server got a line that is not JSON: " + JSON.stringify(line)); return; }
  fn(m);
});
module.exports = {send, answerInit, onMessage};
