// The modeler in the page's language: bpmn-js's `translate` service replaced the documented way
// (a module overriding `translate` in additionalModules). bpmn-js, diagram-js and the properties
// panel pass their English to it ("Create start event", "ID must be unique."), as does
// provider.js. bpmn-io's words come from a dictionary per language (./nl.js); certflow's own from
// the server's catalogue (certflow/web/pages/studio_words.py), which wins where both have a text.
// A text neither knows stays English; on a page that is not English it is noted in `missing`,
// which the browser test reads (a bpmn-js upgrade with new texts shows up there).
import nl from './nl';

const DICTIONARIES = { nl };

// { module, missing }: the module for additionalModules, and the texts it had no words for.
export default function translateModule(language, own) {
  const words = { ...(DICTIONARIES[language] || {}), ...(own || {}) };
  const missing = new Set();

  function translate(template, replacements) {
    let text = template;
    if (Object.prototype.hasOwnProperty.call(words, template)) text = words[template];
    else if (language !== 'en') missing.add(template);
    // diagram-js's own substitution, except that a value of 0 is filled in too.
    return text.replace(/{([^}]+)}/g, (match, key) =>
      (replacements && replacements[key] !== undefined ? String(replacements[key]) : match));
  }

  return { module: { translate: [ 'value', translate ] }, missing };
}
