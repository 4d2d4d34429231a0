// gale's web UI: fetches /api/v1 every second and redraws. Every string from the server goes into
// the page as a text node or an attribute value (never as HTML), so a component called
// "<script>" shows as just that.
'use strict';

const state = {
  token: '',            // kept in memory only
  logLevel: null,       // the level picked in the page, until set
  prev: null,           // the previous topology document, for rates and backpressure
  prevAt: 0,
  history: [],          // [{t, rate, p99}] for the chart
  renders: 0,
};

// ---- DOM helpers: text only.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}
function svg(tag, attrs, ...children) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}
function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'onclick') e.addEventListener('click', v);
    else e.setAttribute(k, String(v));
  }
}
function append(e, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
}

// ---- formatting
function num(n) {
  if (n === undefined || n === null) return '–';
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}
function msText(v) {
  if (v === undefined || v === null) return '–';
  if (v >= 100) return v.toFixed(0) + ' ms';
  if (v >= 1) return v.toFixed(2) + ' ms';
  return (v * 1000).toFixed(1) + ' µs';
}
function watermarkText(wm, idle) {
  if (wm === null || wm === undefined) return '–';
  const s = wm === 'end' ? 'end of input' : timeText(wm);
  return idle ? s + ' (idle)' : s;
}
// µs since the epoch -> "2026-11-30 04:53:23.551"; outside Date's range, the raw number.
function timeText(micros) {
  const d = new Date(micros / 1000);
  return isNaN(d.getTime()) ? String(micros) + ' µs' : d.toISOString().replace('T', ' ').replace('Z', '');
}
function errorText(m) {
  return m.lastError ? timeText(m.lastErrorTime).slice(11) + ' ' + m.lastError : '';
}
// Flink's busy / back-pressured / idle time: milliseconds of each second.
function msPerSecondText(v) { return v === undefined || v === null ? '–' : Math.round(v) + ' ms/s'; }
function pct(v) { return (100 * (v || 0)).toFixed(0) + '%'; }

// ---- data
async function getJson(path) {
  const r = await fetch(path, {cache: 'no-store'});
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
  return r.json();
}
async function post(path, body) {
  const headers = {'X-Gale-Token': state.token};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, {method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const reply = await r.json().catch(() => ({}));
  return r.ok ? 'done: ' + (reply.topologyOperation || '') : 'refused (' + r.status + '): ' + (reply.errorMessage || '');
}

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'compare') return {compare: true};
  if (parts[0] === 'topology' && parts[1]) {
    if (parts[2] === 'component' && parts[3] !== undefined) return {topology: parts[1], component: parts.slice(3).join('/')};
    return {topology: parts[1]};
  }
  return {};
}
function topologyHref(id) { return '#/topology/' + encodeURIComponent(id); }
function componentHref(id, name) { return topologyHref(id) + '/component/' + encodeURIComponent(name); }
function apiTopology(id) { return '/api/v1/topology/' + encodeURIComponent(id); }

// ---- the loop
async function refresh() {
  try {
    const summary = await getJson('/api/v1/topology/summary');
    renderJobs(summary.topologies, summary.comparison);
    let r = route();
    if (!r.topology && !r.compare && summary.topologies.length) r = {topology: summary.topologies[summary.topologies.length - 1].id};
    const main = document.getElementById('main');
    if (r.compare) {
      main.replaceChildren(renderComparison(await getJson('/api/v1/compare'), summary.topologies));
    } else if (!r.topology) {
      main.replaceChildren(el('p', {class: 'muted'}, 'No job is attached to this UI.'));
    } else if (r.component !== undefined) {
      const c = await getJson(apiTopology(r.topology) + '/component/' + encodeURIComponent(r.component));
      main.replaceChildren(renderComponent(r.topology, c));
    } else {
      const t = await getJson(apiTopology(r.topology));
      const checkpoint = t.batch ? await getJson(apiTopology(r.topology) + '/checkpoint') : null;
      main.replaceChildren(renderTopology(t, checkpoint));
    }
    document.getElementById('status').textContent = 'updated ' + new Date().toLocaleTimeString();
    document.body.dataset.renders = String(++state.renders);
  } catch (e) {
    document.getElementById('status').textContent = 'cannot reach the job: ' + e.message;
  }
  setTimeout(refresh, 1000);
}

