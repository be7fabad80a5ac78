// certflow's conventions as fields: lane (group), form, assignee, due, show, priority on user
// tasks; form, starters and guard on start events; the handler and its typed parameters on
// service tasks (from the server's handler registry), and whether the case waits for a mail;
// the correlation variable on message
// events and receive tasks; timers as ISO durations with a human preview; a gateway's flows'
// conditions and its default flow (./conditions.js).
// Every label and hint is English passed to bpmn-js's translate (./translate.js: the server
// gives certflow's words in the page's language, certflow/web/pages/studio_words.py).
import { h } from '@bpmn-io/properties-panel/preact';
import {
  TextFieldEntry, SelectEntry, isTextFieldEntryEdited, isSelectEntryEdited
} from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';
import { is, getBusinessObject } from 'bpmn-js/lib/util/ModelUtil';
import { conditionGroup } from './conditions';
import { fromField, preview, toField } from './terms';

const MULTI = 'properties-panel.multi-command-executor';

function update(element, moddleElement, properties) {
  return { cmd: 'element.updateModdleProperties', context: { element, moddleElement, properties } };
}

function extension(bo, type) {
  const ext = bo.get('extensionElements');
  return ext ? ext.get('values').find((v) => v.$instanceOf(type)) : undefined;
}

// The commands that make sure ``bo`` has an extension element of ``type``; returns it.
function ensureExtension(element, bo, type, bpmnFactory, commands, attrs) {
  let ext = bo.get('extensionElements');
  if (!ext) {
    ext = bpmnFactory.create('bpmn:ExtensionElements', { values: [] });
    ext.$parent = bo;
    commands.push(update(element, bo, { extensionElements: ext }));
  }
  let found = ext.get('values').find((v) => v.$instanceOf(type));
  if (!found) {
    found = bpmnFactory.create(type, attrs || {});
    found.$parent = ext;
    commands.push(update(element, ext, { values: [ ...ext.get('values'), found ] }));
  }
  return found;
}

export function getProperty(element, name) {
  const props = extension(getBusinessObject(element), 'spiffworkflow:Properties');
  const found = props && props.get('property').find((p) => p.name === name);
  return found ? found.value : undefined;
}

function setProperty(element, name, value, injector) {
  const bpmnFactory = injector.get('bpmnFactory');
  const bo = getBusinessObject(element);
  const commands = [];
  const current = extension(bo, 'spiffworkflow:Properties');
  if (!value && !current) return;
  const props = ensureExtension(element, bo, 'spiffworkflow:Properties', bpmnFactory, commands);
  const list = props.get('property');
  const existing = list.find((p) => p.name === name);
  if (!value) {
    if (existing) commands.push(update(element, props, { property: list.filter((p) => p !== existing) }));
  } else if (existing) {
    commands.push(update(element, existing, { value }));
  } else {
    const created = bpmnFactory.create('spiffworkflow:Property', { name, value });
    created.$parent = props;
    commands.push(update(element, props, { property: [ ...list, created ] }));
  }
  if (commands.length) injector.get('commandStack').execute(MULTI, commands);
}

// -- entries ------------------------------------------------------------------------------

function PropertyText(props) {
  const { element, id, name, label, description, store, load, check } = props;
  const translate = useService('translate');
  const debounce = useService('debounceInput');
  const injector = useService('injector');
  const value = (load || ((v) => v || ''))(getProperty(element, name));
  return h(TextFieldEntry, {
    element, id, label: translate(label), debounce,
    description: typeof description === 'function' ? description(value) : description && translate(description),
    getValue: () => value,
    setValue: (v) => setProperty(element, name, (store || ((x) => (x || '').trim()))(v), injector),
    validate: check
  });
}

function PropertySelect(props) {
  const { element, id, name, label, options } = props;
  const translate = useService('translate');
  const injector = useService('injector');
  return h(SelectEntry, {
    element, id, label: translate(label),
    getValue: () => getProperty(element, name) || '',
    setValue: (v) => setProperty(element, name, v, injector),
    getOptions: () => {
      const current = getProperty(element, name);
      const values = [ '', ...options() ];
      if (current && !values.includes(current)) values.push(current);
      return values.map((v) => ({ value: v, label: v || '–' }));
    }
  });
}

function participantOf(shape) {
  let found = shape.parent;
  while (found && !is(found, 'bpmn:Participant')) found = found.parent;
  return found;
}

// The lanes a task can be put in: the innermost lanes of its own pool, top to bottom.
function lanesFor(element, elementRegistry) {
  const pool = participantOf(element);
  return elementRegistry.filter((e) => {
    if (!is(e, 'bpmn:Lane') || participantOf(e) !== pool) return false;
    const children = getBusinessObject(e).get('childLaneSet');
    return !(children && children.get('lanes').length);
  }).sort((a, b) => a.y - b.y);
}

