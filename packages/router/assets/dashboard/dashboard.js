// Flotilla router dashboard: draws the router's snapshot (GET /api/v1/dashboard, shape in
// packages/router/src/ops/dashboard/DashboardSnapshot.ts) and follows it live over Server-Sent Events
// (GET /dashboard/events), polling when the stream is down. Everything from the network (node ids, tool
// names, errors) is written with textContent only, never parsed as HTML.
'use strict';

(function dashboard() {
  /** Polling period while the event stream is down, ms. */
  var POLL_MS = 2000;
  /** Data older than this is flagged as stale, ms. */
  var STALE_MS = 5000;

  var state = { snapshot: null, receivedAt: 0, mode: 'connecting', source: null, pollTimer: null };

  // ---- tiny DOM helpers -------------------------------------------------------------------------------

  /** Element with attributes and children (strings become text nodes). */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var key in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, key)) continue;
        var value = attrs[key];
        if (value === undefined || value === null || value === false) continue;
        if (key === 'className') node.className = value;
        else node.setAttribute(key, String(value));
      }
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(parent, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) { append(parent, c); });
      return;
    }
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }

  function byId(id) {
    return document.getElementById(id);
  }

  function setText(id, text) {
    byId(id).textContent = text;
  }

  function replaceChildren(node, children) {
    while (node.firstChild) node.removeChild(node.firstChild);
    append(node, children);
  }

  /**
   * Puts freshly built rows into a table body, touching only what changed: an unchanged row or cell
   * stays the same element, so the page does not flicker and a selection (a trace id being copied)
   * survives the next update.
   */
  function patchRows(body, rows) {
    rows.forEach(function (fresh, i) {
      var current = body.rows[i];
      if (!current) {
        body.appendChild(fresh);
      } else if (current.outerHTML === fresh.outerHTML) {
        return;
      } else if (current.cells.length !== fresh.cells.length) {
        body.replaceChild(fresh, current);
      } else {
        for (var a = 0; a < fresh.attributes.length; a++) current.setAttribute(fresh.attributes[a].name, fresh.attributes[a].value);
        for (var r = current.attributes.length - 1; r >= 0; r--) {
          if (!fresh.hasAttribute(current.attributes[r].name)) current.removeAttribute(current.attributes[r].name);
        }
        var freshCells = Array.prototype.slice.call(fresh.cells);
        freshCells.forEach(function (cell, j) {
          if (current.cells[j].outerHTML !== cell.outerHTML) current.replaceChild(cell, current.cells[j]);
        });
      }
    });
    while (body.rows.length > rows.length) body.deleteRow(rows.length);
  }

  // ---- formatting --------------------------------------------------------------------------------------

  function fmtRate(perSecond) {
    if (perSecond === 0) return '0';
    if (perSecond < 0.1) return perSecond.toFixed(2);
    if (perSecond < 10) return perSecond.toFixed(1);
    return String(Math.round(perSecond));
  }

  function fmtPct(ratio) {
    if (ratio === null || ratio === undefined) return '—';
    if (ratio === 0) return '0%';
    if (ratio < 0.001) return '<0.1%';
    return (ratio * 100).toFixed(ratio < 0.1 ? 1 : 0) + '%';
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1) return ms.toFixed(2) + ' ms';
    if (ms < 100) return ms.toFixed(1) + ' ms';
    if (ms < 10000) return Math.round(ms) + ' ms';
    return (ms / 1000).toFixed(1) + ' s';
  }

  /** Agents measure the round trip in whole milliseconds: 0 means under one. */
  function fmtRtt(ms) {
    return ms < 1 ? '<1 ms' : fmtMs(ms);
  }

  function fmtDuration(seconds) {
    var s = Math.floor(seconds);
    if (s < 60) return s + 's';
    var m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + (s % 60) + 's';
    var h = Math.floor(m / 60);
    if (h < 24) return h + 'h ' + (m % 60) + 'm';
    return Math.floor(h / 24) + 'd ' + (h % 24) + 'h';
  }

  function fmtAgo(seconds) {
    if (seconds < 10) return seconds.toFixed(1) + ' s ago';
    return fmtDuration(seconds) + ' ago';
  }

  function fmtClock(epochMs) {
    var d = new Date(epochMs);
    function two(n) { return (n < 10 ? '0' : '') + n; }
    return two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds());
  }

  var STATUS_TONE = { healthy: 'ok', degraded: 'warn', draining: 'info', unhealthy: 'bad', gone: 'bad', left: 'off' };
  var BREAKER_TONE = { closed: 'ok', 'half-open': 'warn', open: 'bad' };
  var OUTCOME_TONE = { tool_error: 'warn', cancelled: 'off', invalid_request: 'off' };

  function pill(text, tone) {
    return el('span', { className: 'pill', 'data-tone': tone }, text);
  }

  // ---- sections ----------------------------------------------------------------------------------------

  function renderHeader(s) {
    var r = s.router;
    var readiness = r.readiness;
    setText('router-meta', 'strategy ' + r.strategy + ' · registry ' + readiness.registry.kind + ' · up ' + fmtDuration(r.uptimeS));

    var ready = byId('tile-ready');
    ready.dataset.level = !readiness.ready ? 'bad' : readiness.warnings.length ? 'warn' : 'ok';
    setText('ready-value', readiness.ready ? 'Ready' : 'Not ready');
    var problems = readiness.reasons.length ? readiness.reasons : readiness.warnings;
    var sub = byId('ready-sub');
    replaceChildren(sub, [
      'NATS ' + (readiness.nats.connected ? 'connected' : 'DISCONNECTED') + ' · registry ' + (readiness.registry.reachable ? 'reachable' : 'UNREACHABLE'),
      problems.length ? el('ul', { className: 'tile-reasons' + (readiness.reasons.length ? '' : ' warn') }, problems.map(function (p) { return el('li', null, p); })) : null,
    ]);

    var n = s.summary.nodes;
    var nodes = byId('tile-nodes');
    nodes.dataset.level = n.total === 0 ? 'bad' : n.unhealthy + n.gone > 0 ? 'bad' : n.healthy < n.total ? 'warn' : 'ok';
    setText('nodes-value', n.healthy + ' / ' + n.total);
    var parts = [];
    if (n.degraded) parts.push(n.degraded + ' degraded');
    if (n.draining) parts.push(n.draining + ' draining');
    if (n.unhealthy) parts.push(n.unhealthy + ' unhealthy');
    if (n.gone) parts.push(n.gone + ' gone');
    setText('nodes-sub', parts.length ? parts.join(' · ') : n.total ? 'all healthy' : 'no node registered');

    var tools = byId('tile-tools');
    tools.dataset.level = s.summary.tools ? 'ok' : 'bad';
    setText('tools-value', String(s.summary.tools));
    var replicaCount = s.tools.reduce(function (sum, t) { return sum + t.replicas.length; }, 0);
    setText('tools-sub', replicaCount + ' replicas on ' + (n.total - n.gone) + ' nodes');

    var sum = s.summary;
    byId('tile-rate').dataset.level = 'none';
    setText('rate-value', fmtRate(sum.callRate));
    setText('rate-sub', sum.calls + ' calls in the last ' + Math.round(sum.windowS) + ' s');

    var errors = byId('tile-errors');
    errors.dataset.level = sum.errorRate === null || sum.errorRate === 0 ? 'ok' : sum.errorRate >= 0.05 ? 'bad' : 'warn';
    setText('errors-value', fmtPct(sum.errorRate));
    setText('errors-sub', sum.errors + ' failed · ' + sum.toolErrors + ' tool errors (last ' + Math.round(sum.windowS) + ' s)');
    setText('tools-window', 'rates over the last ' + Math.round(sum.windowS) + ' s');
  }

  function loadCell(node) {
    if (!node.load) return el('span', { className: 'sub' }, node.status === 'gone' || node.status === 'left' ? '—' : 'no report');
    var l = node.load;
    var used = l.capacity ? l.inflight / l.capacity : 0;
    var tone = l.queued > 0 || used >= 1 ? 'bad' : used >= 0.75 ? 'warn' : 'ok';
    return el(
      'div',
      { className: 'load nowrap' },
      el('div', { className: 'bar' }, el('div', { className: 'bar-fill', 'data-tone': tone, style: null })),
      el('span', null, l.inflight + ' / ' + l.capacity + ' running'),
      el('span', { className: 'sub' }, ' · ' + l.queued + ' queued'),
    );
  }

  function renderNodes(s) {
    var body = byId('nodes').tBodies[0];
    var rows = s.nodes.map(function (node) {
      var ping = node.ping;
      var meta = [node.zone, 'v' + node.version].filter(Boolean).join(' · ');
      var statusCell = [pill(node.status, STATUS_TONE[node.status] || 'off')];
      if (node.leftAt !== null) statusCell.push(el('span', { className: 'sub' }, ' ' + fmtAgo(Math.max(0, s.generatedAt - node.leftAt) / 1000)));
      if (node.reasons.length) statusCell.push(el('ul', { className: 'reasons' }, node.reasons.map(function (r) { return el('li', null, r); })));
      var row = el(
        'tr',
        { 'data-node-id': node.nodeId, 'data-status': node.status },
        el('td', { className: 'nowrap' }, el('div', { className: 'node-id' }, node.nodeId), el('div', { className: 'sub', title: 'zone · agent version' }, meta)),
        el('td', { className: 'status-cell' }, statusCell),
        el('td', null, pill(node.breaker, BREAKER_TONE[node.breaker] || 'off')),
        el('td', null, loadCell(node)),
        el('td', { className: 'nowrap' }, el('span', null, node.router.outstanding + ' in flight'), el('div', { className: 'sub' }, node.router.queued + ' queued here')),
        el('td', { className: 'num' }, ping && ping.natsRttMs !== null ? fmtRtt(ping.natsRttMs) : '—'),
        el('td', { className: 'num' }, node.load ? fmtMs(node.load.eventLoopLagMs) : ping ? fmtMs(ping.eventLoopLagMs) : '—'),
        el('td', { className: 'num' }, ping ? fmtDuration(ping.uptimeS) : '—'),
        el('td', { className: 'num' }, node.heartbeatAgeS === null ? '—' : fmtAgo(node.heartbeatAgeS)),
        el(
          'td',
          null,
          el('div', { className: 'chips' }, node.servers.map(function (srv) {
            return el('span', { className: 'chip', 'data-tone': srv.connected ? null : 'off', title: srv.toolCount + ' tools' + (srv.connected ? '' : ', not connected') }, srv.name);
          })),
        ),
      );
      // The bar's width is data, set through the style property (no inline style attribute under the CSP).
      var fill = row.querySelector('.bar-fill');
      if (fill && node.load) fill.style.width = Math.min(100, node.load.capacity ? (100 * node.load.inflight) / node.load.capacity : 0) + '%';
      return row;
    });
    patchRows(body, rows);
    byId('nodes-empty').hidden = rows.length > 0;
  }

  function renderTools(s) {
    var body = byId('tools').tBodies[0];
    var rows = s.tools.map(function (tool) {
      var errorClass = tool.errorRate === null || tool.errorRate === 0 ? 'zero' : tool.errorRate >= 0.05 ? 'rate-bad' : 'rate-warn';
      return el(
        'tr',
        { 'data-tool': tool.name },
        el(
          'td',
          null,
          el('span', { className: 'tool-name' }, tool.name),
          tool.retryable ? el('span', { className: 'tag', title: 'read-only or idempotent: retried on another replica even after a node accepted it' }, 'retryable') : null,
          el('div', { className: 'sub' }, tool.server ? 'server ' + tool.server : 'not in the catalog'),
        ),
        el(
          'td',
          null,
          tool.replicas.length
            ? el('div', { className: 'chips' }, tool.replicas.map(function (r) {
                var tone = r.breaker === 'open' ? 'bad' : r.available ? 'ok' : 'off';
                var title = r.available ? 'available' : 'not available (draining, disconnected or breaker open)';
                return el('span', { className: 'chip', 'data-tone': tone, title: title + ' · breaker ' + r.breaker }, r.nodeId);
              }))
            : el('span', { className: 'sub' }, 'no replica'),
        ),
        el('td', { className: 'num' + (tool.calls ? '' : ' zero') }, fmtRate(tool.callRate)),
        el('td', { className: 'num ' + errorClass, title: tool.errors + ' of ' + tool.calls + ' calls failed' }, fmtPct(tool.errorRate)),
        el('td', { className: 'num' + (tool.toolErrors ? ' rate-warn' : ' zero') }, String(tool.toolErrors)),
        el('td', { className: 'num' + (tool.calls ? '' : ' zero') }, fmtMs(tool.meanMs)),
      );
    });
    patchRows(body, rows);
    byId('tools-empty').hidden = rows.length > 0;
  }

  function renderFailures(s) {
    var body = byId('failures').tBodies[0];
    var rows = s.failures.map(function (f) {
      var attempts = f.attempts.map(function (a) { return a.nodeId + ' ' + a.result; }).join(' → ');
      return el(
        'tr',
        { 'data-tool': f.tool, 'data-outcome': f.outcome, 'data-trace-id': f.traceId, 'data-call-id': f.callId },
        el('td', { className: 'num' }, el('div', null, fmtClock(f.at)), el('div', { className: 'sub' }, fmtAgo(Math.max(0, s.generatedAt - f.at) / 1000))),
        el('td', null, el('span', { className: 'tool-name' }, f.tool)),
        el('td', { className: 'nowrap' }, f.nodeId || el('span', { className: 'sub' }, 'none')),
        el('td', null, pill(f.outcome, OUTCOME_TONE[f.outcome] || 'bad'), el('div', { className: 'sub' }, fmtMs(f.durationMs))),
        el('td', null, el('div', { className: 'error-text', title: f.error || '' }, f.error || '—')),
        el('td', { className: 'attempts' }, attempts || '—'),
        el(
          'td',
          null,
          f.traceId ? el('div', { className: 'trace', title: 'trace id' }, f.traceId) : el('div', { className: 'sub' }, 'no trace'),
          f.callId ? el('div', { className: 'sub mono nowrap', title: 'call id (on router and agent log lines)' }, 'call ' + f.callId) : null,
        ),
      );
    });
    patchRows(body, rows);
    byId('failures-empty').hidden = rows.length > 0;
  }

  function render(s) {
    renderHeader(s);
    renderNodes(s);
    renderTools(s);
    renderFailures(s);
    setText('footer', 'Snapshot of ' + fmtClock(s.generatedAt) + ' · JSON at api/v1/dashboard · metrics at /metrics');
  }

  // ---- data sources ------------------------------------------------------------------------------------

  function accept(snapshot) {
    if (!snapshot || snapshot.v !== 1) return;
    state.snapshot = snapshot;
    state.receivedAt = Date.now();
    render(snapshot);
    document.body.dataset.generatedAt = String(snapshot.generatedAt);
    refreshLiveness();
  }

  function setMode(mode) {
    state.mode = mode;
    refreshLiveness();
  }

  function refreshLiveness() {
    var live = byId('live');
    var age = state.receivedAt ? Date.now() - state.receivedAt : Infinity;
    var stale = age > STALE_MS;
    var shown = stale && state.mode !== 'connecting' && state.mode !== 'signed-out' ? 'offline' : state.mode;
    live.dataset.state = shown;
    setText('live-text', shown === 'live' ? 'live' : shown === 'polling' ? 'polling every ' + POLL_MS / 1000 + ' s' : shown === 'offline' ? 'no connection' : shown === 'signed-out' ? 'sign in needed' : 'connecting…');
    var banner = byId('stale-banner');
    if (stale && state.snapshot) {
      banner.hidden = false;
      banner.textContent = 'No update from the router for ' + fmtDuration(age / 1000) + ': what you see is from ' + fmtClock(state.snapshot.generatedAt) + '.';
      document.body.classList.add('stale');
    } else {
      banner.hidden = true;
      document.body.classList.remove('stale');
    }
  }

  function poll() {
    return fetch('api/v1/dashboard', { cache: 'no-store', credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (res) {
        if (res.status === 401 || res.status === 403) return res.json().then(function (body) { signOut(res.status === 403 ? body.message : ''); });
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json().then(accept);
      })
      .catch(function () { /* shown by the staleness banner */ });
  }

  // ---- sign-in (when the router's front door authenticates) ---------------------------------------------
  // EventSource cannot send an Authorization header, and a token in a URL ends up in logs and history: the
  // page posts the credential once (dashboard/session) and the router answers with a short-lived HttpOnly,
  // SameSite=Strict cookie that the stream and the polls carry. The page never stores the credential.

  function signOut(message) {
    if (state.source) {
      state.source.close();
      state.source = null;
    }
    stopPolling();
    setMode('signed-out');
    byId('sign-in').hidden = false;
    setText('sign-in-error', message || '');
  }

  function signIn(event) {
    event.preventDefault();
    var input = byId('sign-in-key');
    var credential = input.value.trim();
    if (!credential) return;
    fetch('dashboard/session', { method: 'POST', cache: 'no-store', credentials: 'same-origin', headers: { authorization: 'Bearer ' + credential } })
      .then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok) {
            setText('sign-in-error', res.status === 401 ? 'This credential is not accepted.' : body.message || 'HTTP ' + res.status);
            return;
          }
          input.value = '';
          byId('sign-in').hidden = true;
          setText('sign-in-error', '');
          start();
        });
      })
      .catch(function () { setText('sign-in-error', 'The router cannot be reached.'); });
  }

  /** Reads a first snapshot (which says whether a sign-in is needed), then goes live. */
  function start() {
    setMode('connecting');
    fetch('api/v1/dashboard', { cache: 'no-store', credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (res) {
        if (res.status === 401 || res.status === 403) return res.json().then(function (body) { signOut(res.status === 403 ? body.message : ''); });
        if (res.ok) res.json().then(accept).catch(function () {});
        connect();
      })
      .catch(connect);
  }

  function startPolling() {
    if (state.pollTimer) return;
    setMode('polling');
    poll();
    state.pollTimer = setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    clearInterval(state.pollTimer);
    state.pollTimer = null;
  }

  function connect() {
    if (typeof EventSource !== 'function') return startPolling();
    var source = new EventSource('dashboard/events');
    state.source = source;
    source.onopen = function () {
      stopPolling();
      setMode('live');
    };
    source.onmessage = function (event) {
      try {
        accept(JSON.parse(event.data));
      } catch (err) {
        /* a malformed frame is skipped; the next one comes within a second */
      }
      if (state.mode !== 'live') {
        stopPolling();
        setMode('live');
      }
    };
    // EventSource reconnects by itself (the router asks for 2 s); poll meanwhile. A 503 (too many
    // streams) closes it for good: then polling is how this page stays current.
    source.onerror = function () {
      if (state.mode !== 'signed-out') startPolling();
    };
  }

  document.addEventListener('DOMContentLoaded', function () {
    byId('sign-in-form').addEventListener('submit', signIn);
    start();
    setInterval(refreshLiveness, 1000);
  });
})();
