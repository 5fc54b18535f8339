// Package static embeds the walkthrough page (index.html, app.js, app.css,
// redirect.html and the vendored msal-browser build) so that `go run
// ./demohost` serves it from any working directory and a built binary carries
// its page with it. demohost can serve the same files from disk instead
// (STATIC_DIR) while the page is being edited.
package static

import "embed"

// Files holds the page. Only the listed files are embedded: Go sources and
// anything else in this folder are never served.
//
//go:embed index.html redirect.html redirect.js app.js app.css favicon.svg vendor/msal-browser.min.js vendor/msal-redirect-bridge.min.js vendor/LICENSE
var Files embed.FS
