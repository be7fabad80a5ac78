/* The studio's fee/VAT table page: dmn-js's decision table editor on the table in #content.
   Every change is written back into #content as XML, so saving, checking and the invoice
   preview send what is on screen; without this script the XML is edited by hand. */
(function () {
  'use strict';
  var host = document.getElementById('dmn-editor');
  var source = document.getElementById('content');
  if (!host || !source || !window.DmnJS) { return; }
  var modeler = new window.DmnJS({ container: host });
  window.certflowTables = { modeler: modeler };

  function sync() {
    return modeler.saveXML({ format: true }).then(function (result) {
      source.value = result.xml;
      document.body.dispatchEvent(new Event('tables-changed'));
    });
  }

  host.hidden = false;
  modeler.importXML(source.value).then(function () {
    var table = modeler.getViews().filter(function (v) { return v.type === 'decisionTable'; })[0];
    return table ? modeler.open(table) : null;
  }).then(function () {
    modeler.getActiveViewer().on('elements.changed', sync);
    host.dataset.ready = 'true';
  }).catch(function (err) {
    host.hidden = true;
    document.getElementById('table-xml').open = true;
    var note = document.createElement('p');
    note.className = 'notice notice--warning';
    note.setAttribute('role', 'alert');
    note.textContent = String(err && err.message || err);
    host.parentNode.insertBefore(note, host);
  });
})();
