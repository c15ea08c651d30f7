// Unit tests of the client's modules in a real browser: the wire codec and
// the coordinator message builders against protocol/testdata vectors (the
// ones the Go code is checked against), and the scheduler with the shared
// scheduler vectors. Results go to window.unitResult.
import * as wire from '../src/wire.js';
import * as coord from '../src/coordmsg.js';
import { BlockScheduler } from '../src/scheduler.js';
import { sha256Hex, verifyBlock } from '../src/hash.js';
import { BlockStore } from '../src/store.js';
import { toBits, fromBits } from '../src/bitfield.js';
import { matcher } from '../src/auto.js';
import { sendReport } from '../src/report.js';
import { readConfig } from '../src/config.js';
import { BlockCache } from '../src/cache.js';
import { parseRange, resolveRange, fresh, router } from '../src/sw/route.js';

const failures = [];
let total = 0;
const check = (ok, name) => { total++; if (!ok) failures.push(name); };
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const fromHex = (h) => Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));
const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const sorted = (a) => a.slice().sort((x, y) => x - y);

// toVector turns a decoded message into the vectors' JSON shape.
function toVector(m) {
  if (m.type === 'hello') return { type: 'hello', version: m.version, swarmId: m.swarmId, blockCount: m.blockCount, have: m.have.flatMap((h, i) => (h ? [i] : [])) };
  if (m.type === 'piece') return { type: 'piece', block: m.block, offset: m.offset, data: toHex(m.data) };
  return m;
}

// fromVector turns a vector value into what encode takes.
function fromVector(v) {
  if (v.type === 'hello') { const have = new Array(v.blockCount).fill(false); v.have.forEach((i) => { have[i] = true; }); return { ...v, have }; }
  if (v.type === 'piece') return { ...v, data: fromHex(v.data) };
  return v;
}

function wireTests(vec) {
  for (const v of vec.valid) {
    let got;
    try { got = toVector(wire.decode(fromHex(v.hex))); } catch (e) { got = String(e); }
    check(eq(got, v.value), `wire decode ${v.name}: ${JSON.stringify(got).slice(0, 200)}`);
    let enc;
    try { enc = toHex(wire.encode(fromVector(v.value))); } catch (e) { enc = String(e); }
    check(enc === v.hex, `wire encode ${v.name}: ${enc.slice(0, 80)}`);
  }
  for (const v of vec.invalid) {
    let err = null;
    try { wire.decode(fromHex(v.hex)); } catch (e) { err = e; }
    check(err instanceof wire.WireError && err.message.includes(v.error), `wire reject ${v.name}: ${err}`);
  }
}

const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

function coordinatorTests(vec) {
  const build = {
    hello: (v) => coord.hello(v.group),
    join: (v) => coord.join(v.swarm, v.url, fromBits(fromB64(v.bitfield), v.blocks), v.seed),
    signal: (v) => (v.to ? coord.signal(v.swarm, v.to, v.kind, v.data, v.mid) : null),
    have: (v) => coord.have(v.swarm, v.blocks),
    leave: (v) => coord.leave(v.swarm),
    stats: (v) => coord.stats(v.swarm, { fromHttp: v.bytesFromHttp, fromPeers: v.bytesFromPeers, uploaded: v.bytesUploaded }),
    report: (v) => coord.report(v.swarm, v.peer, v.reason),
    connection: (v) => coord.connection(v.swarm, v.peer, v.result, v.path),
    received: (v) => coord.received(v.swarm, v.peer),
    fetch: (v) => coord.fetch(v.swarm, v.want, v.claim),
    release: (v) => coord.release(v.swarm, v.blocks),
  };
  let built = 0;
  for (const v of vec.valid) {
    const m = build[v.value.type] && build[v.value.type](v.value);
    if (m) {
      built++;
      const got = JSON.stringify(m);
      check(got === v.json, `coordinator build ${v.name}: ${got}`);
    }
    check(eq(coord.parse(v.json), v.value), `coordinator parse ${v.name}`);
  }
  check(built >= 13, `coordinator: only ${built} client messages built`);
  check(coord.parse('[1,2]') === null && coord.parse('hello') === null && coord.parse('{"version":1}') === null, 'coordinator parse rejects non-messages');
}

