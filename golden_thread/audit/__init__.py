"""The audit capability: replay the public history, verify it, trace it, and tell its story.

Pure core (no I/O): `sequencer` (per-source ordering), `graph` (the influence graph held as
compact ids), `verify` (the replay that checks chains, causation and notifications), `trace`,
`stats` (pace and equity). Edges: `sources` (broker, event stores, files), `report` (HTML),
`cli` (the `golden-thread audit` commands), `bench`.
"""
