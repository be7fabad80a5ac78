/* The monitor's instance diagram: the bpmn-js viewer (a plain script from npm, served from
   /static/vendor) draws the instance's own version; the server says which elements carry a
   token, were passed, or have an open incident (#markers), and this marks them. The same
   facts are in the page as text (the legend), so nothing depends on colour or on this script. */
(function () {
  "use strict";
  var box = document.getElementById("diagram");
  var data = document.getElementById("markers");
  if (!box || !data || typeof window.BpmnJS !== "function") { return; }
  var markers = JSON.parse(data.textContent);
  var viewer = new window.BpmnJS({ container: box });

  function mark(canvas, overlays, registry, ids, cls, badge, label) {
    ids.forEach(function (id) {
      if (!registry.get(id)) { return; }
      canvas.addMarker(id, cls);
      if (badge) {
        var html = document.createElement("span");
        html.className = "cf-badge " + cls + "-badge";
        html.textContent = badge;
        html.title = label;
        overlays.add(id, { position: { top: -12, right: 12 }, html: html });
      }
    });
  }

  fetch(box.dataset.src, { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
    .then(function (xml) { return viewer.importXML(xml); })
    .then(function () {
      var loading = box.querySelector(".diagram-loading");
      if (loading) { loading.remove(); }
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      var overlays = viewer.get("overlays");
      var done = new Set(markers.done), active = new Set(markers.active);
      mark(canvas, overlays, registry, markers.done, "cf-done");
      mark(canvas, overlays, registry, markers.active, "cf-active", "●", box.dataset.activeLabel || "");
      mark(canvas, overlays, registry, markers.incident, "cf-incident", "⚠", box.dataset.incidentLabel || "");
      mark(canvas, overlays, registry, markers.refused, "cf-refused");
      registry.filter(function (e) { return e.waypoints && e.source && e.target; }).forEach(function (flow) {
        if (done.has(flow.source.id) && (done.has(flow.target.id) || active.has(flow.target.id))) {
          canvas.addMarker(flow.id, "cf-taken");
        }
      });
      canvas.zoom("fit-viewport");
      var focus = markers.incident[0] || markers.active[0];
      if (canvas.zoom() < 0.6 && focus && registry.get(focus)) {
        // A big diagram fitted whole is unreadable: show the open step, centred, at 80%.
        canvas.zoom(0.8);
        var el = registry.get(focus), vb = canvas.viewbox();
        canvas.viewbox({ x: el.x + el.width / 2 - vb.width / 2, y: el.y + el.height / 2 - vb.height / 2,
                         width: vb.width, height: vb.height });
      }
      box.dataset.ready = "1";
    })
    .catch(function (err) {
      box.dataset.ready = "error";
      var p = box.querySelector(".diagram-loading");
      if (p) { p.textContent = box.dataset.failed || String(err); }
    });
})();
