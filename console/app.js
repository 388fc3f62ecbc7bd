// gitee-relay console: plain JavaScript, no build step. Talks to /api with the admin token
// kept in sessionStorage. Every value from the server is put into the page as text (never as
// HTML), so a payload cannot inject markup.
'use strict';

const TOKEN_KEY = 'gitee-relay-token';
const STATES = ['pending', 'sending', 'retrying', 'delivered', 'dead'];
const FINAL = new Set(['delivered', 'dead']);
const PLATFORM_NAMES = { dingtalk: 'DingTalk', wecom: 'WeCom', feishu: 'Feishu / Lark', slack: 'Slack' };

let token = sessionStorage.getItem(TOKEN_KEY) || '';
let timers = [];
let routeSerial = 0;

// ---------------------------------------------------------------- DOM helpers

/** h('div', {class: 'x', onclick: f}, 'text', child) */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (sel, root = document) => root.querySelector(sel);

function fmtTime(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function ago(ms) {
  if (ms === null || ms === undefined) return 'never';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < -1) return `in ${fmtDuration(-s)}`;
  if (s < 2) return 'just now';
  return `${fmtDuration(s)} ago`;
}

function fmtDuration(s) {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function timeEl(ms) {
  return h('time', { title: fmtTime(ms), datetime: ms ? new Date(ms).toISOString() : null }, ago(ms));
}

/** `push`, `issue open`: the action only when it adds something. */
function what(kind, action) {
  return action && action !== kind ? `${kind} ${action}` : kind;
}

function badge(state) {
  return h('span', { class: `badge state-${state}`, text: state });
}

function platformBadge(p) {
  return h('span', { class: `badge platform platform-${p}`, text: PLATFORM_NAMES[p] || p || '?' });
}

function toast(message, kind) {
  const t = $('#toast');
  t.replaceChildren(message instanceof Node ? message : document.createTextNode(message));
  t.className = kind || '';
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

function every(ms, f) {
  timers.push(setInterval(f, ms));
}

function debounce(ms, f) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => f(...args), ms); };
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}

async function api(method, path, body) {
  const res = await fetch(`/api${path}`, {
    method,
    headers: Object.assign({ Authorization: `Bearer ${token}` }, body ? { 'Content-Type': 'application/json' } : {}),
    body: body ? JSON.stringify(body) : undefined,
    cache: 'no-store',
  });
  let data = null;
  try { data = await res.json(); } catch (_) { data = null; }
  if (res.status === 401) {
    signOut('The token was refused: sign in again.');
    throw new ApiError(401, 'unauthorized', data);
  }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || `HTTP ${res.status}`, data);
  return data;
}

// ---------------------------------------------------------------- sign in

function showLogin(message) {
  $('#login').hidden = false;
  $('#nav').hidden = true;
  $('#logout').hidden = true;
  $('#view').replaceChildren();
  $('#login-error').textContent = message || '';
  $('#token').focus();
}

function signOut(message) {
  token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  stopTimers();
  showLogin(message);
}

async function signIn(candidate) {
  token = candidate;
  try {
    const res = await fetch('/api/channels', { headers: { Authorization: `Bearer ${candidate}` }, cache: 'no-store' });
    if (res.status === 401) { signOut('That token is not right.'); return; }
    if (!res.ok) {
      const data = await res.json().catch(() => ({}));
      signOut(data.error || `The relay answered HTTP ${res.status}.`);
      return;
    }
  } catch (e) {
    signOut(`Cannot reach the relay: ${e.message}`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $('#login').hidden = true;
  $('#nav').hidden = false;
  $('#logout').hidden = false;
  route();
}

// ---------------------------------------------------------------- routing

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '') || 'status';
  const [path, query] = raw.split('?');
  const parts = path.split('/').filter(Boolean);
  const params = new URLSearchParams(query || '');
  return { parts, params };
}

function stopTimers() {
  timers.forEach(clearInterval);
  timers = [];
}