function laneOf(element, lanes) {
  const bo = getBusinessObject(element);
  return lanes.find((l) => (getBusinessObject(l).get('flowNodeRef') || []).includes(bo));
}

// The lane (its name is the task's candidate group) as a field: choosing another lane moves
// the task into it, vertically centred, the way dragging it there does; bpmn-js then updates
// the lanes' flowNodeRefs and re-routes the flows. One undo step.
function LaneSelect(props) {
  const { element, id } = props;
  const elementRegistry = useService('elementRegistry');
  const modeling = useService('modeling');
  const translate = useService('translate');
  return h(SelectEntry, {
    element, id, label: translate('Group (lane)'),
    description: translate('The lane\'s name is the group that does the task. ' +
      'Choosing another lane moves the task into it.'),
    getValue: () => {
      const lane = laneOf(element, lanesFor(element, elementRegistry));
      return lane ? lane.id : '';
    },
    setValue: (laneId) => {
      const lane = elementRegistry.get(laneId);
      if (!lane) return;
      const dy = Math.round(lane.y + (lane.height - element.height) / 2) - element.y;
      if (dy) modeling.moveElements([ element ], { x: 0, y: dy });
    },
    getOptions: () => lanesFor(element, elementRegistry)
      .map((l) => ({ value: l.id, label: getBusinessObject(l).name || l.id }))
  });
}

// A lane's name is the candidate group of the user tasks in it (certflow.engine.elements).
function LaneGroup(props) {
  const { element, id, groups } = props;
  const modeling = useService('modeling');
  const translate = useService('translate');
  const name = getBusinessObject(element).name || '';
  return h(SelectEntry, {
    element, id, label: translate('Group that does this lane\'s tasks'),
    getValue: () => name,
    setValue: (v) => modeling.updateLabel(element, v),
    getOptions: () => {
      const values = [ ...groups ];
      if (name && !values.includes(name)) values.push(name);
      return [ { value: '', label: '–' }, ...values.map((v) => ({ value: v, label: v })) ];
    }
  });
}

function termDescription(translate, allowDate) {
  return (value) => {
    const result = preview(value, translate, allowDate);
    return result.text ? (result.ok ? '≈ ' + result.text : '⚠ ' + result.text)
      : translate('An ISO 8601 duration (P14D) or working days (5 werkdagen); =expression to compute it.');
  };
}

function termCheck(translate, allowDate) {
  return (value) => {
    const result = preview(value, translate, allowDate);
    return result.ok ? null : result.text;
  };
}

// -- service tasks ------------------------------------------------------------------------

function operatorOf(element) {
  return extension(getBusinessObject(element), 'spiffworkflow:ServiceTaskOperator');
}

function setHandler(element, name, injector) {
  const bpmnFactory = injector.get('bpmnFactory');
  const bo = getBusinessObject(element);
  const commands = [];
  const operator = ensureExtension(element, bo, 'spiffworkflow:ServiceTaskOperator', bpmnFactory, commands,
    { id: name });
  commands.push(update(element, operator, { id: name }));
  injector.get('commandStack').execute(MULTI, commands);
}

function paramOf(operator, name) {
  const params = operator && operator.get('parameters');
  return params ? params.get('parameter').find((p) => p.id === name) : undefined;
}

function setParam(element, spec, value, injector) {
  const bpmnFactory = injector.get('bpmnFactory');
  const operator = operatorOf(element);
  if (!operator) return;
  const commands = [];
  let params = operator.get('parameters');
  if (!params) {
    if (!value) return;
    params = bpmnFactory.create('spiffworkflow:Parameters', { parameter: [] });
    params.$parent = operator;
    commands.push(update(element, operator, { parameters: params }));
  }
  const list = params.get('parameter');
  const existing = list.find((p) => p.id === spec.name);
  if (!value) {
    if (existing) commands.push(update(element, params, { parameter: list.filter((p) => p !== existing) }));
  } else if (existing) {
    commands.push(update(element, existing, { value }));
  } else {
    const created = bpmnFactory.create('spiffworkflow:Parameter',
      { id: spec.name, type: spec.bpmn_type === 'any' ? 'str' : spec.bpmn_type, value });
    created.$parent = params;
    commands.push(update(element, params, { parameter: [ ...list, created ] }));
  }
  if (commands.length) injector.get('commandStack').execute(MULTI, commands);
}

