/* P2PXHR operators' dashboard: polls {prefix}stats and draws the offload,
 * bytes by source, peers and swarms, and the A/B comparison as SVG. */
(function () {
  'use strict';
  var statsURL = new URL('stats', location.href).pathname;
  var interval = 2000;
  var maxPoints = 180; // six minutes at 2 s
  var history = [];
  var previous = null;
  var NS = 'http://www.w3.org/2000/svg';

  function bytes(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + units[i];
  }
  function seconds(s) { return s ? s.toFixed(s < 10 ? 2 : 1) + ' s' : '–'; }
  function pct(x) { return (100 * x).toFixed(1) + '%'; }
  function text(id, v) { document.getElementById(id).textContent = v; }

  function el(name, attrs) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  // frame clears an SVG and draws its grid with y labels up to top.
  function frame(svg, top, format) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    for (var i = 0; i <= 4; i++) {
      var y = 190 - i * 45;
      svg.appendChild(el('line', { x1: 40, x2: 600, y1: y, y2: y, 'class': 'grid' }));
      var label = el('text', { x: 0, y: y + 4, 'class': 'axis' });
      label.textContent = format(top * i / 4);
      svg.appendChild(label);
    }
  }

  function line(svg, values, top, color, fill) {
    if (values.length < 2) return;
    var step = 560 / (maxPoints - 1);
    var x0 = 600 - (values.length - 1) * step;
    var pts = values.map(function (v, i) {
      return (x0 + i * step).toFixed(1) + ',' + (190 - 180 * (top ? v / top : 0)).toFixed(1);
    });
    if (fill) {
      svg.appendChild(el('polygon', { points: x0 + ',190 ' + pts.join(' ') + ' 600,190', fill: color, 'fill-opacity': 0.25 }));
    }
    svg.appendChild(el('polyline', { points: pts.join(' '), fill: 'none', stroke: color, 'stroke-width': 2 }));
  }

  function maxOf(arrays) {
    var m = 0;
    arrays.forEach(function (a) { a.forEach(function (v) { if (v > m) m = v; }); });
    return m || 1;
  }

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function drawTimeSeries() {
    var offload = history.map(function (h) { return h.offload; });
    var svg = document.getElementById('chartOffload');
    frame(svg, 1, pct);
    line(svg, offload, 1, css('--peers'), true);

    var peersBytes = history.map(function (h) { return h.dPeers; });
    var httpBytes = history.map(function (h) { return h.dHttp; });
    var top = maxOf([peersBytes, httpBytes]);
    svg = document.getElementById('chartBytes');
    frame(svg, top, bytes);
    line(svg, httpBytes, top, css('--http'), true);
    line(svg, peersBytes, top, css('--peers'), true);

    var peers = history.map(function (h) { return h.peers; });
    var swarms = history.map(function (h) { return h.swarms; });
    top = Math.max(4, maxOf([peers, swarms]));
    svg = document.getElementById('chartPeers');
    frame(svg, top, function (v) { return Math.round(v); });
    line(svg, peers, top, css('--peers'), false);
    line(svg, swarms, top, css('--swarms'), false);
  }

  function drawAB(groups) {
    var svg = document.getElementById('chartAB');
    var names = ['p2p', 'http'];
    var top = 0;
    names.forEach(function (g) { if (groups[g]) top = Math.max(top, groups[g].durationSeconds.p95); });
    top = (top || 1) * 1.15; // room for the labels above the bars
    frame(svg, top, seconds);
    var colors = { p2p: css('--peers'), http: css('--http') };
    names.forEach(function (g, gi) {
      var q = groups[g] ? groups[g].durationSeconds : { median: 0, p95: 0, count: 0 };
      [['median', q.median], ['p95', q.p95]].forEach(function (pair, i) {
        var x = 80 + i * 260 + gi * 110;
        var h = 180 * pair[1] / top;
        svg.appendChild(el('rect', { x: x, y: 190 - h, width: 90, height: Math.max(h, 1), fill: colors[g], 'fill-opacity': i ? 0.6 : 1 }));
        var label = el('text', { x: x, y: 186 - h, 'class': 'axis' });
        label.textContent = seconds(pair[1]) + ' n=' + q.count;
        svg.appendChild(label);
      });
    });
    ['median', 'p95'].forEach(function (name, i) {
      var caption = el('text', { x: 80 + i * 260 + 85, y: 12, 'class': 'axis' });
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
    fillRows(document.querySelector('#abTable tbody'), Object.keys(groups).sort().map(function (g) {
      var s = groups[g];
      var o = s.outcomes || {};
      return [g, s.downloads, (o.ok || 0) + ' / ' + (o.error || 0) + ' / ' + (o.abort || 0),
        seconds(s.durationSeconds.median), seconds(s.durationSeconds.p95),
        bytes(s.throughputBytesPerSecond.median) + '/s', bytes(s.throughputBytesPerSecond.p95) + '/s',
        pct(s.offload)];
    }));
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
    var all = sw.bytesFromHttp + sw.bytesFromPeers;
    var point = {
      offload: all ? sw.bytesFromPeers / all : 0,
      dPeers: previous ? Math.max(0, sw.bytesFromPeers - previous.bytesFromPeers) : 0,
      dHttp: previous ? Math.max(0, sw.bytesFromHttp - previous.bytesFromHttp) : 0,
      // With a cluster, the whole cluster's counts.
      peers: sw.clusterPeers || sw.peers,
      swarms: sw.clusterSwarms || sw.swarms
    };
    previous = sw;
    history.push(point);
    if (history.length > maxPoints) history.shift();
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
    // A relayed byte costs the server what an HTTP byte does.
    text('serverBytes', bytes(stats.origin.bytes + ((stats.ice && stats.ice.relayedBytes) || 0)));
    text('peers', point.peers);
    text('swarms', point.swarms);
    fillNodes(sw);
    fillConnections(stats);
    drawTimeSeries();
    drawAB(stats.groups || {});
    fillTables(stats);
  }

  function poll() {
    fetch(statsURL, { cache: 'no-store' }).then(function (res) {
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