async function route() {
  if (!token) { showLogin(); return; }
  stopTimers();
  const serial = ++routeSerial;
  const { parts, params } = parseHash();
  const view = $('#view');
  const page = parts[0];
  document.querySelectorAll('#nav a').forEach((a) => {
    const nav = a.dataset.nav;
    a.classList.toggle('active', nav === page || (nav === 'deliveries' && page === 'delivery') || (nav === 'events' && page === 'event'));
  });
  const pages = {
    status: () => statusPage(view, serial),
    deliveries: () => deliveriesPage(view, params, serial),
    delivery: () => deliveryPage(view, Number(parts[1]), serial),
    events: () => eventsPage(view, params, serial),
    event: () => eventPage(view, Number(parts[1]), serial),
    playground: () => playgroundPage(view, params, serial),
  };
  try {
    await (pages[page] || pages.status)();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    view.replaceChildren(h('div', { class: 'card error-box' }, h('h1', { text: 'Something went wrong' }), h('p', { text: e.message })));
  }
}

const current = (serial) => serial === routeSerial;

function setHash(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  location.hash = `#/${path}${s ? `?${s}` : ''}`;
}

// ---------------------------------------------------------------- status

async function statusPage(view, serial) {
  const data = await api('GET', '/channels');
  if (!current(serial)) return;
  const cards = h('div', { class: 'grid', id: 'channels' });
  view.replaceChildren(
    h('div', { class: 'page-head' },
      h('h1', { text: 'Channels' }),
      h('p', { class: 'muted', id: 'status-line' })),
    cards);
  const fill = (d) => {
    $('#status-line').replaceChildren(
      `gitee-relay ${d.version} · dispatcher `,
      h('span', { class: d.dispatcher === 'ok' ? 'ok' : 'error', text: d.dispatcher }),
      ` · updated ${fmtTime(Date.now())}`);
    cards.replaceChildren(...d.channels.map(channelCard));
  };
  fill(data);
  every(5000, async () => {
    try { const d = await api('GET', '/channels'); if (current(serial)) fill(d); } catch (_) { /* shown on next navigation */ }
  });
}

function stat(label, n, channel, state, cls) {
  return h('a', { class: `stat ${n > 0 ? cls || '' : ''}`, href: `#/deliveries?channel=${encodeURIComponent(channel)}${state ? `&state=${state}` : ''}` },
    h('span', { class: 'n', text: n }), h('span', { class: 'label', text: label }));
}

function channelCard(c) {
  const err = c.last_error;
  return h('article', { class: 'card channel', dataset: { channel: c.name } },
    h('div', { class: 'channel-head' },
      h('h2', { text: c.name }), platformBadge(c.platform),
      c.dry_run ? h('span', { class: 'badge dry', text: 'dry run' }) : null),
    h('div', { class: 'mono muted small', text: c.url }),
    h('div', { class: 'stats' },
      stat('queued', c.queued, c.name, '', 'warn'),
      stat('retrying', c.counts.retrying, c.name, 'retrying', 'warn'),
      stat('dead', c.counts.dead, c.name, 'dead', 'bad'),
      stat('delivered', c.counts.delivered, c.name, 'delivered')),
    h('p', { class: 'small' }, 'Last delivered: ', timeEl(c.last_delivered_ms)),
    err
      ? h('div', { class: 'last-error' },
        h('div', { class: 'small' }, 'Last error ', timeEl(err.at_ms), ' · ',
          h('a', { href: `#/delivery/${err.delivery_id}`, text: `delivery #${err.delivery_id}` })),
        h('div', { class: 'error-text', text: err.error }))
      : h('p', { class: 'small muted', text: 'No errors recorded.' }),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary send-test', onclick: (e) => sendTest(c.name, e.target) }, 'Send test message'),
      h('a', { class: 'button secondary', href: `#/playground?channel=${encodeURIComponent(c.name)}` }, 'Playground')));
}

