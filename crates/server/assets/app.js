// The sadomap page: filters kept in the URL's hash (with the API's parameter names), results
// from /v1/places (paged with the cursor), a list parallel to the map, and the info window.
// Every string from the API reaches the page through textContent or attributes, never as HTML.
'use strict';

(() => {
  // Counted on the root element, so a test (or a curious visitor) can see that nothing failed.
  window.addEventListener('error', () => {
    const root = document.documentElement;
    root.dataset.jsErrors = String(Number(root.dataset.jsErrors || 0) + 1);
  });
  document.addEventListener('securitypolicyviolation', () => {
    const root = document.documentElement;
    root.dataset.jsErrors = String(Number(root.dataset.jsErrors || 0) + 1);
  });
  const I18N = window.SADOMAP_I18N;
  const KINDS = ['restaurant', 'parking', 'toilet'];
  const SORTS = [
    ['', 'sort_id'],
    ['distance-me', 'sort_distance_me'],
    ['distance-centre', 'sort_distance_centre'],
    ['name', 'sort_name'],
    ['rating', 'sort_rating'],
    ['price', 'sort_price'],
  ];
  const RATINGS = ['3', '3.5', '4', '4.5'];
  /** Stop paging after this many places (the island has a few thousand); the count says so. */
  const MAX_PLACES = 5000;
  const WEEKDAYS = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

  const $ = (id) => document.getElementById(id);
  const S = {
    lang: 'ja',
    config: { max_limit: 1000, leaflet: false },
    cuisines: new Map(),
    districts: [],
    features: [],
    places: [],
    total: 0,
    gen: 0,
    abort: null,
    me: null,
    locating: null,
    view: null,
    lastHash: null,
    f: defaults(),
  };

  function defaults() {
    return { kind: [...KINDS], q: '', cuisine: '', district: '', price_min: '', price_max: '', min_rating: '', open_now: false, feature: [], sort: '', near: '' };
  }

  /** A UI string in the current language, `{name}` filled from `vars`. */
  function t(key, vars) {
    const table = I18N[S.lang] || I18N.ja;
    let s = table[key] !== undefined ? table[key] : I18N.ja[key] !== undefined ? I18N.ja[key] : key;
    for (const [k, v] of Object.entries(vars || {})) s = s.split(`{${k}}`).join(String(v));
    return s;
  }

  /** An element with attributes (`text` for textContent, `class`, `on*` for listeners) and children. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
    return e;
  }

  // ---- the URL -------------------------------------------------------------------------------

  /** The hash of filter state `f`: the API's parameter names, plus `from=me` and `lang`. */
  function toHash(f) {
    const p = new URLSearchParams();
    if (f.kind.length !== KINDS.length) p.set('kind', f.kind.join(','));
    for (const k of ['q', 'cuisine', 'district', 'price_min', 'price_max', 'min_rating']) if (f[k]) p.set(k, f[k]);
    if (f.open_now) p.set('open_now', 'true');
    if (f.feature.length) p.set('feature', f.feature.join(','));
    if (f.sort === 'distance-me') {
      p.set('sort', 'distance');
      p.set('from', 'me');
    } else if (f.sort === 'distance-centre') {
      p.set('sort', 'distance');
      if (f.near) p.set('near', f.near);
    } else if (f.sort) p.set('sort', f.sort);
    if (S.lang !== 'ja') p.set('lang', S.lang);
    return p.toString();
  }

  /** Filter state and language from a hash; unknown values are dropped. */
  function fromHash(hash) {
    const p = new URLSearchParams(hash.replace(/^#/, ''));
    const f = defaults();
    const list = (k) => (p.get(k) || '').split(',').map((x) => x.trim()).filter(Boolean);
    if (p.has('kind')) f.kind = list('kind').filter((k) => KINDS.includes(k));
    for (const k of ['q', 'cuisine', 'district']) f[k] = (p.get(k) || '').slice(0, 200);
    for (const k of ['price_min', 'price_max']) if (/^[1-4]$/.test(p.get(k) || '')) f[k] = p.get(k);
    if (RATINGS.includes(p.get('min_rating'))) f.min_rating = p.get('min_rating');
    f.open_now = p.get('open_now') === 'true';
    f.feature = list('feature');
    const sort = p.get('sort') || '';
    if (sort === 'distance') {
      const near = p.get('near') || '';
      f.sort = p.get('from') === 'me' ? 'distance-me' : 'distance-centre';
      if (/^-?\d+(\.\d+)?,-?\d+(\.\d+)?$/.test(near)) f.near = near;
    } else if (['name', 'rating', 'price'].includes(sort)) f.sort = sort;
    return { f, lang: p.get('lang') === 'en' ? 'en' : 'ja' };
  }

  function writeHash() {
    const h = toHash(S.f);
    const want = h ? `#${h}` : '';
    if (location.hash !== want) history.replaceState(null, '', want || location.pathname);
    S.lastHash = location.hash;
  }

  // ---- the form ------------------------------------------------------------------------------

  function option(value, text, selected) {
    return el('option', { value, text, selected: selected || false });
  }

  /** Fills the selects and checkboxes whose labels depend on the language. */
  function fillControls() {
    const f = S.f;
    $('cuisine').replaceChildren(
      option('', t('any')),
      ...[...S.cuisines.values()].map((c) => option(c.id, `${S.lang === 'ja' ? c.label_ja : c.label_en} (${c.count})`)),
    );
    $('district').replaceChildren(
      option('', t('any')),
      ...S.districts.map((d) => option(d.name, `${districtName(d.name)} (${d.count})`)),
    );
    const prices = [1, 2, 3, 4].map((n) => option(String(n), t(`price_${n}`)));
    $('price_min').replaceChildren(option('', t('any')), ...prices);
    $('price_max').replaceChildren(option('', t('any')), ...prices.map((o) => o.cloneNode(true)));
    $('min_rating').replaceChildren(option('', t('rating_any')), ...RATINGS.map((r) => option(r, t('rating_n', { n: r }))));
    $('sort').replaceChildren(...SORTS.map(([v, k]) => option(v, t(k))));
    const box = $('features');
    box.replaceChildren(box.querySelector('legend'));
    for (const id of S.features) {
      box.append(el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'feature', value: id }), ` ${t(`feature_${id}`)}`));
    }
    stateToForm(f);
  }

  function stateToForm(f) {
    for (const box of document.querySelectorAll('input[name=kind]')) box.checked = f.kind.includes(box.value);
    $('q').value = f.q;
    for (const k of ['cuisine', 'district', 'price_min', 'price_max', 'min_rating', 'sort']) {
      const sel = $(k);
      const v = f[k];
      if (v && ![...sel.options].some((o) => o.value === v)) sel.append(option(v, v));
      sel.value = v;
    }
    $('open_now').checked = f.open_now;
    for (const box of document.querySelectorAll('input[name=feature]')) box.checked = f.feature.includes(box.value);
    if (f.feature.length) $('features-box').open = true;
  }

  function formToState() {
    const f = S.f;
    f.kind = [...document.querySelectorAll('input[name=kind]:checked')].map((b) => b.value);
    f.q = $('q').value.trim();
    for (const k of ['cuisine', 'district', 'price_min', 'price_max', 'min_rating']) f[k] = $(k).value;
    const sort = $('sort').value;
    if (sort !== 'distance-centre') f.near = '';
    f.sort = sort;
    f.open_now = $('open_now').checked;
    f.feature = [...document.querySelectorAll('input[name=feature]:checked')].map((b) => b.value);
  }

  // ---- the API -------------------------------------------------------------------------------

  async function getJSON(url, signal) {
    const r = await fetch(url, { signal, headers: { Accept: 'application/json' } });
    const body = await r.json().catch(() => null);
    if (!r.ok) throw new Error((body && body.message) || `HTTP ${r.status}`);
    return body;
  }

  /** The visitor's position, or null when it cannot be had (asked once). */
  function locate() {
    if (!S.locating) {
      S.locating = new Promise((resolve) => {
        if (!navigator.geolocation) return resolve(null);
        navigator.geolocation.getCurrentPosition(
          (p) => resolve({ lat: p.coords.latitude, lng: p.coords.longitude }),
          () => resolve(null),
          { timeout: 8000, maximumAge: 300000 },
        );
      });
    }
    return S.locating;
  }

  const point = (c) => `${c.lat.toFixed(5)},${c.lng.toFixed(5)}`;
  const fallbackCentre = () => (S.view ? S.view.centre() : { lat: 38.02, lng: 138.37 });

  /** The /v1/places parameters of the current filters (without limit, cursor and total). */
  async function apiQuery() {
    const f = S.f;
    const p = new URLSearchParams();
    if (f.kind.length < KINDS.length) p.set('kind', f.kind.join(','));
    for (const k of ['cuisine', 'district', 'price_min', 'price_max', 'min_rating', 'q']) if (f[k]) p.set(k, f[k]);
    if (f.open_now) p.set('open_now', 'true');
    if (f.feature.length) p.set('feature', f.feature.join(','));
    notice('');
    if (f.sort === 'distance-me') {
      if (!S.me) {
        setCount(t('locating'));
        S.me = await locate();
        if (S.view) S.view.setMe(S.me);
      }
      if (S.me) p.set('near', point(S.me));
      else {
        notice(t('locate_failed'));
        p.set('near', point(fallbackCentre()));
      }
    } else if (f.sort === 'distance-centre') {
      p.set('near', f.near || point(fallbackCentre()));
    } else if (f.sort) p.set('sort', f.sort);
    return p;
  }

  /** Loads every place matching the filters, page by page; a newer call cancels an older. */
  async function load() {
    const gen = ++S.gen;
    if (S.abort) S.abort.abort();
    const ctl = new AbortController();
    S.abort = ctl;
    const panel = $('results-panel');
    panel.setAttribute('aria-busy', 'true');
    setCount(t('loading'));
    try {
      const query = await apiQuery();
      if (gen !== S.gen) return;
      let places = [];
      let total = 0;
      if (S.f.kind.length) {
        let cursor = null;
        do {
          const p = new URLSearchParams(query);
          p.set('limit', String(S.config.max_limit || 1000));
          p.set('total', 'true');
          if (cursor) p.set('cursor', cursor);
          const page = await getJSON(`/v1/places?${p}`, ctl.signal);
          if (!cursor) total = page.total;
          places = places.concat(page.places);
          cursor = page.next_cursor;
        } while (cursor && places.length < MAX_PLACES);
      }
      if (gen !== S.gen) return;
      S.places = places;
      S.total = total;
      render();
      panel.dataset.query = query.toString();
      panel.dataset.loaded = String(gen);
    } catch (e) {
      if (e.name === 'AbortError' || gen !== S.gen) return;
      S.places = [];
      render();
      setCount(t('error', { msg: e.message }));
      panel.dataset.query = 'error';
    } finally {
      if (gen === S.gen) panel.setAttribute('aria-busy', 'false');
    }
  }

  // ---- rendering -----------------------------------------------------------------------------

  function setCount(text) {
    $('count').textContent = text;
  }

  function notice(text) {
    const n = $('notice');
    n.textContent = text;
    n.hidden = !text;
  }

  const districtName = (name) => (S.lang === 'ja' ? name : t(`district_${name}`) === `district_${name}` ? name : t(`district_${name}`));

  function cuisineLabel(p) {
    if (!p.cuisine) return null;
    const c = S.cuisines.get(p.cuisine);
    if (!c) return p.cuisine_label_ja || p.cuisine;
    return S.lang === 'ja' ? c.label_ja : c.label_en;
  }

  const kindLabel = (p) => t(`kind_${p.kind}`);
  const placeName = (p) => (S.lang === 'en' && p.name_en ? p.name_en : p.name);

  function distanceText(m) {
    if (m === null || m === undefined) return null;
    return m < 1000 ? t('distance_m', { n: Math.round(m) }) : t('distance_km', { n: (m / 1000).toFixed(1) });
  }

  /** Japanese hour texts from the API (11時00分～翌2時00分, 定休日) in the page's language. */
  function hoursText(s) {
    if (S.lang === 'ja') return s;
    return s
      .replace(/24 時間営業/g, 'Open 24 hours')
      .replace(/定休日/g, 'Closed')
      .replace(/翌(\d+)時(\d+)分/g, '$1:$2 (next day)')
      .replace(/(\d+)時(\d+)分/g, '$1:$2')
      .replace(/～/g, '–');
  }

  function todayTokyo() {
    const wd = new Intl.DateTimeFormat('en-US', { timeZone: 'Asia/Tokyo', weekday: 'short' }).format(new Date());
    return WEEKDAYS[wd];
  }

  function dateText(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return new Intl.DateTimeFormat(S.lang === 'ja' ? 'ja-JP' : 'en-GB', { timeZone: 'Asia/Tokyo', dateStyle: 'medium', timeStyle: 'short' }).format(d);
  }

  function safeLink(url, text) {
    try {
      const u = new URL(url);
      if (u.protocol === 'https:' || u.protocol === 'http:') return el('a', { href: u.href, target: '_blank', rel: 'noopener noreferrer', text });
    } catch (_) {
      /* not a URL: shown as text */
    }
    return document.createTextNode(url);
  }

  function demoBadge(long) {
    return el('span', { class: 'badge badge-demo', title: t('demo_note'), text: long ? t('demo_note') : t('demo') });
  }

  function openBadge(p) {
    if (p.open_now === true) return el('span', { class: 'badge badge-open', text: t('open') });
    if (p.open_now === false) return el('span', { class: 'badge badge-closed', text: t('closed') });
    return null;
  }

  /** The info window of a place (the map's popup and the list's detail). */
  function info(p, headingId) {
    const rows = [];
    const row = (label, ...value) => rows.push(el('dt', { text: label }), el('dd', {}, ...value));
    const status = t(`status_${p.status}`);
    row(t('status'), el('span', { class: `status status-${p.status}`, text: status }), ' ', openBadge(p));
    if (p.hours && p.hours.week && p.hours.week.length) {
      const today = todayTokyo();
      const day = p.hours.week.find((d) => d.day === today);
      const label = (d) => (S.lang === 'ja' ? d.label_ja : d.label_en);
      const table = el('table', { class: 'week' }, ...p.hours.week.map((d) => el('tr', { class: d.day === today ? 'today' : null }, el('th', { scope: 'row', text: label(d) }), el('td', { text: hoursText(d.text) }))));
      const notes = (p.hours.notes || []).map((n) => el('p', { class: 'note', text: n }));
      row(t('hours'), day ? el('strong', { text: `${t('hours_today', { day: label(day) })}: ${hoursText(day.text)}` }) : null, el('details', {}, el('summary', { text: t('hours_week') }), table, ...notes));
    } else row(t('hours'), t('hours_unknown'));
    if (p.price_level) row(t('price_label'), t(`price_${p.price_level}`));
    if (p.rating !== null && p.rating !== undefined) row(t('rating'), t('rating_value', { stars: p.rating.toFixed(1), count: p.rating_count || 0 }));
    if (p.address) row(t('address'), p.address);
    if (p.phone) {
      const digits = p.phone.replace(/[^\d+]/g, '');
      row(t('phone'), digits ? el('a', { href: `tel:${digits}`, text: p.phone }) : p.phone);
    }
    if (p.website) row(t('website'), safeLink(p.website, p.website));
    const dist = distanceText(p.distance_m);
    if (dist) row(t('distance'), dist);
    if (p.features && p.features.length) row(t('features_label'), p.features.map((f) => t(`feature_${f}`)).join('、'));
    row(t('updated'), el('time', { datetime: p.updated_at, text: dateText(p.updated_at) }));
    row(t('sources'), (p.sources || []).map((s) => t(`source_${s}`)).join(', ') || '—');
    const sub = [kindLabel(p), cuisineLabel(p), p.district ? districtName(p.district) : null].filter(Boolean).join(' · ');
    const heading = el('h3', { class: 'info-name', id: headingId || null, text: placeName(p) });
    return el(
      'article',
      { class: 'info', lang: S.lang, 'data-id': String(p.id) },
      heading,
      S.lang === 'en' && p.name_en && p.name_en !== p.name ? el('p', { class: 'info-alt', lang: 'ja', text: p.name }) : null,
      p.demo ? el('p', { class: 'info-demo' }, demoBadge(true)) : null,
      el('p', { class: 'info-sub', text: sub }),
      p.description ? el('p', { class: 'info-desc', text: p.description }) : null,
      el('dl', {}, ...rows),
      p.google_maps_url && p.google_maps_url.startsWith('https://www.google.com/maps/') ? el('p', { class: 'info-gmaps' }, el('a', { href: p.google_maps_url, target: '_blank', rel: 'noopener noreferrer', text: t('google_maps') })) : null,
    );
  }

  const markerLabel = (p) => t('marker', { kind: cuisineLabel(p) || kindLabel(p), name: placeName(p) }) + (p.demo ? ` (${t('demo')})` : '');

  function swatch(p) {
    const color = p.kind === 'restaurant' ? window.SadoMapView.COLORS[p.marker_group] || window.SadoMapView.COLORS.general : window.SadoMapView.COLORS[p.kind];
    const s = el('span', { class: `sym sym-${p.kind}`, 'aria-hidden': 'true', text: { parking: 'P', toilet: 'WC' }[p.kind] || '' });
    s.style.background = color;
    return s;
  }

  function render() {
    const located = S.places.filter((p) => p.location).length;
    if (S.view) S.view.setPlaces(S.places);
    if (!S.f.kind.length) setCount(t('no_kind'));
    else if (!S.places.length) setCount(`${t('count', { n: 0 })}。${t('none')}`);
    else if (S.total > S.places.length) setCount(t('count_partial', { n: S.total, m: S.places.length }));
    else setCount(S.view ? t('count_map', { n: S.total, m: located }) : t('count', { n: S.total }));
    const ol = $('results');
    const items = S.places.map((p) => {
      const meta = [cuisineLabel(p) || kindLabel(p), p.district ? districtName(p.district) : null, distanceText(p.distance_m), p.location ? null : t('no_location')].filter(Boolean).join(' · ');
      const btn = el('button', { type: 'button', class: 'item', 'data-id': String(p.id), onclick: () => showDetail(p, btn) }, swatch(p), el('span', { class: 'item-text' }, el('span', { class: 'item-name', text: placeName(p) }), el('span', { class: 'item-meta', text: meta })), openBadge(p), p.demo ? demoBadge(false) : null);
      return el('li', {}, btn);
    });
    ol.replaceChildren(...items);
    hideDetail(false);
  }

  let detailReturn = null;

  function showDetail(p, from) {
    detailReturn = from || null;
    const d = $('detail');
    d.replaceChildren(el('button', { type: 'button', class: 'btn back', text: t('back'), onclick: () => hideDetail(true) }), info(p, 'detail-name'));
    d.hidden = false;
    d.dataset.id = String(p.id);
    d.onkeydown = (e) => {
      if (e.key === 'Escape') hideDetail(true);
    };
    $('results').hidden = true;
    d.focus();
    if (S.view) S.view.focus(p);
  }

  function hideDetail(restoreFocus) {
    const d = $('detail');
    if (d.hidden) return;
    d.hidden = true;
    d.replaceChildren();
    delete d.dataset.id;
    $('results').hidden = false;
    if (restoreFocus && detailReturn && document.body.contains(detailReturn)) detailReturn.focus();
  }

  /** A marker was chosen on the map: mark its list item. */
  function markSelected(p) {
    for (const b of document.querySelectorAll('#results .item[aria-current]')) b.removeAttribute('aria-current');
    const b = document.querySelector(`#results .item[data-id="${p.id}"]`);
    if (b) {
      b.setAttribute('aria-current', 'true');
      b.scrollIntoView({ block: 'nearest' });
    }
  }

  /** Texts fixed in the HTML, by data-i18n attributes. */
  function translateStatic() {
    document.documentElement.lang = S.lang;
    document.title = t('title');
    for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
    for (const e of document.querySelectorAll('[data-i18n-placeholder]')) e.placeholder = t(e.dataset.i18nPlaceholder);
    for (const e of document.querySelectorAll('[data-i18n-aria-label]')) e.setAttribute('aria-label', t(e.dataset.i18nAriaLabel));
    $('lang').lang = S.lang === 'ja' ? 'en' : 'ja';
    if ($('map-message').dataset.key) $('map-message').textContent = t($('map-message').dataset.key);
  }

  function setLang(lang) {
    S.lang = lang;
    translateStatic();
    fillControls();
    const open = $('detail').hidden ? null : Number($('detail').dataset.id);
    render();
    if (S.view) S.view.relabel();
    const p = S.places.find((x) => x.id === open);
    if (p) showDetail(p, detailReturn);
    writeHash();
  }

  // ---- start ---------------------------------------------------------------------------------

  function setFiltersOpen(open) {
    $('filters').classList.toggle('closed', !open);
    $('filters-toggle').setAttribute('aria-expanded', String(open));
    if (S.view) S.view.resize();
  }

  let typing = null;
  function commit() {
    clearTimeout(typing);
    formToState();
    if (S.f.sort === 'distance-centre' && !S.f.near) S.f.near = point(fallbackCentre());
    writeHash();
    load();
  }

  async function init() {
    const restored = fromHash(location.hash);
    S.f = restored.f;
    S.lang = restored.lang;
    translateStatic();
    setFiltersOpen(window.matchMedia('(min-width: 800px)').matches);
    S.config = await getJSON('/assets/config.json').catch(() => S.config);
    if (window.L && window.SadoMapView) {
      try {
        S.view = window.SadoMapView.create($('map'), { t, label: markerLabel, info: (p) => info(p, null), districtName, onSelect: markSelected, config: S.config });
      } catch (e) {
        S.view = null;
      }
    }
    if (!S.view) {
      const m = $('map-message');
      m.dataset.key = 'map_unavailable';
      m.textContent = t('map_unavailable');
      m.hidden = false;
      document.body.classList.add('no-map');
    }
    const [cuisines, districts, doc] = await Promise.all([
      getJSON('/v1/cuisines').catch(() => ({ cuisines: [] })),
      getJSON('/v1/districts').catch(() => ({ districts: [] })),
      getJSON('/openapi.json').catch(() => null),
    ]);
    for (const c of cuisines.cuisines) S.cuisines.set(c.id, c);
    S.districts = districts.districts;
    try {
      const params = doc.paths['/v1/places'].get.parameters;
      S.features = params.find((x) => x.name === 'feature').schema.items.enum;
    } catch (_) {
      S.features = [];
    }
    if (S.view) S.view.setDistricts(S.districts);
    fillControls();
    writeHash();

    const form = $('filters');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      commit();
    });
    form.addEventListener('change', (e) => {
      if (e.target.id !== 'q') commit();
    });
    $('q').addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(commit, 350);
    });
    $('q').addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        commit();
      }
    });
    $('reset').addEventListener('click', () => {
      S.f = defaults();
      stateToForm(S.f);
      commit();
    });
    $('lang').addEventListener('click', () => setLang(S.lang === 'ja' ? 'en' : 'ja'));
    $('filters-toggle').addEventListener('click', () => setFiltersOpen($('filters').classList.contains('closed')));
    // The skip link moves the focus without touching the hash, which holds the filters.
    document.querySelector('.skip').addEventListener('click', (e) => {
      e.preventDefault();
      const target = $('detail').hidden ? $('results') : $('detail');
      target.focus();
    });
    window.addEventListener('hashchange', () => {
      // Only a hash of filters (name=value pairs, or none) is ours to restore.
      if (location.hash === S.lastHash || (location.hash.length > 1 && !location.hash.includes('='))) return;
      const r = fromHash(location.hash);
      S.f = r.f;
      if (r.lang !== S.lang) setLang(r.lang);
      else stateToForm(S.f);
      S.lastHash = location.hash;
      load();
    });
    if (S.view) {
      let moving = null;
      S.view.onMoveEnd(() => {
        if (S.f.sort !== 'distance-centre') return;
        clearTimeout(moving);
        moving = setTimeout(() => {
          S.f.near = point(S.view.centre());
          writeHash();
          load();
        }, 400);
      });
    }
    await load();
  }

  init();
})();
