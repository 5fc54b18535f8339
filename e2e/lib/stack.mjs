// Starts the real binaries (devidp, upstream, demoapi, demohost) for the
// browser tests: built once with `go build`, devidp with a fresh state folder
// (its own dev CA), everything on the ports of the local mode (the emulator's
// default directory registers the SPA's redirect URIs on :30662).
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import crypto from "node:crypto";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS = path.join(ROOT, "e2e", "artifacts");

export const TENANT = "2dcbe9d9-33d9-44a7-b4e9-b846975b02ad";
export const IDP = "https://localhost:8443";
export const AUTHORITY = `${IDP}/${TENANT}`;
export const API = "http://localhost:5050";
export const UPSTREAM = "http://localhost:5051";
export const PAGE = "http://localhost:30662";

const PORTS = { devidp: 8443, upstream: 5051, demoapi: 5050, demohost: 30662 };
const ORDER = ["devidp", "upstream", "demoapi", "demohost"];

function portInUse(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

function get(url, { ca } = {}) {
  return new Promise((resolve) => {
    const mod = url.startsWith("https:") ? https : http;
    const req = mod.get(url, { ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => { req.destroy(); resolve(0); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Stack {
  constructor() {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), "e2e-stack-"));
    this.bin = path.join(this.tmp, "bin");
    this.stateDir = path.join(this.tmp, "devidp-state");
    this.caFile = path.join(this.stateDir, "ca.pem");
    this.procs = {};
    this.logs = {};
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  }

  // present lists the components that exist in this checkout.
  static present() {
    return ORDER.filter((c) => fs.existsSync(path.join(ROOT, c)) && fs.readdirSync(path.join(ROOT, c)).some((f) => f.endsWith(".go") && !f.endsWith("_test.go")));
  }

  env(name, extra) {
    const env = { ...process.env, DEVIDP_CA_FILE: this.caFile, ...(extra || {}) };
    delete env.TENANT_ID; // always the local mode here
    delete env.AUTHORITY;
    if (name === "devidp") env.DEVIDP_STATE_DIR = this.stateDir;
    return env;
  }

  args(name) {
    return name === "devidp" ? ["-state-dir", this.stateDir] : [];
  }

  healthURL(name) {
    switch (name) {
      case "devidp": return `${AUTHORITY}/v2.0/.well-known/openid-configuration`;
      case "upstream": return `${UPSTREAM}/readyz`;
      case "demoapi": return `${API}/readyz`; // keys loaded
      case "demohost": return `${PAGE}/healthz`;
    }
  }

  async start() {
    const busy = [];
    for (const c of ORDER) if (await portInUse(PORTS[c])) busy.push(`${c} :${PORTS[c]}`);
    if (busy.length) {
      throw new Error(`ports already in use (${busy.join(", ")}): stop scripts/run-all.sh or whatever listens there; the browser tests need the local mode's ports`);
    }
    const missing = ORDER.filter((c) => !Stack.present().includes(c));
    if (missing.length) throw new Error(`components missing from this checkout: ${missing.join(", ")}`);
    execFileSync("go", ["build", "-o", this.bin + path.sep, ...ORDER.map((c) => "./" + c)], { cwd: ROOT, stdio: "inherit" });
    for (const c of ORDER) await this.startOne(c);
  }

  async startOne(name, extraEnv) {
    const log = fs.createWriteStream(path.join(ARTIFACTS, `${name}.log`), { flags: "a" });
    const p = spawn(path.join(this.bin, name), this.args(name), { cwd: ROOT, env: this.env(name, extraEnv), stdio: ["ignore", "pipe", "pipe"] });
    p.stdout.pipe(log);
    p.stderr.pipe(log);
    p.exitedPromise = new Promise((r) => p.once("exit", r));
    this.procs[name] = p;
    const url = this.healthURL(name);
    for (let i = 0; i < 300; i++) {
      if (p.exitCode !== null) throw new Error(`${name} exited with ${p.exitCode} during start-up; see e2e/artifacts/${name}.log`);
      const ca = fs.existsSync(this.caFile) ? fs.readFileSync(this.caFile) : undefined;
      if ((name !== "devidp" || ca) && (await get(url, { ca })) === 200) return;
      await sleep(100);
    }
    throw new Error(`${name} not ready after 30 s (${url}); see e2e/artifacts/${name}.log`);
  }

  async stopOne(name) {
    const p = this.procs[name];
    if (!p || p.exitCode !== null) return;
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 10000);
    await p.exitedPromise;
    clearTimeout(t);
    delete this.procs[name];
  }

  async stop() {
    for (const c of [...ORDER].reverse()) await this.stopOne(c);
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  // hasSignInPage asks the emulator's authorize endpoint for the SPA's
  // sign-in page, as msal-browser would, and says whether it is a form with
  // a password field.
  hasSignInPage() {
    const q = new URLSearchParams({
      client_id: "88374b94-683c-41e9-a4d0-40a9685e8661",
      redirect_uri: PAGE + "/redirect.html",
      response_type: "code",
      response_mode: "fragment",
      scope: "openid profile",
      state: "probe",
      nonce: "probe",
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      code_challenge_method: "S256",
    });
    const ca = fs.readFileSync(this.caFile);
    return new Promise((resolve) => {
      https.get(`${AUTHORITY}/oauth2/v2.0/authorize?${q}`, { ca, timeout: 5000 }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => { if (body.length < 200000) body += d; });
        res.on("end", () => resolve(res.statusCode === 200 && /type="password"/.test(body)));
      }).on("error", () => resolve(false));
    });
  }

  // failNextOBO makes the emulator fail the next On-Behalf-Of exchange for
  // user with the given AADSTS code (its loopback admin endpoint).
  failNextOBO(user, aadsts) {
    const ca = fs.readFileSync(this.caFile);
    const q = new URLSearchParams({ user, aadsts: String(aadsts) });
    return new Promise((resolve, reject) => {
      const req = https.request(`${IDP}/_emulator/fail-next-obo?${q}`, { method: "POST", ca, timeout: 5000 }, (res) => {
        res.resume();
        res.statusCode === 200 ? resolve() : reject(new Error(`fail-next-obo: HTTP ${res.statusCode}`));
      });
      req.on("error", reject);
      req.end();
    });
  }

  // leafSPKI connects to devidp, verifies its certificate chain against the
  // dev CA (ca.pem), and returns base64(sha256(SPKI)) of the leaf: the value
  // for Chromium's --ignore-certificate-errors-spki-list. Only that key is
  // trusted; every other certificate is still checked normally.
  leafSPKI() {
    const ca = fs.readFileSync(this.caFile);
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: "localhost", port: PORTS.devidp, servername: "localhost", ca, rejectUnauthorized: true }, () => {
        const cert = s.getPeerX509Certificate();
        const spki = cert.publicKey.export({ type: "spki", format: "der" });
        s.end();
        resolve(crypto.createHash("sha256").update(spki).digest("base64"));
      });
      s.once("error", reject);
    });
  }
}