async function sendTest(channel, button) {
  button.disabled = true;
  try {
    const r = await api('POST', `/channels/${encodeURIComponent(channel)}/test`, { sample: 'push' });
    toast(h('span', {}, `Test message queued for ${channel}: `, h('a', { href: `#/delivery/${r.delivery_id}`, text: `delivery #${r.delivery_id}` })));
  } catch (e) {
    toast(`Cannot send a test message: ${e.message}`, 'bad');
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- deliveries

let channelNames = null;

async function channelList() {
  if (!channelNames) {
    const d = await api('GET', '/channels');
    channelNames = d.channels.map((c) => ({ name: c.name, platform: c.platform }));
  }
  return channelNames;
}

function select(id, options, value, onchange) {
  return h('select', { id, onchange },
    options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

async function deliveriesPage(view, params, serial) {
  const channel = params.get('channel') || '';
  const state = params.get('state') || '';
  const before = params.get('before') || '';
  const q = new URLSearchParams();
  if (channel) q.set('channel', channel);
  if (state) q.set('state', state);
  if (before) q.set('before', before);
  q.set('limit', '50');
  const [channels, page] = await Promise.all([channelList(), api('GET', `/deliveries?${q}`)]);
  if (!current(serial)) return;
  const go = (patch) => setHash('deliveries', Object.assign({ channel, state }, patch));
  const table = h('table', { id: 'deliveries-table', class: 'list' },
    h('thead', {}, h('tr', {}, ['#', 'Created', 'Channel', 'Event', 'State', 'Attempts', 'Last error'].map((t) => h('th', { text: t })))),
    h('tbody', {}, page.items.length
      ? page.items.map((d) => h('tr', { dataset: { id: d.id, state: d.state }, class: 'clickable', onclick: () => { location.hash = `#/delivery/${d.id}`; } },
        h('td', {}, h('a', { href: `#/delivery/${d.id}`, text: d.id })),
        h('td', {}, timeEl(d.created_ms)),
        h('td', {}, d.channel),
        h('td', {}, h('span', { class: 'kind', text: what(d.kind, d.action) }), ' ', h('span', { class: 'muted', text: d.repo }), d.is_test ? h('span', { class: 'badge dry', text: 'test' }) : null),
        h('td', {}, badge(d.state)),
        h('td', { class: 'num', text: d.attempts }),
        h('td', { class: 'error-text clip', title: d.last_error || '', text: d.last_error || '' })))
      : h('tr', {}, h('td', { colspan: 7, class: 'muted', text: 'No deliveries match.' }))));
  view.replaceChildren(
    h('div', { class: 'page-head' }, h('h1', { text: 'Deliveries' }),
      h('div', { class: 'filters' },
        h('label', {}, 'Channel ', select('filter-channel', [['', 'all'], ...channels.map((c) => [c.name, c.name])], channel, (e) => go({ channel: e.target.value }))),
        h('label', {}, 'State ', select('filter-state', [['', 'all'], ...STATES.map((s) => [s, s])], state, (e) => go({ state: e.target.value }))))),
    table,
    h('div', { class: 'pager' },
      before ? h('a', { class: 'button secondary', href: '#', onclick: (e) => { e.preventDefault(); go({}); } }, '← Newest') : null,
      page.next_before ? h('a', { class: 'button secondary', id: 'older', href: '#', onclick: (e) => { e.preventDefault(); go({ before: page.next_before }); } }, 'Older →') : null));
  if (!before) {
    every(5000, async () => {
      if (!current(serial)) return;
      const fresh = await api('GET', `/deliveries?${q}`).catch(() => null);
      if (fresh && current(serial) && JSON.stringify(fresh.items.map((d) => [d.id, d.state, d.attempts])) !== JSON.stringify(page.items.map((d) => [d.id, d.state, d.attempts]))) route();
    });
  }
}

async function deliveryPage(view, id, serial) {
  const d = await api('GET', `/deliveries/${id}`);
  if (!current(serial)) return;
  const del = d.delivery;
  const redeliver = h('button', {
    id: 'redeliver', type: 'button', disabled: !d.can_redeliver,
    title: d.can_redeliver ? 'Send this event to this channel again, rendered with today\'s templates' : 'Only delivered or dead deliveries can be redelivered',
    onclick: async (e) => {
      e.target.disabled = true;
      try {
        const r = await api('POST', `/deliveries/${id}/redeliver`);
        toast(`Redelivery queued: delivery #${r.delivery.id}`);
        location.hash = `#/delivery/${r.delivery.id}`;
      } catch (err) {
        toast(`Cannot redeliver: ${err.message}`, 'bad');
        e.target.disabled = false;
      }
    },
  }, 'Redeliver');
  const attempts = d.attempts.length
    ? d.attempts.slice().reverse().map(attemptCard)
    : [h('p', { class: 'muted', id: 'no-attempts', text: FINAL.has(del.state) ? 'No attempts.' : 'Not attempted yet: waiting for the dispatcher…' })];
  view.replaceChildren(
    h('p', {}, h('a', { href: `#/deliveries?channel=${encodeURIComponent(del.channel)}`, text: '← Deliveries' })),
    h('div', { class: 'page-head' },
      h('h1', { id: 'delivery-title', dataset: { id: del.id, state: del.state } }, `Delivery #${del.id} `, badge(del.state)),
      h('div', { class: 'actions' }, redeliver)),
    h('p', { class: 'meta' },
      h('strong', { text: del.channel }), ' ', platformBadge(del.platform), ' · ',
      h('a', { href: `#/event/${del.event_id}`, text: `event #${del.event_id}` }), ` ${what(del.kind, del.action)} `,
      h('span', { class: 'muted', text: del.repo }), del.is_test ? h('span', { class: 'badge dry', text: 'test' }) : null,
      ' · received ', timeEl(del.received_ms), ` · ${del.attempts} attempt${del.attempts === 1 ? '' : 's'}`,
      del.state === 'retrying' ? h('span', {}, ' · next try ', timeEl(del.next_attempt_ms)) : null),
    h('div', { class: 'split' },
      h('section', { class: 'col', id: 'attempts' }, h('h2', { text: 'Attempts' }), attempts),
      h('section', { class: 'col', id: 'message' },
        h('h2', { text: 'Message' }),
        h('p', { class: 'muted small', text: 'Rendered now with the channel\'s current templates — what a redelivery sends (the platform adds its keyword and signature when sending).' }),
        d.message.body ? chatPreview(del.platform, d.message.body) : h('div', { class: 'error-box', text: d.message.error }),
        d.message.body ? h('details', {}, h('summary', { text: 'JSON body' }), h('pre', { class: 'json', text: JSON.stringify(d.message.body, null, 2) })) : null)));
  if (!FINAL.has(del.state)) {
    every(1000, async () => {
      const fresh = await api('GET', `/deliveries/${id}`).catch(() => null);
      if (fresh && current(serial) && (fresh.delivery.state !== del.state || fresh.attempts.length !== d.attempts.length)) route();
    });
  }
}

function attemptCard(a) {
  const status = a.reply.status === null || a.reply.status === undefined ? 'no reply' : `HTTP ${a.reply.status}`;
  return h('article', { class: `card attempt outcome-${a.outcome}`, dataset: { outcome: a.outcome, n: a.n } },
    h('div', { class: 'attempt-head' },
      h('strong', { text: `#${a.n}` }), ' ', badge(a.outcome === 'retry' ? 'retrying' : a.outcome),
      h('span', { class: 'muted small' }, ` ${fmtTime(a.started_ms)} · ${a.duration_ms} ms · ${status}`)),
    h('div', { class: 'mono small' }, h('span', { class: 'muted', text: 'POST ' }), a.request.url),
    a.reply.excerpt ? h('pre', { class: 'reply', text: a.reply.excerpt }) : null,
    a.error ? h('div', { class: 'error-text', text: a.error }) : null);
}

// ---------------------------------------------------------------- events

async function eventsPage(view, params, serial) {
  const f = { source: params.get('source') || '', kind: params.get('kind') || '', repo: params.get('repo') || '' };
  const before = params.get('before') || '';
  const q = new URLSearchParams(Object.entries(f).filter(([, v]) => v));
  if (before) q.set('before', before);
  const page = await api('GET', `/events?${q}`);
  if (!current(serial)) return;
  const go = (patch) => setHash('events', Object.assign({}, f, patch));
  const repo = h('input', { id: 'filter-repo', placeholder: 'acme/* or acme/app', value: f.repo, onchange: (e) => go({ repo: e.target.value.trim() }) });
  view.replaceChildren(
    h('div', { class: 'page-head' }, h('h1', { text: 'Events' }),
      h('div', { class: 'filters' },
        h('label', {}, 'Kind ', select('filter-kind', [['', 'all'], ...['push', 'tag_push', 'issue', 'merge_request', 'note'].map((k) => [k, k])], f.kind, (e) => go({ kind: e.target.value }))),
        h('label', {}, 'Repository ', repo))),
    h('table', { class: 'list', id: 'events-table' },
      h('thead', {}, h('tr', {}, ['#', 'Received', 'Source', 'Kind', 'Action', 'Repository', 'Size'].map((t) => h('th', { text: t })))),
      h('tbody', {}, page.items.length
        ? page.items.map((e) => h('tr', { class: 'clickable', dataset: { id: e.id }, onclick: () => { location.hash = `#/event/${e.id}`; } },
          h('td', {}, h('a', { href: `#/event/${e.id}`, text: e.id })), h('td', {}, timeEl(e.received_ms)),
          h('td', { text: e.source }), h('td', {}, h('span', { class: 'kind', text: e.kind }), e.is_test ? h('span', { class: 'badge dry', text: 'test' }) : null),
          h('td', { text: e.action }), h('td', { text: e.repo }), h('td', { class: 'num', text: `${(e.payload_bytes / 1024).toFixed(1)} KiB` })))
        : h('tr', {}, h('td', { colspan: 7, class: 'muted', text: 'No events match.' })))),
    h('div', { class: 'pager' },
      before ? h('a', { class: 'button secondary', href: '#', onclick: (e) => { e.preventDefault(); go({}); } }, '← Newest') : null,
      page.next_before ? h('a', { class: 'button secondary', href: '#', onclick: (e) => { e.preventDefault(); go({ before: page.next_before }); } }, 'Older →') : null));
}

async function eventPage(view, id, serial) {
  const e = await api('GET', `/events/${id}`);
  if (!current(serial)) return;
  view.replaceChildren(
    h('p', {}, h('a', { href: '#/events', text: '← Events' })),
    h('h1', {}, `Event #${e.id} `, h('span', { class: 'kind', text: e.kind }), e.is_test ? h('span', { class: 'badge dry', text: 'test' }) : null),
    h('p', { class: 'meta' }, `${what(e.kind, e.action)} · ${e.repo} · from source ${e.source} · received `, timeEl(e.received_ms)),
    h('h2', { text: 'Deliveries' }),
    h('table', { class: 'list' },
      h('tbody', {}, e.deliveries.map((d) => h('tr', { class: 'clickable', onclick: () => { location.hash = `#/delivery/${d.id}`; } },
        h('td', {}, h('a', { href: `#/delivery/${d.id}`, text: `#${d.id}` })), h('td', { text: d.channel }), h('td', {}, badge(d.state)),
        h('td', { class: 'num', text: `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}` }), h('td', { class: 'error-text', text: d.last_error || '' }))))),
    h('h2', { text: 'Payload' }),
    h('p', { class: 'muted small', text: 'As received; password and sign fields masked.' }),
    h('pre', { class: 'json', text: JSON.stringify(e.payload, null, 2) }));
}

// ---------------------------------------------------------------- playground

async function playgroundPage(view, params, serial) {
  const [channels, samplesData] = await Promise.all([channelList(), api('GET', '/samples')]);
  if (!current(serial)) return;
  const samples = samplesData.samples;
  const targets = [
    ...channels.map((c) => [`channel:${c.name}`, `${c.name} (${PLATFORM_NAMES[c.platform] || c.platform})`]),
    ...Object.entries(PLATFORM_NAMES).map(([p, n]) => [`platform:${p}`, `${n} — built-in / config templates`]),
  ];
  const wantChannel = params.get('channel');
  let target = wantChannel ? `channel:${wantChannel}` : targets[0][0];
  let sampleName = params.get('sample') || 'push';
  const edits = new Map(); // target|event → edited text
  let original = '';
  let loadedFor = '';

  const targetSel = select('pg-target', targets, target, () => { target = targetSel.value; loadTemplate(); });
  const sampleSel = select('pg-sample', [...samples.map((s) => [s.name, `${s.name} — ${s.description}`]), ['__paste', 'Paste a payload…']], sampleName,
    () => { sampleName = sampleSel.value; payloadBox.hidden = sampleName !== '__paste'; eventSel.parentElement.hidden = sampleName !== '__paste'; loadTemplate(); });
  const eventSel = select('pg-event', ['push', 'tag_push', 'issue', 'merge_request', 'note'].map((k) => [k, k]), 'push', () => loadTemplate());
  const editor = h('textarea', { id: 'pg-template', spellcheck: 'false', wrap: 'off', rows: 24, oninput: () => { edits.set(loadedFor, editor.value); markDirty(); schedule(); } });
  const payloadBox = h('textarea', { id: 'pg-payload', spellcheck: 'false', wrap: 'off', rows: 10, placeholder: 'Paste a Gitee webhook body (JSON)', hidden: true, oninput: () => schedule() });
  const sourceLabel = h('span', { class: 'muted small', id: 'pg-source' });
  const reset = h('button', { type: 'button', class: 'secondary', id: 'pg-reset', onclick: () => { edits.delete(loadedFor); editor.value = original; markDirty(); render(); } }, 'Reset');
  const preview = h('div', { id: 'pg-preview' });
  const errorBox = h('div', { id: 'pg-error', class: 'error-box', hidden: true });
  const bodyPre = h('pre', { id: 'pg-body', class: 'json' });
  const status = h('span', { id: 'pg-status', class: 'muted small' });

  const eventOf = () => (sampleName === '__paste' ? eventSel.value : (samples.find((s) => s.name === sampleName) || samples[0]).event);
  const markDirty = () => { reset.disabled = editor.value === original; sourceLabel.textContent = editor.value === original ? sourceLabel.dataset.source : `${sourceLabel.dataset.source} (edited)`; };

  async function loadTemplate() {
    const [kind, name] = target.split(':');
    const event = eventOf();
    const key = `${target}|${event}`;
    const t = await api('GET', `/templates/${event}?${kind}=${encodeURIComponent(name)}`);
    original = t.text;
    loadedFor = key;
    editor.value = edits.has(key) ? edits.get(key) : t.text;
    sourceLabel.dataset.source = `${event}.hbs — ${t.source}`;
    markDirty();
    render();
  }

  let renderSerial = 0;
  async function render() {
    const mine = ++renderSerial;
    const [kind, name] = target.split(':');
    const req = { [kind]: name };
    if (sampleName === '__paste') {
      const text = payloadBox.value.trim();
      if (!text) { showError('Paste a payload to render it.'); return; }
      req.payload = text;
      req.event = eventSel.value;
    } else {
      req.sample = sampleName;
    }
    if (editor.value !== original) req.template = editor.value;
    status.textContent = 'rendering…';
    let res;
    try {
      res = await api('POST', '/preview', req);
    } catch (e) {
      if (mine !== renderSerial) return;
      status.textContent = '';
      showError(e.message, e.body && e.body.stage);
      return;
    }
    if (mine !== renderSerial) return;
    status.textContent = `rendered ${fmtTime(Date.now())}`;
    errorBox.hidden = true;
    preview.classList.remove('stale');
    bodyPre.classList.remove('stale');
    preview.replaceChildren(chatPreview(res.platform, res.body));
    bodyPre.textContent = JSON.stringify(res.body, null, 2);
  }
  const schedule = debounce(250, render);

  function showError(message, stage) {
    // The last good preview stays, dimmed: it is not what this text renders.
    preview.classList.add('stale');
    bodyPre.classList.add('stale');
    errorBox.hidden = false;
    errorBox.replaceChildren(h('strong', { text: stage ? `${stage} error` : 'error' }), h('pre', { text: message }));
  }

  view.replaceChildren(
    h('div', { class: 'page-head' }, h('h1', { text: 'Template playground' }),
      h('p', { class: 'muted', text: 'Edit a template and see the message as the chat shows it. Nothing is saved or sent: copy the text into your templates folder when it is right.' })),
    h('div', { class: 'filters' },
      h('label', {}, 'Render for ', targetSel),
      h('label', {}, 'Sample ', sampleSel),
      h('label', { hidden: true }, 'Event ', eventSel)),
    h('div', { class: 'split' },
      h('section', { class: 'col' },
        h('div', { class: 'editor-head' }, sourceLabel, reset),
        editor,
        payloadBox),
      h('section', { class: 'col' },
        h('div', { class: 'editor-head' }, h('strong', { text: 'Preview' }), status),
        errorBox, preview,
        h('details', { open: true }, h('summary', { text: 'Exact JSON body' }), bodyPre))));
  await loadTemplate();
}

// ---------------------------------------------------------------- chat previews

const LINK_RE = /\[([^\]]*)\]\(([^)\s]+)\)|<(https?:\/\/[^|>]+)\|([^>]*)>|<(https?:\/\/[^>]+)>|<@([A-Z0-9]+)>|<at user_id="([^"]*)">([^<]*)<\/at>|<font color=['"]?([a-z]+)['"]?>([\s\S]*?)<\/font>|\*\*([^*]+)\*\*|`([^`]+)`/g;
const SLACK_RE = /\*([^*\n]+)\*|_([^_\n]+)_|~([^~\n]+)~/g;

function safeHref(url) {
  return /^https?:\/\//i.test(url) ? url : null;
}

/** Inline markup of DingTalk/WeCom/Feishu markdown and Slack mrkdwn, as DOM nodes. */
function inline(text, slack) {
  const out = [];
  let last = 0;
  const push = (s) => { if (s) out.push(...(slack ? slackEmphasis(s) : [document.createTextNode(s)])); };
  for (const m of String(text).matchAll(LINK_RE)) {
    push(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1] !== undefined) out.push(link(m[2], m[1]));
    else if (m[3] !== undefined) out.push(link(m[3], m[4]));
    else if (m[5] !== undefined) out.push(link(m[5], m[5]));
    else if (m[6] !== undefined) out.push(h('span', { class: 'mention', text: `@${m[6]}` }));
    else if (m[7] !== undefined) out.push(h('span', { class: 'mention', text: `@${m[8] || m[7]}` }));
    else if (m[9] !== undefined) out.push(h('span', { class: `font-${m[9]}` }, inline(m[10], slack)));
    else if (m[11] !== undefined) out.push(h('strong', {}, inline(m[11], slack)));
    else if (m[12] !== undefined) out.push(h('code', { text: m[12] }));
  }
  push(text.slice(last));
  return out;
}

