// The results page: plain JavaScript and hand-drawn SVG, no build step and no library (see docs/web.md for why).
// Every view is a URL (#/sweep/ID/results?metric=bleu&by=method,size&a=lora&b=finetune&log=1), so a link can be shared.
'use strict';

const app = { token: null, source: null, timer: null, route: '' };

(function readToken() {
  const url = new URL(location.href);
  const token = url.searchParams.get('token');
  if (token) {
    sessionStorage.setItem('orchestrator-token', token);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  app.token = sessionStorage.getItem('orchestrator-token');
})();

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...children) {
  const svg = ['svg', 'g', 'path', 'line', 'circle', 'text', 'rect', 'title'].includes(tag);
  const node = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function withToken(path) {
  if (!app.token) return path;
  return path + (path.includes('?') ? '&' : '?') + 'access_token=' + encodeURIComponent(app.token);
}

async function api(path) {
  const response = await fetch(path, { headers: app.token ? { Authorization: 'Bearer ' + app.token } : {} });
  if (!response.ok) {
    let message = response.status + ' ' + response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response.json();
}

function csvLink(path, label) {
  return h('a', { href: withToken(path + (path.includes('?') ? '&' : '?') + 'format=csv'), download: '', class: 'csv' }, label || 'CSV');
}

const enc = encodeURIComponent;
const f2 = v => (v === null || v === undefined || Number.isNaN(v)) ? '–' : Number(v).toFixed(2);
const pm = (mean, low, high) => mean === null ? '–' : (low === null || high === null) ? f2(mean) : `${f2(mean)} ± ${f2((high - low) / 2)}`;
const duration = s => s === null || s === undefined ? '–' : s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(2)} h`;
const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query] = raw.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query || '') };
}

function setParams(params) {
  const { parts } = parseHash();
  const q = params.toString();
  location.hash = '#/' + parts.map(enc).join('/') + (q ? '?' + q : '');
}

function table(id, columns, rows, options = {}) {
  const head = h('tr', {}, columns.map((c, i) => h('th', {
    class: [c.num ? 'num' : '', options.sortable ? 'sortable' : ''].join(' ').trim() || null,
    'data-column': c.key,
    onclick: options.sortable ? () => sortTable(tableNode, i, c.num) : null,
  }, c.label)));
  const tableNode = h('table', { id }, h('thead', {}, head), h('tbody', {}, rows));
  return tableNode;
}

function sortTable(node, index, numeric) {
  const body = node.tBodies[0];
  const rows = [...body.rows];
  const descending = node.dataset.sorted === String(index) && node.dataset.order !== 'desc';
  rows.sort((a, b) => {
    const x = a.cells[index].dataset.value ?? a.cells[index].textContent;
    const y = b.cells[index].dataset.value ?? b.cells[index].textContent;
    const c = numeric ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
    return descending ? -c : c;
  });
  node.dataset.sorted = String(index);
  node.dataset.order = descending ? 'desc' : 'asc';
  body.append(...rows);
}

function td(value, attrs = {}) { return h('td', attrs, value); }
function num(value, display) { return h('td', { class: 'num', 'data-value': value ?? '' }, display ?? (value ?? '–')); }

// ------------------------------------------------------------------ routing

function stopLive() {
  if (app.source) { app.source.close(); app.source = null; }
  if (app.timer) { clearInterval(app.timer); app.timer = null; }
  document.getElementById('live').hidden = true;
}

async function render() {
  const { parts, params } = parseHash();
  const view = document.getElementById('view');
  const routeKey = parts.join('/');
  if (routeKey !== app.route) stopLive();
  app.route = routeKey;
  const crumbs = document.getElementById('crumbs');
  crumbs.replaceChildren(h('a', { href: '#/' }, 'sweeps'));
  if (parts[0] === 'sweep' && parts[1]) {
    const base = '#/sweep/' + enc(parts[1]);
    crumbs.append(h('a', { href: base }, parts[1]), h('a', { href: base + '/results' }, 'results'), h('a', { href: base + '/cells' }, 'cells'));
  }

  try {
    let node;
    if (parts.length === 0) node = await sweepsView();
    else if (parts[0] === 'sweep' && parts.length === 2) node = await sweepView(parts[1]);
    else if (parts[0] === 'sweep' && parts[2] === 'results') node = await resultsView(parts[1], params);
    else if (parts[0] === 'sweep' && parts[2] === 'cells') node = await cellsView(parts[1], params);
    else if (parts[0] === 'sweep' && parts[2] === 'cell' && parts[3]) node = await cellView(parts[1], parts[3], params);
    else node = h('p', { class: 'error' }, 'No such page: ' + location.hash);
    if (app.route === routeKey) view.replaceChildren(node);
  } catch (e) {
    view.replaceChildren(h('p', { class: 'error', id: 'error' }, e.message));
  }
}

window.addEventListener('hashchange', render);
window.addEventListener('DOMContentLoaded', render);

// ------------------------------------------------------------------ sweeps

async function sweepsView() {
  const sweeps = await api('/api/sweeps');
  if (!app.timer) app.timer = setInterval(() => { if (app.route === '') render(); }, 5000);
  const rows = sweeps.map(s => h('tr', { 'data-sweep': s.sweep_id },
    td(h('a', { href: '#/sweep/' + enc(s.sweep_id) }, s.name)), td(s.sweep_id, { class: 'muted' }), td(s.status + (s.complete ? ', complete' : '')),
    num(s.total), num(s.done), num(s.running), num(s.pending), num(s.failed), num(s.blocked),
    num(s.elapsed_seconds, duration(s.elapsed_seconds)), num(s.eta_seconds, duration(s.eta_seconds)),
    td(new Date(s.submitted_at).toLocaleString())));
  return h('div', {},
    h('h1', {}, 'Sweeps'),
    h('div', { class: 'downloads' }, csvLink('/api/sweeps')),
    sweeps.length === 0 ? h('p', { class: 'muted' }, 'No sweeps stored yet.') :
      table('sweeps-table', [
        { key: 'name', label: 'sweep' }, { key: 'id', label: 'id' }, { key: 'status', label: 'status' }, { key: 'total', label: 'cells', num: 1 },
        { key: 'done', label: 'done', num: 1 }, { key: 'running', label: 'running', num: 1 }, { key: 'pending', label: 'pending', num: 1 },
        { key: 'failed', label: 'failed', num: 1 }, { key: 'blocked', label: 'blocked', num: 1 }, { key: 'elapsed', label: 'elapsed', num: 1 },
        { key: 'eta', label: 'ETA', num: 1 }, { key: 'submitted', label: 'submitted' }], rows));
}

// ------------------------------------------------------------------ a sweep, live

function bar(counts, total) {
  const part = k => h('span', { class: k, style: `width:${100 * (counts[k] || 0) / Math.max(1, total)}%` });
  return h('span', { class: 'bar' }, part('done'), part('running'), part('failed'), part('blocked'));
}

/**
 * The stages as a left-to-right graph: a stage's column is the length of the longest chain of stages it needs, each node
 * shows its cells done (and failed or blocked), each edge runs from a needed stage to the stage that needs it.
 */
function stageGraph(stages) {
  const byName = new Map(stages.map(st => [st.stage, st]));
  const depth = new Map();
  const depthOf = (name, seen = new Set()) => {
    if (depth.has(name)) return depth.get(name);
    if (seen.has(name) || !byName.has(name)) return 0; // the planner refuses cycles and unknown stages; never loop here
    seen.add(name);
    const d = Math.max(-1, ...byName.get(name).needs.map(n => depthOf(n, seen))) + 1;
    depth.set(name, d);
    return d;
  };
  stages.forEach(st => depthOf(st.stage));
  const columns = [];
  stages.forEach(st => (columns[depth.get(st.stage)] ||= []).push(st));
  const [NW, NH, GX, GY, PAD, LANE] = [170, 48, 70, 18, 10, 12];
  const edges = stages.flatMap(st => st.needs.filter(n => depth.has(n)).map(n => ({ from: n, to: st.stage })));
  // An edge that skips a column runs in a lane above the nodes, so that it never crosses the nodes between its ends.
  const skips = edges.filter(e => depth.get(e.to) - depth.get(e.from) > 1);
  const top = PAD + skips.length * LANE;
  const at = new Map();
  columns.forEach((column, c) => column.forEach((st, r) => at.set(st.stage, { x: PAD + c * (NW + GX), y: top + r * (NH + GY) })));
  const W = PAD * 2 + columns.length * NW + (columns.length - 1) * GX;
  const H = top + PAD + Math.max(...columns.map(c => c.length)) * (NH + GY) - GY;
  const svg = h('svg', { xmlns: 'http://www.w3.org/2000/svg', width: W, height: H, viewBox: `0 0 ${W} ${H}`, id: 'stage-graph' });
  for (const e of edges) {
    const [a, b] = [at.get(e.from), at.get(e.to)];
    const [x1, y1, x2, y2] = [a.x + NW, a.y + NH / 2, b.x - 6, b.y + NH / 2];
    const lane = skips.indexOf(e);
    const mid = (x1 + x2) / 2;
    const d = lane < 0 ? `M${x1},${y1}C${mid},${y1} ${mid},${y2} ${x2},${y2}`
      : (ly => `M${x1},${y1}C${x1 + GX / 2},${y1} ${x1 + GX / 4},${ly} ${x1 + GX / 2},${ly}L${x2 - GX / 2},${ly}C${x2 - GX / 4},${ly} ${x2 - GX / 2},${y2} ${x2},${y2}`)(PAD + lane * LANE);
    svg.append(h('path', { class: 'stage-edge', 'data-from': e.from, 'data-to': e.to, d, fill: 'none', stroke: '#6b7780', 'stroke-width': 1.5 }));
    svg.append(h('path', { class: 'stage-arrow', d: `M${x2},${y2 - 4}L${x2 + 6},${y2}L${x2},${y2 + 4}Z`, fill: '#6b7780' }));
  }
  for (const st of stages) {
    const { x, y } = at.get(st.stage);
    const c = st.counts;
    const [done, failed, blocked] = [c.done || 0, c.failed || 0, c.blocked || 0];
    const share = k => (NW - 16) * k / Math.max(1, st.total);
    const problems = [failed ? `${failed} failed` : null, blocked ? `${blocked} blocked` : null].filter(Boolean).join(', ');
    svg.append(h('g', { class: 'stage-node', 'data-stage': st.stage, 'data-done': done, 'data-total': st.total },
      h('title', {}, `${st.stage}: ` + Object.entries(c).map(([k, v]) => `${v} ${k === 'leased' ? 'running' : k}`).join(', ')),
      h('rect', { x, y, width: NW, height: NH, rx: 6, fill: '#f7f9fa', stroke: failed || blocked ? '#c0392b' : '#1d2329', 'stroke-width': 1.2 }),
      h('text', { x: x + 8, y: y + 17, 'font-weight': 'bold' }, st.stage),
      h('text', { x: x + 8, y: y + 32, class: 'stage-count' }, `${done}/${st.total} done` + (problems ? `, ${problems}` : '')),
      h('rect', { x: x + 8, y: y + 38, width: NW - 16, height: 4, fill: '#eef1f3' }),
      h('rect', { x: x + 8, y: y + 38, width: share(done), height: 4, fill: '#2e8b57' }),
      h('rect', { x: x + 8 + share(done), y: y + 38, width: share(failed + blocked), height: 4, fill: '#c0392b' })));
  }
  return svg;
}

async function sweepView(id) {
  const node = h('div', { id: 'sweep-view' });
  const draw = async () => {
    const p = await api('/api/sweeps/' + enc(id));
    const s = p.sweep;
    const rows = p.methods.map(m => {
      const c = { ...m.counts, running: m.counts.leased || 0 };
      return h('tr', { 'data-method': m.method, 'data-stage': m.stage },
        td(m.stage), td(m.method), num(m.total), num(c.done || 0), num(c.running), num(c.pending || 0), num(c.waiting || 0), num(c.failed || 0),
        num(c.blocked || 0), td(bar(c, m.total)));
    });
    // Through h() so that the sections left out (null) are skipped, not shown as "null".
    node.replaceChildren(...h('div', {},
      h('h1', {}, `${s.name} `, h('span', { class: 'muted' }, s.sweep_id)),
      h('p', { id: 'summary' },
        `${s.status}${s.complete ? ', complete' : ''}: `, h('b', { id: 'done-count' }, String(s.done)), ` of ${s.total} cells done, ${s.running} running, ` +
        `${s.pending} pending, ${s.failed} failed, ${s.blocked} blocked · elapsed ${duration(s.elapsed_seconds)} · ETA ${duration(s.eta_seconds)}`),
      h('p', {}, h('a', { href: '#/sweep/' + enc(id) + '/results' }, 'Results, plots and comparisons'), ' · ',
        h('a', { href: '#/sweep/' + enc(id) + '/cells' }, 'All cells')),
      h('h2', {}, 'Progress per stage and method'),
      h('div', { class: 'downloads' }, csvLink('/api/sweeps/' + enc(id))),
      table('progress-table', [{ key: 'stage', label: 'stage' }, { key: 'method', label: 'method' }, { key: 'total', label: 'cells', num: 1 },
        { key: 'done', label: 'done', num: 1 }, { key: 'running', label: 'running', num: 1 }, { key: 'pending', label: 'pending', num: 1 },
        { key: 'waiting', label: 'waiting', num: 1 }, { key: 'failed', label: 'failed', num: 1 }, { key: 'blocked', label: 'blocked', num: 1 },
        { key: 'bar', label: '' }], rows),
      p.stages.length === 0 ? null : h('div', {}, h('h2', {}, 'Stage graph'), stageGraph(p.stages),
        h('ul', { id: 'stages' }, p.stages.map(st => h('li', {}, h('b', {}, st.stage), ` — ${st.total} cells (` +
          Object.entries(st.counts).map(([k, v]) => `${v} ${k === 'leased' ? 'running' : k}`).join(', ') + ')' +
          (st.needs.length ? ` ← needs ${st.needs.join(', ')}` : ''))))),
      h('h2', {}, 'Failed and blocked cells'),
      p.problems_total > p.problems.length ? h('p', { class: 'muted', id: 'problems-more' }, `The first ${p.problems.length} of ${p.problems_total}; all of them: `,
        h('a', { href: '#/sweep/' + enc(id) + '/cells?state=failed' }, 'failed'), ', ', h('a', { href: '#/sweep/' + enc(id) + '/cells?state=blocked' }, 'blocked'), '.') : null,
      p.problems.length === 0 ? h('p', { class: 'muted', id: 'no-problems' }, 'None.') :
        table('problems-table', [{ key: 'cell', label: 'cell' }, { key: 'state', label: 'state' }, { key: 'attempts', label: 'attempts', num: 1 },
          { key: 'reason', label: 'reason' }], p.problems.map(c => h('tr', {},
          td(h('a', { href: `#/sweep/${enc(id)}/cell/${enc(c.key)}` }, c.label)), td(c.state, { class: 'bad' }), num(c.attempts), td(c.reason || ''))))).childNodes);
  };
  await draw();
  if (!app.source) {
    let pending = null;
    const source = new EventSource(withToken('/api/sweeps/' + enc(id) + '/events'));
    source.addEventListener('open', () => { document.getElementById('live').hidden = false; });
    source.addEventListener('progress', () => {
      if (pending) return;
      pending = setTimeout(() => { pending = null; draw().catch(() => { }); }, 200);
    });
    source.addEventListener('error', () => { document.getElementById('live').hidden = true; });
    app.source = source;
  }
  return node;
}