// protocol/testdata/scheduler_vectors.json, which peer/scheduler_vectors_test.go
// runs against the Go scheduler: both must give the same answers.
function schedulerVectorTests(vec) {
  for (const c of vec.cases) {
    const done = new Array(c.blocks).fill(false);
    for (const i of c.done || []) done[i] = true;
    const s = new BlockScheduler(c.config || {}, done, 0);
    const last = new Map();
    const name = (n, st) => `scheduler vector "${c.name}" step ${n} ${st.op}`;
    c.steps.forEach((st, n) => {
      let got;
      switch (st.op) {
        case 'addPeer': { const has = new Array(c.blocks).fill(false); st.has.forEach((i) => { has[i] = true; }); s.addPeer(st.peer, has); return; }
        case 'removePeer': return s.removePeer(st.peer);
        case 'peerHas': return s.peerHas(st.peer, st.block);
        case 'setLoaded': return s.setLoaded(st.value);
        case 'introduced': return s.introduced();
        case 'httpFailed': return s.httpFailed(st.block);
        case 'nextForPeer': got = sorted(s.nextForPeer(st.peer, st.at)); last.set(st.peer, got); break;
        case 'nextForHTTP': got = s.nextForHTTP(st.at); break;
        case 'expire': got = s.expire(st.at).map((e) => [e.peer, e.block]); break;
        case 'stalled': got = s.stalled(st.at); break;
        case 'done': got = s.isDone(); break;
        case 'expectCoordination': return s.expectCoordination();
        case 'coordinate': return s.coordinate(st.value);
        case 'assigned': return s.assigned(st.has);
        case 'leased': got = s.leased(); break;
        case 'takeClaims': got = sorted(s.takeClaims()); break;
        case 'rejected': return check(s.rejected(st.peer, st.block, st.reason) === st.drop, name(n, st));
        case 'completed': case 'completedLast': {
          const block = st.op === 'completedLast' ? last.get(st.from)[0] : st.block;
          const r = s.completed(block, st.from, st.at);
          if (st.op === 'completed') check(eq(r.losers, st.losers) && r.httpLost === st.httpLost, name(n, st) + `: ${JSON.stringify(r)}`);
          return;
        }
        default: return check(false, name(n, st) + ': unknown op');
      }
      let ok;
      if (st.count !== undefined) ok = (typeof got === 'number' ? (got >= 0 ? 1 : 0) : got.length) === st.count;
      else if (st.oneOf) ok = st.oneOf.some((o) => eq(o, got));
      else ok = eq(got, st.want);
      check(ok, name(n, st) + `: ${JSON.stringify(got)}`);
    });
  }
  check(vec.cases.length >= 10, 'scheduler vectors: too few cases');
}

// What the shared vectors cannot state: the JS client's start-up wait, and
// random picks that differ between visitors.
function schedulerTests() {
  // Not loaded: orphans wait out the start-up race (issue 19), the first
  // blocks do not. The JS client's alone: the Go peer has no such wait.
  let s = new BlockScheduler({ endgameBlocks: -1 }, [false, false, false], 0);
  check(s.nextForHTTP(0) === 0, 'scheduler start-up: the first block at once');
  check(s.nextForHTTP(0) === -1, 'scheduler start-up: orphans wait for the coordinator');
  s.introduced(0);
  check(s.nextForHTTP(0) >= 1, 'scheduler start-up: the coordinator named nobody, HTTP goes ahead');
  s = new BlockScheduler({ firstBlocks: -1, endgameBlocks: -1 }, [false, false], 0);
  s.introduced(2);
  check(s.nextForHTTP(900) === -1, 'scheduler start-up: introduced neighbours get the peer grace');
  check(s.nextForHTTP(1000) >= 0, 'scheduler start-up: HTTP after the peer grace');
  s = new BlockScheduler({ firstBlocks: -1, endgameBlocks: -1 }, [false, false], 0);
  s.introduced(1); s.addPeer('a', [true, false]);
  check(s.nextForHTTP(0) === 1, 'scheduler start-up: once a neighbour said hello, HTTP takes what it lacks');
  s = new BlockScheduler({ firstBlocks: -1, endgameBlocks: -1 }, [false, false], 0);
  check(s.nextForHTTP(400) === -1 && s.nextForHTTP(500) >= 0, 'scheduler start-up: no answer, lonely after 500 ms');

  const starts = new Set();
  for (let r = 0; r < 50; r++) {
    const t = new BlockScheduler({ firstBlocks: -1, endgameBlocks: -1 }, new Array(64).fill(false), 0);
    t.introduced(0);
    starts.add(t.nextForHTTP(0));
  }
  check(starts.size >= 10, 'scheduler HTTP starts at different blocks for different visitors');

  // Random tie-breaking spreads peers of one swarm over different blocks.
  const firsts = new Set();
  for (let k = 0; k < 40; k++) {
    const t = new BlockScheduler({ firstBlocks: -1, initialWindow: 1 }, new Array(16).fill(false), 0);
    t.addPeer('p', new Array(16).fill(true));
    firsts.add(t.nextForPeer('p', 0)[0]);
  }
  check(firsts.size > 3, 'scheduler ties broken at random');
}