function slackEmphasis(s) {
  const out = [];
  let last = 0;
  for (const m of s.matchAll(SLACK_RE)) {
    out.push(document.createTextNode(s.slice(last, m.index)));
    last = m.index + m[0].length;
    if (m[1] !== undefined) out.push(h('strong', { text: m[1] }));
    else if (m[2] !== undefined) out.push(h('em', { text: m[2] }));
    else out.push(h('s', { text: m[3] }));
  }
  out.push(document.createTextNode(s.slice(last)));
  return out;
}

function link(url, text) {
  const href = safeHref(url);
  return href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer', text: text || url }) : document.createTextNode(text || url);
}

/** Markdown-ish text: headings, list items, quotes, line breaks. */
function md(text, slack) {
  const box = h('div', { class: 'md' });
  for (const line of String(text || '').split(/\r?\n/)) {
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) { box.append(h('div', { class: `md-h md-h${heading[1].length}` }, inline(heading[2], slack))); continue; }
    const quote = line.match(/^>\s?(.*)$/);
    if (quote) { box.append(h('div', { class: 'md-quote' }, inline(quote[1], slack))); continue; }
    const item = line.match(/^\s*(?:[-*•])\s+(.*)$/);
    if (item && !slack) { box.append(h('div', { class: 'md-li' }, '• ', inline(item[1], slack))); continue; }
    box.append(line.trim() ? h('div', {}, inline(line, slack)) : h('div', { class: 'md-gap' }));
  }
  return box;
}