// ------------------------------------------------------------------ results, plots, comparisons

const keyNames = ['dataset', 'split', 'method', 'size'];

async function resultsView(id, params) {
  const metric = params.get('metric') || '';
  const by = params.get('by') || keyNames.join(',');
  const log = params.get('log') === '1';
  const a = params.get('a') || '', b = params.get('b') || '';
  const base = '/api/sweeps/' + enc(id);
  const [progress, plot] = await Promise.all([api(base), api(base + '/plot?metric=' + enc(metric))]);
  const chosen = plot.metric;
  const query = `metric=${enc(chosen)}&by=${enc(by)}`;
  const [results, compute, selection] = await Promise.all([api(`${base}/results?${query}`), api(base + '/compute'), api(base + '/selection')]);
  const methods = [...new Set(progress.methods.map(m => m.method))].sort();
  const update = (k, v) => { const p = new URLSearchParams(params); if (v === '' || v === null) p.delete(k); else p.set(k, v); setParams(p); };

  const controls = h('div', { class: 'controls' },
    h('label', {}, 'metric ', h('select', { id: 'metric', onchange: e => update('metric', e.target.value) },
      plot.metrics.map(m => h('option', { value: m, selected: m === chosen }, m)))),
    h('span', {}, 'group by ', keyNames.map(k => h('label', {}, h('input', {
      type: 'checkbox', class: 'group', value: k, checked: by.split(',').includes(k),
      onchange: () => update('by', [...document.querySelectorAll('input.group:checked')].map(x => x.value).join(',') || 'method'),
    }), ' ' + k + ' '))),
    h('label', {}, h('input', { type: 'checkbox', id: 'log', checked: log, onchange: e => update('log', e.target.checked ? '1' : '') }), ' log-scale size'));

  const groups = results.group_by;
  const showMetric = new Set(results.points.map(p => p.metric)).size > 1;
  const resultRows = results.points.map(p => h('tr', {
    class: p.complete ? null : 'incomplete', 'data-dataset': p.dataset, 'data-split': p.split, 'data-method': p.method, 'data-size': p.size,
    'data-metric': p.metric, 'data-n': p.n, 'data-expected': p.expected, 'data-mean': p.mean, 'data-ci-low': p.ci_low, 'data-ci-high': p.ci_high,
  }, groups.map(g => td(p[g] ?? '')), showMetric ? td(p.metric) : null,
  num(p.n, `${p.n}/${p.expected}${p.complete ? '' : p.failed ? ` (incomplete, ${p.failed} failed)` : ' (incomplete)'}`),
  num(p.mean, pm(p.mean, p.ci_low, p.ci_high)), num(p.sd, f2(p.sd)), num(p.min, f2(p.min)), num(p.max, f2(p.max))));

  const plotNode = h('div', { id: 'plot', class: 'panels' }, plot.panels.map(panel => drawPanel(panel, chosen, log)));
  const compareNode = h('div', { id: 'compare' });
  if (a && b) {
    const c = await api(`${base}/compare?a=${enc(a)}&b=${enc(b)}&metric=${enc(chosen)}`);
    compareNode.append(h('div', { class: 'downloads' }, csvLink(`${base}/compare?a=${enc(a)}&b=${enc(b)}&metric=${enc(chosen)}`)),
      pairedTable('compare-table', c.comparison.rows, `${a} − ${b}`));
  }

  return h('div', {},
    h('h1', {}, `${progress.sweep.name}: results`),
    controls,
    h('h2', {}, `${chosen} by training-set size (mean and 95% CI band per method)`),
    h('div', { class: 'downloads' },
      h('button', { id: 'download-svg', onclick: () => downloadPlot('svg') }, 'Download SVG'),
      h('button', { id: 'download-png', onclick: () => downloadPlot('png') }, 'Download PNG')),
    plotNode,
    h('h2', {}, `Table: ${chosen} per point (mean ± 95% Student-t CI over cells)`),
    h('div', { class: 'downloads' }, csvLink(`${base}/results?${query}`)),
    table('results-table', [...groups.map(g => ({ key: g, label: g })), ...(showMetric ? [{ key: 'metric', label: 'metric' }] : []),
      { key: 'n', label: 'n/expected', num: 1 }, { key: 'mean', label: 'mean ± 95% CI', num: 1 }, { key: 'sd', label: 'sd', num: 1 },
      { key: 'min', label: 'min', num: 1 }, { key: 'max', label: 'max', num: 1 }], resultRows, { sortable: true }),
    h('h2', {}, 'Paired difference A − B (over shared subsample and seed)'),
    h('div', { class: 'controls' },
      h('label', {}, 'A ', h('select', { id: 'compare-a', onchange: e => update('a', e.target.value) }, h('option', { value: '' }, '—'),
        methods.map(m => h('option', { value: m, selected: m === a }, m)))),
      h('label', {}, 'B ', h('select', { id: 'compare-b', onchange: e => update('b', e.target.value) }, h('option', { value: '' }, '—'),
        methods.map(m => h('option', { value: m, selected: m === b }, m))))),
    compareNode,
    results.generalization_gap.length === 0 ? null : h('div', {},
      h('h2', {}, 'Generalization gap: seen − unseen'),
      h('div', { class: 'downloads' }, csvLink(`${base}/gap?metric=${enc(chosen)}`)),
      pairedTable('gap-table', results.generalization_gap, 'seen − unseen')),
    selection.scopes.length === 0 ? null : selectionSection(base, selection),
    h('h2', {}, 'Compute'),
    h('div', { class: 'downloads' }, csvLink(base + '/compute')),
    table('compute-table', [{ key: 'method', label: 'method' }, { key: 'cells', label: 'cells done', num: 1 }, { key: 'packed', label: 'packed', num: 1 },
      { key: 'reused', label: 'reused training', num: 1 }, { key: 'wall', label: 'Σ cell wall (h)', num: 1 }, { key: 'mean', label: 'mean per cell (s)', num: 1 }],
    compute.rows.map(r => h('tr', {}, td(r.method), num(r.cells), num(r.packed), num(r.reused_training), num(r.wall_seconds, (r.wall_seconds / 3600).toFixed(2)),
      num(r.mean_seconds, r.mean_seconds === null ? '–' : r.mean_seconds.toFixed(1))))),
    h('p', { class: 'muted' }, `${compute.cells} cells finished in ${duration(compute.elapsed_seconds)} (first start to last finish)` +
      (compute.cells_per_hour ? `: ${compute.cells_per_hour.toFixed(1)} cells/hour` : '')));
}

