// uplinkd status page: polls /status and /history and draws them (no dependencies, no CDN).
'use strict';
(function () {
  var POLL_MS = 5000;
  var SPAN = { fine: 3600, coarse: 86400 };
  var COLORS = ['#2b7bb9', '#d9822b', '#8e44ad', '#16a085', '#7f8c8d'];
  // [key, title, index in a point, y maximum at least, format]
  var METRICS = [
    ['rtt', 'RTT', 1, 1, function (v) { return v.toFixed(1) + ' ms'; }],
    ['loss', 'Loss', 2, 1, function (v) { return Math.round(v * 100) + ' %'; }],
    ['jitter', 'Jitter', 3, 1, function (v) { return v.toFixed(1) + ' ms'; }]
  ];
  var W = 600, H = 90;
  // The view is in the address (#24h), so a bookmark keeps it.
  var view = location.hash === '#24h' ? 'coarse' : 'fine', status = null, history = null, failedSince = null;

  function h(tag, attrs, kids) {
    var svg = ['svg', 'polyline', 'line', 'rect', 'title', 'g'].indexOf(tag) >= 0;
    var e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    [].concat(kids === undefined ? [] : kids).forEach(function (c) {
      e.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    });
    return e;
  }
  function clock(t) {
    var d = new Date(t * 1000), p = function (n) { return (n < 10 ? '0' : '') + n; };
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }
  function ago(s) {
    s = Math.max(0, Math.round(s));
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
    return Math.round(s / 86400) + ' d';
  }
  function fmt(v, m) { return v === null || v === undefined ? '–' : m[4](v); }

  function graph(wan, series, marks, m, now) {
    var step = view === 'fine' ? history.fine_step : history.coarse_step;
    var span = SPAN[view], t0 = now - span;
    var x = function (t) { return ((t - t0) / span * W).toFixed(1); };
    var max = m[3];
    series.forEach(function (s) {
      s[view].forEach(function (p) { if (p[m[2]] !== null && p[0] >= t0) max = Math.max(max, p[m[2]] * 1.15); });
    });
    if (m[0] === 'loss') max = 1;
    var y = function (v) { return (H - 2 - v / max * (H - 4)).toFixed(1); };
    var svg = h('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', 'data-metric': m[0], 'data-wan': wan });
    // Shade the spans a WAN spent down or degraded, from its marks.
    var open = null;
    marks.concat([{ t: now, to: 'end' }]).forEach(function (k) {
      if (open && open.t < now) {
        var a = Math.max(open.t, t0);
        if (k.t > t0) svg.appendChild(h('rect', { 'class': 'span-' + open.to, x: x(a), y: 0, width: Math.max(1, x(k.t) - x(a)), height: H }));
      }
      open = k.to === 'down' || k.to === 'degraded' ? k : null;
    });
    series.forEach(function (s, i) {
      var runs = [], run = [], prev = null;
      s[view].forEach(function (p) {
        var v = p[m[2]];
        if (v === null || p[0] < t0 || (prev !== null && p[0] - prev > 2 * step)) { if (run.length) runs.push(run); run = []; }
        if (v !== null && p[0] >= t0) run.push(x(p[0] + step / 2) + ',' + y(v));
        prev = p[0];
      });
      if (run.length) runs.push(run);
      runs.forEach(function (r) {
        if (r.length === 1) r.push((parseFloat(r[0]) + 2) + ',' + r[0].split(',')[1]);
        svg.appendChild(h('polyline', { points: r.join(' '), stroke: COLORS[i % COLORS.length], 'data-target': s.target }));
      });
    });
    marks.forEach(function (k) {
      if (k.t < t0) return;
      svg.appendChild(h('line', { 'class': 'mark ' + k.kind, x1: x(k.t), x2: x(k.t), y1: 0, y2: H, 'data-mark': k.kind, 'data-wan': wan, 'data-t': k.t },
        h('title', {}, clock(k.t) + ' ' + k.from + ' → ' + k.to + ': ' + k.reason)));
    });
    var cur = series.map(function (s) { return fmt(s.now ? s.now[m[0]] : null, m); }).join(' / ');
    return h('div', { 'class': 'graph' }, [
      h('div', { 'class': 'cap' }, [h('b', {}, m[1]), h('span', {}, 'now ' + cur + ' · top ' + m[4](max))]),
      svg,
      h('div', { 'class': 'axis' }, [h('span', {}, '−' + (view === 'fine' ? '1 h' : '24 h')), h('span', {}, 'now')])
    ]);
  }

  function card(l, now) {
    var series = (history ? history.series : []).filter(function (s) { return s.wan === l.wan; });
    series.forEach(function (s) {
      var t = l.targets.filter(function (x) { return x.address === s.target; })[0];
      s.now = t && { rtt: t.rtt_seconds === null ? null : t.rtt_seconds * 1000, loss: t.loss_ratio, jitter: t.jitter_seconds === null ? null : t.jitter_seconds * 1000 };
    });
    var marks = (history ? history.marks : []).filter(function (k) { return k.wan === l.wan; });
    var kids = [
      h('h2', {}, [h('span', { 'class': 'name' }, l.wan), ' ', h('span', { 'class': 'label' }, l.label), h('span', { 'class': 'state' }, l.state)]),
      h('p', { 'class': 'since' }, l.since_unix ? 'since ' + clock(l.since_unix) + ' (' + ago(now - l.since_unix) + ')' : 'since start'),
      h('p', { 'class': 'reason' }, l.reason || 'no verdict yet'),
      h('p', { 'class': 'traffic', 'data-traffic': l.traffic || '' }, (l.traffic || 'not told yet') + (l.tier > 1 ? ' · tier ' + l.tier : '')),
      h('p', {}, 'loss ' + fmt(l.loss_ratio, METRICS[1]) + ' · RTT ' + fmt(l.rtt_seconds === null ? null : l.rtt_seconds * 1000, METRICS[0]) +
        ' · jitter ' + fmt(l.jitter_seconds === null ? null : l.jitter_seconds * 1000, METRICS[2]) + ' · ' + l.failovers_total + ' failover(s)')
    ];
    if (history) METRICS.forEach(function (m) { kids.push(graph(l.wan, series, marks, m, now)); });
    kids.push(h('ul', { 'class': 'legend' }, series.map(function (s, i) { return h('li', { style: 'color:' + COLORS[i % COLORS.length] }, s.target); })));
    return h('section', { 'class': 'wan st-' + l.state, 'data-wan': l.wan, 'data-state': l.state }, kids);
  }

  function render() {
    if (!status) return;
    var now = status.generated_unix;
    document.getElementById('router').textContent = status.router ? '· ' + status.router : '';
    var up = document.getElementById('updated');
    up.className = failedSince ? 'stale' : '';
    up.textContent = failedSince ? 'daemon unreachable since ' + clock(failedSince) + '; showing ' + clock(now)
      : 'updated ' + clock(now) + ' · v' + status.version;
    var wans = document.getElementById('wans');
    wans.replaceChildren.apply(wans, status.links.map(function (l) { return card(l, now); }));
    var rules = status.rules || [];
    var rl = document.getElementById('rules');
    rl.hidden = !rules.length;
    rl.querySelector('ul').replaceChildren.apply(rl.querySelector('ul'), rules.map(function (r) {
      return h('li', { 'data-rule': r.rule, 'data-wans': r.wans.join(',') },
        'rule ' + r.rule + ': ' + (r.wans.length ? r.wans.join(', ') : 'no WAN usable, last resort'));
    }));
    var body = document.querySelector('#events tbody');
    var marks = history ? history.marks.slice(-30).reverse() : [];
    body.replaceChildren.apply(body, marks.map(function (k) {
      return h('tr', { 'data-kind': k.kind, 'data-wan': k.wan }, [h('td', {}, clock(k.t)), h('td', {}, k.wan),
        h('td', { 'class': 'k-' + k.kind }, k.kind + ' (' + k.from + ' → ' + k.to + ')'), h('td', {}, k.reason)]);
    }));
    var r = status.reconcile;
    var rec = document.getElementById('reconcile');
    rec.className = r && r.outcome === 'error' ? 'err' : '';
    rec.textContent = r ? 'last reconcile ' + clock(r.last_unix) + ': ' + r.outcome + ', ' + r.changes + ' write(s)' +
      (r.error ? ' — ' + r.error : '') + ' · ' + r.runs_total + ' passes, ' + r.errors_total + ' failed' : 'no reconcile pass yet';
    var a = status.alerts;
    document.getElementById('alerts').textContent = a.pending.length + ' alert(s) pending, ' + a.sent_total + ' sent' +
      (a.pending.length ? ': ' + a.pending.map(function (p) { return p.subject; }).join('; ') : '');
    var told = history && history.told;
    document.getElementById('told').textContent = told ? 'last told the router (' + clock(told.t) + '):\n' + told.lines.join('\n') : '';
  }

  function get(path) {
    return fetch(path, { cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    });
  }
  function poll() {
    Promise.all([get('status'), get('history')]).then(function (v) {
      status = v[0]; history = v[1]; failedSince = null; render();
    }, function () {
      failedSince = failedSince || Date.now() / 1000; render();
    });
  }
  document.getElementById('views').addEventListener('click', function (e) {
    var v = e.target.getAttribute('data-view');
    if (!v) return;
    view = v;
    showView();
    render();
  });
  function showView() {
    [].forEach.call(document.querySelectorAll('#views button'), function (b) {
      b.className = b.getAttribute('data-view') === view ? 'on' : '';
    });
    window.history.replaceState(null, '', view === 'coarse' ? '#24h' : '#');
  }
  if (view === 'coarse') showView();
  poll();
  setInterval(poll, POLL_MS);
})();