async function otherTests() {
  check((await sha256Hex(new TextEncoder().encode('abc'))) === 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'sha256 of abc');
  const data = new Uint8Array(20000).map((_, i) => i & 255);
  const blocks = [await sha256Hex(data.subarray(0, 16384)), await sha256Hex(data.subarray(16384))];
  const m = { size: 20000, blockSize: 16384, blocks };
  check(await verifyBlock(m, 1, data.subarray(16384)), 'verify a good block');
  const bad = data.slice(16384); bad[7] ^= 1;
  check(!(await verifyBlock(m, 1, bad)), 'refuse a corrupted block');
  check(!(await verifyBlock(m, 0, data.subarray(0, 100))), 'refuse a short block');
  const st = new BlockStore(m);
  check(st.put(1, data.subarray(16384)) && !st.put(1, data.subarray(16384)) && !st.complete, 'store put once');
  st.put(0, data.subarray(0, 16384));
  check(st.complete && eq(st.have(), [true, true]), 'store complete');
  check(eq(Array.from(new Uint8Array(await st.toBlob().arrayBuffer())), Array.from(data)), 'store blob is the bytes in order');
  check(eq(toHex(toBits([true, false, false, true, false, false, false, false, false, true])), '9040'), 'bitfield msb first');
}

// Auto mode's matcher gives Caddy's path matcher's answers (the vectors
// are checked against Caddy by caddymodule's TestPathMatchVectors).
function pathMatchTests(v) {
  for (const c of v.cases) {
    const got = matcher(c.patterns)(new URL(location.origin + c.path));
    check(got === c.match, `auto ${JSON.stringify(c.patterns)} on ${c.path}: ${got}, Caddy says ${c.match}`);
  }
}

