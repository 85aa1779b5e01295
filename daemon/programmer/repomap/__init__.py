"""The repo map: a token-budgeted outline of the workspace's definitions, ranked for one task.

`tags` reads definitions and references with tree-sitter, `rank` ranks them for a task and renders
the outline, `index` keeps one workspace's parse results up to date in the daemon.
"""
