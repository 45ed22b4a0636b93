// Writes notifications as fast as it can, forever.
const {send} = require("./mini.js");
let n = 0;
const pad = "x".repeat(200);
const flood = () => {
  for (let i = 0; i < 200; i++) send({jsonrpc: "2.0", method: "notifications/message", params: {level: "info", data: "flood " + (n++) + " " + pad}});
  setImmediate(flood);
};
flood();
