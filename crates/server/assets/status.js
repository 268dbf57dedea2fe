// The supervisor's live status page: asks for the admin token once (kept in this tab's
// sessionStorage), then reads /v1/admin/status every 2 s and draws it. Everything from the
// server is put in the page as text, never as HTML.
'use strict';
(function () {
  const KEY = 'sadomap-admin-token';
  const EVERY_MS = 2000;
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let memo = ''; // the token, also when sessionStorage is off

  function token() {
    try { return sessionStorage.getItem(KEY) || ''; } catch (e) { return ''; }
  }
  function setToken(t) {
    try {
      if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY);
    } catch (e) { /* storage off: the token lives until the page closes */ }
    memo = t;
  }

  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  }

  function message(text) {
    const m = $('message');
    m.textContent = text || '';
    m.hidden = !text;
  }

  function showLogin(why) {
    $('content').hidden = true;
    $('login').hidden = false;
    $('summary').textContent = 'The status needs the admin token.';
    message(why);
    $('token').focus();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(load, EVERY_MS);
  }

  function bytes(n) {
    if (n == null) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
  }

  function clock(unixMs) {
    return new Date(unixMs).toLocaleTimeString([], { hour12: false });
  }

  function stateOf(inst) {
    if (inst.phase === 'running') return inst.health;
    if (inst.phase === 'backing_off') return 'backoff ' + Math.ceil(inst.remaining_ms / 1000) + ' s';
    return inst.phase || '–';
  }

  function probeText(c) {
    if (!c) return '–';
    if (c.status === 'passed') return c.latency_ms != null ? 'ok ' + c.latency_ms.toFixed(1) + ' ms' : 'ok';
    const f = c.failure || {};
    return 'failed (' + (f.kind || '?') + ')';
  }

  function history(checks) {
    const h = el('span', { class: 'history', role: 'img' });
    let failed = 0;
    for (const c of checks || []) {
      const ok = c.status === 'passed';
      if (!ok) failed++;
      const title = (ok ? 'passed' : 'failed') +
        (c.latency_ms != null ? ', ' + c.latency_ms.toFixed(1) + ' ms' : '') +
        ', CPU ' + (c.cpu_percent || 0).toFixed(0) + ' %, ' + bytes(c.memory_bytes);
      h.append(el('span', { class: ok ? 'passed' : 'failed', title }));
    }
    const n = (checks || []).length;
    h.setAttribute('aria-label', n + ' checks, ' + failed + ' failed');
    return h;
  }

  async function restart(service, button) {
    button.disabled = true;
    try {
      const r = await fetch('/v1/admin/services/' + encodeURIComponent(service) + '/restart', {
        method: 'POST', headers: { Authorization: 'Bearer ' + (memo || token()) },
      });
      const body = await r.json().catch(() => ({}));
      message(r.ok ? body.accepted : (body.message || 'HTTP ' + r.status));
    } catch (e) {
      message('The server does not answer: ' + e.message);
    } finally {
      button.disabled = false;
    }
  }

  function renderServices(status) {
    const body = $('services').tBodies[0];
    const rows = [];
    for (const s of status.services || []) {
      const head = el('tr', { class: 'service' });
      const info = [s.role, 'desired ' + s.desired];
      // Only the workers scale on queue depth.
      if (s.role === 'worker' && s.queue_depth != null) info.push('queue depth ' + s.queue_depth);
      if (s.forecast_mape != null) info.push('forecast error ' + (s.forecast_mape * 100).toFixed(1) + ' %');
      const button = el('button', { type: 'button', text: 'Restart' });
      button.setAttribute('aria-label', 'Restart ' + s.name + ' one instance at a time');
      button.addEventListener('click', () => restart(s.name, button));
      const th = el('th', { scope: 'rowgroup', colspan: '10' },
        el('strong', { text: s.name }), ' · ' + info.join(' · ') + ' ', button);
      head.append(th);
      head.dataset.service = s.name;
      rows.push(head);
      for (const i of s.instances || []) {
        const state = stateOf(i);
        const c = i.last_check;
        const tr = el('tr', { 'data-service': s.name, 'data-state': state },
          el('td', { text: s.name }),
          el('td', { class: 'num', text: String(i.replica) }),
          el('td', { text: i.pid != null ? String(i.pid) : (i.instance ? i.instance.slice(0, 12) : '–') }),
          el('td', { class: 'state-' + state.split(' ')[0], text: state }),
          el('td', { class: 'num', text: String(i.restarts) }),
          el('td', { text: i.last_restart_reason || '–' }),
          el('td', { text: probeText(c) }),
          el('td', { class: 'num', text: c ? c.cpu_percent.toFixed(0) + ' %' : '–' }),
          el('td', { class: 'num', text: c ? bytes(c.memory_bytes) : '–' }),
          el('td', {}, history(i.checks)));
        rows.push(tr);
      }
    }
    body.replaceChildren(...rows);
  }

  function renderQueues(queues) {
    const body = $('queues').tBodies[0];
    if (!queues.length) {
      body.replaceChildren(el('tr', {}, el('td', { colspan: '6', text: 'No queue has jobs.' })));
      return;
    }
    body.replaceChildren(...queues.map((q) => el('tr', { 'data-queue': q.queue },
      el('th', { scope: 'row', text: q.queue }),
      el('td', { class: 'num', text: String(q.ready) }),
      el('td', { class: 'num', text: String(q.scheduled) }),
      el('td', { class: 'num', text: String(q.running) }),
      el('td', { class: 'num', text: String(q.dead) }),
      el('td', { class: 'num', text: q.oldest_ready_ms ? (q.oldest_ready_ms / 1000).toFixed(1) + ' s' : '–' }))));
  }

  function describe(e) {
    switch (e.event) {
      case 'restarted': return 'replaced (' + e.reason + ')' + (e.delay_ms ? ' after ' + e.delay_ms + ' ms backoff' : '');
      case 'failure_detected': return 'failure: ' + (e.failure && (e.failure.kind || JSON.stringify(e.failure)));
      case 'instance_started': return 'started replica ' + e.replica + (e.pid ? ' (pid ' + e.pid + ')' : '');
      case 'health_changed': return e.from + ' → ' + e.to;
      case 'rolling_restarted': return 'rolling restart of ' + e.instances + ' instances in ' + e.took_ms + ' ms';
      case 'leases_released': return e.jobs + ' jobs of ' + e.worker_id + ' back on the queue';
      case 'runtime_failed': return e.operation + ' failed: ' + e.error;
      case 'protective_mode_entered': return 'PROTECTIVE MODE on: ' + e.failures + ' failures in ' + e.window_secs + ' s';
      case 'protective_mode_left': return 'protective mode off after ' + e.after_secs + ' s';
      case 'scaled': return e.from + ' → ' + e.to + ' replicas (' + e.reason + ')';
      default: return e.event;
    }
  }

  function eventItem(e) {
    return el('li', { 'data-event': e.event },
      el('time', { datetime: new Date(e.unix_ms).toISOString(), text: clock(e.unix_ms) }),
      ' ', el('strong', { text: e.service || 'supervisor' }), ' ', describe(e));
  }

  function renderEvents(events) {
    const scaling = events.filter((e) => e.event === 'scaled').reverse();
    const others = events.filter((e) => e.event !== 'scaled').reverse();
    $('scaling').replaceChildren(...(scaling.length ? scaling.map(eventItem)
      : [el('li', { text: 'No scaling decision yet.' })]));
    $('events').replaceChildren(...(others.length ? others.map(eventItem)
      : [el('li', { text: 'Nothing yet.' })]));
  }

  function render(d) {
    const st = d.status || {};
    const n = (st.services || []).reduce((a, s) => a + (s.instances || []).length, 0);
    $('summary').textContent = 'Runtime ' + (st.runtime || '?') + ' · ' + n + ' instances · tick ' +
      (st.ticks || 0) + ' · updated ' + clock(Date.parse(d.generated_at));
    $('protective').hidden = !st.protective_mode;
    renderServices(st);
    renderQueues(d.queues || []);
    renderEvents(d.events || []);
    $('login').hidden = true;
    $('content').hidden = false;
  }

  async function load() {
    const t = memo || token();
    if (!t) { showLogin(''); return; }
    let r;
    try {
      r = await fetch('/v1/admin/status', { headers: { Authorization: 'Bearer ' + t }, cache: 'no-store' });
    } catch (e) {
      message('The server does not answer: ' + e.message);
      schedule();
      return;
    }
    const body = await r.json().catch(() => null);
    if (r.status === 401 || r.status === 403) {
      setToken('');
      showLogin(body && body.message ? body.message : 'The token was not accepted.');
      return;
    }
    if (!r.ok) {
      message(body && body.message ? body.message : 'HTTP ' + r.status);
      schedule();
      return;
    }
    message('');
    render(body);
    schedule();
  }

  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token').value.trim();
    $('token').value = '';
    setToken(t);
    load();
  });
  $('forget').addEventListener('click', () => {
    clearTimeout(timer);
    setToken('');
    showLogin('');
  });
  load();
})();
