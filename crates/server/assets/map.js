// The map of the sadomap page: Leaflet, the island outline (no base tiles needed), district
// labels, one marker per place or a grid cluster per zoom level, a legend and popups.
// Depends on window.L (Leaflet); app.js checks that before calling SadoMapView.create.
'use strict';

window.SadoMapView = (() => {
  /** Marker colours: restaurants by marker group, then parking and toilets. */
  const COLORS = {
    japanese: '#c62828',
    noodles: '#ef6c00',
    grill: '#795548',
    international: '#c49000',
    cafe: '#ad1457',
    bar: '#6a1b9a',
    fastfood: '#f06292',
    general: '#607d8b',
    parking: '#1565c0',
    toilet: '#00897b',
  };
  const GROUPS = ['japanese', 'noodles', 'grill', 'international', 'cafe', 'bar', 'fastfood', 'general'];
  /** Island bounds (south-west, north-east) for the first view. */
  const ISLAND = [[37.78, 138.19], [38.34, 138.59]];
  /** Grid cell size in screen pixels, and the zoom from which nothing is clustered. */
  const CELL = 60;
  const NO_CLUSTER_ZOOM = 16;
  /** Groups whose centres are closer than this many pixels are joined. */
  const MERGE_PX = 44;

  const colorOf = (p) => (p.kind === 'restaurant' ? COLORS[p.marker_group] || COLORS.general : COLORS[p.kind]);
  const glyphOf = (p) => ({ parking: 'P', toilet: 'WC' }[p.kind] || '');

  /**
   * Builds the map in `container`. `o` gives the page's functions: t(key, vars) for strings,
   * label(place) for a marker's accessible name, info(place) for a popup's element,
   * districtName(name), onSelect(place) when a marker is chosen, and config (tile_url...).
   */
  function create(container, o) {
    const L = window.L;
    const map = L.map(container, {
      zoomControl: true,
      keyboard: true,
      fadeAnimation: false,
      zoomAnimation: !window.matchMedia('(prefers-reduced-motion: reduce)').matches,
      minZoom: 8,
      maxZoom: 19,
      worldCopyJump: false,
      maxBounds: [[36.8, 137.0], [39.3, 139.8]],
    });
    map.fitBounds(ISLAND);
    map.attributionControl.setPrefix('');
    if (o.config.tile_url) {
      L.tileLayer(o.config.tile_url, { maxZoom: 19, attribution: escapeHtml(o.config.tile_attribution || '') }).addTo(map);
      container.classList.add('with-tiles');
    }
    const outline = L.layerGroup().addTo(map);
    const labels = L.layerGroup().addTo(map);
    const points = L.layerGroup().addTo(map);
    const me = L.layerGroup().addTo(map);
    let places = [];
    let districts = [];
    let singles = new Map();
    let onMap = 0;

    fetch('/assets/island.geojson')
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(r.status))))
      .then((g) => {
        L.geoJSON(g, {
          interactive: false,
          // Over base tiles only the coast line, so the tiles stay visible.
          style: { color: '#6d8f5e', weight: 1.5, fillColor: '#eef3e2', fillOpacity: o.config.tile_url ? 0 : 1 },
          attribution: 'Natural Earth',
        }).addTo(outline);
      })
      .catch(() => {});

    function markerAttrs(m, attrs) {
      m.on('add', () => {
        const e = m.getElement();
        if (!e) return;
        for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      });
    }

    function single(p) {
      const glyph = document.createElement('span');
      glyph.className = 'pin-glyph';
      glyph.textContent = glyphOf(p);
      glyph.style.background = colorOf(p);
      const icon = L.divIcon({
        html: glyph,
        className: `pin pin-${p.kind}${p.demo ? ' pin-demo' : ''}`,
        iconSize: [26, 26],
        iconAnchor: [13, 13],
        popupAnchor: [0, -12],
      });
      const label = o.label(p);
      const m = L.marker([p.location.lat, p.location.lng], { icon, keyboard: true, title: label, riseOnHover: true });
      m.bindPopup(() => o.info(p), { maxWidth: 340, minWidth: 260, autoPanPadding: [24, 24], className: 'info-popup' });
      m.on('click', () => o.onSelect(p));
      markerAttrs(m, { 'data-count': '1', 'data-id': String(p.id), 'data-kind': p.kind, role: 'button', 'aria-label': label });
      return m;
    }

    function cluster(members, zoom) {
      const n = members.length;
      const lat = members.reduce((s, p) => s + p.location.lat, 0) / n;
      const lng = members.reduce((s, p) => s + p.location.lng, 0) / n;
      // A ring showing what the cluster holds, by marker colour.
      const byColor = new Map();
      for (const p of members) byColor.set(colorOf(p), (byColor.get(colorOf(p)) || 0) + 1);
      let at = 0;
      const stops = [];
      for (const [c, k] of byColor) {
        const end = at + (k / n) * 360;
        stops.push(`${c} ${at.toFixed(1)}deg ${end.toFixed(1)}deg`);
        at = end;
      }
      const size = n < 10 ? 32 : n < 100 ? 40 : 48;
      const ring = document.createElement('span');
      ring.className = 'cluster-ring';
      ring.style.background = `conic-gradient(${stops.join(', ')})`;
      const count = document.createElement('span');
      count.className = 'cluster-count';
      count.textContent = String(n);
      ring.appendChild(count);
      const icon = L.divIcon({ html: ring, className: 'cluster', iconSize: [size, size], iconAnchor: [size / 2, size / 2] });
      const label = o.t('cluster', { n });
      const m = L.marker([lat, lng], { icon, keyboard: true, title: label });
      m.on('click', () => {
        const focused = document.activeElement === m.getElement();
        const b = L.latLngBounds(members.map((p) => [p.location.lat, p.location.lng]));
        const fit = map.getBoundsZoom(b.pad(0.3));
        const z = Math.min(NO_CLUSTER_ZOOM, Math.max(zoom + 1, fit));
        map.setView(b.getCenter(), z);
        // The cluster is gone after the zoom: keep the keyboard focus in the map.
        if (focused) container.focus({ preventScroll: true });
      });
      markerAttrs(m, { 'data-count': String(n), role: 'button', 'aria-label': label });
      return m;
    }

    /** Redraws the markers for the current zoom: grid cells of CELL pixels become clusters. */
    function redraw() {
      points.clearLayers();
      singles = new Map();
      const zoom = map.getZoom();
      const located = places.filter((p) => p.location);
      onMap = located.length;
      if (zoom >= NO_CLUSTER_ZOOM) {
        for (const p of located) {
          const m = single(p);
          singles.set(p.id, m);
          points.addLayer(m);
        }
        return;
      }
      // Grid cells first, then a greedy pass joining groups (largest first) whose centres
      // would overlap on screen, since neighbouring cells can hold points a pixel apart.
      const cells = new Map();
      for (const p of located) {
        const pt = map.project([p.location.lat, p.location.lng], zoom);
        const key = `${Math.floor(pt.x / CELL)}:${Math.floor(pt.y / CELL)}`;
        const c = cells.get(key);
        if (c) {
          c.members.push(p);
          c.x += pt.x;
          c.y += pt.y;
        } else cells.set(key, { members: [p], x: pt.x, y: pt.y });
      }
      const groups = [...cells.values()].map((c) => ({ members: c.members, x: c.x / c.members.length, y: c.y / c.members.length }));
      groups.sort((a, b) => b.members.length - a.members.length);
      const joined = [];
      for (const g of groups) {
        const into = joined.find((j) => Math.hypot(j.x - g.x, j.y - g.y) < MERGE_PX);
        if (!into) {
          joined.push(g);
          continue;
        }
        const a = into.members.length;
        const b = g.members.length;
        into.x = (into.x * a + g.x * b) / (a + b);
        into.y = (into.y * a + g.y * b) / (a + b);
        into.members = into.members.concat(g.members);
      }
      for (const { members } of joined) {
        if (members.length === 1) {
          const m = single(members[0]);
          singles.set(members[0].id, m);
          points.addLayer(m);
        } else {
          points.addLayer(cluster(members, zoom));
        }
      }
    }
    map.on('zoomend', redraw);

    // Keyboard: a popup opened from a focused marker takes the focus (as a dialog named by
    // its heading); Escape closes it and the focus goes back to the marker.
    let returnFocus = null;
    map.on('popupopen', (e) => {
      const box = e.popup.getElement();
      if (!box) return;
      const heading = box.querySelector('.info-name');
      box.setAttribute('role', 'dialog');
      if (heading) box.setAttribute('aria-label', heading.textContent);
      const active = document.activeElement;
      returnFocus = active && active.closest && active.closest('.leaflet-marker-icon') ? active : null;
      if (returnFocus && heading) {
        heading.tabIndex = -1;
        heading.focus({ preventScroll: true });
      }
      if (!box.dataset.keys) {
        box.dataset.keys = '1';
        box.addEventListener('keydown', (ev) => {
          if (ev.key === 'Escape') {
            ev.stopPropagation();
            map.closePopup();
          }
        });
      }
    });
    map.on('popupclose', () => {
      const back = returnFocus;
      returnFocus = null;
      if (back && document.body.contains(back)) back.focus({ preventScroll: true });
    });

    function drawDistricts() {
      labels.clearLayers();
      for (const d of districts) {
        if (!d.centroid) continue;
        const e = document.createElement('span');
        e.textContent = o.districtName(d.name);
        const icon = L.divIcon({ html: e, className: 'district-label', iconSize: null });
        labels.addLayer(L.marker([d.centroid.lat, d.centroid.lng], { icon, interactive: false, keyboard: false }));
      }
    }

    const legend = L.control({ position: 'bottomleft' });
    let legendBox = null;
    legend.onAdd = () => {
      legendBox = L.DomUtil.create('div', 'legend leaflet-bar');
      L.DomEvent.disableClickPropagation(legendBox);
      L.DomEvent.disableScrollPropagation(legendBox);
      drawLegend();
      return legendBox;
    };
    function drawLegend() {
      if (!legendBox) return;
      const det = document.createElement('details');
      det.open = !window.matchMedia('(max-width: 799px)').matches;
      const sum = document.createElement('summary');
      sum.textContent = o.t('legend');
      det.appendChild(sum);
      const ul = document.createElement('ul');
      const row = (cls, color, glyph, text) => {
        const li = document.createElement('li');
        const s = document.createElement('span');
        s.className = `sym ${cls}`;
        s.style.background = color;
        s.textContent = glyph;
        s.setAttribute('aria-hidden', 'true');
        li.append(s, document.createTextNode(` ${text}`));
        ul.appendChild(li);
      };
      for (const g of GROUPS) row('sym-restaurant', COLORS[g], '', o.t(`group_${g}`));
      row('sym-parking', COLORS.parking, 'P', o.t('kind_parking'));
      row('sym-toilet', COLORS.toilet, 'WC', o.t('kind_toilet'));
      det.appendChild(ul);
      legendBox.replaceChildren(det);
    }
    legend.addTo(map);

    return {
      /** Shows these places (those without a location are only in the list). */
      setPlaces(list) {
        places = list;
        map.closePopup();
        redraw();
      },
      /** Districts with centroids, labelled on the map. */
      setDistricts(list) {
        districts = list;
        drawDistricts();
      },
      /** Redraws every text after a language change. */
      relabel() {
        drawDistricts();
        drawLegend();
        redraw();
      },
      /** Zooms to a place and opens its popup. */
      focus(p) {
        if (!p.location) return;
        const ll = [p.location.lat, p.location.lng];
        map.setView(ll, Math.max(map.getZoom(), NO_CLUSTER_ZOOM), { animate: false });
        const m = singles.get(p.id);
        if (m) m.openPopup();
        else L.popup({ maxWidth: 340, minWidth: 260, className: 'info-popup' }).setLatLng(ll).setContent(o.info(p)).openOn(map);
      },
      /** The map centre, rounded to about a metre. */
      centre() {
        const c = map.getCenter();
        return { lat: Math.round(c.lat * 1e5) / 1e5, lng: Math.round(c.lng * 1e5) / 1e5 };
      },
      /** Calls `f` after the user pans or zooms. */
      onMoveEnd(f) {
        map.on('moveend', f);
      },
      /** Marks the visitor's position. */
      setMe(pos) {
        me.clearLayers();
        if (pos) L.circleMarker([pos.lat, pos.lng], { radius: 7, color: '#fff', weight: 2, fillColor: '#1a73e8', fillOpacity: 1, interactive: false }).addTo(me);
      },
      /** How many places the markers stand for. */
      count() {
        return onMap;
      },
      /** Leaflet needs this after its container changes size. */
      resize() {
        map.invalidateSize();
      },
    };
  }

  function escapeHtml(s) {
    const d = document.createElement('div');
    d.textContent = s;
    return d.innerHTML;
  }

  return { create, COLORS };
})();
