"""The audit capability: replay the public history, verify it, trace it, and tell its story.

Pure core (no I/O): `record` (one message checked on its own: contract and contents), `sequencer`
(per-source ordering), `graph` (the influence graph in columns: `columns`, read back through
`views`), `verify` (the replay that checks chains, causation and notifications), `trace`, `stats`
(pace and equity). Edges: `parallel` (per-message checks in worker processes), `sources`
(broker, event stores, files), `report` (HTML), `cli` (the `golden-thread audit` commands),
`bench`.
"""
