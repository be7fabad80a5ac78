// A gateway's routing in the properties panel: on a sequence flow out of an exclusive or
// inclusive gateway, its condition (bpmn:conditionExpression, a Python expression the sandbox
// runs) and whether it is the gateway's default flow. Both are modeling commands, so undo
// works and the default flow's slash comes and goes on the canvas.
// The server says whether a condition would run (POST /studio/condition: the deploy check's
// own words), as the owner types; a flow that needs a condition and has none is warned about
// here, since SpiffWorkflow refuses it at deploy. SpiffWorkflow takes no other flow by its
// condition, so a condition elsewhere is shown only to be removed (deploy refuses it).
import { h } from '@bpmn-io/properties-panel/preact';
import { useEffect, useState } from '@bpmn-io/properties-panel/preact/hooks';
import {
  CheckboxEntry, TextFieldEntry, isCheckboxEntryEdited, isTextFieldEntryEdited
} from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';
import { is, getBusinessObject } from 'bpmn-js/lib/util/ModelUtil';

const MULTI = 'properties-panel.multi-command-executor';

// What the server said of each condition text this page asked about (null: it runs).
const answers = new Map();

function routes(shape) {
  return !!shape && (is(shape, 'bpmn:ExclusiveGateway') || is(shape, 'bpmn:InclusiveGateway'));
}

function isDefault(element) {
  return routes(element.source) && getBusinessObject(element.source).get('default') === getBusinessObject(element);
}

function conditionOf(element) {
  const expression = getBusinessObject(element).get('conditionExpression');
  return (expression && expression.get('body')) || '';
}

// SpiffWorkflow refuses a flow out of a routing gateway with several flows that has neither.
function needsCondition(element) {
  return routes(element.source) && !isDefault(element) && element.source.outgoing.length > 1;
}

function properties(element, values) {
  return { cmd: 'element.updateProperties', context: { element, properties: values } };
}

function setCondition(element, text, injector) {
  const bo = getBusinessObject(element);
  const current = bo.get('conditionExpression');
  let command = null;
  if (!(text || '').trim()) {
    if (current) command = properties(element, { conditionExpression: undefined });
  } else if (current) {
    command = { cmd: 'element.updateModdleProperties', context: { element, moddleElement: current,
      properties: { body: text } } };
  } else {
    const created = injector.get('bpmnFactory').create('bpmn:FormalExpression', { body: text });
    created.$parent = bo;
    command = properties(element, { conditionExpression: created });
  }
  if (command) injector.get('commandStack').execute(MULTI, [ command ]);
}

function setDefault(element, on, injector) {
  const bo = getBusinessObject(element);
  const commands = [];
  if (on) {
    // A default flow is taken when no condition holds: a condition of its own would never count.
    commands.push(properties(element.source, { default: bo }));
    if (bo.get('conditionExpression')) commands.push(properties(element, { conditionExpression: undefined }));
  } else if (isDefault(element)) {
    commands.push(properties(element.source, { default: undefined }));
  }
  if (commands.length) injector.get('commandStack').execute(MULTI, commands);
}

function said(problem, translate) {
  if (!problem) return null;
  return problem.kind === 'syntax'
    ? translate('Not a Python expression ({detail}).', { detail: problem.detail })
    : translate('Not allowed in a condition: {detail}', { detail: problem.detail });
}

function ConditionField(props) {
  const { element, id, check } = props;
  const debounce = useService('debounceInput');
  const injector = useService('injector');
  const translate = useService('translate');
  const [ , answered ] = useState(0);
  const value = conditionOf(element);
  const routed = routes(element.source);

  useEffect(() => {
    if (!routed || !value.trim() || answers.has(value)) return undefined;
    let shown = true;
    check(value).then((problem) => {
      answers.set(value, problem || null);
      if (shown) answered((n) => n + 1);
    }, () => {});  // no answer (offline): the deploy check still says it
    return () => { shown = false; };
  }, [ value, routed ]);

  let description = translate('The flow is taken when this holds, e.g. verdict == \'approved\': ' +
    'case data by name, text in quotes.');
  if (!value.trim() && needsCondition(element)) {
    description = '⚠ ' + translate('Give a condition, or make this the default flow: a flow out of this ' +
      'gateway with neither is refused at deploy.');
  }
  return h(TextFieldEntry, {
    element, id, debounce, description,
    label: translate('Condition (Python expression)'),
    getValue: () => value,
    setValue: (v) => setCondition(element, v, injector),
    validate: (v) => {
      if (!routed) {
        return (v || '').trim() ? translate('Only a flow out of an exclusive or inclusive gateway is taken by ' +
          'its condition: route it through one, or empty this field.') : null;
      }
      return said(answers.get(v), translate);
    }
  });
}

function DefaultFlow(props) {
  const { element, id } = props;
  const injector = useService('injector');
  const translate = useService('translate');
  const current = getBusinessObject(element.source).get('default');
  let description;
  if (isDefault(element)) {
    description = translate('Taken when no other flow\'s condition holds; a default flow has no condition ' +
      'of its own.');
  } else if (current) {
    description = translate('The default flow is now ‘{flow}’: taken when no other flow\'s condition holds.',
      { flow: current.name || current.id });
  } else {
    description = translate('The default flow is taken when no other flow\'s condition holds; this ' +
      'gateway has none.');
  }
  return h(CheckboxEntry, {
    element, id, description,
    label: translate('This is the default flow'),
    getValue: () => isDefault(element),
    setValue: (on) => setDefault(element, on, injector)
  });
}

// The group for a sequence flow (null when it has nothing to route): the condition field
// (not on the default flow, which has none), and the default flow check box.
export function conditionGroup(element, translate, check) {
  if (!is(element, 'bpmn:SequenceFlow')) return null;
  const routed = routes(element.source);
  if (!routed && !getBusinessObject(element).get('conditionExpression')) return null;
  const entries = [];
  if (!isDefault(element)) {
    entries.push({ id: 'certflow-condition', component: ConditionField, check, isEdited: isTextFieldEntryEdited });
  }
  if (routed) {
    entries.push({ id: 'certflow-default-flow', component: DefaultFlow, isEdited: isCheckboxEntryEdited });
  }
  return { id: 'certflow-routing', label: translate('Condition'), entries };
}
