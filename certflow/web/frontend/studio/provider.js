// certflow's conventions as fields: lane (group), form, assignee, due, show, priority on user
// tasks; form, starters and guard on start events; the handler and its typed parameters on
// service tasks (from the server's handler registry), and whether the case waits for a mail;
// the correlation variable on message
// events and receive tasks; timers as ISO durations with a human preview.
import { h } from '@bpmn-io/properties-panel/preact';
import {
  TextFieldEntry, SelectEntry, isTextFieldEntryEdited, isSelectEntryEdited
} from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';
import { is, getBusinessObject } from 'bpmn-js/lib/util/ModelUtil';
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
    description: typeof description === 'function' ? description(value) : description,
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
  const { element, id, texts } = props;
  const elementRegistry = useService('elementRegistry');
  const modeling = useService('modeling');
  return h(SelectEntry, {
    element, id, label: texts.group || 'Group (lane)', description: texts.group_hint || '',
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
  const { element, id, groups, texts } = props;
  const modeling = useService('modeling');
  const name = getBusinessObject(element).name || '';
  return h(SelectEntry, {
    element, id, label: texts.lane_group || 'Group',
    getValue: () => name,
    setValue: (v) => modeling.updateLabel(element, v),
    getOptions: () => {
      const values = [ ...groups ];
      if (name && !values.includes(name)) values.push(name);
      return [ { value: '', label: '–' }, ...values.map((v) => ({ value: v, label: v })) ];
    }
  });
}

function termDescription(texts, allowDate) {
  return (value) => {
    const result = preview(value, texts, allowDate);
    return result.text ? (result.ok ? '≈ ' + result.text : '⚠ ' + result.text) : (texts.term_hint || '');
  };
}

function termCheck(texts, allowDate) {
  return (value) => {
    const result = preview(value, texts, allowDate);
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
  const { element, id, catalogue, texts } = props;
  const injector = useService('injector');
  const operator = operatorOf(element);
  const current = operator ? operator.id : '';
  const known = catalogue.operators.find((o) => o.name === current);
  return h(SelectEntry, {
    element, id, label: texts.handler || 'Handler',
    description: known ? known.description : (current ? (texts.unknown_handler || 'unknown handler') : ''),
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
  const { element, id, texts } = props;
  const debounce = useService('debounceInput');
  const injector = useService('injector');
  const operator = operatorOf(element);
  return h(TextFieldEntry, {
    element, id, debounce, label: texts.result_variable || 'Result variable',
    getValue: () => (operator && operator.resultVariable) || '',
    setValue: (v) => operator && injector.get('commandStack').execute(MULTI,
      [ update(element, operator, { resultVariable: (v || '').trim() || undefined }) ])
  });
}

function ParamField(props) {
  const { element, id, spec, texts } = props;
  const debounce = useService('debounceInput');
  const injector = useService('injector');
  const param = paramOf(operatorOf(element), spec.name);
  const required = spec.required ? ` (${texts.required || 'required'})` : '';
  return h(TextFieldEntry, {
    element, id, debounce,
    label: `${spec.name}: ${spec.type}${required}`,
    description: (spec.description ? spec.description + ' ' : '') +
      (spec.required ? '' : `${texts.default || 'default'}: ${spec.default}. `) + (texts.param_hint || ''),
    getValue: () => (param && param.value) || '',
    setValue: (v) => setParam(element, spec, (v || '').trim(), injector)
  });
}

// An outbox handler's task (a mail) does not hold the case up, unless its property ``wait``
// says a later step needs the mail gone first (certflow.engine.outbox).
function WaitSelect(props) {
  const { element, id, texts } = props;
  const injector = useService('injector');
  return h(SelectEntry, {
    element, id, label: texts.wait || 'The case waits for the mail',
    description: texts.wait_hint || '',
    getValue: () => (getProperty(element, 'wait') === 'true' ? 'true' : ''),
    setValue: (v) => setProperty(element, 'wait', v === 'true' ? 'true' : '', injector),
    getOptions: () => [ { value: '', label: texts.wait_no || 'No' }, { value: 'true', label: texts.wait_yes || 'Yes' } ]
  });
}

function serviceEntries(element, catalogue, texts) {
  const entries = [
    { id: 'certflow-handler', component: HandlerSelect, catalogue, texts, isEdited: isSelectEntryEdited },
    { id: 'certflow-result', component: ResultVariable, texts, isEdited: isTextFieldEntryEdited }
  ];
  const operator = operatorOf(element);
  const known = operator && catalogue.operators.find((o) => o.name === operator.id);
  if ((known && known.effects === 'outbox') || getProperty(element, 'wait')) {
    entries.push({ id: 'certflow-wait', component: WaitSelect, texts, isEdited: isSelectEntryEdited });
  }
  const specs = known ? [ ...known.parameters ] : [];
  if (operator && operator.get('parameters')) {
    for (const p of operator.get('parameters').get('parameter')) {
      if (!specs.find((s) => s.name === p.id)) {
        specs.push({ name: p.id, type: p.type || '?', bpmn_type: p.type || 'str', required: false,
          default: '–', description: texts.unknown_param || 'not a parameter of this handler' });
      }
    }
  }
  for (const spec of specs) {
    entries.push({ id: `certflow-param-${spec.name}`, component: ParamField, spec, texts,
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
  const { element, id, texts } = props;
  const debounce = useService('debounceInput');
  const injector = useService('injector');
  const { definition, kind, expression } = timerExpression(element);
  const value = toField(expression ? expression.body : '');
  return h(TextFieldEntry, {
    element, id, debounce,
    label: texts.timer || 'Timer (ISO 8601)',
    description: termDescription(texts, true)(value),
    validate: termCheck(texts, true),
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
  const { forms, catalogue, texts, groups: roles } = this._config;
  const provider = this;
  return (groups) => {
    const entries = [];
    const textEntry = (name, label, extra) => entries.push(
      { id: `certflow-${name}`, component: PropertyText, name, label, isEdited: isTextFieldEntryEdited, ...extra });
    const selectEntry = (name, label, options) => entries.push(
      { id: `certflow-${name}`, component: PropertySelect, name, label, options, isEdited: isSelectEntryEdited });
    const bo = getBusinessObject(element);
    if (is(element, 'bpmn:Lane')) {
      entries.push({ id: 'certflow-lane-group', component: LaneGroup, groups: roles, texts,
        isEdited: isSelectEntryEdited });
    }
    if (is(element, 'bpmn:Task') && element.parent && lanesFor(element, injectorRegistry(provider)).length) {
      entries.push({ id: 'certflow-lane', component: LaneSelect, texts, isEdited: () => false });
    }
    if (is(element, 'bpmn:UserTask')) {
      selectEntry('form', texts.form || 'Form', () => forms());
      textEntry('assignee', texts.assignee || 'Assignee', { description: texts.assignee_hint });
      textEntry('due', texts.due || 'Due', {
        load: toField, store: fromField,
        description: termDescription(texts, false), check: termCheck(texts, false)
      });
      textEntry('show', texts.show || 'Show', { description: texts.show_hint });
      textEntry('priority', texts.priority || 'Priority', {
        description: texts.priority_hint,
        check: (v) => (!v || /^\d{1,3}$/.test(v.trim()) ? null : (texts.priority_hint || '0-100'))
      });
      selectEntry('assignment_rule', texts.assignment_rule || 'Assignment rule', () => catalogue.assignment_rules);
    }
    if (is(element, 'bpmn:StartEvent') && !bo.get('eventDefinitions').length) {
      selectEntry('form', texts.start_form || 'Start form', () => forms());
      textEntry('starters', texts.starters || 'Who may start', { description: texts.starters_hint });
      selectEntry('guard', texts.guard || 'Start guard', () => catalogue.guards);
    }
    if (is(element, 'bpmn:ServiceTask')) {
      entries.push(...serviceEntries(element, catalogue, texts));
    }
    const definitions = bo.get('eventDefinitions') || [];
    const catchesMessage = is(element, 'bpmn:ReceiveTask') ||
      (is(element, 'bpmn:CatchEvent') && definitions.some((d) => is(d, 'bpmn:MessageEventDefinition')));
    if (catchesMessage) {
      textEntry('correlation', texts.correlation || 'Correlation variable', { description: texts.correlation_hint });
    }
    if (definitions.some((d) => is(d, 'bpmn:TimerEventDefinition'))) {
      entries.push({ id: 'certflow-timer', component: TimerField, texts, isEdited: isTextFieldEntryEdited });
      groups = groups.filter((g) => g.id !== 'timer');
    }
    if (entries.length) {
      const at = Math.min(1, groups.length);
      groups.splice(at, 0, { id: 'certflow', label: texts.certflow || 'certflow', entries });
    }
    return groups;
  };
};
