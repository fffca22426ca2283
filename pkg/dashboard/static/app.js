// Cascade cluster dashboard: reads /v1/cluster/events with fetch() so the token stays in a
// header (never in a URL), and redraws on each snapshot. Text is only ever set with
// textContent / setAttribute, never parsed as HTML.
(function () {
  "use strict";
  var KEY = "cascade.dashboard.token";
  var SVGNS = "http://www.w3.org/2000/svg";
  var $ = function (id) { return document.getElementById(id); };
  var abort = null, backoff = 1000, retryTimer = null;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function setConn(state, text) { var c = $("conn"); c.dataset.conn = state; c.textContent = text || state; }
  function rate(bps) {
    if (!bps) return "0";
    if (bps >= 1e6) return (bps / 1e6).toFixed(2) + " Mb/s";
    return (bps / 1e3).toFixed(0) + " kb/s";
  }
  function ago(t) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(t)) / 1000));
    return isNaN(s) ? "—" : s + " s ago";
  }
  function x(lon) { return (Number(lon) || 0) + 180; }
  function y(lat) { return 90 - (Number(lat) || 0); }

  // Very coarse continents (lon,lat), just to place the dots.
  var LAND = [
    [[-168,66],[-140,70],[-95,72],[-60,60],[-55,50],[-80,25],[-97,16],[-80,8],[-105,20],[-125,40],[-168,66]],
    [[-80,10],[-50,0],[-35,-8],[-55,-35],[-70,-55],[-75,-20],[-80,0],[-80,10]],
    [[-10,36],[-10,44],[0,50],[10,58],[30,70],[60,70],[100,75],[140,72],[180,66],[160,55],[140,40],[120,25],[105,10],[95,20],[80,8],[70,22],[55,25],[40,15],[35,30],[25,36],[-10,36]],
    [[-17,15],[-10,35],[10,37],[32,31],[43,12],[51,11],[40,-15],[20,-35],[12,-15],[8,4],[-17,15]],
    [[114,-22],[130,-12],[142,-11],[153,-27],[146,-39],[115,-35],[114,-22]]
  ];

  function drawMap(s) {
    var m = $("map");
    m.replaceChildren();
    for (var lon = -180; lon <= 180; lon += 30) m.appendChild(svg("line", { x1: x(lon), y1: 0, x2: x(lon), y2: 180, "class": "grid" }));
    for (var lat = -90; lat <= 90; lat += 30) m.appendChild(svg("line", { x1: 0, y1: y(lat), x2: 360, y2: y(lat), "class": "grid" }));
    LAND.forEach(function (p) {
      m.appendChild(svg("polygon", { points: p.map(function (q) { return x(q[0]) + "," + y(q[1]); }).join(" "), "class": "land" }));
    });
    var pos = {};
    s.nodes.forEach(function (n) { pos[n.id] = n; });
    s.links.forEach(function (l) {
      var a = pos[l.src], b = pos[l.dst];
      if (!a || !b) return;
      var line = svg("line", { x1: x(a.lon), y1: y(a.lat), x2: x(b.lon), y2: y(b.lat), "class": "link", "data-link": l.src + ">" + l.dst });
      var t = svg("title", {}); t.textContent = l.src + " → " + l.dst + ": " + l.rtt_ms.toFixed(1) + " ms";
      line.appendChild(t);
      m.appendChild(line);
    });
    s.nodes.forEach(function (n) {
      var g = svg("g", { "class": "node", "data-node": n.id, "data-state": n.state });
      var c = svg("circle", { cx: x(n.lon), cy: y(n.lat), r: 3.2, "class": n.state });
      var t = svg("title", {}); t.textContent = n.id + " (" + n.state + ")";
      c.appendChild(t);
      g.appendChild(c);
      var label = svg("text", { x: x(n.lon) + 4, y: y(n.lat) + 1.5 });
      label.textContent = n.id + " · " + n.state;
      g.appendChild(label);
      m.appendChild(g);
    });
  }

  function fill(id, rows) {
    var body = $(id).tBodies[0];
    body.replaceChildren.apply(body, rows);
  }

  function render(s) {
    $("from").textContent = "served by " + s.from;
    $("notes").textContent = (s.errors || []).join("; ");
    drawMap(s);
    fill("nodes", s.nodes.map(function (n) {
      var tr = el("tr");
      tr.dataset.node = n.id;
      tr.dataset.state = n.state;
      tr.appendChild(el("td", n.id + (n.self ? " (this node)" : "")));
      var st = el("td"); st.appendChild(el("span", n.state, "state " + n.state)); tr.appendChild(st);
      tr.appendChild(el("td", n.region));
      tr.appendChild(el("td", n.state === "failed" ? "—" : Math.round(n.load * 100) + " %"));
      tr.appendChild(el("td", n.state === "failed" ? "—" : n.rooms));
      tr.appendChild(el("td", n.state === "failed" ? "—" : n.participants));
      tr.appendChild(el("td", ago(n.last_seen)));
      return tr;
    }));
    fill("links", s.links.map(function (l) {
      var tr = el("tr");
      tr.dataset.link = l.src + ">" + l.dst;
      tr.appendChild(el("td", l.src + " → " + l.dst));
      tr.appendChild(el("td", l.rtt_ms ? l.rtt_ms.toFixed(1) + " ms" : "—"));
      tr.appendChild(el("td", rate(l.bitrate_out)));
      tr.appendChild(el("td", rate(l.bitrate_in)));
      tr.appendChild(el("td", (l.loss * 100).toFixed(1) + " %"));
      tr.appendChild(el("td", l.paused_layers));
      return tr;
    }));
    fill("rooms", s.rooms.map(function (r) {
      var tr = el("tr");
      tr.dataset.room = r.name;
      tr.appendChild(el("td", r.name));
      tr.appendChild(el("td", r.participants));
      tr.appendChild(el("td", Object.keys(r.nodes).sort().map(function (k) { return k + " (" + r.nodes[k] + ")"; }).join(", ")));
      return tr;
    }));
  }

  function showLogin(msg) {
    if (abort) abort.abort();
    clearTimeout(retryTimer);
    sessionStorage.removeItem(KEY);
    $("view").hidden = true; $("logout").hidden = true; $("login").hidden = false;
    $("login-error").textContent = msg || "";
    setConn("disconnected", "logged out");
  }

  function retry() {
    setConn("disconnected");
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 15000);
  }

  function connect() {
    var token = sessionStorage.getItem(KEY);
    if (!token) { showLogin(); return; }
    $("login").hidden = true; $("view").hidden = false; $("logout").hidden = false;
    if (abort) abort.abort();
    var ctl = new AbortController();
    abort = ctl;
    fetch("/v1/cluster/events", { headers: { "Authorization": "Bearer " + token }, cache: "no-store", signal: ctl.signal })
      .then(function (res) {
        if (res.status === 401 || res.status === 403) {
          return res.text().then(function (t) { showLogin(t.trim() || "token refused"); });
        }
        if (!res.ok || !res.body) throw new Error("HTTP " + res.status);
        setConn("connected");
        backoff = 1000;
        var reader = res.body.getReader(), dec = new TextDecoder(), buf = "";
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) throw new Error("stream ended");
            buf += dec.decode(r.value, { stream: true });
            if (buf.length > 8 << 20) throw new Error("event too large");
            var i;
            while ((i = buf.indexOf("\n\n")) >= 0) {
              var ev = buf.slice(0, i); buf = buf.slice(i + 2);
              var data = [];
              ev.split("\n").forEach(function (line) { if (line.indexOf("data: ") === 0) data.push(line.slice(6)); });
              if (data.length) { try { render(JSON.parse(data.join("\n"))); } catch (e) { /* keep the last view */ } }
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function () { if (abort === ctl && !ctl.signal.aborted) retry(); });
  }

  $("login").addEventListener("submit", function (e) {
    e.preventDefault();
    var t = $("token").value.trim();
    $("token").value = "";
    if (!t) return;
    sessionStorage.setItem(KEY, t);
    backoff = 1000;
    connect();
  });
  $("logout").addEventListener("click", function () { showLogin(); });

  var q = new URLSearchParams(location.search);
  if (q.has("token")) {
    sessionStorage.setItem(KEY, q.get("token"));
    q.delete("token");
    var rest = q.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }
  connect();
})();
