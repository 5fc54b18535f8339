// The redirect bridge (see redirect.html). Kept in its own file so the page
// works under a CSP without 'unsafe-inline'.
"use strict";
msalRedirectBridge.broadcastResponseToMainFrame().catch(function (err) {
  // Opened without an authorization response (e.g. typed in by hand).
  document.body.textContent = "Nothing to complete here: " + (err && err.errorCode ? err.errorCode : err);
});
