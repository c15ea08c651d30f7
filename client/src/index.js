// The entry of the served client.js (a classic script, or type="module"):
// the page's client as window.p2pxhr and window.peer5 = { version, config,
// Request, fetch, stats }, with auto mode when the tag names patterns.
// First: the native XMLHttpRequest and fetch are taken as the script runs,
// before page code can replace them with peer5's.
import './native.js';
import { install, ownScript } from './install.js';

install(document.currentScript || ownScript());
