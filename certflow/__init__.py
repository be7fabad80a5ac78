"""certflow: BPMN-driven workflow automation for certifying career professionals."""
