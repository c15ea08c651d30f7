// peer5.fetch against the native fetch: the fetch scenarios of conformance.js
// (loaded after it, in the same page; the runner starts from Go).

// --- fetch ---------------------------------------------------------------

async function describeResponse(ctx, at, p) {
  let res;
  try {
    res = await p;
  } catch (e) {
    ctx.rec(`${at}: rejects`, thrown(e));
    return null;
  }
  for (const k of ['type', 'url', 'status', 'statusText', 'ok', 'redirected', 'bodyUsed']) ctx.val(`${at}: ${k}`, () => res[k]);
  ctx.val(`${at}: instanceof Response`, () => res instanceof Response);
  ctx.val(`${at}: body is a ReadableStream`, () => res.body instanceof ReadableStream);
  ctx.val(`${at}: headers`, () => headers([...res.headers].map(([k, v]) => `${k}: ${v}\r\n`).join('')));
  ctx.val(`${at}: own enumerable keys`, () => Object.keys(res).join());
  return res;
}

scenario('fetch', async (ctx) => {
  const url = ctx.url('latin1.txt');
  ctx.share(url);
  const res = await describeResponse(ctx, 'plain', ctx.fetch(url + '#frag'));
  if (res) {
    const copy = res.clone();
    ctx.rec('text', show(await res.text()));
    ctx.val('bodyUsed after text()', () => res.bodyUsed);
    ctx.rec('clone blob', show(await copy.blob()));
  }
  const u2 = ctx.url('data.json');
  ctx.share(u2);
  const r2 = await describeResponse(ctx, 'with Accept', ctx.fetch(u2, { headers: { Accept: 'application/json' } }));
  if (r2) ctx.rec('json', show(await r2.json()));
  const u3 = ctx.url('bin.dat');
  ctx.share(u3);
  const r3 = await describeResponse(ctx, 'a URL object', ctx.fetch(new URL(u3, location.href)));
  if (r3) ctx.rec('arrayBuffer', show(await r3.arrayBuffer()));
  const u4 = ctx.url('bin.dat');
  ctx.share(u4);
  const r4 = await describeResponse(ctx, 'a Request', ctx.fetch(new Request(u4)));
  if (r4) ctx.rec('arrayBuffer of a Request', show(await r4.arrayBuffer()));
  const u5 = ctx.url('long.txt');
  ctx.share(u5);
  const r5 = await describeResponse(ctx, 'streamed', ctx.fetch(u5));
  if (r5) {
    const reader = r5.body.getReader();
    let chunks = 0, size = 0;
    for (let c = await reader.read(); !c.done; c = await reader.read()) {
      chunks++;
      size += c.value.byteLength;
      if (!(c.value instanceof Uint8Array)) ctx.rec('a chunk that is not a Uint8Array', show(c.value));
    }
    ctx.rec('streamed bytes', size);
    ctx.rec('streamed in more than one chunk', chunks > 1);
    ctx.val('bodyUsed after reading', () => r5.bodyUsed);
  }
});

scenario('window.fetch = peer5.fetch', async (ctx) => {
  const saved = window.fetch;
  window.fetch = ctx.fetch;
  try {
    await describeResponse(ctx, 'POST', fetch(ctx.url('text.txt'), { method: 'POST', body: 'a=1' }));
    await describeResponse(ctx, '404', fetch(ctx.url('missing.txt')));
    const r = await describeResponse(ctx, 'small', fetch(ctx.url('small.txt')));
    if (r) ctx.rec('small text', show(await r.text()));
    const u = ctx.url('data.json');
    ctx.share(u);
    const big = await describeResponse(ctx, 'shared', fetch(u, { headers: { Accept: 'application/json' } }));
    if (big) ctx.rec('shared json', show(await big.json()));
  } finally {
    window.fetch = saved;
  }
});

scenario('fetch: relative URL against <base href>', (ctx) => underBase(ctx, async (rel) => {
  const res = await describeResponse(ctx, 'relative', ctx.fetch(rel));
  if (res) ctx.rec('text', show(await res.text()));
}));

scenario('fetch: abort and errors', async (ctx) => {
  const ac = new AbortController();
  ac.abort();
  const u1 = ctx.url('text.txt');
  await describeResponse(ctx, 'already aborted', ctx.fetch(u1, { signal: ac.signal }));
  const u2 = ctx.url('long.txt');
  ctx.share(u2);
  const ac2 = new AbortController();
  const res = await describeResponse(ctx, 'aborted after the headers', ctx.fetch(u2, { signal: ac2.signal }));
  if (res) {
    ac2.abort();
    await res.text().then((v) => ctx.rec('body after abort', show(v)), (e) => ctx.rec('body after abort', thrown(e)));
  }
  await describeResponse(ctx, '404', ctx.fetch(ctx.url('missing.txt')));
  await describeResponse(ctx, 'POST', ctx.fetch(ctx.url('text.txt'), { method: 'POST', body: 'a=1' }));
});
