; Tags query for c: definitions (@definition.*, @name.definition.*) and references (@name.reference.*).
; Adapted from aider (https://github.com/Aider-AI/aider, Apache License 2.0), aider/queries/tree-sitter-language-pack/c-tags.scm
; at commit 5dc9490b, itself adapted from the tags.scm of the language's tree-sitter grammar (MIT License).

(struct_specifier name: (type_identifier) @name.definition.class body:(_)) @definition.class

(declaration type: (union_specifier name: (type_identifier) @name.definition.class)) @definition.class

(function_declarator declarator: (identifier) @name.definition.function) @definition.function

(type_definition declarator: (type_identifier) @name.definition.type) @definition.type

(enum_specifier name: (type_identifier) @name.definition.type) @definition.type

; pasd: calls, so that C files rank the functions they use
(call_expression
  function: (identifier) @name.reference.call) @reference.call

(type_identifier) @name.reference.type