// Auto mode's patterns, the options that turn it on, and report sending
// (beacon first, fetch with keepalive when the beacon is refused, never a throw).
async function autoAndReportTests() {
  const m = matcher('*.MP4 /downloads/*  /exact.bin');
  const at = (p) => m(new URL(p, location.href));
  check(at('/v/a.mp4') && at('/A.Mp4?x=1') && at('/downloads/x/y.zip') && at('/exact.bin'), 'auto matches suffix, prefix, exact');
  check(!at('/a.mp4x') && !at('/downloadsx/y') && !at('/exact.bin/more') && !at('/other.bin'), 'auto refuses the rest');
  check(at('/v/caf%C3%A9.mp4') && matcher('') === null && matcher(['*.png']) !== null, 'auto decodes paths, needs patterns');

  const tag = document.createElement('script');
  tag.setAttribute('data-auto', '*.png /dl/*');
  tag.setAttribute('data-group', 'http');
  const c = readConfig(tag, { group: 'p2p' });
  check(c.auto === '*.png /dl/*' && c.group === 'http' && readConfig(null).auto === '', 'config: data-auto, data-group, auto off by default');
  const d = readConfig(null);
  check(d.autoIndicator === true && d.diskSaveMin === 64 << 20, 'config: indicator on, disk saves from 64 MiB by default');
  tag.setAttribute('data-auto-indicator', 'off');
  tag.setAttribute('data-disk-save-min', 'off');
  let e = readConfig(tag);
  check(e.autoIndicator === false && e.diskSaveMin === Infinity, 'config: data-auto-indicator="off", data-disk-save-min="off"');
  tag.setAttribute('data-disk-save-min', '1048576');
  e = readConfig(tag);
  check(e.diskSaveMin === 1048576, 'config: data-disk-save-min in bytes');

  const beacon = navigator.sendBeacon, realFetch = window.fetch;
  const sent = [];
  try {
    navigator.sendBeacon = (url, data) => { sent.push(['beacon', url, JSON.parse(data)]); return true; };
    window.fetch = (url, init) => { sent.push(['fetch', url, JSON.parse(init.body), init.keepalive]); return Promise.resolve(new Response(null, { status: 204 })); };
    check(sendReport('/p/', { swarm: 'a', outcome: 'ok' }) && sent.length === 1 && sent[0][0] === 'beacon' && sent[0][1] === '/p/stats' && sent[0][2].swarm === 'a', 'report by beacon');
    navigator.sendBeacon = () => false; // queue full
    check(sendReport('/p/', { swarm: 'b' }) && sent.length === 2 && sent[1][0] === 'fetch' && sent[1][3] === true && sent[1][2].swarm === 'b', 'report falls back to fetch keepalive');
    navigator.sendBeacon = () => { throw new Error('boom'); };
    window.fetch = () => { throw new Error('boom'); };
    check(sendReport('/p/', { swarm: 'c' }) === false, 'report never throws');
    window.fetch = () => Promise.reject(new Error('offline'));
    navigator.sendBeacon = undefined;
    check(sendReport('/p/', { swarm: 'd' }) === true, 'report without sendBeacon');
    await new Promise((r) => setTimeout(r, 0)); // the rejected fetch is swallowed
  } finally {
    delete navigator.sendBeacon; // the prototype's method again
    if (navigator.sendBeacon !== beacon) navigator.sendBeacon = beacon;
    window.fetch = realFetch;
  }
}

// A manifest (and its blocks) of n 16 KiB blocks of bytes made from seed.
async function testFile(n, seed) {
  const blocks = [], hashes = [];
  for (let i = 0; i < n; i++) {
    const b = new Uint8Array(16384).map((_, j) => (j * 7 + i * 13 + seed) & 255);
    blocks.push(b);
    hashes.push(await sha256Hex(b));
  }
  const id = await sha256Hex(new TextEncoder().encode(hashes.join('') + seed));
  return { m: { id, size: n * 16384, blockSize: 16384, blocks: hashes }, blocks };
}

