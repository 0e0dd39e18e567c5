// End-to-end scenario in a real VS Code (code-server) driven by Chromium with
// playwright-core. Run by tests/test_vscode_e2e.py, which starts code-server and checks
// the JSON this prints on its last line.
//
// usage: node drive.mjs CONFIG.json
//   { url, chromium, artifacts, scenario: "live",
//     file, symbol, edit: { path, from, to } }
//   { url, chromium, artifacts, scenario: "missing" | "broken", file, expect }
//     (wait for an error toast containing `expect`)
import { chromium } from "playwright-core";
import * as fs from "node:fs";
import * as path from "node:path";

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const result = { scenario: cfg.scenario, steps: [] };
const t0 = Date.now();
const step = (name) => { result.steps.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${name}`); console.error(`drive: ${name}`); };

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const shot = async (name) => {
  const p = path.join(cfg.artifacts, name);
  await page.screenshot({ path: p });
  (result.screenshots ??= []).push(p);
  return p;
};

/** The devlink status bar item's text, or null while it is not there. */
const statusText = () => page.evaluate(() => {
  for (const el of document.querySelectorAll(".statusbar-item")) {
    const t = (el.textContent || "").trim();
    if (t.includes("devlink:")) return t;
  }
  return null;
});

async function waitFor(what, fn, timeoutMs) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await page.waitForTimeout(250);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}

async function openFile(name) {
  await page.locator(".monaco-workbench .part.editor").click({ position: { x: 400, y: 300 } });
  await page.keyboard.press("Control+P");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible", timeout: 20000 });
  await input.fill(name);
  // pick the result once quick open has found the file (Enter before that does nothing)
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first();
  await row.waitFor({ state: "visible", timeout: 20000 });
  await row.click();
  await page.locator(".monaco-editor .view-lines").first().waitFor({ timeout: 20000 });
  await waitFor(`the editor tab of ${name}`, () => page.evaluate((n) =>
    [...document.querySelectorAll(".tab.active")].some((t) => (t.textContent || "").includes(n)), name), 20000);
}

/** Run a palette command by its title. */
async function runCommand(title) {
  await page.keyboard.press("Control+Shift+P");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible", timeout: 20000 });
  await input.fill(`>${title}`);
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first();
  await row.waitFor({ state: "visible", timeout: 20000 });
  await row.click();
}

/** Hover the first occurrence of `symbol` in the editor until a hover with `needle` shows. */
async function hoverSymbol(symbol, needle, timeoutMs) {
  const token = page.locator(".monaco-editor .view-lines span span", { hasText: symbol }).first();
  return waitFor(`a hover on ${symbol} with ${needle}`, async () => {
    await page.mouse.move(5, 5);
    await page.waitForTimeout(200);
    const box = await token.boundingBox();
    if (!box) return null;
    await page.mouse.move(box.x + Math.min(box.width / 2, 20), box.y + box.height / 2);
    try {
      await page.locator(".monaco-hover").filter({ hasText: needle }).first().waitFor({ state: "visible", timeout: 3000 });
    } catch {
      return null;
    }
    return page.locator(".monaco-hover").filter({ hasText: needle }).first().innerText();
  }, timeoutMs);
}

let failed = null;
try {
  await page.goto(cfg.url, { waitUntil: "domcontentloaded", timeout: 60000 });
  await page.locator(".monaco-workbench").waitFor({ timeout: 90000 });
  step("workbench loaded");
  await openFile(cfg.file);
  step(`opened ${cfg.file}`);

  if (cfg.scenario === "missing" || cfg.scenario === "broken") {
    // the extension activates on a C file and must say devlink is missing, with the fix
    const toast = page.locator(".notifications-toasts .notification-list-item").filter({ hasText: cfg.expect }).first();
    await toast.waitFor({ state: "visible", timeout: 60000 });
    result.message = (await toast.innerText()).trim();
    result.status = await waitFor("the devlink status bar item", statusText, 20000);
    step("error message shown");
    await shot(`${cfg.scenario}-devlink.png`);
  } else {
    result.statusStart = await waitFor("the program running (status bar)", async () => {
      const t = await statusText();
      return t && /running/.test(t) && /gen \d+/.test(t) ? t : null;
    }, 180000);
    step(`status: ${result.statusStart}`);
    result.hover = await hoverSymbol(cfg.symbol, "GOT[", 120000);
    step("hover shown");
    result.hoverShot = await shot("hover.png");
    const box = await page.locator(".monaco-hover").filter({ hasText: "GOT[" }).first().boundingBox();
    result.hoverBox = box;

    await page.mouse.move(5, 5);
    await page.keyboard.press("Escape");
    const genOf = (t) => Number((/gen (\d+)/.exec(t || "") || [])[1]);
    const before = genOf(await statusText());
    result.genBefore = before;
    // an edit on disk, as another editor or a `git checkout` would make it
    const src = fs.readFileSync(cfg.edit.path, "utf8");
    if (!src.includes(cfg.edit.from)) throw new Error(`${cfg.edit.path} does not contain ${JSON.stringify(cfg.edit.from)}`);
    fs.writeFileSync(cfg.edit.path, src.replace(cfg.edit.from, cfg.edit.to));
    step("edited on disk");
    result.statusAfter = await waitFor("the generation to go up", async () => {
      const t = await statusText();
      return genOf(t) > before ? t : null;
    }, 120000);
    result.genAfter = genOf(result.statusAfter);
    step(`status: ${result.statusAfter}`);
    await shot("after-edit.png");

    // the status bar's menu: undo the patch. The server answers with a message (the undo
    // done, or why not); a done undo is an update of its own: the generation goes up.
    await page.locator(".statusbar-item", { hasText: "devlink:" }).first().click();
    const undo = page.locator(".quick-input-list .monaco-list-row", { hasText: "Undo the last patch" }).first();
    await undo.waitFor({ state: "visible", timeout: 20000 });
    result.menu = (await page.locator(".quick-input-list").first().innerText()).split("\n").filter((l) => l.trim());
    await undo.click();
    const answer = page.locator(".notifications-toasts .notification-list-item").filter({ hasText: /undo/ }).first();
    await answer.waitFor({ state: "visible", timeout: 60000 });
    result.undoMessage = (await answer.innerText()).trim();
    await page.waitForTimeout(1000);
    result.statusAfterUndo = await statusText();
    step(`undo: ${result.undoMessage} / ${result.statusAfterUndo}`);
    await shot("undo.png");
    await page.keyboard.press("Escape");

    // the palette: GOT table in an editor, then the output channel with the program's lines
    await runCommand("devlink: Show the GOT Table");
    const got = page.locator(".monaco-editor .view-lines", { hasText: "# devlink GOT" }).first();
    await got.waitFor({ state: "visible", timeout: 30000 });
    result.gotTable = await got.innerText();
    step("GOT table shown");
    await shot("got-table.png");
    await runCommand("devlink: Show Output");
    const out = page.locator(".panel .monaco-editor .view-lines", { hasText: "[program]" }).first();
    await out.waitFor({ state: "visible", timeout: 30000 });
    result.output = await out.innerText();
    step("output shown");
    await shot("output.png");
  }
} catch (e) {
  failed = e instanceof Error ? e.message : String(e);
  try { await shot("failure.png"); } catch { /* the page may be gone */ }
  try { result.statusAtFailure = await statusText(); } catch { /* idem */ }
} finally {
  await browser.close();
}
result.error = failed;
console.log(JSON.stringify(result));
process.exit(failed ? 1 : 0);
