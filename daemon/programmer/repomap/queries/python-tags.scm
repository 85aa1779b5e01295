; Tags query for python: definitions (@definition.*, @name.definition.*) and references (@name.reference.*).
; Adapted from aider (https://github.com/Aider-AI/aider, Apache License 2.0), aider/queries/tree-sitter-language-pack/python-tags.scm
; at commit 5dc9490b, itself adapted from the tags.scm of the language's tree-sitter grammar (MIT License).

(module (expression_statement (assignment left: (identifier) @name.definition.constant) @definition.constant))

(class_definition
  name: (identifier) @name.definition.class) @definition.class

(function_definition
  name: (identifier) @name.definition.function) @definition.function

(call
  function: [
      (identifier) @name.reference.call
      (attribute
        attribute: (identifier) @name.reference.call)
  ]) @reference.call

; pasd: newer grammars put module-level assignments straight under the module
(module (assignment left: (identifier) @name.definition.constant) @definition.constant)

; pasd: imported names (`from x import name`) are what a module uses most surely
(import_from_statement
  name: [
    (dotted_name (identifier) @name.reference.import)
    (aliased_import name: (dotted_name (identifier) @name.reference.import))
  ])

; pasd: names used as values and types (constants, classes in annotations)
(attribute
  attribute: (identifier) @name.reference.attribute)

(type (identifier) @name.reference.type)
