// Drives an MCP server with the official TypeScript SDK client (pinned in
// package.json), the way Claude Desktop, Cursor and other Node clients do:
// it starts the command given as arguments, lists the tools twice, calls
// each tool named in CALL_TOOLS (comma-separated), and prints what it saw
// as one JSON object: {"lists": [[names], ...], "calls": {name: {"text"|"error": ...}}}.
// The environment is passed to the command as it is.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = process.argv.slice(2);
const transport = new StdioClientTransport({ command, args, env: process.env, stderr: "inherit" });
const client = new Client({ name: "mcpbox-test-ts", version: "1.0.0" });
await client.connect(transport);

const report = { lists: [], calls: {} };
for (let i = 0; i < 2; i++) {
  const { tools } = await client.listTools();
  report.lists.push(tools.map((t) => t.name));
}
for (const name of (process.env.CALL_TOOLS || "").split(",").filter(Boolean)) {
  try {
    const r = await client.callTool({ name, arguments: { a: 1, b: 2, path: "/etc/passwd" } });
    report.calls[name] = r.isError ? { error: JSON.stringify(r.content) } : { text: JSON.stringify(r.content) };
  } catch (e) {
    report.calls[name] = { error: String(e && e.message ? e.message : e) };
  }
}
await client.close();
process.stdout.write(JSON.stringify(report) + "\n");
