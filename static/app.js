// The walkthrough page. Plain script (no framework, no bundler) over the
// vendored msal-browser UMD build (global `msal`). Configuration comes from
// /config.json (demohost), so the same file serves the local emulator and a
// real Entra tenant.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const PENDING_KEY = "walkthrough.pendingCall";

  let cfg = null; // /config.json
  let pca = null; // msal.PublicClientApplication
  let account = null;
  let idTokenRaw = "";
  let accessTokenRaw = "";
  let busy = false;

  // ---------------------------------------------------------------- UI bits

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c == null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  const BADGE = { idle: null, working: "Working…", done: "Done", error: "Failed", blocked: "Action needed" };

  function setMilestone(n, state, body, badgeText) {
    const card = $("m" + n);
    card.dataset.state = state;
    const badge = $("m" + n + "-badge");
    if (badgeText || BADGE[state]) badge.textContent = badgeText || BADGE[state];
    if (body !== undefined) {
      const b = $("m" + n + "-body");
      b.replaceChildren(...(Array.isArray(body) ? body : [body]));
    }
  }

  function placeholder(text) {
    return el("p", { class: "placeholder", text });
  }

  // kv renders rows [[label, value], ...]; values may be nodes.
  function kv(rows, cls) {
    const dl = el("dl", { class: "kv " + (cls || "") });
    for (const [k, v] of rows) {
      if (v === undefined || v === null || v === "") continue;
      dl.append(el("div", { class: "kv-row" }, el("dt", { text: k }), el("dd", {}, v instanceof Node ? v : fmt(v))));
    }
    return dl;
  }

  function fmt(v) {
    if (Array.isArray(v)) return v.join(", ");
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function chips(values, cls) {
    const list = Array.isArray(values) ? values : String(values).split(" ").filter(Boolean);
    return el("span", { class: "chips" }, ...list.map((s) => el("span", { class: "chip " + (cls || ""), text: s })));
  }

  function when(epochSeconds) {
    if (typeof epochSeconds !== "number") return epochSeconds;
    const d = new Date(epochSeconds * 1000);
    const mins = Math.round((d.getTime() - Date.now()) / 60000);
    const rel = mins >= 0 ? "in " + mins + " min" : Math.abs(mins) + " min ago";
    return d.toLocaleTimeString() + " (" + rel + ")";
  }

  // showAlert displays one clear message. actions: [{label, href} | {label, onClick}]
  function showAlert(kind, title, body, actions) {
    const a = $("alert");
    a.dataset.kind = kind;
    a.querySelector(".alert-icon").textContent = { success: "✓", info: "i" }[kind] || "!";
    $("alert-title").textContent = title;
    $("alert-body").replaceChildren(...(Array.isArray(body) ? body : [body]).map((x) => (x instanceof Node ? x : document.createTextNode(x))));
    const act = $("alert-actions");
    act.replaceChildren();
    for (const x of actions || []) {
      if (x.href) {
        act.append(el("a", { class: "btn small", href: x.href, target: "_blank", rel: "noopener noreferrer", text: x.label }));
      } else {
        const b = el("button", { class: "btn small", type: "button", text: x.label });
        b.addEventListener("click", x.onClick);
        act.append(b);
      }
    }
    a.hidden = false;
  }

  function clearAlert() {
    $("alert").hidden = true;
  }

  function code(text) {
    return el("code", { text });
  }

  function setBusy(b) {
    busy = b;
    refreshButtons();
  }

  function refreshButtons() {
    const signedIn = !!account;
    $("sign-in").hidden = signedIn;
    $("sign-in").disabled = busy || !pca;
    $("sign-out").hidden = !signedIn;
    $("sign-out").disabled = busy;
    $("call-api").disabled = busy || !signedIn;
    $("call-obo").disabled = busy || !signedIn;
    const chip = $("user-chip");
    chip.hidden = !signedIn;
    if (signedIn) chip.textContent = account.name ? account.name + " · " + account.username : account.username;
  }

  // -------------------------------------------------------- token decoding

  function b64urlDecode(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    const bin = atob(s);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  }

  function decodeJwt(raw) {
    const parts = (raw || "").split(".");
    if (parts.length !== 3) return null;
    try {
      return { header: JSON.parse(b64urlDecode(parts[0])), claims: JSON.parse(b64urlDecode(parts[1])) };
    } catch (e) {
      return null;
    }
  }

  const CLAIM_NOTES = {
    aud: "audience: who the token is for",
    iss: "issuer: who signed it",
    iat: "issued at",
    nbf: "not before",
    exp: "expires",
    oid: "your object id in the tenant",
    tid: "tenant id",
    sub: "subject (pairwise per app)",
    scp: "delegated scopes granted to the app",
    roles: "app roles",
    azp: "the app that asked for the token",
    appid: "the app that asked for the token (v1)",
    ver: "token format version",
    amr: "how you authenticated",
    name: "display name",
    preferred_username: "sign-in name",
    nonce: "ties the ID token to this sign-in",
    acrs: "authentication context satisfied",
    idtyp: "token type (user or app)",
  };

  let tokenTab = "id";

  function renderTokens() {
    $("tokens").hidden = !idTokenRaw;
    $("tab-access").disabled = !accessTokenRaw;
    $("tab-id").setAttribute("aria-selected", String(tokenTab === "id"));
    $("tab-access").setAttribute("aria-selected", String(tokenTab === "access"));
    const raw = tokenTab === "id" ? idTokenRaw : accessTokenRaw;
    const d = decodeJwt(raw);
    const view = $("token-view");
    if (!d) {
      view.replaceChildren(placeholder("No token to show yet."));
      return;
    }
    const rows = el("tbody");
    for (const [k, v] of Object.entries(d.claims)) {
      const timeish = ["iat", "nbf", "exp", "auth_time"].includes(k) && typeof v === "number";
      rows.append(
        el("tr", {},
          el("th", { scope: "row" }, code(k)),
          el("td", {}, timeish ? v + " — " + when(v) : fmt(v)),
          el("td", { class: "note", text: CLAIM_NOTES[k] || "" }))
      );
    }
    view.replaceChildren(
      el("div", { class: "token-grid" },
        el("div", {},
          el("h3", { text: "Header" }),
          el("pre", { class: "json", text: JSON.stringify(d.header, null, 2) })),
        el("div", {},
          el("h3", { text: "Claims" }),
          el("table", { class: "claims" }, rows)))
    );
  }

  // ------------------------------------------------------- error diagnosis

  // Known Entra error codes with the one-line fix users need (README
  // troubleshooting table has the long form).
  const AADSTS_HINTS = {
    50011: () => "The redirect URI is not registered for this app. Register " + ((cfg && cfg.redirectUri) || location.origin + "/redirect.html") + " as a Single-page application redirect URI.",
    50076: "Multi-factor authentication is required.",
    50126: "Wrong user name or password.",
    65001: "Consent is missing: the user or an admin has to consent to the app's permissions.",
    700054: "The app registration does not allow this response type; use the Single-page application platform (no implicit grant).",
    9002326: "Cross-origin token redemption is allowed only for the 'Single-page application' platform; move the redirect URI there.",
    500011: "The resource (API) was not found in the tenant: check the API's App ID URI and the scope in API_SCOPES.",
    700016: "The client id is not registered in this tenant: check SPA_CLIENT_ID and the authority.",
  };

  function aadsts(text) {
    const m = /AADSTS(\d+)/.exec(text || "");
    return m ? Number(m[1]) : 0;
  }

  function describeMsalError(e) {
    const codeStr = (e && (e.errorCode || e.name)) || "error";
    const msg = (e && (e.errorMessage || e.message)) || String(e);
    const n = aadsts(msg);
    const firstLine = msg.split(/\r?\n/)[0].replace(/^AADSTS\d+:\s*/, "");
    const h = n && AADSTS_HINTS[n];
    const hint = typeof h === "function" ? h() : h || "";
    return { code: codeStr, aadsts: n, text: (n ? "AADSTS" + n + ": " : "") + firstLine, hint };
  }

  function isPopupBlocked(e) {
    return e && (e.errorCode === "popup_window_error" || e.errorCode === "empty_window_error");
  }

  // msal-browser v5 gets pop-up results over a BroadcastChannel from the
  // redirect bridge and does not watch the pop-up itself (a COOP-isolated
  // sign-in page would look "closed" at once). A closed pop-up therefore ends
  // in timed_out after system.popupBridgeTimeout; the page offers
  // "Start again" meanwhile, which supersedes the pending interaction.
  function isUserCancelled(e) {
    return e && (e.errorCode === "user_cancelled" || e.errorCode === "timed_out");
  }

  // isNetworkish: msal-browser could not talk to the authority (fetch failed,
  // or the pop-up never reported back, which is also what a sign-in page that
  // failed to load looks like). The IdP may have gone away since the page
  // loaded, so the authority is checked again before the message is chosen.
  const NETWORK_ERRORS = ["timed_out", "no_network_connectivity", "post_request_failed", "get_request_failed",
    "endpoints_resolution_error", "network_error"];

  function isNetworkish(e) {
    return !!e && NETWORK_ERRORS.includes(e.errorCode);
  }

  // authorityGone re-runs the boot-time check after a network-type failure;
  // true when it found (and showed) a problem with the authority.
  async function authorityGone(e) {
    if (!isNetworkish(e) || !cfg) return false;
    return !(await checkAuthority());
  }

  function isSuperseded(e) {
    return e && e.errorCode === "interaction_in_progress_cancelled";
  }

  let generation = 0; // bumps per user action; a superseded action leaves the UI alone
  let overrideNext = false;

  function takeOverride() {
    const o = overrideNext;
    overrideNext = false;
    return o;
  }

  // awaitingPopup shows that a sign-in window is open, with a way out.
  function awaitingPopup(n, action) {
    const btn = el("button", { class: "btn small", type: "button", id: "restart", text: "Start again" });
    btn.addEventListener("click", () => {
      overrideNext = true;
      action();
    });
    setMilestone(n, "working", [
      el("p", { class: "placeholder", text: "Finish in the sign-in window. Closed it, or lost it behind this one?" }),
      btn,
    ], "Waiting for you…");
  }

  // checkAuthority tells the dev CA not being trusted from the IdP being down
  // or refusing CORS, before msal-browser's own (opaque) discovery failure.
  async function checkAuthority() {
    try {
      const r = await fetch(cfg.discoveryUrl, { method: "GET", cache: "no-store" });
      if (r.ok) return true;
      showAlert("error", "The sign-in service answered HTTP " + r.status,
        ["Its discovery document ", code(cfg.discoveryUrl), " is not available. Check AUTHORITY (tenant id) in demohost's environment."]);
      return false;
    } catch (e) {
      // fall through to the diagnosis
    }
    let opaqueOK = false;
    try {
      await fetch(cfg.discoveryUrl, { mode: "no-cors", cache: "no-store" });
      opaqueOK = true;
    } catch (e) {
      opaqueOK = false;
    }
    if (opaqueOK) {
      showAlert("error", "The sign-in service refused this page (CORS)",
        ["The identity provider at ", code(originOf(cfg.authority)), " answered without allowing ", code(location.origin),
          cfg.mode === "local"
            ? ". In local mode, the SPA's redirect URIs in the emulator's directory decide which origins are allowed."
            : ". Check TENANT_ID / AUTHORITY, and that this page's redirect URI is registered under the Single-page application platform."]);
      return false;
    }
    let serverReach = false;
    try {
      const r = await fetch("/status/authority", { cache: "no-store" });
      serverReach = r.ok && (await r.json()).reachable === true;
    } catch (e) {
      serverReach = false;
    }
    if (serverReach && cfg.mode === "local") {
      showAlert("warn", "Your browser does not trust the emulator's certificate yet",
        ["devidp is running, but this browser refused its HTTPS certificate. ", cfg.trustHelp || "",
          " Then reload this page."],
        [{ label: "Open " + originOf(cfg.authority) + " and accept", href: cfg.discoveryUrl }, { label: "Reload", onClick: () => location.reload() }]);
    } else if (serverReach) {
      showAlert("error", "Your browser cannot reach the sign-in service",
        ["demohost reaches ", code(originOf(cfg.authority)), " but this browser does not (a proxy, a firewall or an untrusted certificate?)."]);
    } else if (cfg.mode === "local") {
      showAlert("error", "The sign-in service (devidp) is not running",
        ["Nothing answers at ", code(originOf(cfg.authority)), ". Start everything with ", code("scripts/run-all.sh"),
          " or only the emulator with ", code("go run ./devidp"), ", then reload."],
        [{ label: "Reload", onClick: () => location.reload() }]);
    } else {
      showAlert("error", "The sign-in service is unreachable",
        ["Nothing answers at ", code(originOf(cfg.authority)), ". Check your network connection and AUTHORITY."]);
    }
    return false;
  }

  async function diagnoseApiFailure(path) {
    let reachable = false;
    try {
      await fetch(cfg.apiBaseUrl + "/healthz", { mode: "no-cors", cache: "no-store" });
      reachable = true;
    } catch (e) {
      reachable = false;
    }
    if (reachable) {
      return {
        title: "The API refused this page (CORS)",
        body: ["demoapi at ", code(cfg.apiBaseUrl), " is running but did not allow the origin ", code(location.origin),
          ". Start it with ", code("ALLOWED_ORIGIN=" + location.origin), " (its default is http://localhost:30662; the exact origin, no trailing slash)."],
      };
    }
    return {
      title: "The API is not reachable",
      body: ["Nothing answers at ", code(cfg.apiBaseUrl + path), ". Start it with ", code("go run ./demoapi"),
        " (or ", code("scripts/run-all.sh"), ") and try again."],
    };
  }

  // parseChallenge reads `WWW-Authenticate: Bearer k="v", ...`.
  function parseChallenge(header) {
    const out = {};
    if (!header) return out;
    const re = /([a-zA-Z_]+)="([^"]*)"/g;
    let m;
    while ((m = re.exec(header))) out[m[1]] = m[2];
    return out;
  }

  function originOf(u) {
    try {
      return new URL(u).origin;
    } catch (e) {
      return u;
    }
  }

  // ------------------------------------------------------------ msal flows

  // defaultScopes is "<API resource>/.default" for every resource named by
  // cfg.apiScopes (e.g. api://<id>/access_as_user → api://<id>/.default).
  function defaultScopes() {
    const out = [];
    for (const sc of cfg.apiScopes) {
      const i = sc.lastIndexOf("/");
      const res = i > sc.indexOf("://") + 2 ? sc.slice(0, i) : sc;
      const d = res + "/.default";
      if (!out.includes(d)) out.push(d);
    }
    return out;
  }

  function loginRequest() {
    // The API scope at sign-in gives one consent prompt for everything.
    return { scopes: cfg.apiScopes.slice() };
  }

  async function interactive(request, pendingCall, ctx) {
    try {
      if (ctx) awaitingPopup(ctx.n, ctx.action);
      return await pca.acquireTokenPopup(Object.assign({ account, overrideInteractionInProgress: takeOverride() }, request));
    } catch (e) {
      if (!isPopupBlocked(e)) throw e;
      // Popup blocked: continue with a full-page redirect; the call resumes
      // after we come back.
      showAlert("info", "Pop-up blocked — continuing in this window", "Your browser blocked the sign-in window, so this page redirects instead.");
      if (pendingCall) sessionStorage.setItem(PENDING_KEY, pendingCall);
      await pca.acquireTokenRedirect(Object.assign({ account }, request));
      return new Promise(() => {}); // navigating away
    }
  }

  async function getApiToken(extra, pendingCall, ctx) {
    const request = Object.assign({ scopes: cfg.apiScopes.slice(), account }, extra || {});
    let result;
    if (request.claims || request.prompt) {
      result = await interactive(request, pendingCall, ctx);
    } else {
      try {
        result = await pca.acquireTokenSilent(request);
      } catch (e) {
        // timed_out: the hidden iframe never came back (at Entra, a tenant
        // that sends it to a federation or SSO host the CSP does not frame,
        // once the SPA's 24 h refresh token has expired). An interactive
        // request recovers where a silent one cannot.
        if (!(e instanceof msal.InteractionRequiredAuthError) && !(e && e.errorCode === "timed_out")) throw e;
        result = await interactive(request, pendingCall, ctx);
      }
    }
    accessTokenRaw = result.accessToken;
    renderTokens();
    return result.accessToken;
  }

  async function signIn() {
    const gen = ++generation;
    clearAlert();
    setBusy(true);
    awaitingPopup(1, signIn);
    try {
      const result = await pca.loginPopup(Object.assign(loginRequest(), { overrideInteractionInProgress: takeOverride() }));
      onSignedIn(result);
    } catch (e) {
      if (isSuperseded(e)) return;
      if (isPopupBlocked(e)) {
        showAlert("info", "Pop-up blocked — continuing in this window", "Your browser blocked the sign-in window, so this page redirects to the sign-in page instead.");
        await pca.loginRedirect(loginRequest());
        return;
      }
      if (await authorityGone(e)) {
        if (gen === generation) setMilestone(1, "error", placeholder("Sign-in is unavailable until the problem above is fixed."), "Unavailable");
        return;
      }
      if (isUserCancelled(e)) {
        setMilestone(1, "idle", placeholder("Sign-in did not finish. Sign in to see your account here."), "Not signed in");
        showAlert("info", "Sign-in cancelled", "The sign-in window was closed, or did not finish in time.");
      } else {
        const d = describeMsalError(e);
        setMilestone(1, "error", placeholder("Sign-in did not complete."));
        showAlert("error", "Sign-in failed", [d.text, d.hint ? " — " + d.hint : ""]);
      }
    } finally {
      if (gen === generation) setBusy(false);
    }
  }

  async function signOut() {
    setBusy(true);
    sessionStorage.removeItem(PENDING_KEY);
    try {
      await pca.logoutRedirect({ account, postLogoutRedirectUri: cfg.postLogoutRedirectUri });
    } catch (e) {
      setBusy(false);
      showAlert("error", "Sign-out failed", describeMsalError(e).text);
    }
  }

  function onSignedIn(result) {
    account = (result && result.account) || account;
    if (!account) return;
    pca.setActiveAccount(account);
    idTokenRaw = (result && result.idToken) || account.idToken || "";
    if (result && result.accessToken) accessTokenRaw = result.accessToken;
    const c = account.idTokenClaims || {};
    setMilestone(1, "done", [
      el("p", { class: "greeting" }, "Hello, ", el("strong", { text: c.name || account.name || account.username }), "."),
      kv([
        ["Signed in as", account.username],
        ["Object id (oid)", c.oid || account.localAccountId],
        ["Tenant (tid)", c.tid || account.tenantId],
        ["Issuer", c.iss],
        ["Signed in with", c.amr ? chips(c.amr) : undefined],
        ["ID token expires", when(c.exp)],
      ]),
    ]);
    for (const n of [2, 3]) {
      if ($("m" + n).dataset.state === "idle") setMilestone(n, "idle", placeholder(n === 2 ? "Ready: call the API." : "Ready: call upstream via the API."), "Ready");
    }
    renderTokens();
    refreshButtons();
  }

  // ------------------------------------------------------------- API calls

  // callApi calls the API with a token; on a claims challenge it replays the
  // claims interactively and retries once.
  async function callApi(path, n, render) {
    const gen = ++generation;
    const ctx = { n, action: () => callApi(path, n, render) };
    clearAlert();
    setBusy(true);
    setMilestone(n, "working");
    let stepUp = null;
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        let token;
        try {
          token = await getApiToken(stepUp, path, ctx);
        } catch (e) {
          if (isSuperseded(e)) return;
          if (await authorityGone(e)) {
            setMilestone(n, "error", placeholder("Could not get a token: the sign-in service is unavailable."));
            return;
          }
          if (isUserCancelled(e)) {
            setMilestone(n, "blocked", placeholder("The sign-in window was closed before it finished."), "Cancelled");
            showAlert("info", "Cancelled", "The sign-in window was closed or did not finish in time, so the API was not called.");
            return;
          }
          const d = describeMsalError(e);
          setMilestone(n, "error", placeholder("Could not get a token for the API."));
          showAlert("error", "Could not get a token for the API", [d.text, d.hint ? " — " + d.hint : ""]);
          return;
        }
        const started = performance.now();
        let res;
        try {
          res = await fetch(cfg.apiBaseUrl + path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
        } catch (e) {
          const d = await diagnoseApiFailure(path);
          setMilestone(n, "error", placeholder(d.title + "."));
          showAlert("error", d.title, d.body);
          return;
        }
        const ms = Math.round(performance.now() - started);
        let body = null;
        try {
          body = await res.json();
        } catch (e) {
          body = null;
        }
        if (res.ok) {
          setMilestone(n, "done", render(body || {}, ms, stepUp && (stepUp.claims || stepUp.prompt) ? stepUp : null));
          if (stepUp && (stepUp.claims || stepUp.prompt)) {
            if (stepUp.prompt) showAlert("success", "Consent granted", "You consented, and the call went through.");
            else showAlert("success", "Step-up complete", "You completed the extra sign-in step the upstream required, and the call went through.");
          }
          return;
        }
        const ch = parseChallenge(res.headers.get("WWW-Authenticate"));
        const bodyErr = (body && body.error) || "";
        const isConsent = ch.error === "consent_required" || bodyErr === "consent_required";
        if (res.status === 401 && (ch.error === "insufficient_claims" || isConsent) && attempt === 0) {
          let claims;
          const b64 = ch.claims || (body && body.claims);
          if (b64) {
            try {
              claims = atob(b64);
              JSON.parse(claims);
            } catch (e) {
              claims = undefined;
            }
          }
          stepUp = {};
          if (claims) stepUp.claims = claims;
          if (isConsent) {
            // Combined consent: the API lists this SPA in its
            // knownClientApplications, and Entra then extends the consent to
            // the API's own permissions (Graph User.Read) only when the SPA
            // asks for the API's ".default". Re-requesting access_as_user
            // with prompt=consent would consent to the API alone, and the
            // retried OBO would fail with AADSTS65001 again. The .default
            // token still carries scp access_as_user (the SPA's API
            // permission).
            stepUp.scopes = defaultScopes();
            stepUp.prompt = "consent";
          }
          const why = isConsent
            ? "The API needs your consent to call the upstream service on your behalf. A sign-in window asks for it; the call is then retried once."
            : "The upstream service requires more than your current sign-in (for example multi-factor authentication). A sign-in window completes that step; the call is then retried once.";
          setMilestone(n, "blocked", el("p", { class: "notice", text: why }), isConsent ? "Consent needed" : "Step-up needed");
          showAlert("info", isConsent ? "Consent needed" : "Additional sign-in required", why);
          continue;
        }
        if (res.status === 401 && (ch.error === "invalid_token" || bodyErr === "invalid_token") && attempt === 0 && !stepUp) {
          // The token could not be used (expired or revoked): get a fresh one once.
          stepUp = { forceRefresh: true };
          continue;
        }
        setMilestone(n, "error", apiErrorView(res, body, ch));
        showAlert("error", "The API answered " + res.status + " " + (res.statusText || ""), apiErrorText(res, body, ch));
        return;
      }
    } finally {
      if (gen === generation) setBusy(false);
    }
  }

  function apiErrorText(res, body, ch) {
    const reason = (body && (body.error_description || body.message || body.error)) || ch.error_description || ch.error || "";
    const hint = body && body.hint ? " " + body.hint : "";
    if (res.status === 503) return "The API or the identity provider behind it is unavailable; try again in a moment. " + reason;
    if (res.status === 504) return "The upstream service did not answer in time; try again in a moment. " + reason;
    if (res.status === 502) return "The upstream service failed. " + reason;
    return reason + hint;
  }

  function apiErrorView(res, body, ch) {
    return [
      el("p", { class: "placeholder", text: "The call did not succeed." }),
      kv([
        ["HTTP status", res.status],
        ["Error", (body && body.error) || ch.error],
        ["Reason", (body && (body.error_description || body.message)) || ch.error_description],
        ["Hint", body && body.hint],
      ]),
    ];
  }

  // The API's answer shapes are read leniently: known fields get labels,
  // everything else is listed as it is.
  const LABELS = {
    name: "Name", username: "User name", preferred_username: "User name", upn: "UPN", oid: "Object id (oid)",
    object_id: "Object id (oid)", objectId: "Object id (oid)", tid: "Tenant (tid)", tenant: "Tenant", tenant_id: "Tenant", tenantId: "Tenant",
    scopes: "Scopes", scp: "Scopes", roles: "Roles", audience: "Audience", aud: "Audience", issuer: "Issuer", iss: "Issuer",
    version: "Token version", ver: "Token version", expires: "Token expires", exp: "Token expires", expires_at: "Token expires", expiresAt: "Token expires",
    app_id: "Calling app", appId: "Calling app", azp: "Calling app", delegated: "Delegated", caller: "Caller type", message: "Message",
  };

  function flatten(obj, prefix, out) {
    for (const [k, v] of Object.entries(obj || {})) {
      const key = prefix ? prefix + "." + k : k;
      if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
      else out.push([key, v]);
    }
    return out;
  }

  function labelled(rows) {
    return rows.map(([k, v]) => {
      const leaf = k.split(".").pop();
      const label = LABELS[leaf] || k;
      const val = Array.isArray(v) && ["scopes", "scp", "roles"].includes(leaf) ? chips(v)
        : leaf === "scp" && typeof v === "string" ? chips(v)
        : /exp|expires/i.test(leaf) && typeof v === "number" ? when(v) : v;
      return [label, val];
    });
  }

  // dateish formats an RFC 3339 string or epoch seconds with a relative hint.
  function dateish(v) {
    if (typeof v === "number") return when(v);
    const t = Date.parse(v);
    return Number.isNaN(t) ? v : when(Math.round(t / 1000));
  }

  function renderApi(body, ms) {
    const known = {
      name: "Name", username: "User name", oid: "Object id (oid)", tid: "Tenant (tid)", caller: "Caller",
      appId: "Calling app (azp)", scopes: "Scopes (scp)", roles: "App roles", aud: "Audience (aud)", iss: "Issuer (iss)",
      ver: "Token version", expiresAt: "Token expires",
    };
    const rows = [];
    for (const [k, label] of Object.entries(known)) {
      const v = body[k];
      if (v === undefined || v === "" || (Array.isArray(v) && !v.length)) continue;
      rows.push([label, k === "scopes" || k === "roles" ? chips(v) : k === "expiresAt" ? dateish(v) : k === "caller" ? (v === "user" ? "a user (delegated)" : v === "app" ? "an app (app-only)" : v) : v]);
    }
    // Anything the API adds later is still shown.
    const extra = flatten(Object.fromEntries(Object.entries(body).filter(([k]) => !(k in known) && k !== "message")), "", []);
    return [
      el("p", { class: "result-line" }, el("strong", { text: body.message || "The web API read your access token." }),
        el("span", { class: "muted", text: ms + " ms round trip" })),
      kv(rows.concat(labelled(extra))),
    ];
  }

  function findProfile(body) {
    if (!body || typeof body !== "object") return null;
    if (body.upstream && typeof body.upstream === "object") return body.upstream;
    if (body.displayName || body.userPrincipalName) return body;
    for (const v of Object.values(body)) {
      if (v && typeof v === "object" && !Array.isArray(v) && (v.displayName || v.userPrincipalName)) return v;
    }
    return null;
  }

  function msText(v) {
    return typeof v === "number" ? (v < 10 ? v.toFixed(2) : Math.round(v)) + " ms" : v;
  }

  function renderObo(body, ms, stepUp) {
    const profile = findProfile(body) || {};
    const tok = (body && body.token) || {};
    const fromCache = tok.source === "cache";
    const src = tok.source
      ? el("span", { class: "chip" + (fromCache ? " good" : ""), text: fromCache ? "token from cache" + (tok.tier ? " (" + tok.tier + ")" : "") : "token from the identity provider" })
      : null;
    const pRows = [
      ["Display name", profile.displayName],
      ["User principal name", profile.userPrincipalName],
      ["Mail", profile.mail],
      ["Given name", profile.givenName],
      ["Surname", profile.surname],
      ["Job title", profile.jobTitle],
      ["Id", profile.id],
    ];
    const tRows = [
      ["Obtained from", tok.source === "cache" ? "the API's token cache" + (tok.tier ? " (" + tok.tier + ")" : "") : tok.source === "idp" ? "the identity provider (OBO grant)" + (tok.coalesced ? ", shared with a concurrent request" : "") : tok.source],
      ["Token latency", msText(tok.latency_ms)],
      ["Upstream call", msText(body.upstream_ms)],
      ["Total in the API", msText(body.total_ms)],
      ["Scopes", tok.scopes && tok.scopes.length ? chips(tok.scopes) : undefined],
      ["Token expires", tok.expires_on ? dateish(tok.expires_on) : undefined],
      ["Upstream", body.upstream_url ? body.upstream_url + (body.upstream_status ? " → " + body.upstream_status : "") : undefined],
    ];
    if (!body.token) {
      // An unexpected shape: list it all rather than nothing.
      const rest = {};
      for (const [k, v] of Object.entries(body || {})) if (v !== profile) rest[k] = v;
      tRows.push(...labelled(flatten(rest, "", [])));
    }
    return [
      el("p", { class: "result-line" }, el("strong", { text: "The upstream answered /v1.0/me for the token the API obtained On-Behalf-Of you." }),
        src, stepUp ? el("span", { class: "chip good", text: stepUp.prompt ? "after consent" : "after step-up" }) : null,
        el("span", { class: "muted", text: ms + " ms round trip" })),
      el("div", { class: "two-col" },
        el("div", {}, el("h3", { text: "Upstream profile" }), kv(pRows)),
        el("div", {}, el("h3", { text: "How the API got the token" }), kv(tRows))),
    ];
  }

  // ------------------------------------------------------------------ boot

  async function boot() {
    $("msal-version").textContent = (window.msal && msal.version) || "?";
    $("sign-in").addEventListener("click", () => { if (!busy) signIn(); });
    $("sign-out").addEventListener("click", () => { if (!busy) signOut(); });
    $("call-api").addEventListener("click", () => { if (!busy) callApi("/api", 2, renderApi); });
    $("call-obo").addEventListener("click", () => { if (!busy) callApi("/api/obo", 3, renderObo); });
    $("alert-close").addEventListener("click", clearAlert);
    $("tab-id").addEventListener("click", () => { tokenTab = "id"; renderTokens(); });
    $("tab-access").addEventListener("click", () => { tokenTab = "access"; renderTokens(); });

    try {
      const r = await fetch("/config.json", { cache: "no-store" });
      cfg = await r.json();
    } catch (e) {
      showAlert("error", "Cannot load /config.json", "This page must be served by demohost (go run ./demohost).");
      return;
    }
    $("env-mode").textContent = cfg.mode === "entra" ? "Microsoft Entra ID" : "Local emulator";
    $("env-mode").dataset.mode = cfg.mode;
    $("env-authority").textContent = cfg.authority;
    $("env-api").textContent = cfg.apiBaseUrl;

    if (!window.msal) {
      showAlert("error", "msal-browser did not load", "static/vendor/msal-browser.min.js is missing; run scripts/vendor-msal.sh.");
      return;
    }
    if (!(await checkAuthority())) {
      setMilestone(1, "error", placeholder("Sign-in is unavailable until the problem above is fixed."), "Unavailable");
      return;
    }

    pca = new msal.PublicClientApplication({
      auth: {
        clientId: cfg.clientId,
        authority: cfg.authority,
        knownAuthorities: cfg.knownAuthorities,
        redirectUri: cfg.redirectUri,
        postLogoutRedirectUri: cfg.postLogoutRedirectUri,
      },
      cache: { cacheLocation: "sessionStorage" },
      system: {
        loggerOptions: {
          logLevel: msal.LogLevel.Warning,
          piiLoggingEnabled: false,
          loggerCallback: (level, message) => { if (level <= msal.LogLevel.Warning) console.warn("[msal]", message); },
        },
      },
    });
    try {
      await pca.initialize();
      const result = await pca.handleRedirectPromise();
      const accounts = pca.getAllAccounts();
      account = (result && result.account) || pca.getActiveAccount() || accounts[0] || null;
      if (account) onSignedIn(result);
    } catch (e) {
      const d = describeMsalError(e);
      showAlert("error", "Sign-in did not complete", [d.text, d.hint ? " — " + d.hint : ""]);
    }
    refreshButtons();

    const pending = sessionStorage.getItem(PENDING_KEY);
    sessionStorage.removeItem(PENDING_KEY);
    if (account && pending === "/api") callApi("/api", 2, renderApi);
    if (account && pending === "/api/obo") callApi("/api/obo", 3, renderObo);
  }

  boot();
})();
