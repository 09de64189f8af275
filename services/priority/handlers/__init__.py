"""Priority use cases (HTTP commands) and policies (consumed events), one transaction each."""