function button(text, url, primary) {
  const href = safeHref(url);
  return h(href ? 'a' : 'span', { class: `chat-button${primary ? ' primary' : ''}`, href, target: href ? '_blank' : null, rel: href ? 'noopener noreferrer' : null, text });
}

function plain(text) {
  return h('div', { class: 'plain' }, String(text || ''));
}

function dingtalk(b) {
  switch (b.msgtype) {
    case 'text': return h('div', { class: 'bubble' }, plain(b.text && b.text.content));
    case 'markdown': return h('div', { class: 'bubble' }, md(b.markdown && b.markdown.text));
    case 'link': return h('div', { class: 'bubble link-card' }, h('strong', { text: b.link.title }), h('p', { text: b.link.text }), button('Open', b.link.messageUrl));
    case 'actionCard': {
      const c = b.actionCard;
      const btns = c.btns ? c.btns.map((x) => button(x.title, x.actionURL)) : [button(c.singleTitle, c.singleURL)];
      return h('div', { class: 'bubble card-msg' }, md(c.text), h('div', { class: 'buttons' }, btns));
    }
    case 'feedCard': return h('div', { class: 'bubble' }, (b.feedCard.links || []).map((l) => h('div', {}, link(l.messageURL, l.title))));
    default: return null;
  }
}

