// The studio's modeler page: bpmn-js Modeler with the properties panel and certflow's provider;
// save draft, check (problems marked on their elements), deploy. Data comes from /studio/<id>/.
import BpmnModeler from 'bpmn-js/lib/Modeler';
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from 'bpmn-js-properties-panel';
import spiffModdle from './moddle';
import CertflowPropertiesProvider from './provider';
import translateModule from './translate';

const root = document.getElementById('studio');
const processId = root.dataset.process;
const csrf = root.dataset.csrf;
const texts = JSON.parse(root.dataset.texts);
const statusBox = document.getElementById('studio-status');
const problemBox = document.getElementById('studio-problems');
const problemList = document.getElementById('studio-problem-list');
const base = `/studio/${encodeURIComponent(processId)}`;
// The modeler's own texts (palette, context pad, panel) in the page's language.
const translation = translateModule(root.dataset.lang || 'nl', JSON.parse(root.dataset.words || '{}'));

let space = null;
let dirty = false;

function say(text, kind) {
  statusBox.textContent = text;
  statusBox.className = 'studio-status' + (kind ? ` notice notice--${kind}` : '');
}

function format(text, values) {
  return text.replace(/\{(\w+)\}/g, (_, k) => values[k]);
}

async function post(url, body) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, Accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin'
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = { error: texts.error, problems: [] }; }
  return { ok: response.ok, status: response.status, data };
}

const modeler = new BpmnModeler({
  container: '#studio-canvas',
  propertiesPanel: { parent: '#studio-panel', layout: { groups: {
    certflow: { open: true }, 'certflow-routing': { open: true }, documentation: { open: true } } } },
  additionalModules: [
    translation.module,
    BpmnPropertiesPanelModule, BpmnPropertiesProviderModule,
    { __init__: [ 'certflowPropertiesProvider' ], certflowPropertiesProvider: [ 'type', CertflowPropertiesProvider ] }
  ],
  moddleExtensions: { spiffworkflow: spiffModdle },
  certflow: {
    catalogue: { operators: [], guards: [], assignment_rules: [] },
    forms: () => (space ? space.forms : []),
    // Would the sandbox run this condition? The deploy check's answer (null: yes).
    checkCondition: async (expression) => {
      const result = await post('/studio/condition', { expression });
      if (!result.ok) throw new Error(result.data.error || texts.error);
      return result.data.problem;
    },
    groups: JSON.parse(root.dataset.groups || '[]')
  }
});
window.certflowStudio = { modeler, untranslated: translation.missing };

async function currentSources() {
  const { xml } = await modeler.saveXML({ format: true });
  return { ...space.sources, [space.bpmn_file]: xml };
}

// -- problems on the canvas -----------------------------------------------------------------
let marked = [];

function clearProblems() {
  const canvas = modeler.get('canvas');
  const overlays = modeler.get('overlays');
  marked.forEach((id) => canvas.removeMarker(id, 'studio-has-error'));
  overlays.remove({ type: 'studio-error' });
  marked = [];
  problemList.replaceChildren();
  problemBox.hidden = true;
}

function showProblems(problems) {
  clearProblems();
  const registry = modeler.get('elementRegistry');
  const canvas = modeler.get('canvas');
  const overlays = modeler.get('overlays');
  const byElement = {};
  for (const problem of problems) {
    const item = document.createElement('li');
    const where = problem.element ? `${problem.file} [${problem.element}]` : problem.file;
    const onCanvas = problem.element && registry.get(problem.element);
    if (onCanvas) {
      const link = document.createElement('button');
      link.type = 'button';
      link.className = 'link-button';
      link.textContent = where;
      link.addEventListener('click', () => {
        modeler.get('selection').select(onCanvas);
        canvas.scrollToElement(onCanvas, { top: 150, bottom: 150, left: 250, right: 250 });
      });
      item.append(link, `: ${problem.message}`);
      (byElement[problem.element] = byElement[problem.element] || []).push(problem.message);
    } else {
      item.textContent = `${where}: ${problem.message}`;
    }
    problemList.append(item);
  }
  for (const [ id, messages ] of Object.entries(byElement)) {
    canvas.addMarker(id, 'studio-has-error');
    marked.push(id);
    const badge = document.createElement('div');
    badge.className = 'studio-error';
    badge.setAttribute('role', 'note');
    badge.dataset.element = id;
    badge.textContent = messages.join(' · ');
    badge.title = messages.join('\n');
    overlays.add(id, 'studio-error', { position: { bottom: -6, left: 0 }, html: badge });
  }
  problemBox.hidden = problems.length === 0;
}

// -- saving: a save carries the revision it loaded; a stale one is refused (409) -----------
const conflictBox = document.getElementById('studio-conflict');
const conflictText = document.getElementById('studio-conflict-text');
const conflictDownload = document.getElementById('studio-conflict-download');
let conflictRevision = null;

