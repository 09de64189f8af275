"""Pure feedback rules: the golden thread walked back to voices, consent, wording. No I/O."""