function renderJobs(list, comparison) {
  const nav = document.getElementById('jobs');
  const compare = comparison && (comparison.planned || comparison.runs)
    ? [el('a', {href: '#/compare', class: 'job', id: 'compare-link'}, 'Comparison ',
          el('span', {class: 'badge'}, comparison.runs + (comparison.planned ? ' of ' + comparison.planned : '') + ' runs'))]
    : [];
  nav.replaceChildren(...compare, ...list.map(j =>
    el('a', {href: topologyHref(j.id), class: 'job', 'data-job': j.id},
       j.name, ' ', el('span', {class: 'badge ' + j.mode}, j.mode), ' ',
       el('span', {class: 'badge ' + j.status.toLowerCase()}, j.status))));
}

// ---- the topology page
function renderTopology(t, checkpoint) {
  const now = Date.now();
  const dt = state.prev && state.prev.id === t.id ? (now - state.prevAt) / 1000 : 0;
  const before = new Map();
  if (dt > 0) for (const c of [...state.prev.spouts, ...state.prev.bolts]) before.set(c.spoutId ?? c.boltId, c);
  const rows = [...t.spouts, ...t.bolts].map(c => {
    const name = c.spoutId ?? c.boltId;
    const b = before.get(name);
    return {
      name, c, spout: c.spoutId !== undefined,
      rate: b && dt > 0 ? Math.max(0, (c.emitted - b.emitted) / dt) : null,
      backpressured: (c.backPressuredTimeMsPerSecond || 0) >= 100,
    };
  });
  const spoutRate = rows.filter(r => r.spout && r.rate !== null).reduce((s, r) => s + r.rate, 0);
  const p99 = t.batch ? t.batch.recordLatency.p99 : t.completeLatency.p99;
  if (dt > 0) {
    state.history.push({t: now, rate: spoutRate, p99});
    if (state.history.length > 120) state.history.shift();
  }
  state.prev = t;
  state.prevAt = now;

  return el('div', {},
    el('section', {class: 'title'},
      el('h2', {id: 'topology-name'}, t.name),
      el('span', {class: 'badge ' + t.mode}, t.mode),
      el('span', {class: 'badge ' + t.status.toLowerCase(), id: 'topology-status'}, t.status),
      el('span', {class: 'muted'}, ' up ' + t.uptime + ' · ' + t.tasksTotal + ' tasks · id ', el('code', {}, t.id))),
    renderActions(t),
    el('section', {}, el('h3', {}, 'Topology stats'), statsTable(t.topologyStats, ['emitted', 'transferred', 'acked', 'failed', 'errors'])),
    el('section', {}, el('h3', {}, 'Graph'),
      el('p', {class: 'muted legend'}, 'Colour: busy time per second (green idle → red busy); purple: back-pressured (waiting on a full downstream queue) more than busy and over 10% of the second. Thick orange border: back-pressured over 10% of the last second. Labels: grouping.'),
      renderGraph(t, rows)),
    el('section', {}, el('h3', {}, 'Components'), componentsTable(t, rows)),
    el('section', {}, el('h3', {}, t.batch ? 'Throughput and record latency (arrival → commit)' : 'Throughput and complete latency'),
      historyChart()),
    t.batch ? renderBatches(t.batch) : null,
    checkpoint ? renderCheckpoint(checkpoint) : null);
}