function showConflict(data, xml) {
  conflictRevision = data.conflict ? data.conflict.revision : null;
  conflictText.textContent = data.error || texts.error;
  if (conflictDownload.href.startsWith('blob:')) URL.revokeObjectURL(conflictDownload.href);
  conflictDownload.href = URL.createObjectURL(new Blob([ xml ], { type: 'application/xml' }));
  conflictDownload.download = `${processId}-mine.bpmn`;
  conflictBox.querySelectorAll('button').forEach((b) => { b.style.display = ''; });
  conflictBox.hidden = false;
  say('');
  conflictBox.scrollIntoView({ block: 'nearest' });
}

async function saveDraft() {
  const sources = await currentSources();
  const result = await post(`${base}/draft`, { sources, revision: space.revision });
  if (result.ok) {
    dirty = false;
    space.revision = result.data.revision;
    space.sources = sources;
    showState(result.data.saved_by, result.data.saved_at);
    conflictBox.hidden = true;
    say(texts.saved, 'success');
  } else if (result.status === 409) {
    showConflict(result.data, sources[space.bpmn_file]);
  } else {
    say(texts.save_refused + ' ' + (result.data.error || ''), 'warning');
    showProblems(result.data.problems || []);
  }
  return result.ok;
}

async function overwrite() {
  // The owner chose to replace the other draft: save against the revision now saved.
  if (conflictRevision !== null) space.revision = conflictRevision;
  await saveDraft();
}

async function reloadSaved() {
  await load();
  // Their draft is on screen now: only the download of the owner's own version stays.
  conflictBox.querySelectorAll('button').forEach((b) => { b.style.display = 'none'; });
  say(texts.reloaded, 'success');
}

async function check() {
  say(texts.checking);
  const result = await post(`${base}/check`, { sources: await currentSources() });
  const problems = result.data.problems || [];
  showProblems(problems);
  if (result.ok && problems.length === 0) say(texts.ok, 'success');
  else say(problems.length ? texts.problems : (result.data.error || texts.error), 'warning');
  return result.ok && problems.length === 0;
}

// -- deploy: show what it changes against the newest version, deploy only when confirmed ------
const confirmDialog = document.getElementById('studio-confirm');
const confirmBody = document.getElementById('studio-confirm-body');

async function deploy() {
  say(texts.loading_changes);
  const response = await fetch(`${base}/changes`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, Accept: 'text/html' },
    body: JSON.stringify({ sources: await currentSources() }),
    credentials: 'same-origin'
  });
  if (!response.ok) {
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    say(texts.refused + ' ' + (data.error || texts.error), 'warning');
    return;
  }
  say('');
  confirmBody.innerHTML = await response.text();
  confirmDialog.showModal();
}

async function confirmedDeploy() {
  confirmDialog.close();
  if (!(await saveDraft())) return;
  say(texts.deploying);
  const result = await post(`${base}/deploy`, { revision: space.revision });
  if (result.ok) {
    clearProblems();
    say(format(result.data.created ? texts.deployed : texts.unchanged, { v: result.data.version }), 'success');
    document.getElementById('studio-state').textContent = format(texts.state_deployed, { v: result.data.version });
    await load();
  } else if (result.status === 409) {
    showConflict(result.data, (await currentSources())[space.bpmn_file]);
  } else {
    showProblems(result.data.problems || []);
    say(texts.refused + ' ' + ((result.data.problems || []).length ? texts.problems : (result.data.error || '')),
      'warning');
  }
}

// The line under the heading: who saved the draft on screen, and when (Amsterdam time).
function showState(who, when) {
  if (!who || !when) return;
  const moment = new Date(when).toLocaleString(root.dataset.lang || 'nl', {
    dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/Amsterdam' });
  document.getElementById('studio-state').textContent = format(texts.state_draft, { who, when: moment });
}

async function load() {
  const [ workspace, catalogue ] = await Promise.all([
    fetch(`${base}/workspace.json`, { credentials: 'same-origin' }).then((r) => r.json()),
    fetch('/studio/handlers.json', { credentials: 'same-origin' }).then((r) => r.json())
  ]);
  space = workspace;
  if (space.is_draft) showState(space.saved_by, space.saved_at);
  Object.assign(modeler.get('config.certflow').catalogue, catalogue);
  await modeler.importXML(space.sources[space.bpmn_file]);
  modeler.get('canvas').zoom('fit-viewport', 'auto');
  dirty = false;
  root.dataset.ready = '1';
}

document.getElementById('studio-save').addEventListener('click', saveDraft);
document.getElementById('studio-check').addEventListener('click', check);
document.getElementById('studio-deploy').addEventListener('click', deploy);
document.getElementById('studio-confirm-deploy').addEventListener('click', confirmedDeploy);
document.getElementById('studio-confirm-cancel').addEventListener('click', () => confirmDialog.close());
document.getElementById('studio-conflict-reload').addEventListener('click', reloadSaved);
document.getElementById('studio-conflict-overwrite').addEventListener('click', overwrite);
modeler.on('commandStack.changed', () => { dirty = true; });
window.addEventListener('beforeunload', (event) => {
  if (dirty) { event.preventDefault(); event.returnValue = texts.unsaved; }
});

load().catch((error) => say(texts.error + ' ' + error.message, 'warning'));