function selectionSection(base, selection) {
  const rows = selection.scopes.flatMap(s => s.candidates.map(c => h('tr', {
    class: c.chosen ? 'chosen' : null, 'data-method': s.method, 'data-candidate': c.label, 'data-mean': c.dev_loss_mean, 'data-chosen': c.chosen ? '1' : '0',
  }, td(s.method), td(s.size ?? 'all'), td(s.state), td(c.label), num(c.n, `${c.n}/${c.expected}`),
  num(c.dev_loss_mean, c.dev_loss_mean === null ? '–' : c.dev_loss_ci_low === null ? c.dev_loss_mean.toFixed(4)
    : `${c.dev_loss_mean.toFixed(4)} ± ${((c.dev_loss_ci_high - c.dev_loss_ci_low) / 2).toFixed(4)}`), td(c.chosen ? 'chosen' : ''))));
  const notes = selection.scopes.flatMap(s => [...s.warnings, ...(s.reason ? [s.reason] : [])]);
  return h('div', { id: 'selection' },
    h('h2', {}, 'Hyper-parameter selection (best-step dev loss, mean ± 95% CI over the selection cells)'),
    h('div', { class: 'downloads' }, csvLink(base + '/selection')),
    table('selection-table', [{ key: 'method', label: 'method' }, { key: 'size', label: 'size' }, { key: 'state', label: 'state' },
      { key: 'candidate', label: 'candidate' }, { key: 'n', label: 'n/expected', num: 1 }, { key: 'loss', label: 'dev loss', num: 1 },
      { key: 'chosen', label: 'chosen' }], rows),
    notes.length === 0 ? null : h('ul', { class: 'warnings' }, notes.map(n => h('li', {}, n))));
}