function wecom(b) {
  switch (b.msgtype) {
    case 'text': return h('div', { class: 'bubble' }, plain(b.text && b.text.content));
    case 'markdown': return h('div', { class: 'bubble' }, md(b.markdown && b.markdown.content));
    case 'markdown_v2': return h('div', { class: 'bubble' }, md(b.markdown_v2 && b.markdown_v2.content));
    case 'news': return h('div', { class: 'bubble' }, (b.news.articles || []).map((a) => h('div', { class: 'link-card' }, link(a.url, a.title), h('p', { class: 'muted', text: a.description || '' }))));
    default: return null;
  }
}

function larkText(t) {
  if (!t) return null;
  return t.tag === 'plain_text' ? plain(t.content) : md(t.content);
}

function feishuElements(elements) {
  return (elements || []).map((el) => {
    switch (el.tag) {
      case 'div': return h('div', { class: 'lark-div' }, larkText(el.text), el.fields ? h('div', { class: 'fields' }, el.fields.map((f) => h('div', {}, larkText(f.text)))) : null);
      case 'markdown': return h('div', { class: 'lark-div' }, md(el.content));
      case 'hr': return h('hr');
      case 'note': return h('div', { class: 'lark-note' }, (el.elements || []).map((n) => (n.tag === 'img' ? null : h('span', {}, n.tag === 'plain_text' ? n.content : inline(n.content)))));
      case 'action': return h('div', { class: 'buttons' }, (el.actions || []).map((a) => button(a.text && a.text.content, a.url || (a.multi_url && a.multi_url.url), a.type === 'primary')));
      case 'column_set': return h('div', { class: 'fields' }, (el.columns || []).map((c) => h('div', {}, feishuElements(c.elements))));
      default: return h('div', { class: 'muted small', text: `[${el.tag}]` });
    }
  });
}

