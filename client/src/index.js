// The entry of the served client.js: reads the options and exposes
// window.peer5 = { version, config, Request, fetch, stats }, then starts
// auto mode when the tag names patterns (data-auto).
// First: the native XMLHttpRequest and fetch are taken as the script runs,
// before page code can replace them with peer5's.
import './native.js';
import { readConfig } from './config.js';
import { Client } from './client.js';
import { makeRequest } from './request.js';
import { makeFetch } from './fetch.js';
import { startAuto } from './auto.js';

const prev = window.peer5;
// Loaded twice (a page's own tag and the injected one): keep the first.
if (!(prev && prev.version)) {
  const config = readConfig(document.currentScript, prev && prev.config);
  const client = new Client(config);
  window.peer5 = {
    version: '0.3.0',
    config,
    Request: makeRequest(client),
    fetch: makeFetch(client),
    stats: (url) => client.stats(url),
  };
  startAuto(client, config);
}