function renderActions(t) {
  const out = el('span', {class: 'muted', id: 'action-result'});
  const token = el('input', {type: 'password', placeholder: 'token', 'aria-label': 'token', value: state.token});
  token.addEventListener('input', () => { state.token = token.value; });
  const wait = el('input', {type: 'number', min: 0, max: 9999, value: 30, 'aria-label': 'kill wait seconds', class: 'wait'});
  const act = (path) => async () => { out.textContent = await post(apiTopology(t.id) + path); };
  const running = t.status === 'ACTIVE' || t.status === 'INACTIVE';
  const level = el('select', {'aria-label': 'log level', id: 'log-level'},
    ['DEBUG', 'INFO', 'WARN', 'ERROR'].map(l => el('option', {value: l, selected: l === (state.logLevel ?? t.logLevel)}, l)));
  level.addEventListener('change', () => { state.logLevel = level.value; });
  const setLevel = async () => {
    out.textContent = await post(apiTopology(t.id) + '/logconfig', {namedLoggerLevels: {ROOT: {target_level: level.value}}});
    state.logLevel = null;
  };
  return el('section', {class: 'actions'},
    token,
    el('button', {onclick: act('/deactivate'), disabled: !running || !t.active}, 'Deactivate'),
    el('button', {onclick: act('/activate'), disabled: !running || t.active}, 'Activate'),
    el('button', {onclick: async () => { out.textContent = await post(apiTopology(t.id) + '/kill/' + Math.min(9999, Math.max(0, Math.floor(Number(wait.value) || 0)))); }, disabled: !running}, 'Kill after'),
    wait, ' s ',
    el('span', {class: 'muted'}, ' log level '), level, el('button', {onclick: setLevel, disabled: !running}, 'Set'), ' ', out);
}

function statsTable(windows, fields) {
  return el('table', {class: 'stats'},
    el('thead', {}, el('tr', {}, el('th', {}, 'Window'), fields.map(f => el('th', {}, f)))),
    el('tbody', {}, windows.map(w => el('tr', {'data-window': w.window},
      el('td', {}, w.windowPretty),
      fields.map(f => el('td', {'data-field': f, 'data-value': w[f]}, num(w[f])))))));
}

function componentsTable(t, rows) {
  const head = ['Component', 'Tasks', 'Emitted', 'Emitted/s', 'Transferred', 'Executed', 'Acked', 'Failed', 'Errors',
                'Latency', 'p50', 'p99', 'p99.9', 'Capacity', 'Busy', 'Back-pressured', 'Idle', 'Queue', 'Watermark', 'Idle inputs', 'Last error'];
  return el('table', {class: 'components'},
    el('thead', {}, el('tr', {}, head.map(h => el('th', {}, h)))),
    el('tbody', {}, rows.map(r => {
      const c = r.c;
      const lat = r.spout ? c.completeLatency : c.executeLatency;
      const cell = (f, v, text) => el('td', {'data-field': f, 'data-value': v}, text ?? num(v));
      return el('tr', {'data-component': r.name, class: r.backpressured ? 'backpressured' : ''},
        el('td', {}, el('a', {href: componentHref(t.id, r.name)}, r.name), ' ', el('span', {class: 'muted'}, r.spout ? 'spout' : 'bolt')),
        cell('tasks', c.tasks),
        cell('emitted', c.emitted),
        cell('rate', r.rate, r.rate === null ? '–' : num(r.rate)),
        cell('transferred', c.transferred),
        cell('executed', c.executed, r.spout ? '–' : num(c.executed)),
        cell('acked', c.acked),
        cell('failed', c.failed),
        cell('errors', c.errors),
        el('td', {class: 'muted'}, r.spout ? 'complete' : 'execute'),
        cell('p50', lat.p50, msText(lat.p50)),
        cell('p99', lat.p99, msText(lat.p99)),
        cell('p999', lat.p999, msText(lat.p999)),
        cell('capacity', c.capacity, pct(c.capacity)),
        cell('busy', c.busyTimeMsPerSecond, msPerSecondText(c.busyTimeMsPerSecond)),
        cell('backPressured', c.backPressuredTimeMsPerSecond, msPerSecondText(c.backPressuredTimeMsPerSecond)),
        cell('idle', c.idleTimeMsPerSecond, msPerSecondText(c.idleTimeMsPerSecond)),
        cell('queueDepth', c.queueDepth),
        cell('watermark', c.watermark, watermarkText(c.watermark, c.watermarkIdle)),
        cell('idleInputs', c.idleInputs, r.spout ? '–' : num(c.idleInputs)),
        el('td', {'data-field': 'lastError', class: 'error'}, errorText(c)));
    })));
}