// The persistent cache on both of its stores: what is written comes back
// verified, a corrupted block is dropped, another manifest for the URL
// drops the old blocks, the least recently used file goes first, a file
// over the budget is not kept, and a wipe empties it.
async function cacheTests(kind) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const c = await BlockCache.open(3 * 4 * 16384, kind);
  check(c !== null, `cache ${kind}: opens`);
  if (!c) return;
  await c.wipe();
  const a = await testFile(4, 1), a2 = await testFile(4, 2), b = await testFile(4, 3), d = await testFile(4, 4), big = await testFile(13, 5);
  const store = async (f, url, only) => {
    const w = c.writer(f.m, url);
    f.blocks.forEach((x, i) => { if (!only || only.includes(i)) w.put(i, x); });
    return w.done();
  };
  check((await store(a, '/a.bin')) === true, `cache ${kind}: stores`);
  let got = await c.load(a.m, '/a.bin');
  check(got.length === 4 && got.every(([i, x]) => eq(Array.from(x), Array.from(a.blocks[i]))), `cache ${kind}: every block back, the same bytes`);
  check((await c.entries())[0].bytes === 4 * 16384, `cache ${kind}: counts the bytes held`);

  const bad = a.blocks[2].slice();
  bad[100] ^= 1;
  await c.be.put(a.m.id, '2', bad);
  got = await c.load(a.m, '/a.bin');
  check(got.length === 3 && !got.some(([i]) => i === 2) && !(await c.be.list()).get(a.m.id).has('2'), `cache ${kind}: a corrupted block is not returned and is deleted`);
  check((await c.read(a.m, 2)) === null && (await c.read(a.m, 1)) !== null, `cache ${kind}: read verifies`);

  await store(a2, '/a.bin');
  await c.load(a2.m, '/a.bin');
  const ids = (await c.entries()).map((e) => e.id);
  check(ids.includes(a2.m.id) && !ids.includes(a.m.id), `cache ${kind}: a new manifest for the URL drops the old blocks`);

  await sleep(5);
  await store(b, '/b.bin', [0, 1]);
  await sleep(5);
  await c.load(a2.m, '/a.bin'); // a2 used after b
  await sleep(5);
  await store(d, '/d.bin');
  const left = (await c.entries()).map((e) => e.id);
  check(left.includes(a2.m.id) && left.includes(d.m.id) && left.includes(b.m.id), `cache ${kind}: three files fit`);
  await sleep(5);
  await store(await testFile(4, 6), '/e.bin');
  const after = (await c.entries()).map((e) => e.id);
  check(after.length === 3 && !after.includes(b.m.id) && after.includes(a2.m.id), `cache ${kind}: the least recently used file is evicted (${after.length})`);
  check((await c.bytes()) <= c.budget, `cache ${kind}: within its budget`);

  check((await store(big, '/big.bin')) === false && !(await c.entries()).some((e) => e.id === big.m.id), `cache ${kind}: a file over the budget is not kept`);
  check((await c.manifest(d.m.id)).blocks.length === 4, `cache ${kind}: keeps the manifest`);
  await c.wipe();
  check((await c.entries()).length === 0, `cache ${kind}: wipe empties it`);
}

function seedConfigTests() {
  const d = readConfig(null);
  check(d.cacheSize === 2 ** 30 && d.seed && d.seedPeers === 4 && d.seedPerVisit === 256 * 2 ** 20 && d.seedPerDay === 2 ** 30 && d.seedHidden === 600 && !d.seedCellular, 'config: cache and seeding defaults');
  const tag = document.createElement('script');
  for (const [k, v] of [['cache-size', 'off'], ['seed', 'off'], ['seed-peers', '2'], ['seed-per-visit', '1000'], ['seed-per-day', '5000'], ['seed-hidden', 'off'], ['seed-cellular', 'on']]) tag.setAttribute('data-' + k, v);
  const c = readConfig(tag);
  check(c.cacheSize === 0 && !c.seed && c.seedPeers === 2 && c.seedPerVisit === 1000 && c.seedPerDay === 5000 && c.seedHidden === Infinity && c.seedCellular, 'config: cache and seeding attributes');
}

