// The spiffworkflow extension elements certflow's diagrams use (see certflow/engine/elements.py
// and processes/*/*.bpmn), so the modeler reads and writes them as typed elements.
export default {
  name: 'SpiffWorkflow',
  prefix: 'spiffworkflow',
  uri: 'http://spiffworkflow.org/bpmn/schema/1.0/core',
  xml: { tagAlias: 'lowerCase' },
  associations: [],
  types: [
    {
      name: 'Properties',
      superClass: [ 'Element' ],
      properties: [ { name: 'property', type: 'Property', isMany: true } ]
    },
    {
      name: 'Property',
      properties: [
        { name: 'name', isAttr: true, type: 'String' },
        { name: 'value', isAttr: true, type: 'String' }
      ]
    },
    {
      name: 'ServiceTaskOperator',
      superClass: [ 'Element' ],
      properties: [
        { name: 'id', isAttr: true, type: 'String' },
        { name: 'resultVariable', isAttr: true, type: 'String' },
        { name: 'parameters', type: 'Parameters' }
      ]
    },
    {
      name: 'Parameters',
      properties: [ { name: 'parameter', type: 'Parameter', isMany: true } ]
    },
    {
      name: 'Parameter',
      properties: [
        { name: 'id', isAttr: true, type: 'String' },
        { name: 'type', isAttr: true, type: 'String' },
        { name: 'value', isAttr: true, type: 'String' }
      ]
    },
    {
      name: 'MessageVariable',
      superClass: [ 'Element' ],
      properties: [ { name: 'value', isBody: true, type: 'String' } ]
    },
    {
      name: 'MessagePayload',
      superClass: [ 'Element' ],
      properties: [ { name: 'value', isBody: true, type: 'String' } ]
    }
  ]
};