// ---- the graph: components in columns by depth from the spouts, edges labelled by grouping.
function renderGraph(t, rows) {
  const byName = new Map(rows.map(r => [r.name, r]));
  const nodes = t.graph.nodes, edges = t.graph.edges;
  const depth = new Map();
  const inputs = new Map(nodes.map(n => [n.id, []]));
  for (const e of edges) if (inputs.has(e.to)) inputs.get(e.to).push(e.from);
  const depthOf = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const ins = inputs.get(id) || [];
    const d = ins.length ? 1 + Math.max(...ins.map(i => depthOf(i, seen))) : 0;
    depth.set(id, d);
    return d;
  };
  const columns = [];
  for (const n of nodes) {
    const d = depthOf(n.id);
    (columns[d] = columns[d] || []).push(n);
  }
  const W = 170, H = 66, GX = 90, GY = 30;
  const pos = new Map();
  columns.forEach((col, x) => (col || []).forEach((n, y) => pos.set(n.id, {x: 20 + x * (W + GX), y: 20 + y * (H + GY)})));
  const width = 40 + columns.length * (W + GX) - GX;
  const height = 40 + Math.max(1, ...columns.map(c => (c || []).length)) * (H + GY) - GY;
  const g = svg('svg', {id: 'graph', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'topology graph'},
    svg('defs', {}, svg('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto'},
      svg('path', {d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead'}))));
  for (const e of edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    g.appendChild(svg('g', {class: 'edge', 'data-from': e.from, 'data-to': e.to},
      svg('line', {x1, y1, x2, y2, 'marker-end': 'url(#arrow)'}),
      svg('text', {x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, 'text-anchor': 'middle'},
        e.grouping + (e.fields && e.fields.length ? '(' + e.fields.join(',') + ')' : '') + (e.stream !== 'default' ? ' [' + e.stream + ']' : ''))));
  }
  for (const n of nodes) {
    const p = pos.get(n.id), r = byName.get(n.id);
    const busy = r ? (r.c.busyTimeMsPerSecond || 0) / 1000 : 0;
    const bp = r ? (r.c.backPressuredTimeMsPerSecond || 0) / 1000 : 0;
    const fill = bp >= 0.1 && bp > busy ? `hsl(270, ${Math.round(20 + 50 * Math.min(1, bp))}%, 82%)`
                           : `hsl(${Math.round(120 * (1 - Math.min(1, busy)))}, 65%, 80%)`;
    const cls = 'node ' + n.type + (r && r.backpressured ? ' backpressured' : '') + (n.fusedInto ? ' fused' : '');
    // A fused bolt runs inside its host's tasks (no channel between them): dashed, and labelled.
    g.appendChild(svg('g', {class: cls, 'data-component': n.id, 'data-fused-into': n.fusedInto, transform: `translate(${p.x},${p.y})`},
      svg('title', {}, n.id),
      svg('rect', {width: W, height: H, rx: n.type === 'spout' ? 27 : 6, fill}),
      svg('text', {x: W / 2, y: 22, 'text-anchor': 'middle', class: 'name'}, n.id.length > 22 ? n.id.slice(0, 21) + '…' : n.id),
      svg('text', {x: W / 2, y: 40, 'text-anchor': 'middle', class: 'sub'},
        n.type + ' ×' + n.parallelism + ' · busy ' + pct(busy) + (bp >= 0.1 ? ' · back-pressured ' + pct(bp) : '')),
      n.fusedInto && svg('text', {x: W / 2, y: 57, 'text-anchor': 'middle', class: 'fused-label'},
        'fused into ' + (n.fusedInto.length > 18 ? n.fusedInto.slice(0, 17) + '…' : n.fusedInto))));
  }
  return el('div', {class: 'graph'}, g);
}

// ---- a line chart of spout throughput and p99 latency over the page's lifetime
function historyChart() {
  const h = state.history, W = 700, Hh = 140;
  const g = svg('svg', {width: W, height: Hh + 30, class: 'chart', role: 'img', 'aria-label': 'throughput and latency over time'});
  if (h.length < 2) {
    g.appendChild(svg('text', {x: 10, y: 30, class: 'muted'}, 'collecting…'));
    return g;
  }
  const line = (key, cls) => {
    const max = Math.max(...h.map(p => p[key] || 0), 1e-9);
    const pts = h.map((p, i) => `${(i / (h.length - 1)) * W},${Hh - ((p[key] || 0) / max) * (Hh - 10)}`).join(' ');
    g.appendChild(svg('polyline', {points: pts, class: cls}));
    return max;
  };
  const rmax = line('rate', 'rate'), lmax = line('p99', 'latency');
  g.appendChild(svg('text', {x: 4, y: Hh + 22, class: 'rate-label'}, 'spout emitted/s (max ' + num(rmax) + ')'));
  g.appendChild(svg('text', {x: 360, y: Hh + 22, class: 'latency-label'}, 'p99 latency (max ' + msText(lmax) + ')'));
  return g;
}

// ---- micro-batch progress
function renderBatches(b) {
  const recent = b.recent.slice().reverse();
  const max = Math.max(...b.recent.map(r => r.totalMs), 1e-9);
  const W = 700, Hh = 120, bw = Math.max(2, Math.floor(W / Math.max(1, b.recent.length)) - 1);
  const chart = svg('svg', {width: W, height: Hh + 24, class: 'chart batches', role: 'img', 'aria-label': 'batch durations by phase'});
  b.recent.forEach((r, i) => {
    let y = Hh;
    for (const [k, cls] of [['executeMs', 'execute'], ['waitMs', 'wait'], ['commitMs', 'commit']]) {
      const h = (r[k] / max) * (Hh - 4);
      y -= h;
      chart.appendChild(svg('rect', {x: i * (bw + 1), y, width: bw, height: Math.max(0, h), class: cls},
        svg('title', {}, 'txid ' + r.txid + ' ' + cls + ' ' + msText(r[k]))));
    }
  });
  chart.appendChild(svg('text', {x: 4, y: Hh + 18, class: 'muted'}, 'batch duration (max ' + msText(max) + '): execute · wait for earlier commits · commit'));
  return el('section', {id: 'batches'},
    el('h3', {}, 'Micro-batches'),
    el('p', {},
      'Committed ', el('b', {'data-field': 'batches', 'data-value': b.batches}, num(b.batches)),
      ' batches (last txid ', el('b', {'data-field': 'lastTxid'}, num(b.lastTxid)), '), ',
      num(b.rows), ' rows; watermark ', watermarkText(b.watermark), '; state ', num(b.stateEntries),
      ' entries; batch p50 ', msText(b.batchLatency.p50), ', p99 ', msText(b.batchLatency.p99),
      '; record arrival → commit p99 ', msText(b.recordLatency.p99),
      b.paused ? el('span', {class: 'badge inactive'}, 'paused') : null,
      b.failed ? el('span', {class: 'badge failed'}, 'failed: ' + b.error) : null),
    chart,
    el('table', {class: 'batches'},
      el('thead', {}, el('tr', {}, ['txid', 'cut at', 'rows', 'execute', 'wait', 'commit', 'total', 'watermark', 'state entries'].map(h => el('th', {}, h)))),
      el('tbody', {}, recent.slice(0, 25).map(r => el('tr', {'data-txid': r.txid},
        el('td', {}, num(r.txid)),
        el('td', {}, timeText(r.cutMicros).slice(11)),
        el('td', {}, num(r.rows)),
        el('td', {}, msText(r.executeMs)), el('td', {}, msText(r.waitMs)), el('td', {}, msText(r.commitMs)),
        el('td', {}, msText(r.totalMs)),
        el('td', {}, watermarkText(r.watermark)),
        el('td', {}, num(r.stateEntries)))))),
    el('h4', {}, 'Committed offsets'),
    el('table', {class: 'offsets'}, el('tbody', {}, Object.entries(b.committedOffsets).map(([s, parts]) =>
      el('tr', {}, el('td', {}, s), el('td', {}, parts.map(num).join(' · ')))))));
}

// ---- the checkpoint directory, as gale-state prints it
function bytesText(n) {
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MiB';
  if (n >= 1024) return (n / 1024).toFixed(1) + ' KiB';
  return num(n) + ' B';
}
function offsetsText(offsets) {
  const parts = [];
  for (const [source, ps] of Object.entries(offsets)) for (const [p, off] of Object.entries(ps)) parts.push(source + '/' + p + '=' + num(off));
  return parts.length ? parts.join(' ') : '–';
}
function renderCheckpoint(c) {
  const commits = c.commits.slice().reverse();
  return el('section', {id: 'checkpoint'},
    el('h3', {}, 'Checkpoint'),
    el('table', {class: 'kv'}, el('tbody', {},
      [['directory', el('code', {}, c.directory)], ['job id', el('code', {}, c.jobId)], ['format version', c.formatVersion],
       ['created', timeText(c.createdMicros)], ['map size', bytesText(c.mapSize)],
       ['last committed txid', el('b', {'data-field': 'lastCommittedTxid', 'data-value': c.lastCommittedTxid}, num(c.lastCommittedTxid))]]
        .map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v))))),
    el('h4', {}, 'Commit log (newest first, last ' + c.commits.length + ')'),
    el('table', {class: 'commits'},
      el('thead', {}, el('tr', {}, ['txid', 'committed at', 'watermark', 'source offsets', 'state updates', 'skipped', 'snapshots', 'bytes'].map(h => el('th', {}, h)))),
      el('tbody', {}, commits.map(r => el('tr', {'data-commit': r.txid},
        el('td', {}, num(r.txid)), el('td', {}, timeText(r.timeMicros)),
        el('td', {}, r.watermarkMicros === null ? '–' : timeText(r.watermarkMicros)),
        el('td', {class: 'offsets'}, offsetsText(r.offsets)),
        el('td', {}, num(r.stateUpdates)), el('td', {}, num(r.stateSkips)), el('td', {}, num(r.snapshots)),
        el('td', {}, bytesText(r.bytes)))))),
    el('h4', {}, 'Keyed states'),
    c.states.length ? el('table', {class: 'states'},
      el('thead', {}, el('tr', {}, ['state', 'kind', 'entries', 'size'].map(h => el('th', {}, h)))),
      el('tbody', {}, c.states.map(s => el('tr', {'data-state': s.name},
        el('td', {}, s.name), el('td', {}, s.kind), el('td', {}, num(s.entries)), el('td', {}, bytesText(s.bytes))))))
      : el('p', {class: 'muted'}, 'none'),
    el('h4', {}, 'Operator snapshots'),
    Object.keys(c.snapshots).length ? el('table', {class: 'snapshots'}, el('tbody', {}, Object.entries(c.snapshots).map(([k, n]) =>
      el('tr', {}, el('td', {}, el('code', {}, k)), el('td', {}, bytesText(n))))))
      : el('p', {class: 'muted'}, 'none'),
    el('h4', {}, 'Sinks (last txid written)'),
    Object.keys(c.sinks).length ? el('table', {class: 'sinks'}, el('tbody', {}, Object.entries(c.sinks).map(([k, txid]) =>
      el('tr', {}, el('td', {}, k), el('td', {}, num(txid))))))
      : el('p', {class: 'muted'}, 'none'));
}