function HandlerSelect(props) {
  const { element, id, catalogue } = props;
  const injector = useService('injector');
  const translate = useService('translate');
  const operator = operatorOf(element);
  const current = operator ? operator.id : '';
  const known = catalogue.operators.find((o) => o.name === current);
  return h(SelectEntry, {
    element, id, label: translate('Handler'),
    description: known ? known.description : (current ? translate('not a handler this server knows') : ''),
    getValue: () => current,
    setValue: (v) => setHandler(element, v, injector),
    getOptions: () => {
      const names = catalogue.operators.map((o) => o.name);
      if (current && !names.includes(current)) names.push(current);
      return [ { value: '', label: '–' }, ...names.map((n) => ({ value: n, label: n })) ];
    }
  });
}

function ResultVariable(props) {
  const { element, id } = props;
  const debounce = useService('debounceInput');
  const injector = useService('injector');
  const translate = useService('translate');
  const operator = operatorOf(element);
  return h(TextFieldEntry, {
    element, id, debounce, label: translate('Result variable'),
    getValue: () => (operator && operator.resultVariable) || '',
    setValue: (v) => operator && injector.get('commandStack').execute(MULTI,
      [ update(element, operator, { resultVariable: (v || '').trim() || undefined }) ])
  });
}

function ParamField(props) {
  const { element, id, spec } = props;
  const debounce = useService('debounceInput');
  const injector = useService('injector');
  const translate = useService('translate');
  const param = paramOf(operatorOf(element), spec.name);
  const required = spec.required ? ` (${translate('required')})` : '';
  return h(TextFieldEntry, {
    element, id, debounce,
    label: `${spec.name}: ${spec.type}${required}`,
    description: (spec.unknown ? translate('not a parameter of this handler') + ' '
      : (spec.description ? spec.description + ' ' : '')) +
      (spec.required ? '' : `${translate('default')}: ${spec.default}. `) +
      translate('A Python expression: \'text\' in quotes, or a variable name.'),
    getValue: () => (param && param.value) || '',
    setValue: (v) => setParam(element, spec, (v || '').trim(), injector)
  });
}

// An outbox handler's task (a mail) does not hold the case up, unless its property ``wait``
// says a later step needs the mail gone first (certflow.engine.outbox).
function WaitSelect(props) {
  const { element, id } = props;
  const injector = useService('injector');
  const translate = useService('translate');
  return h(SelectEntry, {
    element, id, label: translate('The case waits for the mail'),
    description: translate('A mail goes out without holding the case up. Choose yes when a later step needs it ' +
      'gone first (the address is erased next).'),
    getValue: () => (getProperty(element, 'wait') === 'true' ? 'true' : ''),
    setValue: (v) => setProperty(element, 'wait', v === 'true' ? 'true' : '', injector),
    getOptions: () => [
      { value: '', label: translate('No, the case goes on') }, { value: 'true', label: translate('Yes') } ]
  });
}

function serviceEntries(element, catalogue) {
  const entries = [
    { id: 'certflow-handler', component: HandlerSelect, catalogue, isEdited: isSelectEntryEdited },
    { id: 'certflow-result', component: ResultVariable, isEdited: isTextFieldEntryEdited }
  ];
  const operator = operatorOf(element);
  const known = operator && catalogue.operators.find((o) => o.name === operator.id);
  if ((known && known.effects === 'outbox') || getProperty(element, 'wait')) {
    entries.push({ id: 'certflow-wait', component: WaitSelect, isEdited: isSelectEntryEdited });
  }
  const specs = known ? [ ...known.parameters ] : [];
  if (operator && operator.get('parameters')) {
    for (const p of operator.get('parameters').get('parameter')) {
      if (!specs.find((s) => s.name === p.id)) {
        specs.push({ name: p.id, type: p.type || '?', bpmn_type: p.type || 'str', required: false,
          default: '–', unknown: true });
      }
    }
  }
  for (const spec of specs) {
    entries.push({ id: `certflow-param-${spec.name}`, component: ParamField, spec,
      isEdited: isTextFieldEntryEdited });
  }
  return entries;
}

// -- timers -------------------------------------------------------------------------------

function timerExpression(element) {
  const definition = (getBusinessObject(element).get('eventDefinitions') || [])
    .find((d) => is(d, 'bpmn:TimerEventDefinition'));
  if (!definition) return {};
  for (const kind of [ 'timeDuration', 'timeCycle', 'timeDate' ]) {
    if (definition.get(kind)) return { definition, kind, expression: definition.get(kind) };
  }
  return { definition, kind: 'timeDuration', expression: null };
}

