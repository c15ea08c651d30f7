// The entry of the served client.mjs, for pages and modules that import:
//
//   import { fetch, Request, stats, config } from '/_p2pxhr/client.mjs';
//
// It shares the one client with client.js when both are loaded, reads the
// data-* options of its <script type="module"> tag if there is one, and
// takes its routes' prefix from its own URL otherwise. First, as in
// client.js: the native XMLHttpRequest and fetch are taken before anything
// can replace them.
import './native.js';
import { install, ownScript } from './install.js';

const api = install(ownScript(import.meta.url), import.meta.url);

export const { version, config, Request, fetch, stats, consent } = api;
export default api;
