// The service worker of service worker mode ({prefix}sw.js). The module
// serves it after one line of configuration (self.__p2pxhrSW: the routes'
// prefix and the `paths` it shares) and the injected client registers it
// (register.js). It answers the page's requests for shared files (images,
// <video> and <audio> with their Range requests, fetch and XHR, and with
// `paths` downloads opened by navigation) from verified blocks (files.js),
// and lets everything else go to the network untouched.
//
// Registered as the site's worker, a new version takes over at once
// (skipWaiting), but it claims no page that loaded without it: such a page
// (a visitor's first) keeps the network for its whole life, since a
// <video> that started natively must not get its next ranges from
// another source (Chromium stops such a media element). A site with a worker of its own may import it instead,
// at the top of that worker, before the site's own fetch listener:
//
//   importScripts('/_p2pxhr/sw.js');
//
// It then only listens: the site's worker keeps its own life cycle.
import { Files } from './files.js';
import { answer } from './respond.js';
import { router } from './route.js';

const settings = self.__p2pxhrSW;
const standalone = !!settings && self.location.pathname === settings.prefix + 'sw.js';
let files = null, target = null;

function setup() {
  if (!files && settings) {
    files = new Files(settings);
    target = router(settings);
  }
  return !!files;
}

self.addEventListener('fetch', (e) => {
  if (!setup()) return;
  const t = target(e.request);
  if (!t || files.passes(e.clientId || e.resultingClientId)) return;
  e.respondWith(answer(e, t, files));
});

self.addEventListener('message', (e) => {
  if (e.data && typeof e.data.p2pxhr === 'string' && setup()) files.message(e);
});

if (standalone) {
  self.addEventListener('install', () => self.skipWaiting());
}
