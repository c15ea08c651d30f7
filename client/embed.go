// Package client holds the P2PXHR browser client as small ES modules,
// embedded so the Caddy module bundles and serves them from the binary
// (caddymodule/clientjs.go runs esbuild over them at Provision: no npm).
// It imports nothing in Go but embed.
package client

import "embed"

// Files holds the client's ES modules under src/ (src/sw/: service worker
// mode).
//
//go:embed src/*.js src/sw/*.js
var Files embed.FS

// Entry is the module every page loads (client.js); it imports the others.
const Entry = "src/index.js"

// ModuleEntry is the entry of the ES module build (client.mjs), whose
// exports are the client's API.
const ModuleEntry = "src/module.js"

// Declarations are the client's TypeScript declarations (client.d.ts).
//
//go:embed client.d.ts
var Declarations string

// SeederEntry is the module of the chunk the client loads on demand: the
// persistent cache and seeding from it.
const SeederEntry = "src/seeder.js"

// BridgeEntry is the module of the chunk a page loads when the service
// worker asks for it: the page's side of service worker mode, carrying
// blocks between the swarm and the worker.
const BridgeEntry = "src/sw/bridge.js"

// AutoEntry is the module of the chunk a page loads when the site turns
// auto mode on (links and images through the swarm, data-auto).
const AutoEntry = "src/auto.js"

// WorkerEntry is the service worker's module ({prefix}sw.js).
const WorkerEntry = "src/sw/worker.js"