// ---- gale-compare --ui: the modes side by side, run by run as they complete
const modeColours = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563'];
function renderComparison(c, jobs) {
  const modes = [...new Set(c.runs.map(r => r.mode))];
  const colour = (m) => modeColours[modes.indexOf(m) % modeColours.length];
  const groups = new Map();
  for (const r of c.runs) {
    const key = r.pipeline + ' @ ' + r.load;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  }
  const running = jobs.filter(j => j.status === 'ACTIVE' || j.status === 'INACTIVE');
  const lat = (r, v) => r.latency.count ? msText(v) : 'n/a';
  return el('div', {id: 'comparison'},
    el('section', {class: 'title'}, el('h2', {}, 'Continuous vs micro-batch'),
      el('span', {class: 'muted', id: 'comparison-progress'},
        c.runs.length + (c.planned ? ' of ' + c.planned : '') + ' runs done',
        running.length ? ['; running now: ', running.map(j => el('a', {href: topologyHref(j.id)}, j.name))] : '')),
    c.runs.length ? null : el('p', {class: 'muted'}, 'The first run is still measuring; its results appear here when it ends.'),
    el('section', {}, el('h3', {}, 'Results'),
      el('table', {class: 'components', id: 'comparison-table'},
        el('thead', {}, el('tr', {}, ['Pipeline', 'Load', 'Mode', 'Throughput /s', 'Sustained', 'Latency of', 'Samples', 'p50', 'p90', 'p99', 'p99.9', 'max', 'Knobs'].map(h => el('th', {}, h)))),
        el('tbody', {}, c.runs.map(r => el('tr', {'data-run': r.pipeline + '|' + r.load + '|' + r.mode},
          el('td', {}, r.pipeline), el('td', {}, r.load),
          el('td', {}, svg('svg', {width: 10, height: 10, class: 'swatch'}, svg('rect', {width: 10, height: 10, fill: colour(r.mode)})), ' ', r.mode),
          el('td', {'data-field': 'throughput', 'data-value': r.throughput}, num(r.throughput)),
          el('td', {class: r.sustained ? '' : 'error'}, r.sustained ? 'yes' : 'NO'),
          el('td', {}, r.latencyKind), el('td', {}, num(r.latency.count)),
          el('td', {'data-field': 'p50', 'data-value': r.latency.p50}, lat(r, r.latency.p50)),
          el('td', {}, lat(r, r.p90)),
          el('td', {'data-field': 'p99', 'data-value': r.latency.p99}, lat(r, r.latency.p99)),
          el('td', {}, lat(r, r.latency.p999)), el('td', {}, lat(r, r.latency.max)),
          el('td', {class: 'muted knobs'}, r.knobs)))))),
    [...groups.entries()].map(([key, runs]) => el('section', {class: 'histograms'},
      el('h3', {}, key + ' — latency per ' + runs[0].latencyKind + ' (share of samples per bucket)'),
      histogramChart(key, runs, colour))));
}