function TimerField(props) {
  const { element, id } = props;
  const debounce = useService('debounceInput');
  const injector = useService('injector');
  const translate = useService('translate');
  const { definition, kind, expression } = timerExpression(element);
  const value = toField(expression ? expression.body : '');
  return h(TextFieldEntry, {
    element, id, debounce,
    label: translate('Timer (ISO 8601)'),
    description: termDescription(translate, true)(value),
    validate: termCheck(translate, true),
    getValue: () => value,
    setValue: (v) => {
      const body = fromField(v);
      const commands = [];
      if (expression) {
        commands.push(update(element, expression, { body }));
      } else {
        const created = injector.get('bpmnFactory').create('bpmn:FormalExpression', { body });
        created.$parent = definition;
        commands.push(update(element, definition, { [kind]: created }));
      }
      injector.get('commandStack').execute(MULTI, commands);
    }
  });
}

// -- the provider -------------------------------------------------------------------------

export default function CertflowPropertiesProvider(propertiesPanel, injector, config) {
  this._config = config;
  this._injector = injector;
  propertiesPanel.registerProvider(400, this);
}

CertflowPropertiesProvider.$inject = [ 'propertiesPanel', 'injector', 'config.certflow' ];

function injectorRegistry(provider) {
  return provider._injector.get('elementRegistry');
}

CertflowPropertiesProvider.prototype.getGroups = function(element) {
  const { forms, catalogue, groups: roles, checkCondition } = this._config;
  const provider = this;
  const translate = this._injector.get('translate');
  return (groups) => {
    const entries = [];
    const textEntry = (name, label, extra) => entries.push(
      { id: `certflow-${name}`, component: PropertyText, name, label, isEdited: isTextFieldEntryEdited, ...extra });
    const selectEntry = (name, label, options) => entries.push(
      { id: `certflow-${name}`, component: PropertySelect, name, label, options, isEdited: isSelectEntryEdited });
    const bo = getBusinessObject(element);
    if (is(element, 'bpmn:Lane')) {
      entries.push({ id: 'certflow-lane-group', component: LaneGroup, groups: roles, isEdited: isSelectEntryEdited });
    }
    if (is(element, 'bpmn:Task') && element.parent && lanesFor(element, injectorRegistry(provider)).length) {
      entries.push({ id: 'certflow-lane', component: LaneSelect, isEdited: () => false });
    }
    if (is(element, 'bpmn:UserTask')) {
      selectEntry('form', 'Form', () => forms());
      textEntry('assignee', 'Assignee',
        { description: 'An expression naming the person, e.g. mentor; empty: the lane\'s group picks.' });
      textEntry('due', 'Due', {
        load: toField, store: fromField,
        description: termDescription(translate, false), check: termCheck(translate, false)
      });
      textEntry('show', 'Show',
        { description: 'Case data the task shows, comma-separated (candidate, invoice_number).' });
      textEntry('priority', 'Priority', {
        description: 'A whole number from 0 to 100 (default 50).',
        check: (v) => (!v || /^\d{1,3}$/.test(v.trim()) ? null
          : translate('A whole number from 0 to 100 (default 50).'))
      });
      selectEntry('assignment_rule', 'Assignment rule', () => catalogue.assignment_rules);
    }
    if (is(element, 'bpmn:StartEvent') && !bo.get('eventDefinitions').length) {
      selectEntry('form', 'Start form', () => forms());
      textEntry('starters', 'Who may start', { description: 'Roles, comma-separated (candidate).' });
      selectEntry('guard', 'Start guard', () => catalogue.guards);
    }
    if (is(element, 'bpmn:ServiceTask')) {
      entries.push(...serviceEntries(element, catalogue));
    }
    const definitions = bo.get('eventDefinitions') || [];
    const catchesMessage = is(element, 'bpmn:ReceiveTask') ||
      (is(element, 'bpmn:CatchEvent') && definitions.some((d) => is(d, 'bpmn:MessageEventDefinition')));
    if (catchesMessage) {
      textEntry('correlation', 'Correlation variable',
        { description: 'The case variable the message is matched on (invoice_number).' });
    }
    if (definitions.some((d) => is(d, 'bpmn:TimerEventDefinition'))) {
      entries.push({ id: 'certflow-timer', component: TimerField, isEdited: isTextFieldEntryEdited });
      groups = groups.filter((g) => g.id !== 'timer');
    }
    if (entries.length) {
      const at = Math.min(1, groups.length);
      groups.splice(at, 0, { id: 'certflow', label: translate('certflow'), entries });
    }
    const routing = conditionGroup(element, translate, checkCondition);
    if (routing) groups.splice(Math.min(1, groups.length), 0, routing);
    // bpmn-js-properties-panel's groups leave the section's own titles ("Toggle section",
    // "Section contains edits") to an English fallback unless given the translate service.
    return groups.map((group) => (group.translate ? group : { ...group, translate }));
  };
};
