"""One module per capability: the handler functions the pipeline runs for each command
(``handle(ctx, command) -> result``), and the jobs of that capability (sweeps, batches)."""
