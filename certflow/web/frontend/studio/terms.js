// Human previews of the terms certflow reads (certflow/workdays.py parse_term and timer
// expressions): "P14D" -> "14 dagen", "R2/P14D" -> "elke 14 dagen, 2 keer", "5 werkdagen".
// Their words go through `t`, the modeler's translate service (the page's language).

const ISO = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/i;
const WORKING = /^(\d{1,4})\s*(werkdag|werkdagen|working days?|business days?)$/i;
// deadline("P45D", True): a candidate's term, moved to the next working day (certflow's sandbox helper).
const DEADLINE = /^deadline\(\s*(["'])([^"']+)\1\s*(?:,\s*(True|False)\s*)?\)$/;
const UNITS = [ 'year', 'month', 'week', 'day', 'hour', 'minute', 'second' ];

// A Python string literal ("P5D" or 'P5D') -> its text; anything else -> null (an expression).
export function literal(expression) {
  const text = (expression || '').trim();
  if (text.length >= 2 && text[0] === text[text.length - 1] && (text[0] === '"' || text[0] === '\'')) {
    return text.slice(1, -1);
  }
  return null;
}

// What the field shows: the literal's text, or "=expression" for a computed value.
export function toField(expression) {
  if (!expression) return '';
  const text = literal(expression);
  return text === null ? '=' + expression.trim() : text;
}

// What the diagram stores: a quoted literal, or the expression after "=".
export function fromField(value) {
  const text = (value || '').trim();
  if (!text) return '';
  if (text.startsWith('=')) return text.slice(1).trim();
  return JSON.stringify(text);
}

function duration(text, t) {
  const match = ISO.exec(text);
  if (!match || text.toUpperCase().endsWith('T') || !match.slice(1).some(Boolean)) return null;
  const parts = [];
  match.slice(1).forEach((value, i) => {
    if (!value) return;
    const n = Number(value);
    parts.push(`${n} ${t(n === 1 ? UNITS[i] : UNITS[i] + 's')}`);
  });
  return parts.join(' ');
}

// The preview under a due or timer field; { ok, text }. `t`: the modeler's translate.
export function preview(value, t, allowDate) {
  const text = (value || '').trim();
  if (!text) return { ok: true, text: '' };
  if (text.startsWith('=')) {
    const deadline = DEADLINE.exec(text.slice(1).trim());
    const term = deadline && preview(deadline[2], t, false);
    if (term && term.ok) {
      return { ok: true, text: term.text + (deadline[3] === 'True'
        ? ', ' + t('or through the next working day when it ends on a day off') : '') };
    }
    return { ok: true, text: t('computed at run time') };
  }
  const working = WORKING.exec(text);
  if (working) return { ok: true, text: `${Number(working[1])} ${t('working days')}` };
  const cycle = /^R(\d*)\/(P[^/]+)$/i.exec(text);
  if (cycle) {
    const every = duration(cycle[2], t);
    if (every) {
      return { ok: true, text: `${t('every')} ${every}` + (cycle[1] ? `, ${cycle[1]} ${t('times')}` : '') };
    }
  }
  const single = duration(text, t);
  if (single) return { ok: true, text: single };
  if (allowDate && !isNaN(Date.parse(text))) return { ok: true, text };
  return { ok: false, text: t('not an ISO 8601 duration (P14D, PT4H, P1M) nor working days (10 werkdagen)') };
}