function pairedTable(id, rows, title) {
  return table(id, [{ key: 'dataset', label: 'dataset' }, { key: 'split', label: 'split' }, { key: 'method', label: 'method' },
    { key: 'size', label: 'size', num: 1 }, { key: 'pairs', label: 'pairs', num: 1 }, { key: 'diff', label: title, num: 1 }, { key: 'sd', label: 'sd', num: 1 }],
  rows.map(r => h('tr', { 'data-mean-diff': r.mean_diff }, td(r.dataset ?? ''), td(r.split ?? ''), td(r.method ?? ''), num(r.size), num(r.pairs),
    num(r.mean_diff, pm(r.mean_diff, r.ci_low, r.ci_high)), num(r.sd, f2(r.sd)))));
}

function ticks(low, high, count) {
  if (!(high > low)) return [low];
  const step0 = (high - low) / count;
  const magnitude = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map(m => m * magnitude).find(s => s >= step0);
  const out = [];
  for (let v = Math.ceil(low / step) * step; v <= high + 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

function drawPanel(panel, metric, log) {
  const W = 480, H = 330, L = 56, R = 110, T = 28, B = 44;
  const X = s => log ? Math.log10(s) : s;
  const sizes = [...new Set(panel.lines.flatMap(l => l.points.filter(p => p.n > 0).map(p => p.size)))].sort((x, y) => x - y);
  const values = panel.lines.flatMap(l => l.points.filter(p => p.n > 0).flatMap(p => [p.mean, p.ci_low ?? p.mean, p.ci_high ?? p.mean]));
  const svg = h('svg', { xmlns: 'http://www.w3.org/2000/svg', width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'plot', 'data-panel': panel.title });
  svg.append(h('rect', { x: 0, y: 0, width: W, height: H, fill: '#fff' }));
  svg.append(h('text', { x: L + (W - L - R) / 2, y: 18, 'text-anchor': 'middle', 'font-weight': 'bold' }, panel.title));
  if (sizes.length === 0) {
    svg.append(h('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', fill: '#6b7780' }, 'no finished cells yet'));
    return svg;
  }
  let [x0, x1] = [X(sizes[0]), X(sizes[sizes.length - 1])];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  let [y0, y1] = [Math.min(...values), Math.max(...values)];
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const pad = (y1 - y0) * 0.06; y0 -= pad; y1 += pad;
  const px = s => L + (X(s) - x0) / (x1 - x0) * (W - L - R);
  const py = v => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  const axes = h('g', { class: 'axes' });
  axes.append(h('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#333' }), h('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#333' }));
  for (const s of sizes) {
    axes.append(h('line', { x1: px(s), y1: H - B, x2: px(s), y2: H - B + 4, stroke: '#333' }),
      h('text', { x: px(s), y: H - B + 16, 'text-anchor': 'middle' }, String(s)));
  }
  for (const v of ticks(y0, y1, 5)) {
    axes.append(h('line', { x1: L, y1: py(v), x2: W - R, y2: py(v), stroke: '#eef1f3' }),
      h('text', { x: L - 6, y: py(v) + 4, 'text-anchor': 'end' }, String(+v.toFixed(2))));
  }
  axes.append(h('text', { x: L + (W - L - R) / 2, y: H - 8, 'text-anchor': 'middle' }, log ? 'training examples (log scale)' : 'training examples'),
    h('text', { x: 14, y: T + (H - T - B) / 2, 'text-anchor': 'middle', transform: `rotate(-90 14 ${T + (H - T - B) / 2})` }, metric.toUpperCase()));
  svg.append(axes);
  panel.lines.forEach((line, i) => {
    const color = palette[i % palette.length];
    const pts = line.points.filter(p => p.n > 0 && p.mean !== null);
    if (pts.length === 0) return;
    const upper = pts.map(p => [px(p.size), py(p.ci_high ?? p.mean)]);
    const lower = pts.map(p => [px(p.size), py(p.ci_low ?? p.mean)]).reverse();
    const band = 'M' + [...upper, ...lower].map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join('L') + 'Z';
    svg.append(h('path', { class: 'band', 'data-method': line.method, d: band, fill: color, 'fill-opacity': 0.18, stroke: 'none' }));
    svg.append(h('path', { class: 'line', 'data-method': line.method, d: 'M' + pts.map(p => `${px(p.size).toFixed(1)},${py(p.mean).toFixed(1)}`).join('L'),
      fill: 'none', stroke: color, 'stroke-width': 2 }));
    for (const p of pts) {
      svg.append(h('circle', { cx: px(p.size), cy: py(p.mean), r: 3.5, fill: color },
        h('title', {}, `${line.method}, n=${p.size}: ${pm(p.mean, p.ci_low, p.ci_high)} (${p.n}/${p.expected} cells)`)));
    }
    svg.append(h('line', { x1: W - R + 10, y1: T + 10 + i * 18, x2: W - R + 28, y2: T + 10 + i * 18, stroke: color, 'stroke-width': 2 }),
      h('text', { x: W - R + 32, y: T + 14 + i * 18, class: 'legend' }, line.method));
  });
  return svg;
}

