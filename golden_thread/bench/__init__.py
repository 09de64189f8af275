"""`golden-thread bench`: the system's own figures beside the raw limits of its broker and database,
measured in the same run on the same machine, with the ratio of each to its raw limit.

`runner.run_bench` orchestrates; `raw_pg`, `raw_kafka` and `peer` measure the raw limits and the
`eventsourcing` peer; `store`, `intake`, `pipelines` and `replay` measure the system itself.
"""
