/* P2PXHR browser client (minimal stage): exposes window.peer5 with a
 * drop-in XMLHttpRequest and fetch. Until the swarm code lands, every
 * request is carried over HTTP, with the same events and the same bytes,
 * and reports its stats as bytes from HTTP. */
(function () {
  'use strict';
  if (window.peer5 && window.peer5.version) return; // loaded twice

  var script = document.currentScript;
  function attr(name, fallback) {
    var v = script && script.getAttribute('data-' + name);
    return v == null ? fallback : v;
  }

  var config = {
    prefix: attr('prefix', '/_p2pxhr/'),
    p2p: attr('p2p', 'on') !== 'off',
    upload: attr('upload', 'on') !== 'off'
  };

  // Request wraps a native XMLHttpRequest and mirrors its API, so pages can
  // replace `new XMLHttpRequest()` with `new peer5.Request()`.
  function Request() {
    var xhr = new XMLHttpRequest();
    var self = this;
    this._xhr = xhr;
    this.stats = { bytesFromHttp: 0, bytesFromPeers: 0, peers: 0 };
    ['loadstart', 'progress', 'load', 'error', 'abort', 'timeout', 'loadend', 'readystatechange']
      .forEach(function (type) {
        xhr.addEventListener(type, function (ev) {
          if (type === 'progress' || type === 'load') self.stats.bytesFromHttp = ev.loaded || self.stats.bytesFromHttp;
          var handler = self['on' + type];
          if (typeof handler === 'function') handler.call(self, ev);
        });
      });
  }
  var proto = Request.prototype;
  ['open', 'send', 'abort', 'setRequestHeader', 'getResponseHeader', 'getAllResponseHeaders',
   'overrideMimeType', 'addEventListener', 'removeEventListener'].forEach(function (name) {
    proto[name] = function () { return this._xhr[name].apply(this._xhr, arguments); };
  });
  ['readyState', 'status', 'statusText', 'response', 'responseText', 'responseURL', 'responseXML']
    .forEach(function (name) {
      Object.defineProperty(proto, name, { get: function () { return this._xhr[name]; } });
    });
  ['responseType', 'timeout', 'withCredentials'].forEach(function (name) {
    Object.defineProperty(proto, name, {
      get: function () { return this._xhr[name]; },
      set: function (v) { this._xhr[name] = v; }
    });
  });
  Request.UNSENT = 0; Request.OPENED = 1; Request.HEADERS_RECEIVED = 2; Request.LOADING = 3; Request.DONE = 4;

  // fetch has the signature of window.fetch.
  function p2pFetch(input, init) {
    return window.fetch(input, init);
  }

  // manifest asks the module for a resource's manifest (null when the
  // resource is not shareable).
  function manifest(url) {
    var u = config.prefix + 'manifest?url=' + encodeURIComponent(new URL(url, location.href).pathname);
    return window.fetch(u, { credentials: 'omit' }).then(function (res) {
      return res.ok ? res.json() : null;
    });
  }

  window.peer5 = { version: '0.1.0', config: config, Request: Request, fetch: p2pFetch, manifest: manifest };
})();
