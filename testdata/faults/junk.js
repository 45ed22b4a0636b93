// Writes 1 GiB of non-JSON lines (4096 of 256 KiB), then one message, then
// says "junk done" on stderr and lingers.
const line = Buffer.alloc(256 << 10, 0x78);
line.write("junk ");
line[line.length - 1] = 10;
let n = 0;
const pump = () => {
  while (n < 4096) {
    n++;
    if (!process.stdout.write(line)) { process.stdout.once("drain", pump); return; }
  }
  const msg = {jsonrpc: "2.0", method: "notifications/message", params: {level: "info", data: "after the junk"}};
  process.stdout.write(JSON.stringify(msg) + "\n", () => console.error("junk done"));
};
pump();
setInterval(() => {}, 1000);
