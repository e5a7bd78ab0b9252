// An outside client of `strand mcp`: the official MCP TypeScript SDK
// starts the server over stdio, lists its tools, writes, edits, searches
// and diffs, and checks every result. Run by cmd/strand's
// TestMCP_OutsideClient; by hand:
//
//   node client.mjs strand mcp --session SESSION
//
// It exits 0 and prints "ok" when every check passes.
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: node client.mjs COMMAND [ARGS...]   (e.g. strand mcp --session S)");
  process.exit(2);
}

const transport = new StdioClientTransport({ command, args, env: process.env, stderr: "inherit" });
const client = new Client({ name: "ts-outside-client", version: "1.0.0" });
await client.connect(transport);

async function call(name, args) {
  const res = await client.callTool({ name, arguments: args });
  const text = res.content.map((c) => c.text ?? "").join("");
  if (res.isError) throw new Error(`${name}: ${text}`);
  return { text, data: res.structuredContent };
}

async function callError(name, args) {
  const res = await client.callTool({ name, arguments: args });
  assert.ok(res.isError, `${name} should fail`);
  return res.content.map((c) => c.text ?? "").join("");
}

try {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const want of ["read_file", "write_file", "edit_file", "search", "diff", "checkpoint_create", "review_request"]) {
    assert.ok(names.includes(want), `tools/list lacks ${want}: ${names}`);
  }
  const edit = tools.find((t) => t.name === "edit_file");
  assert.ok(edit.description.length > 40 && edit.inputSchema.properties.old_string, "edit_file has a description and a schema");
  assert.equal(tools.find((t) => t.name === "read_file").annotations.readOnlyHint, true);

  const w = await call("write_file", { path: "src/greet.js", content: "export function greet(name) {\n  return 'hello ' + name;\n}\n" });
  assert.match(w.text, /^wrote src\/greet\.js: 58 bytes/);
  const r = await call("read_file", { path: "src/greet.js" });
  assert.equal(r.data.hash, w.data.hash);
  assert.match(r.text, /\n {5}2\t {2}return 'hello ' \+ name;\n/);

  await call("checkpoint_create", { name: "before-edit" });
  const e = await call("edit_file", { path: "src/greet.js", old_string: "'hello '", new_string: "'hi, '", expected_hash: r.data.hash });
  assert.equal(e.data.replacements, 1);
  const stale = await callError("edit_file", { path: "src/greet.js", old_string: "hi", new_string: "yo", expected_hash: r.data.hash });
  assert.match(stale, /^conflict: [^]*\nNext: /);

  const s = await call("search", { pattern: "return '[a-z]+, '", glob: "**/*.js" });
  assert.equal(s.data.matches, 1);
  assert.match(s.text, /^src\/greet\.js:2: {3}return 'hi, ' \+ name;$/m);

  const d = await call("diff", { from: "before-edit" });
  assert.deepEqual(d.data.modified, ["src/greet.js"]);
  assert.match(d.data.unified, /^-  return 'hello ' \+ name;$/m);
  assert.match(d.data.unified, /^\+  return 'hi, ' \+ name;$/m);

  // The resource list follows the session's live tail, so it may show a
  // write a moment after the write's answer (CI saw it lag the six calls
  // above once, under load): ask again for up to 15 s.
  let listed = false;
  for (const until = Date.now() + 15000; !listed && Date.now() < until; ) {
    const { resources } = await client.listResources();
    listed = resources.some((x) => x.uri.endsWith("/src/greet.js"));
    if (!listed) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(listed, "the file is a resource within 15 s");
  console.log("ok");
} finally {
  await client.close();
}