// Grouped bars: one group per latency bucket, one bar per mode; the y axis is the share of that
// run's samples, so runs with different sample counts compare.
function histogramChart(key, runs, colour) {
  const withData = runs.filter(r => r.latency.count > 0);
  // Every run has the same buckets: show the range from the first to the last bucket any of them uses.
  const used = (r) => r.histogram.map(b => b.count > 0);
  const first = Math.min(...withData.map(r => used(r).indexOf(true)));
  const last = Math.max(...withData.map(r => used(r).lastIndexOf(true)));
  const bounds = withData.length ? withData[0].histogram.slice(first, last + 1).map(b => b.le === null ? Infinity : b.le) : [];
  const W = 760, Hh = 150, left = 36, slot = bounds.length ? (W - left) / bounds.length : 0;
  const g = svg('svg', {width: W, height: Hh + 60, class: 'chart histogram', 'data-group': key, role: 'img', 'aria-label': 'latency histograms ' + key});
  if (!withData.length) {
    g.appendChild(svg('text', {x: 10, y: 30, class: 'muted'}, 'no latency samples (n/a at max load)'));
    return g;
  }
  const shares = withData.map(r => {
    return r.histogram.slice(first, last + 1).map(b => b.count / r.latency.count);
  });
  const top = Math.max(...shares.flat(), 1e-9);
  const bw = Math.max(1, (slot - 4) / withData.length);
  for (const y of [0, 0.5, 1]) {
    g.appendChild(svg('text', {x: 0, y: Hh - y * (Hh - 10) + 4, class: 'muted'}, (100 * top * y).toFixed(0) + '%'));
  }
  withData.forEach((r, i) => shares[i].forEach((v, j) => {
    const h = (v / top) * (Hh - 10);
    g.appendChild(svg('rect', {x: left + j * slot + 2 + i * bw, y: Hh - h, width: bw, height: h, fill: colour(r.mode), 'data-mode': r.mode},
      svg('title', {}, r.mode + ': ' + (100 * v).toFixed(1) + '% ≤ ' + (bounds[j] === Infinity ? '∞' : msText(bounds[j])))));
  }));
  const every = Math.max(1, Math.ceil(bounds.length / 12));
  bounds.forEach((b, j) => {
    if (j % every) return;
    g.appendChild(svg('text', {x: left + j * slot + slot / 2, y: Hh + 14, 'text-anchor': 'middle', class: 'muted'}, b === Infinity ? '>' : '≤' + msText(b)));
  });
  withData.forEach((r, i) => {
    const x = left + i * 220;
    g.appendChild(svg('rect', {x, y: Hh + 28, width: 12, height: 12, fill: colour(r.mode)}));
    g.appendChild(svg('text', {x: x + 16, y: Hh + 38, class: 'legend-mode'}, r.mode + ' · p99 ' + msText(r.latency.p99)));
  });
  return g;
}

