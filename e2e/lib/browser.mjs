// Debian's Chromium driven by playwright-core (never a downloaded browser).
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ARTIFACTS } from "./stack.mjs";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

// DESIGN §7: without the background-networking flags Chromium tries to reach
// Google's hosts, which this machine's closed network refuses.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// launch starts Chromium with a fresh profile (--user-data-dir) that trusts
// exactly the emulator's TLS key (spki = base64 sha256 of its SPKI; Chromium
// honours the pin only together with --user-data-dir).
export async function launch({ spki } = {}) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "e2e-chromium-"));
  const args = [...FLAGS];
  if (spki) args.push(`--ignore-certificate-errors-spki-list=${spki}`);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport: { width: 1200, height: 900 },
  });
  const consoleLines = [];
  const watch = (p) => {
    p.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    p.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
  };
  context.on("page", watch);
  context.pages().forEach(watch);
  const page = context.pages()[0] || (await context.newPage());
  return {
    context,
    page,
    consoleLines,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
    // screenshots of every open page, for a failed test.
    async keepEvidence(name) {
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      const safe = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
      let i = 0;
      for (const p of context.pages()) {
        await p.screenshot({ path: path.join(ARTIFACTS, `${safe}-${i++}.png`), fullPage: true }).catch(() => {});
      }
      fs.writeFileSync(path.join(ARTIFACTS, `${safe}-console.txt`), consoleLines.join("\n") + "\n");
    },
  };
}

// shot saves a screenshot of a page state when E2E_SCREENSHOTS is set (for
// looking at the page as a person sees it).
export async function shot(page, name) {
  if (!process.env.E2E_SCREENSHOTS) return;
  const dir = path.join(ARTIFACTS, "states");
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}
