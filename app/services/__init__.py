"""Use cases: each service loads what it needs from the store, calls the domain code, writes back,
and keeps the derived state (vectors, graph, catalogue) in step after every commit."""
