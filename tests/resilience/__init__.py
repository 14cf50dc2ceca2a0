"""The fault suite: the real pipeline on private services, faults injected, then an audit."""
