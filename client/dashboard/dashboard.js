/* P2PXHR operators' dashboard: polls {prefix}dashboard/stats and draws the offload,
 * bytes by source, peers and swarms, and the A/B comparison as SVG. The
 * time series come from the server's history (one hour in 10-second
 * slots), so a dashboard opened late shows what happened before. */
(function () {
  'use strict';
  var statsURL = new URL('dashboard/stats', location.href).pathname;
  var interval = 2000;
  var hour = 3600e3;
  var minSpan = 5 * 60e3; // the time axis shows at least five minutes
  var SLOT = 10e3; // the server's slot (history.slotSeconds)
  var history = []; // the server's slots, oldest first
  var NS = 'http://www.w3.org/2000/svg';
  // The plot area of every chart's 600×200 viewBox.
  var X0 = 56, X1 = 596, Y0 = 180, Y1 = 10;

  // bytes formats a byte count in binary units, with one decimal at most
  // and none when whole (512 KiB, 1.5 MiB).
  function bytes(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    var v = i ? n.toFixed(1) : String(Math.round(n));
    return v.replace(/\.0$/, '') + ' ' + units[i];
  }
  // niceBytes is the top of a byte axis of four equal steps, each a whole
  // number of one unit and every tick exact in its own (250 KiB, 1 MiB).
  function niceBytes(max) {
    var ms = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 256, 512];
    for (var unit = 1; ; unit *= 1024) {
      for (var i = 0; i < ms.length; i++) if (ms[i] * unit * 4 >= max) return ms[i] * unit * 4;
    }
  }
  // niceCount is the top of a count axis of four whole steps of 1, 2, 5, 10…
  function niceCount(max) {
    var steps = [1, 2, 5];
    for (var k = 1; ; k *= 10) {
      for (var i = 0; i < steps.length; i++) if (steps[i] * k * 4 >= max) return steps[i] * k * 4;
    }
  }
  function seconds(s) { return s ? s.toFixed(s < 10 ? 2 : 1) + ' s' : '–'; }
  function pct(x) { return (100 * x).toFixed(1) + '%'; }
  function text(id, v) { document.getElementById(id).textContent = v; }

  function el(name, attrs) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  // frame clears an SVG and draws its grid with y labels up to top, and
  // time labels along the bottom when span (ms, ending now) is given.
  function frame(svg, top, format, span) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    for (var i = 0; i <= 4; i++) {
      var y = Y0 - i * (Y0 - Y1) / 4;
      svg.appendChild(el('line', { x1: X0, x2: X1, y1: y, y2: y, 'class': 'grid' }));
      var label = el('text', { x: 0, y: y + 4, 'class': 'axis ytick' });
      label.textContent = format(top * i / 4);
      svg.appendChild(label);
    }
    if (!span) return;
    [1, 0.5, 0].forEach(function (f) {
      var mins = Math.round(span * f / 60e3);
      var t = el('text', { x: X1 - (X1 - X0) * f, y: 197, 'class': 'axis', 'text-anchor': f === 0 ? 'end' : f === 1 ? 'start' : 'middle' });
      t.textContent = mins ? mins + ' min ago' : 'now';
      svg.appendChild(t);
    });
  }

  // axis maps a time to x on a window of span ms that ends at end.
  function axis(span, end) { return function (t) { return X1 - (X1 - X0) * (end - t) / span; }; }
  function yOf(v, top) { return Y0 - (Y0 - Y1) * (top ? Math.min(v, top) / top : 0); }

  // steps draws each slot's value as a level across the slot.
  function steps(svg, slots, value, top, x, color, fill) {
    if (!slots.length) return;
    var pts = [];
    slots.forEach(function (p) {
      var y = yOf(value(p), top).toFixed(1);
      pts.push(x(p.t).toFixed(1) + ',' + y, x(p.t + SLOT).toFixed(1) + ',' + y);
    });
    if (fill) {
      svg.appendChild(el('polygon', { points: x(slots[0].t).toFixed(1) + ',' + Y0 + ' ' + pts.join(' ') + ' ' + x(slots[slots.length - 1].t + SLOT).toFixed(1) + ',' + Y0, fill: color, 'fill-opacity': 0.25 }));
    }
    svg.appendChild(el('polyline', { points: pts.join(' '), fill: 'none', stroke: color, 'stroke-width': 2 }));
  }

  // bars stacks, per slot, a bar for each of values (bottom first).
  function bars(svg, slots, values, colors, top, x) {
    slots.forEach(function (p) {
      var base = 0;
      values.forEach(function (value, i) {
        var v = value(p);
        if (!v) return;
        var y0 = yOf(base, top), y1 = yOf(base + v, top);
        base += v;
        svg.appendChild(el('rect', { x: x(p.t) + 0.5, y: y1, width: Math.max(1, x(p.t + SLOT) - x(p.t) - 1), height: Math.max(1, y0 - y1), fill: colors[i] }));
      });
    });
  }

  // maxOf is the largest per-slot sum of keys.
  function maxOf(slots, keys) {
    var m = 0;
    slots.forEach(function (p) {
      var v = 0;
      keys.forEach(function (k) { v += p[k]; });
      if (v > m) m = v;
    });
    return m;
  }

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  // merge adds the server's slots to the history: a slot seen before (the
  // current one, still filling) is replaced; slots older than an hour go.
  function merge(points, now) {
    points.forEach(function (p) {
      var last = history[history.length - 1];
      if (last && last.t === p.t) history[history.length - 1] = p;
      else if (!last || p.t > last.t) history.push(p);
    });
    while (history.length && history[0].t < now - hour) history.shift();
  }

  function drawTimeSeries(now) {
    // The window ends with the slot now filling and spans what the server
    // remembers, at least five minutes, at most an hour.
    var end = Math.ceil(now / SLOT) * SLOT;
    var span = Math.min(hour, Math.max(minSpan, history.length ? end - history[0].t : 0));
    var x = axis(span, end);
    var get = function (key) { return function (p) { return p[key]; }; };

    // Offload over the window: peers' share of every byte so far in it.
    var sumPeers = 0, sumHttp = 0;
    var offload = history.map(function (p) {
      sumPeers += p.fromPeers; sumHttp += p.fromHttp;
      return { t: p.t, v: sumPeers + sumHttp ? sumPeers / (sumPeers + sumHttp) : 0 };
    });
    var svg = document.getElementById('chartOffload');
    frame(svg, 1, function (v) { return Math.round(100 * v) + '%'; }, span);
    steps(svg, offload, get('v'), 1, x, css('--peers'), true);

    var top = niceBytes(Math.max(1, maxOf(history, ['origin']), maxOf(history, ['fromHttp', 'fromPeers'])));
    svg = document.getElementById('chartBytes');
    frame(svg, top, bytes, span);
    bars(svg, history, [get('fromHttp'), get('fromPeers')], [css('--http'), css('--peers')], top, x);
    steps(svg, history, get('origin'), top, x, css('--origin'), false);

    top = niceCount(Math.max(4, maxOf(history, ['peers']), maxOf(history, ['swarms'])));
    svg = document.getElementById('chartPeers');
    frame(svg, top, function (v) { return Math.round(v); }, span);
    steps(svg, history, get('peers'), top, x, css('--peers'), false);
    steps(svg, history, get('swarms'), top, x, css('--swarms'), false);
  }

  // note writes a line of text in the middle of a chart.
  function note(svg, y, text) {
    var t = el('text', { x: 300, y: y, 'class': 'axis message', 'text-anchor': 'middle' });
    t.textContent = text;
    svg.appendChild(t);
  }

  // drawAB compares the groups' download times per size class of the file,
  // each class on its own scale: a median bar and a p95 line per group.
  function drawAB(groups, ab) {
    var svg = document.getElementById('chartAB');
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.appendChild(el('line', { x1: X0, x2: X1, y1: Y0, y2: Y0, 'class': 'grid' }));
    if (ab == null) {
      note(svg, 90, 'A/B off \u2014 add \u201cab 50\u201d to the p2pxhr block to compare');
      note(svg, 110, 'P2P visitors with HTTP-only ones');
      return;
    }
    var classes = [];
    ['p2p', 'http'].forEach(function (g) {
      ((groups[g] || {}).sizes || []).forEach(function (s) { if (classes.indexOf(s.class) < 0) classes.push(s.class); });
    });
    if (!classes.length) return note(svg, 100, 'no downloads reported yet');
    var order = ['under 4 MiB', '4 MiB to 64 MiB', '64 MiB to 1 GiB', '1 GiB and more'];
    classes.sort(function (a, b) { return order.indexOf(a) - order.indexOf(b); });
    var colors = { p2p: css('--peers'), http: css('--http') };
    var width = (X1 - X0) / classes.length;
    classes.forEach(function (name, ci) {
      var q = {};
      var top = 0;
      ['p2p', 'http'].forEach(function (g) {
        var s = ((groups[g] || {}).sizes || []).filter(function (x) { return x.class === name; })[0];
        q[g] = s ? s.durationSeconds : { median: 0, p95: 0, count: 0 };
        top = Math.max(top, q[g].p95);
      });
      top = (top || 1) * 1.2; // room for the labels above the bars
      ['p2p', 'http'].forEach(function (g, gi) {
        var x = X0 + ci * width + width / 2 - 75 + gi * 80;
        var h = (Y0 - Y1) * q[g].median / top, h95 = (Y0 - Y1) * q[g].p95 / top;
        svg.appendChild(el('rect', { x: x, y: Y0 - h, width: 70, height: Math.max(h, 1), fill: colors[g] }));
        if (q[g].count) svg.appendChild(el('line', { x1: x + 35, x2: x + 35, y1: Y0 - h, y2: Y0 - h95, stroke: colors[g], 'stroke-width': 2 }));
        var label = el('text', { x: x, y: Y0 - h95 - 4, 'class': 'axis' });
        label.textContent = q[g].count ? seconds(q[g].median) + ' n=' + q[g].count : 'n=0';
        svg.appendChild(label);
      });
      var caption = el('text', { x: X0 + ci * width + width / 2, y: 197, 'class': 'axis', 'text-anchor': 'middle' });
      caption.textContent = name;
      svg.appendChild(caption);
    });
  }

  function fillRows(body, rows) {
    body.textContent = '';
    rows.forEach(function (cells) {
      var row = document.createElement('tr');
      cells.forEach(function (v) {
        var td = document.createElement('td');
        td.textContent = v;
        row.appendChild(td);
      });
      body.appendChild(row);
    });
  }

  // fillNodes shows, with a NATS backplane, which node each count is from.
  function fillNodes(sw) {
    var nodes = sw.nodes || {};
    var ids = Object.keys(nodes).sort();
    document.getElementById('nodesSection').hidden = ids.length === 0;
    fillRows(document.querySelector('#nodesTable tbody'), ids.map(function (id) {
      var n = nodes[id];
      return [id + (id === sw.node ? ' (this node)' : ''), n.peers, n.members, n.ownedSwarms, n.ownedMembers,
        new Date(n.lastSeen).toLocaleTimeString()];
    }));
  }

  function fillTables(stats) {
    var groups = stats.groups || {};
    var rows = [];
    Object.keys(groups).sort().forEach(function (g) {
      (groups[g].sizes || []).forEach(function (s) {
        var o = s.outcomes || {};
        rows.push([g, s.class, s.downloads, (o.ok || 0) + ' / ' + (o.error || 0) + ' / ' + (o.abort || 0),
          seconds(s.durationSeconds.median), seconds(s.durationSeconds.p95),
          bytes(s.throughputBytesPerSecond.median) + '/s', bytes(s.throughputBytesPerSecond.p95) + '/s',
          pct(s.offload)]);
      });
    });
    fillRows(document.querySelector('#abTable tbody'), rows);
    fillRows(document.querySelector('#topTable tbody'), (stats.origin.topResources || []).map(function (r) {
      return [r.url, bytes(r.bytes)];
    }));
  }

  // fillConnections shows how well visitors reach each other, and where
  // the embedded STUN and TURN servers listen (or why not).
  function fillConnections(stats) {
    var c = (stats.swarm && stats.swarm.connections) || { connected: {}, failed: 0 };
    var paths = ['host', 'srflx', 'prflx', 'relay'];
    var ok = 0;
    paths.forEach(function (p) { ok += (c.connected || {})[p] || 0; });
    var all = ok + (c.failed || 0);
    text('connectRate', all ? pct(ok / all) + ' of ' + all : '–');
    var rows = paths.map(function (p) {
      var n = (c.connected || {})[p] || 0;
      return ['connected', p, n, all ? pct(n / all) : '–'];
    });
    rows.push(['failed', '', c.failed || 0, all ? pct((c.failed || 0) / all) : '–']);
    fillRows(document.querySelector('#connTable tbody'), rows);
    var ice = stats.ice || {};
    var line = 'STUN: ' + (ice.stun || 'off') + (ice.stunError ? ' — ' + ice.stunError : '') + '. TURN: ' + (ice.turn || 'off');
    if (ice.turn && ice.turn !== 'off') line += ', ' + bytes(ice.relayedBytes || 0) + ' relayed, ' + (ice.allocations || 0) + ' relays open';
    text('iceStatus', line + '.');
  }

  function update(stats) {
    var sw = stats.swarm;
    var now = Date.now();
    if (stats.history) {
      SLOT = stats.history.slotSeconds * 1000;
      merge(stats.history.points, now);
    }
    // The tiles add up finished downloads of every group; the charts
    // follow the live counters peers send while downloading.
    var done = { peers: 0, http: 0 };
    Object.keys(stats.groups || {}).forEach(function (g) {
      done.peers += stats.groups[g].bytesFromPeers;
      done.http += stats.groups[g].bytesFromHttp;
    });
    text('offload', pct(done.peers + done.http ? done.peers / (done.peers + done.http) : 0));
    text('fromPeers', bytes(done.peers));
    text('fromHttp', bytes(done.http));
    text('originBytes', bytes(stats.origin.bytes));
    // With a cluster, the whole cluster's counts.
    text('peers', sw.clusterPeers || sw.peers);
    text('swarms', sw.clusterSwarms || sw.swarms);
    // Seeders: peers serving from a cache while their visitor is on the site.
    var seeding = sw.seeding || {};
    text('seeders', seeding.peers || 0);
    text('seedCached', bytes(seeding.cachedBytes || 0));
    text('seedUploaded', bytes(seeding.bytesUploaded || 0));
    // Service worker mode: responses to images, <video>, fetch... with their blocks' sources.
    var worker = stats.serviceWorker || {};
    text('swRequests', worker.requests || 0);
    text('swPeers', bytes(worker.bytesFromPeers || 0));
    text('swHttp', bytes(worker.bytesFromHttp || 0));
    // A relayed byte costs the server what an HTTP byte does.
    text('serverBytes', bytes(stats.origin.bytes + ((stats.ice && stats.ice.relayedBytes) || 0)));
    fillNodes(sw);
    fillConnections(stats);
    drawTimeSeries(now);
    drawAB(stats.groups || {}, stats.ab);
    fillTables(stats);
  }

  function poll() {
    // The slots from the newest one held (still filling) on; all at first.
    var since = history.length ? history[history.length - 1].t : 0;
    fetch(statsURL + '?history=' + since, { cache: 'no-store' }).then(function (res) {
      if (!res.ok) throw new Error('stats answered ' + res.status);
      return res.json();
    }).then(function (stats) {
      update(stats);
      var status = document.getElementById('status');
      status.textContent = 'live, updated ' + new Date().toLocaleTimeString();
      status.className = 'status live';
      window.dashboardUpdates = (window.dashboardUpdates || 0) + 1;
    }).catch(function (err) {
      var status = document.getElementById('status');
      status.textContent = 'no data: ' + err.message;
      status.className = 'status down';
    }).then(function () { setTimeout(poll, interval); });
  }
  poll();
})();
