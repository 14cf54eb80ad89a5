"""The lark grammar of the agent DSL (LALR(1), contextual lexer).

The expression grammar is written three times by :func:`_expression_rules`, because two
places in the language need a restricted expression, as in Rust:

* ``n`` (*no brace*): where a ``{`` that follows the expression opens a block — ``if`` and
  ``for`` heads, ``match`` subjects, ``with`` attribute values, settings values — struct,
  record and set literals are not allowed outside brackets (``if x { }`` is never a struct).
* ``s`` (*statement*): an expression statement must not start with ``if``, ``match`` or
  ``{``, which begin compound statements; the rest of the expression is unrestricted.
* ``f`` (*full*): everywhere else.

Keywords are reserved only where the grammar can use them: the contextual lexer offers each
parser state only the terminals it accepts, so ``event.type``, ``{ type: x }`` or a webhook's
``agent incident_tracker`` read ``type`` and ``agent`` as identifiers.
"""

from __future__ import annotations

__all__ = ["KEYWORDS", "TERMINAL_NAMES", "UNIT_WORDS", "grammar_text"]

#: Words the grammar uses as keywords somewhere.
KEYWORDS: frozenset[str] = frozenset(
    [
        "metadata",
        "agent",
        "policy",
        "type",
        "function",
        "schedule",
        "channel",
        "memory",
        "webhook",
        "capabilities",
        "with",
        "let",
        "if",
        "else",
        "for",
        "in",
        "match",
        "try",
        "catch",
        "return",
        "allow",
        "deny",
        "require",
        "audit",
        "true",
        "false",
        "not",
        "on",
    ]
)

#: ``30.seconds`` style durations: the member names that make a number a duration.
UNIT_WORDS: dict[str, str] = {
    "millisecond": "ms",
    "milliseconds": "ms",
    "second": "s",
    "seconds": "s",
    "minute": "m",
    "minutes": "m",
    "hour": "h",
    "hours": "h",
    "day": "d",
    "days": "d",
    "week": "w",
    "weeks": "w",
    "month": "months",
    "months": "months",
    "year": "y",
    "years": "y",
}

#: How diagnostics name the named terminals.
TERMINAL_NAMES: dict[str, str] = {
    "IDENT": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "DURATION": "a duration",
    "VAULT": "a vault:// reference",
    "$END": "end of file",
}

_TERMINALS = r"""
IDENT: /[A-Za-z_][A-Za-z0-9_]*/
STRING: /"(?:[^"\\\n]|\\.)*"/
DURATION.2: /[0-9][0-9_]*(?:\.[0-9]+)?(?:ms|months|s|m|h|d|w|y)(?![A-Za-z0-9_])/
NUMBER: /[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9]+)?/
VAULT.3: /vault:\/\/[A-Za-z0-9_\-\/]+/
LINE_COMMENT: /(\/\/|#)[^\n]*/
BLOCK_COMMENT: /\/\*(.|\n)*?\*\//
%import common.WS
%ignore WS
%ignore LINE_COMMENT
%ignore BLOCK_COMMENT
"""