/** All panels as one SVG document (panels side by side), saved as .svg or rasterised to .png. */
function downloadPlot(kind) {
  const panels = [...document.querySelectorAll('#plot svg.plot')];
  if (panels.length === 0) return;
  const width = panels.reduce((w, p) => w + +p.getAttribute('width'), 0), height = Math.max(...panels.map(p => +p.getAttribute('height')));
  let x = 0;
  const inner = panels.map(p => { const s = `<g transform="translate(${x},0)">${p.innerHTML}</g>`; x += +p.getAttribute('width'); return s; }).join('');
  const text = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="system-ui, sans-serif" font-size="12">${inner}</svg>`;
  const blob = new Blob([text], { type: 'image/svg+xml' });
  const name = 'plot-' + (document.getElementById('metric')?.value || 'metric');
  if (kind === 'svg') { save(blob, name + '.svg'); return; }
  const image = new Image();
  image.onload = () => {
    const canvas = document.createElement('canvas');
    canvas.width = width * 2; canvas.height = height * 2;
    const g = canvas.getContext('2d');
    g.scale(2, 2); g.drawImage(image, 0, 0);
    canvas.toBlob(png => save(png, name + '.png'), 'image/png');
  };
  image.src = URL.createObjectURL(blob);
}

function save(blob, name) {
  const a = h('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(a); a.click(); a.remove();
}

// ------------------------------------------------------------------ cells

async function cellsView(id, params) {
  const offset = +(params.get('offset') || 0), limit = 50, stateFilter = params.get('state') || '';
  const base = '/api/sweeps/' + enc(id);
  const page = await api(`${base}/cells?offset=${offset}&limit=${limit}` + (stateFilter ? '&state=' + enc(stateFilter) : ''));
  const metrics = [...new Set(page.cells.flatMap(c => Object.keys(c.metrics)))].sort();
  const go = (k, v) => { const p = new URLSearchParams(params); if (v === '' || v === null) p.delete(k); else p.set(k, v); if (k !== 'offset') p.delete('offset'); setParams(p); };
  return h('div', {},
    h('h1', {}, `Cells of ${id}`),
    h('div', { class: 'controls' },
      h('label', {}, 'state ', h('select', { id: 'state', onchange: e => go('state', e.target.value) },
        ['', 'done', 'leased', 'pending', 'waiting', 'failed', 'blocked', 'cancelled'].map(s => h('option', { value: s, selected: s === stateFilter }, s || 'all')))),
      h('span', {}, `${page.total === 0 ? 0 : offset + 1}–${Math.min(offset + limit, page.total)} of ${page.total}`),
      h('button', { disabled: offset === 0, onclick: () => go('offset', String(Math.max(0, offset - limit))) }, '← previous'),
      h('button', { disabled: offset + limit >= page.total, onclick: () => go('offset', String(offset + limit)) }, 'next →'),
      csvLink(`${base}/cells` + (stateFilter ? '?state=' + enc(stateFilter) : ''))),
    table('cells-table', [{ key: 'cell', label: 'cell' }, { key: 'stage', label: 'stage' }, { key: 'method', label: 'method' },
      { key: 'size', label: 'size', num: 1 }, { key: 'subsample', label: 'subsample', num: 1 }, { key: 'seed', label: 'seed', num: 1 },
      { key: 'split', label: 'split' }, { key: 'state', label: 'state' }, { key: 'attempts', label: 'attempts', num: 1 },
      ...metrics.map(m => ({ key: m, label: m, num: 1 })), { key: 'error', label: 'reason' }],
    page.cells.map(c => h('tr', { 'data-key': c.key },
      td(h('a', { href: `#/sweep/${enc(id)}/cell/${enc(c.key)}` }, c.key.slice(0, 12))), td(c.stage), td(c.method), num(c.size), num(c.subsample),
      num(c.seed), td(c.split), td(c.state, { class: c.state === 'failed' || c.state === 'blocked' ? 'bad' : null }), num(c.attempts),
      metrics.map(m => num(c.metrics[m], f2(c.metrics[m]))), td((c.error || '').split('\n')[0]))), { sortable: true }));
}

