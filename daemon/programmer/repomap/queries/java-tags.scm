; Tags query for java: definitions (@definition.*, @name.definition.*) and references (@name.reference.*).
; Adapted from aider (https://github.com/Aider-AI/aider, Apache License 2.0), aider/queries/tree-sitter-language-pack/java-tags.scm
; at commit 5dc9490b, itself adapted from the tags.scm of the language's tree-sitter grammar (MIT License).

(class_declaration
  name: (identifier) @name.definition.class) @definition.class

(method_declaration
  name: (identifier) @name.definition.method) @definition.method

(method_invocation
  name: (identifier) @name.reference.method
  arguments: (argument_list) @reference.call)

(interface_declaration
  name: (identifier) @name.definition.interface) @definition.interface

(type_list
  (type_identifier) @name.reference.interface) @reference.implementation

(object_creation_expression
  type: (type_identifier) @name.reference.class) @reference.class

(superclass (type_identifier) @name.reference.class) @reference.class