function feishu(b) {
  switch (b.msg_type) {
    case 'text': return h('div', { class: 'bubble' }, plain(b.content && b.content.text));
    case 'post': {
      const post = b.content.post;
      const lang = post.zh_cn || post.en_us || Object.values(post)[0] || {};
      return h('div', { class: 'bubble' }, lang.title ? h('strong', { class: 'post-title', text: lang.title }) : null,
        (lang.content || []).map((para) => h('div', {}, para.map((x) => {
          if (x.tag === 'a') return link(x.href, x.text);
          if (x.tag === 'at') return h('span', { class: 'mention', text: `@${x.user_name || x.user_id}` });
          return document.createTextNode(x.text || '');
        }))));
    }
    case 'interactive': {
      const card = b.card || {};
      const head = card.header;
      return h('div', { class: 'lark-card' },
        head ? h('div', { class: `lark-head lark-${head.template || 'blue'}`, text: head.title && head.title.content }) : null,
        h('div', { class: 'lark-body' }, feishuElements(card.elements || (card.body && card.body.elements))));
    }
    default: return null;
  }
}

function slackText(t) {
  if (!t) return null;
  return t.type === 'plain_text' ? plain(t.text) : md(t.text, true);
}

function slack(b) {
  if (!b.blocks) return h('div', { class: 'slack-msg' }, md(b.text, true));
  return h('div', { class: 'slack-msg' }, b.blocks.map((bl) => {
    switch (bl.type) {
      case 'header': return h('div', { class: 'slack-header', text: bl.text && bl.text.text });
      case 'section': return h('div', { class: 'slack-section' }, slackText(bl.text), bl.fields ? h('div', { class: 'fields' }, bl.fields.map((f) => h('div', {}, slackText(f)))) : null);
      case 'context': return h('div', { class: 'slack-context' }, (bl.elements || []).map((e) => (e.type === 'image' ? null : h('span', {}, slackText(e)))));
      case 'actions': return h('div', { class: 'buttons' }, (bl.elements || []).map((e) => button(e.text && e.text.text, e.url, e.style === 'primary')));
      case 'divider': return h('hr');
      default: return h('div', { class: 'muted small', text: `[${bl.type}]` });
    }
  }));
}

/** The message as the platform's chat shows it (an approximation), from the exact body. */
function chatPreview(platform, body) {
  let msg = null;
  try {
    msg = { dingtalk, wecom, feishu, lark: feishu, slack }[platform](body);
  } catch (_) {
    msg = null;
  }
  if (!msg) msg = h('pre', { class: 'json', text: JSON.stringify(body, null, 2) });
  return h('div', { class: `chat chat-${platform}`, dataset: { platform } },
    h('div', { class: 'chat-bar', text: `${PLATFORM_NAMES[platform] || platform} group` }),
    h('div', { class: 'chat-row' },
      h('div', { class: 'avatar', text: 'GR' }),
      h('div', { class: 'chat-main' },
        h('div', { class: 'chat-who' }, h('strong', { text: 'gitee-relay' }), h('span', { class: 'bot', text: 'BOT' }), h('span', { class: 'muted small', text: fmtTime(Date.now()).slice(11, 16) })),
        msg)));
}

// ---------------------------------------------------------------- start

document.addEventListener('DOMContentLoaded', () => {
  $('#login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signIn($('#token').value.trim());
  });
  $('#logout').addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', route);
  if (token) signIn(token); else showLogin();
});
