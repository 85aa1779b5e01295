"""pas-lsp: the pasd language server (pygls 2 over stdio). See docs/lsp.md for the contract."""