// ---- a component's page
function renderComponent(topologyId, c) {
  const spout = c.componentType === 'spout';
  const fields = spout ? ['emitted', 'transferred', 'acked', 'failed', 'errors'] : ['emitted', 'transferred', 'executed', 'acked', 'failed', 'errors'];
  const lat = (l) => msText(l.p50) + ' / ' + msText(l.p99) + ' / ' + msText(l.p999);
  return el('div', {},
    el('p', {}, el('a', {href: topologyHref(topologyId)}, '← ' + topologyId)),
    el('section', {class: 'title'}, el('h2', {id: 'component-name'}, c.name), el('span', {class: 'badge'}, c.componentType),
      el('span', {class: 'muted'}, c.tasks + ' tasks')),
    el('section', {}, el('h3', {}, 'Stats'), statsTable(spout ? c.spoutSummary : c.boltStats, fields)),
    el('section', {}, el('h3', {}, 'Tasks'),
      el('table', {class: 'components'},
        el('thead', {}, el('tr', {}, ['Task', ...fields, 'Capacity', 'Busy', 'Back-pressured', 'Idle', 'Queue', spout ? 'Pending' : 'Buffered', 'Blocked sends',
          spout ? 'Complete p50 / p99 / p99.9' : 'Process p50 / p99 / p99.9', 'Execute p50 / p99 / p99.9', 'Watermark', 'Last error'].map(h => el('th', {}, h)))),
        el('tbody', {}, c.executorStats.map(e => el('tr', {'data-task': e.task},
          el('td', {}, e.id), fields.map(f => el('td', {'data-field': f, 'data-value': e[f]}, num(e[f]))),
          el('td', {}, pct(e.capacity)), el('td', {'data-field': 'busy', 'data-value': e.busyTimeMsPerSecond}, msPerSecondText(e.busyTimeMsPerSecond)),
          el('td', {}, msPerSecondText(e.backPressuredTimeMsPerSecond)), el('td', {}, msPerSecondText(e.idleTimeMsPerSecond)),
          el('td', {}, num(e.queueDepth)), el('td', {}, num(spout ? e.pending : e.bufferedItems)),
          el('td', {}, num(e.blockedFlushes)),
          el('td', {}, lat(spout ? e.completeLatency : e.processLatency)), el('td', {}, lat(e.executeLatency)),
          el('td', {}, watermarkText(e.watermark, e.watermarkIdle)),
          el('td', {class: 'error'}, errorText(e))))))),
    el('section', {}, el('h3', {}, 'Inputs'),
      el('ul', {}, c.inputStats.map(i => el('li', {}, i.component + ' [' + i.stream + '] ' + i.grouping + (i.fields.length ? '(' + i.fields.join(', ') + ')' : ''))))),
    el('section', {}, el('h3', {}, 'Outputs'),
      el('ul', {}, c.outputStats.map(o => el('li', {}, o.stream + ': ' + o.fields.join(', '))))));
}

window.addEventListener('hashchange', () => { state.prev = null; state.history = []; });
refresh();