// ------------------------------------------------------------------ one cell

function drawCurve(curve) {
  const W = 640, H = 300, L = 56, R = 20, T = 16, B = 40;
  const svg = h('svg', { xmlns: 'http://www.w3.org/2000/svg', width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'curve' });
  svg.append(h('rect', { x: 0, y: 0, width: W, height: H, fill: '#fff' }));
  const all = [...curve.train, ...curve.dev].filter(p => p[1] !== null);
  if (all.length === 0) return svg;
  const x1 = Math.max(1, curve.steps), [y0r, y1r] = [Math.min(...all.map(p => p[1])), Math.max(...all.map(p => p[1]))];
  const pad = (y1r - y0r || 1) * 0.06, y0 = y0r - pad, y1 = y1r + pad;
  const px = s => L + (s / x1) * (W - L - R), py = v => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  svg.append(h('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#333' }), h('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#333' }));
  for (const v of ticks(0, x1, 6)) svg.append(h('text', { x: px(v), y: H - B + 16, 'text-anchor': 'middle' }, String(v)));
  for (const v of ticks(y0, y1, 5)) {
    svg.append(h('line', { x1: L, y1: py(v), x2: W - R, y2: py(v), stroke: '#eef1f3' }), h('text', { x: L - 6, y: py(v) + 4, 'text-anchor': 'end' }, String(+v.toFixed(3))));
  }
  svg.append(h('text', { x: L + (W - L - R) / 2, y: H - 6, 'text-anchor': 'middle' }, 'step'));
  const path = pts => 'M' + pts.filter(p => p[1] !== null).map(p => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join('L');
  svg.append(h('line', { class: 'kept', x1: px(curve.kept_step), y1: T, x2: px(curve.kept_step), y2: H - B, stroke: '#888', 'stroke-dasharray': '5,4' }));
  if (curve.train.length) svg.append(h('path', { class: 'train', d: path(curve.train), fill: 'none', stroke: palette[0], 'stroke-width': 1.5 }));
  if (curve.dev.length) {
    svg.append(h('path', { class: 'dev', d: path(curve.dev), fill: 'none', stroke: palette[1], 'stroke-width': 2 }));
    for (const p of curve.dev.filter(p => p[1] !== null)) svg.append(h('circle', { cx: px(p[0]), cy: py(p[1]), r: 3.5, fill: palette[1] }, h('title', {}, `step ${p[0]}: dev loss ${p[1].toFixed(4)}`)));
  }
  const legend = [['training loss', palette[0]], ['dev loss', palette[1]], [`kept step ${curve.kept_step}`, '#888']];
  legend.forEach(([label, color], i) => svg.append(h('line', { x1: W - R - 150, y1: T + 10 + i * 16, x2: W - R - 132, y2: T + 10 + i * 16, stroke: color, 'stroke-width': 2 }),
    h('text', { x: W - R - 128, y: T + 14 + i * 16 }, label)));
  return svg;
}

