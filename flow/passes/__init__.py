"""Model and graph transforms; each pass is `graph, info = some_pass(graph, args)`."""