// Service worker mode: which requests the worker takes, the ranges it
// answers itself, when the HTTP cache's copy may be used, data-sw.
function serviceWorkerTests() {
  check(parseRange(null) === null && parseRange('bytes=0-') !== null && eq(parseRange('bytes=1000000-1999999'), { first: 1000000, last: 1999999 }), 'sw: a range of bytes');
  check(eq(parseRange('bytes=-500'), { suffix: 500 }) && parseRange('bytes=0-1,5-6') === false && parseRange('items=0-1') === false && parseRange('bytes=-') === false, 'sw: suffix; several ranges, other units, malformed go to the network');
  check(eq(resolveRange(null, 10), [0, 9]) && eq(resolveRange({ first: 2, last: null }, 10), [2, 9]) && eq(resolveRange({ first: 2, last: 99 }, 10), [2, 9]) && eq(resolveRange({ suffix: 3 }, 10), [7, 9]) && eq(resolveRange({ suffix: 30 }, 10), [0, 9]), 'sw: ranges resolved against the size');
  check(resolveRange({ first: 10, last: null }, 10) === null && resolveRange({ first: 5, last: 4 }, 10) === null && resolveRange({ suffix: 0 }, 10) === null, 'sw: unsatisfiable ranges go to the origin');
  const now = Date.parse('2026-01-01T00:00:10Z'), date = 'Thu, 01 Jan 2026 00:00:00 GMT';
  const h = (o) => new Headers({ date, ...o });
  check(fresh(h({ 'cache-control': 'max-age=60' }), now) && !fresh(h({ 'cache-control': 'max-age=5' }), now) && !fresh(h({ 'cache-control': 'max-age=60', age: '55' }), now), 'sw: max-age counted from Date and Age');
  check(!fresh(h({ 'cache-control': 'no-cache, max-age=60' }), now) && fresh(h({ expires: 'Thu, 01 Jan 2026 00:01:00 GMT' }), now) && !fresh(h({}), now), 'sw: no-cache, Expires, nothing');

  const target = router({ prefix: '/_p2pxhr/', paths: ['/media/*'], navigate: true });
  // What the router reads of a Request (one cannot make a Request with a destination).
  const req = (url, o = {}) => ({ method: 'GET', integrity: '', cache: 'default', mode: 'no-cors', destination: 'image', ...o, url: new URL(url, location.href).href, headers: new Headers(o.headers || {}) });
  const t = target(req('/media/a.png#x'));
  check(t && t.url.hash === '' && t.range === null && !t.media && !t.navigate, 'sw: an image of a shared path is taken');
  const v = target(req('/media/v.mp4', { destination: 'video', headers: { range: 'bytes=100-' } }));
  check(v && v.media && eq(v.range, { first: 100, last: null }), 'sw: a video range is taken');
  check(!!target(req('/media/f.bin', { destination: '', mode: 'cors', headers: { accept: 'application/octet-stream' } })), 'sw: a fetch with a harmless header is taken');
  check(!!target(req('/media/f.bin', { destination: 'document', mode: 'navigate' })) && !router({ prefix: '/_p2pxhr/', paths: [], navigate: false })(req('/media/f.bin', { destination: 'document', mode: 'navigate' })), 'sw: navigations only with paths');
  const passes = [
    ['other path', req('/other/a.png')], ['other origin', req('https://example.com/media/a.png')], ['the prefix', req('/_p2pxhr/client.js')],
    ['POST', req('/media/a.png', { method: 'POST' })], ['integrity', req('/media/a.png', { integrity: 'sha256-x' })],
    ['only-if-cached', req('/media/a.png', { cache: 'only-if-cached' })], ['script', req('/media/a.png', { destination: 'script' })],
    ['authorization', req('/media/a.png', { headers: { authorization: 'Bearer x' } })], ['if-none-match', req('/media/a.png', { headers: { 'if-none-match': '"x"' } })],
    ['several ranges', req('/media/v.mp4', { headers: { range: 'bytes=0-1,4-5' } })],
    // The client's own block requests (httpblock.js) from a page the worker
    // controls: without If-Range (an origin with a weak ETag only) they would
    // come back to the worker, which asks that very page for the block.
    ['no-store', req('/media/f.bin', { destination: '', cache: 'no-store', headers: { range: 'bytes=0-16383' } })],
  ];
  for (const [name, r] of passes) check(target(r) === null, 'sw: passes ' + name);

  const tag = document.createElement('script');
  check(readConfig(tag).serviceWorker === '', 'config: service worker mode left alone by default');
  tag.setAttribute('data-sw', '/');
  check(readConfig(tag).serviceWorker === '/', 'config: data-sw');
}

(async () => {
  try {
    serviceWorkerTests();
    seedConfigTests();
    await cacheTests('opfs');
    await cacheTests('cache');
    await autoAndReportTests();
    const base = new URLSearchParams(location.search).get('vectors') || '/vectors/';
    const get = async (n) => (await fetch(base + n)).json();
    wireTests(await get('wire_vectors.json'));
    coordinatorTests(await get('coordinator_vectors.json'));
    pathMatchTests(await get('path_match_vectors.json'));
    schedulerVectorTests(await get('scheduler_vectors.json'));
    schedulerTests();
    await otherTests();
  } catch (e) {
    failures.push('exception: ' + (e && e.stack || e));
  }
  window.unitResult = { total, failures };
  document.getElementById('out').textContent = failures.length ? 'FAIL\n' + failures.join('\n') : `PASS ${total}`;
})();