async function cellView(id, key) {
  const base = '/api/sweeps/' + enc(id);
  const c = await api(`${base}/cells/${enc(key)}`);
  const p = c.provenance || {};
  const r = c.result;
  const kv = (k, v) => [h('dt', {}, k), h('dd', {}, v === undefined || v === null || v === '' ? '–' : String(v))];
  const packing = p.packing ? (p.packing.packed && (p.packing.packed_with || []).length > 0 ? `packed with ${(p.packing.packed_with || []).length} cell(s): ${(p.packing.packed_with || []).map(x => x.slice(0, 12)).join(', ')}` : 'trained alone') : null;
  const metricRows = r ? Object.entries(r.metrics).map(([m, v]) => h('tr', {}, td(m), num(v, f2(v)))) : [];
  const segmentColumns = c.segment_metrics.map(m => ({ key: m, label: m, num: 1 }));
  const outputs = c.outputs.map(o => h('tr', {},
    num(o.index), td(o.source ?? ''), td(o.output), td(h('ul', {}, o.references.map(x => h('li', {}, x)))),
    c.segment_metrics.map(m => num(o.scores[m], f2(o.scores[m]))), num(o.output.length)));
  return h('div', { id: 'cell-view' },
    h('h1', {}, c.label, ' ', h('span', { class: 'muted' }, c.state)),
    h('dl', { class: 'kv', id: 'provenance' },
      kv('cell key', c.key), kv('sweep', c.sweep_id), kv('status', r ? `${r.status} (attempt ${r.attempt})` : c.state), r && r.error ? kv('error', r.error) : null,
      kv('dataset hash', p.dataset_hash), kv('manifest hash', p.manifest_hash), kv('base model hash', p.base_model_hash), kv('worker', r?.worker),
      kv('device', r?.device), kv('wall time', r ? duration(r.wall_seconds) : null), kv('peak memory', r ? `${(r.peak_memory_bytes / 1048576).toFixed(0)} MiB` : null),
      kv('packing', packing), kv('finished', r ? new Date(r.finished_at).toLocaleString() : null)),
    h('h2', {}, 'Scores'), table('metrics-table', [{ key: 'metric', label: 'metric' }, { key: 'value', label: 'value', num: 1 }], metricRows),
    h('h2', {}, 'Training curve'),
    h('div', { id: 'curve' }, c.curve ? drawCurve(c.curve) : h('p', { class: 'muted' }, 'No training curve stored for this cell.')),
    h('h2', {}, `Outputs beside references (${c.outputs.length})`),
    c.outputs_note ? h('p', { class: 'muted', id: 'outputs-note' }, c.outputs_note) : null,
    h('div', { class: 'downloads' }, csvLink(`${base}/cells/${enc(c.key)}`)),
    table('outputs-table', [{ key: 'index', label: '#', num: 1 }, { key: 'source', label: 'input' }, { key: 'output', label: 'output' },
      { key: 'references', label: 'references' }, ...segmentColumns, { key: 'length', label: 'length', num: 1 }], outputs, { sortable: true }),
    h('h2', {}, 'Definition'), h('pre', { id: 'definition' }, JSON.stringify(c.definition, null, 2)),
    h('details', {}, h('summary', {}, 'Full provenance'), h('pre', {}, JSON.stringify(c.provenance, null, 2))));
}
