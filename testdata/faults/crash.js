// Answers initialize, then dies with exit code 3 on tools/call, without
// answering it.
const {send, answerInit, onMessage} = require("./mini.js");
onMessage(m => {
  if (m.method === "initialize") answerInit(m);
  else if (m.method === "tools/call") { console.error("crashing on tools/call"); process.exit(3); }
  else if (m.id !== undefined) send({jsonrpc: "2.0", id: m.id, result: {}});
});
