// The interactive network map: fetches /v1/network/map?format=json with the key the user
// typed (kept in sessionStorage, so it dies with the tab) and draws it with cytoscape at the
// server's layout. Every text from the API goes through textContent, never innerHTML.
"use strict";

(function () {
  const KEY = "multihelix.key";
  const SCALE = 12; // layout units -> pixels
  const $ = (id) => document.getElementById(id);
  let cy = null;
  let data = null;

  function status(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.className = isError ? "error" : "";
  }

  function key() {
    return sessionStorage.getItem(KEY);
  }

  async function api(path) {
    const response = await fetch(path, { headers: { Authorization: "Bearer " + key() } });
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      showKeyForm();
      throw new Error("The key was refused (unknown, expired or revoked). Enter another.");
    }
    if (!response.ok) {
      let detail = response.statusText;
      try {
        detail = (await response.json()).detail || detail;
      } catch (e) {
        /* not a problem document */
      }
      throw new Error(detail);
    }
    return response;
  }

  function showKeyForm() {
    $("key-form").hidden = false;
    $("forget").hidden = true;
    $("controls").hidden = true;
  }

  function query(format) {
    const params = new URLSearchParams({ format: format });
    params.set("color_by", $("color-by").value);
    params.set("group_by", $("group-by").value);
    for (const c of $("countries").value.split(/[\s,;]+/)) {
      if (c) params.append("country", c.toUpperCase());
    }
    for (const c of $("cluster").value.split(/[\s,;]+/)) {
      if (c) params.append("cluster", c.toLowerCase());
    }
    return "/v1/network/map?" + params.toString();
  }

  function elements(map) {
    const out = [];
    map.groups.forEach((g, i) => {
      out.push({
        group: "nodes",
        data: { id: "g" + i, label: g.label + " (" + g.organisations + ")", r: g.r * SCALE * 2 },
        position: { x: g.x * SCALE, y: g.y * SCALE },
        classes: "area",
        selectable: false,
        grabbable: false,
      });
    });
    map.nodes.forEach((n, i) => {
      out.push({
        group: "nodes",
        data: { id: "n" + i, index: i, label: n.label, colour: n.colour, d: Math.max(n.size * SCALE * 1.4, 4) },
        position: { x: n.x * SCALE, y: n.y * SCALE },
        classes: "org",
      });
    });
    map.links.forEach((l, i) => {
      out.push({ group: "edges", data: { id: "l" + i, source: "n" + l.source, target: "n" + l.target }, classes: "link" });
    });
    map.suggested.forEach((s, i) => {
      out.push({
        group: "edges",
        data: { id: "s" + i, source: "n" + s.source, target: "n" + s.target, reason: s.reason },
        classes: "suggested",
      });
    });
    return out;
  }

  const STYLE = [
    { selector: "node.area", style: {
      shape: "ellipse", width: "data(r)", height: "data(r)", "background-color": "#f1f1f1",
      "border-width": 1, "border-color": "#ddd", label: "data(label)", "text-valign": "top",
      "text-margin-y": -4, "font-size": 14, color: "#444", events: "no", "z-index": 0 } },
    { selector: "node.org", style: {
      width: "data(d)", height: "data(d)", "background-color": "data(colour)",
      "border-width": 0.5, "border-color": "#fff", "z-index": 2 } },
    { selector: "node.org.hit", style: { "border-width": 3, "border-color": "#000", label: "data(label)", "font-size": 12, "z-index": 9 } },
    { selector: "node.org.faded", style: { opacity: 0.15 } },
    { selector: "edge.link", style: { width: 0.6, "line-color": "#8a8a8a", opacity: 0.25, "curve-style": "haystack" } },
    { selector: "edge.suggested", style: {
      width: 2, "line-color": "#e6550d", "line-style": "dashed", "curve-style": "unbundled-bezier",
      "control-point-distances": 40, opacity: 0.95, "z-index": 5 } },
  ];

  function draw(map) {
    data = map;
    if (cy) cy.destroy();
    cy = cytoscape({
      container: $("graph"),
      elements: elements(map),
      style: STYLE,
      layout: { name: "preset" },
      wheelSensitivity: 0.3,
      minZoom: 0.05,
      maxZoom: 6,
      hideEdgesOnViewport: map.links.length > 4000,
      textureOnViewport: map.nodes.length > 2000,
      autoungrabify: true,
    });
    cy.fit(undefined, 20);
    cy.on("mouseover", "node.org", (event) => showTooltip(event));
    cy.on("mouseout", "node.org", () => { $("tooltip").hidden = true; });
    cy.on("tap", "node.org", (event) => showMatches(event.target.data("index")));
    document.body.dataset.nodes = String(map.nodes.length);
    document.body.dataset.ready = "true";
    const note = map.notes.length ? " " + map.notes.join(" ") : "";
    status(map.organisations + " organisations, " + map.links_total + " links, " +
      map.suggested.length + " suggested links (dashed)." + note, false);
  }

  function describe(n) {
    const parts = [n.label];
    if (n.kind) parts.push(n.kind.replace(/_/g, " ") + " in " + n.country);
    if (n.sectors.length) parts.push("sectors: " + n.sectors.join(", "));
    if (n.clusters.length) parts.push("clusters: " + n.clusters.join(", "));
    parts.push(n.partners + " collaboration partners");
    return parts;
  }

  function showTooltip(event) {
    const n = data.nodes[event.target.data("index")];
    const tip = $("tooltip");
    tip.textContent = describe(n).join(" \u2022 ");
    const pos = event.renderedPosition;
    const box = $("graph").getBoundingClientRect();
    tip.style.left = box.left + pos.x + 12 + "px";
    tip.style.top = box.top + pos.y + 12 + "px";
    tip.hidden = false;
  }

  async function showMatches(index) {
    const n = data.nodes[index];
    $("details-title").textContent = n.label;
    const list = $("matches");
    list.replaceChildren();
    if (n.organisation_id === null) {
      $("details-body").textContent = describe(n).join("; ") + ". Narrow the map (countries, cluster) to see these organisations one by one.";
      return;
    }
    $("details-body").textContent = describe(n).slice(1).join("; ") + ". Suggested partners:";
    try {
      const response = await api("/v1/organisations/" + n.organisation_id + "/matches?limit=5");
      const matches = (await response.json()).items;
      for (const m of matches) {
        const li = document.createElement("li");
        const name = document.createElement("strong");
        name.textContent = m.organisation.name + " (" + m.organisation.country + ", " + Math.round(m.score * 100) + "%)";
        const why = document.createElement("div");
        why.className = "why";
        why.textContent = m.explanation.join(" ");
        li.append(name, why);
        li.addEventListener("click", () => highlight((o) => o.organisation_id === m.organisation.id));
        list.append(li);
      }
      if (!matches.length) $("details-body").textContent += " none yet.";
    } catch (error) {
      $("details-body").textContent = error.message;
    }
  }

  function highlight(test) {
    if (!cy) return 0;
    const hits = cy.nodes("node.org").filter((node) => test(data.nodes[node.data("index")]));
    cy.batch(() => {
      cy.nodes("node.org").removeClass("hit faded");
      if (hits.length) {
        cy.nodes("node.org").not(hits).addClass("faded");
        hits.addClass("hit");
      }
    });
    if (hits.length && hits.length <= 20) cy.animate({ fit: { eles: hits, padding: 120 }, duration: 300 });
    return hits.length;
  }

  function search() {
    const text = $("search").value.trim().toLowerCase();
    if (!text) {
      highlight(() => false);
      return;
    }
    const found = highlight((n) => n.label.toLowerCase().includes(text));
    status(found + " organisations match \u201c" + $("search").value.trim() + "\u201d.", false);
  }

  async function load() {
    status("Loading the map\u2026", false);
    try {
      if (typeof cytoscape === "undefined") {
        throw new Error("The graph library is missing on the server: run scripts/build-web.");
      }
      const response = await api(query("json"));
      draw(await response.json());
    } catch (error) {
      status(error.message, true);
    }
  }

  async function downloadSvg(event) {
    event.preventDefault();
    try {
      const blob = await (await api(query("svg"))).blob();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = "network-map.svg";
      link.click();
      URL.revokeObjectURL(link.href);
    } catch (error) {
      status(error.message, true);
    }
  }

  function start() {
    $("key-form").hidden = true;
    $("forget").hidden = false;
    $("controls").hidden = false;
    load();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, $("key").value.trim());
      $("key").value = "";
      start();
    });
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      if (cy) cy.destroy();
      cy = null;
      showKeyForm();
      status("Key forgotten.", false);
    });
    $("apply").addEventListener("click", load);
    $("search").addEventListener("input", search);
    $("svg-link").addEventListener("click", downloadSvg);
    if (key()) start(); else showKeyForm();
  });
})();