_STRUCTURE = r"""
program: _item*
rule_start: policy_rule
expr_start: expr_f
type_start: type

_item: metadata | agent_def | policy_def | type_def | function_def | section_def

// ---------------------------------------------------------------- settings blocks
metadata: "metadata" "{" _entry* "}"
section_def: section_kind IDENT? "{" _entry* "}"
_entry: (setting | policy_def | section_setting) _sep?
_sep: "," | ";"
setting: IDENT _kv_sep? expr_n
section_setting: IDENT _kv_sep? "{" _entry* "}"
    | "policy" "{" _entry* "}"                          -> policy_section
_kv_sep: "=" | ":"

// ---------------------------------------------------------------- agents
agent_def: "agent" IDENT params? returns? "{" _agent_item* "}"
params: "(" [param ("," param)* ","?] ")"
param: IDENT ":" type
returns: "->" type
_agent_item: capabilities | policy_def | function_def | with_block | _stmt
capabilities: "capabilities" _kv_sep "[" [_capability ("," _capability)* ","?] "]"
_capability: IDENT | STRING
with_block: "with" [with_attr ("," with_attr)* ","?] block
with_attr: IDENT ("=" expr_n)?

function_def: "function" IDENT params returns? block

// ---------------------------------------------------------------- policies
policy_def: "policy" IDENT "{" (policy_rule _sep?)* "}"
policy_rule: rule_kind ":" expr_f with_clause? for_clause? if_clause?
with_clause: "with" expr_f
for_clause: "for" expr_f on_clause?
on_clause: "on" expr_f
if_clause: "if" expr_f

// ---------------------------------------------------------------- types
type_def: "type" IDENT "=" (type | struct_type) ";"?
struct_type: "{" [type_field ("," type_field)* ","?] "}"
type_field: IDENT ":" type
type: IDENT type_args?
type_args: "<" type ("," type)* ","? ">"

// ---------------------------------------------------------------- statements
block: "{" _stmt* expr_s? "}"
_stmt: let_stmt | assign_stmt | return_stmt | expr_stmt | compound_stmt | for_stmt | try_stmt
let_stmt: "let" IDENT (":" type)? "=" expr_f ";"
assign_stmt: expr_s assign_op expr_f ";"
return_stmt: "return" expr_f? ";"
expr_stmt: expr_s ";"
compound_stmt: (if_expr | match_expr) ";"?
for_stmt: "for" IDENT "in" expr_n block ";"?
try_stmt: "try" block catch_clause+ ";"?
catch_clause: "catch" ("(" IDENT IDENT? ")")? block

// ---------------------------------------------------------------- compound expressions
if_expr: "if" _cond block ("else" (block | if_expr))?
_cond: expr_n | if_let
if_let: "let" pattern "=" expr_n
match_expr: "match" expr_n "{" _arms "}"
_arms: (arm_block ","? | arm_expr ",")* arm_expr?
arm_block: _arm_head block
arm_expr: _arm_head expr_n
_arm_head: pattern ("|" pattern)* arm_guard? "=>"
arm_guard: "if" or_n
pattern: IDENT ("::" IDENT)*                            -> name_pattern
    | IDENT ("::" IDENT)* "(" [pattern ("," pattern)* ","?] ")"   -> ctor_pattern
    | STRING                                            -> literal_pattern
    | NUMBER                                            -> literal_pattern
    | DURATION                                          -> literal_pattern
    | "true"                                            -> true_pattern
    | "false"                                           -> false_pattern
    | "-" NUMBER                                        -> negative_pattern

// ---------------------------------------------------------------- shared pieces
args: "(" [_arg ("," _arg)* ","?] ")"
_arg: expr_f | named_value
named_value: IDENT _kv_sep expr_f
array: "[" [_element ("," _element)* ","?] "]"
_element: expr_f | array_named
array_named: IDENT "=" expr_f
record: "{" [field ("," field)* ","?] "}"
set_lit: "{" expr_f ("," expr_f)* ","? "}"
struct_lit: IDENT "{" [field ("," field)* ","?] "}"
field: _field_key ":" expr_f
_field_key: IDENT | STRING | agent_kw
agent_kw: "agent"
!rule_kind: "allow" | "deny" | "require" | "audit"
!section_kind: "schedule" | "channel" | "memory" | "webhook"
!assign_op: "=" | "+=" | "-=" | "*=" | "/=" | "%="
!or_op: "||"
!and_op: "&&"
!eq_op: "==" | "!=" | "in"
!cmp_op: "<=" | ">=" | "<" | ">"
!add_op: "+" | "-"
!mul_op: "*" | "/" | "%"
!not_op: "!" | "not"
"""

# Levels below the lambda, loosest first: (rule, operator rule, next level).
_LEVELS = (
    ("or", "or_op", "and"),
    ("and", "and_op", "eq"),
    ("eq", "eq_op", "cmp"),
    ("cmp", "cmp_op", "add"),
    ("add", "add_op", "mul"),
    ("mul", "mul_op", "unary"),
)


def _expression_rules(variant: str) -> str:
    """The expression grammar for one variant (``f``, ``n`` or ``s``; see the module doc)."""
    # Right-hand operands: a statement's restriction applies to its first token only.
    right = "n" if variant == "n" else "f"
    v = variant
    lines = [
        f"?expr_{v}: or_{v} | lambda_{v}",
        f'lambda_{v}: IDENT "=>" expr_{right}',
    ]
    for level, op, lower in _LEVELS:
        lines.append(f"?{level}_{v}: {lower}_{v} | {level}_{v} {op} {lower}_{right} -> binary")
    lines += [
        f"?unary_{v}: postfix_{v} | not_op unary_{right} -> unary | add_op unary_{right} -> unary",
        f"?postfix_{v}: primary_{v}",
        f'    | postfix_{v} "." IDENT -> member',
        f"    | postfix_{v} args -> call",
        f'    | postfix_{v} "[" expr_f "]" -> index',
    ]
    primaries = [
        "STRING -> string",
        "NUMBER -> number",
        "DURATION -> duration",
        '"true" -> true',
        '"false" -> false',
        "IDENT -> name",
        'IDENT ("::" IDENT)+ -> path',
        "VAULT -> vault",
        '"(" expr_f ")"',
        "array",
        '"agent" IDENT -> agent_ref',
    ]
    if v == "f":
        primaries += ["record", "set_lit", "struct_lit", "if_expr", "match_expr"]
    elif v == "n":
        primaries += ["if_expr", "match_expr"]
    else:
        primaries += ["struct_lit"]
    lines.append(f"?primary_{v}: " + "\n    | ".join(primaries))
    return "\n".join(lines) + "\n"


def grammar_text() -> str:
    """The complete lark grammar."""
    return _STRUCTURE + "".join(_expression_rules(v) for v in ("f", "n", "s")) + _TERMINALS
