// Bundle the extension and vscode-languageclient into one file: the .vsix then needs
// no node_modules (vsce package --no-dependencies).
import { build } from "esbuild";

const production = process.argv.includes("--production");
await build({
  entryPoints: ["src/extension.ts"],
  bundle: true,
  outfile: "dist/extension.js",
  platform: "node",
  format: "cjs",
  target: "node18",
  external: ["vscode"],          // provided by the editor at run time
  sourcemap: !production,
  minify: production,
  logLevel: "info",
});
