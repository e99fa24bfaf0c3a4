#!/usr/bin/env python3
"""Measures `sluice statemachine lint` against the public corpora of other ASL tools.

Python 3.11, standard library only. The corpora are NOT part of this tree (their licences and the
project's rules keep them out): export them to a folder outside it, then point this script there.

    # 1. export each corpus (a git directory, e.g. a mirror or a clone) to a folder of its own
    python3 statemachine/corpora/run.py export --dest /tmp/corpora \\
        asl-validator=PATH/TO/ChristopheBougere/asl-validator.git \\
        statelint-ruby=PATH/TO/awslabs/statelint.git \\
        statelint-python=PATH/TO/taro-kayo/statelint.git \\
        asl-language-service=PATH/TO/aws/amazon-states-language-service.git \\
        workflows-collection=PATH/TO/aws-samples/step-functions-workflows-collection.git
    # 2. lint every definition (and, with --exec, run the workflows collection's definitions)
    cargo build --workspace
    python3 statemachine/corpora/run.py lint --corpora /tmp/corpora --sluice target/debug/sluice \\
        --out /tmp/corpora-results.tsv --exec

`lint` writes a tab-separated table (corpus, file, expected, ours, agree, category, note, first
problem line) and prints the agreement per corpus and overall, the remaining disagreements by
category (CATEGORIES below says, for each, which side the documentation supports and where), and
every crash (an exit code other than 0/1, a panic, a timeout) of lint or exec. It exits 1 when
there was a crash. statemachine/corpora/README.md has the last measurement.

Where each corpus's expected verdict comes from (a definition whose expectation cannot be derived
is listed with expected "?" and left out of the agreement):

asl-validator (ChristopheBougere/asl-validator)
    `src/__tests__/definitions/{valid,invalid}-*.json`: its test `validator.test.ts` asserts that
    every `valid-*` file validates with no error and every `invalid-*` file has at least one error
    (default options: checkPaths and checkArn on). The file is linted as it is.

statelint-ruby (awslabs/statelint, the reference linter AWS published)
    `test/*.json`: its specs (`spec/statelint_spec.rb`, `spec/state_node_spec.rb`) read each file
    with `File.read "test/X.json"` and then assert `expect(problems.size).to eq(N)`: N == 0 means
    valid, N > 0 invalid. Files no spec reads are listed with "?". The file is linted as it is.

statelint-python (taro-kayo/statelint, a Python port of statelint)
    Its pytest files `tests/**/test_*.py` build definitions as Python dicts (often parametrized)
    and assert `Linter.validate(definition) == [problems...]`. The test modules are executed with
    stand-ins for `pytest` and for the `statelint` package (nothing of the port itself runs): the
    stand-in `Linter.validate` records the definition it is given (a dict, JSON text, or a file
    under `tests/`), and the list it is compared with gives the verdict: `[]` valid, a non-empty
    list invalid. Calls with a non-default `Config` (ignored problem kinds, JSONata evaluation)
    are left out; so are tests that check single fields or nodes rather than whole definitions
    (those raise with the stand-ins, and are counted as skipped). Each recorded definition is
    linted as JSON (json.dumps of the dict; a YAML file is converted, see below).

asl-language-service (aws/amazon-states-language-service, the validation behind the AWS Toolkit)
    `src/tests/validation.test.ts` calls `testValidations({json: documentX, diagnostics: [...],
    filterMessages: [...]})`, with `documentX` a template literal exported by
    `src/tests/json-strings/validationStrings.ts` (or an array of them iterated in the test).
    A non-empty `diagnostics` list means invalid; an empty one without `filterMessages` valid; an
    empty one with `filterMessages` (the test hides some diagnostics, e.g. unreachable states) is
    "?". Tests that build a definition in code (`JSON.stringify(...)`) are left out. The template
    literal is cooked (JS escapes such as `\\${` undone) and linted as it is.

workflows-collection (aws-samples/step-functions-workflows-collection)
    Published, deployable samples: every definition found is expected valid. Found by content:
    every `*.json`, `*.asl`, `*.yaml`/`*.yml` file whose top level has `StartAt` and `States`, and
    the `Definition` / `DefinitionString` of every `AWS::StepFunctions::StateMachine` and
    `AWS::Serverless::StateMachine` in CloudFormation/SAM templates (JSON or YAML). Preprocessing,
    recorded in the note column:
    - YAML is read with a small YAML reader in this script (block and flow collections, quoted,
      plain and block scalars; CloudFormation tags `!Ref`, `!GetAtt`, `!Sub`, `!Join` ...);
    - CloudFormation intrinsics in a template's definition are resolved as deployment would: `!Sub`
      / `Fn::Sub` keeps its text (with the substitution map's literal values filled in),
      `Fn::Join` joins, and `Ref` / `Fn::GetAtt` / anything else become a `${Name}` placeholder;
    - `${Name}` placeholders (DefinitionSubstitutions, Sub variables) stay as they are inside JSON
      strings (the engine accepts a `${...}` Task Resource); a placeholder standing where a JSON
      value is expected (`"TimeoutSeconds": ${Timeout}`) is replaced with the number 60 so that
      the text parses; in YAML (where `Seconds: ${Timeout}` reads as a string, but is a number
      once substituted) a placeholder that is the whole value of a numeric ASL field
      (Seconds, TimeoutSeconds, MaxConcurrency, ...) becomes 60 as well.
    A definition given as a JSON file is linted as its text (so duplicate keys are still seen);
    one extracted from YAML or a template is linted as json.dumps of the extracted value.
    With --exec each of these definitions whose states are all of the eight ASL types is also run:
    `sluice statemachine exec FILE --input {} --responder R --fast --json`, R answering every
    Task state (by name, nested ones included) with `{"output": {}}`. Exit 0/1 (SUCCEEDED,
    FAILED) and 2 (a definition the executor refuses) are fine; anything else, a panic or a
    timeout is a crash.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.abc
import importlib.machinery
import json
import os
import re
import subprocess
import sys
import tempfile
import types
from pathlib import Path

CORPORA = [
    "asl-validator",
    "statelint-ruby",
    "statelint-python",
    "asl-language-service",
    "workflows-collection",
]
STATE_TYPES = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"}


@dataclasses.dataclass
class Case:
    corpus: str
    file: str  # where the definition comes from, relative to the corpus folder (+ #detail)
    expected: str  # "valid", "invalid" or "?"
    text: str  # the definition, as JSON text
    note: str = ""
    value: object = None  # the parsed definition, when known (for --exec)


# ----------------------------------------------------------------------------------------------
# A small YAML reader: enough for CloudFormation/SAM templates and ASL definitions in YAML.


class YamlError(Exception):
    pass


_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$|^[-+]?[0-9]+[eE][-+]?[0-9]+$")


def _plain(s: str):
    s = s.strip()
    if s in ("", "~", "null", "Null", "NULL"):
        return None
    if s in ("true", "True", "TRUE"):
        return True
    if s in ("false", "False", "FALSE"):
        return False
    if _INT.match(s):
        return int(s)
    if _FLOAT.match(s):
        return float(s)
    return s


def _strip_comment(line: str) -> str:
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == "\\" and quote == '"':
                continue
            if c == quote:
                quote = None
        elif c in "'\"" and (i == 0 or line[i - 1] in " \t[{,:-"):
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _unquote_double(s: str) -> str:
    out, i = [], 0
    esc = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "/": "/", "\\": "\\", '"': '"', " ": " ",
           "b": "\b", "f": "\f", "e": "\x1b", "a": "\a", "v": "\v"}
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "u":
                out.append(chr(int(s[i + 2:i + 6], 16)))
                i += 6
                continue
            if n == "x":
                out.append(chr(int(s[i + 2:i + 4], 16)))
                i += 4
                continue
            out.append(esc.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _fold_quoted(raw: str, double: bool) -> str:
    """Line folding inside a quoted scalar: a break is a space, k blank lines are k newlines,
    the whitespace around breaks goes, and in double quotes a `\\` before a break joins lines."""
    lines = raw.split("\n")
    res, blank = lines[0], 0
    for j, ln in enumerate(lines[1:], 1):
        last = j == len(lines) - 1
        content = ln.lstrip(" \t") if last else ln.strip(" \t")
        if content == "" and not last:
            blank += 1
            continue
        tail = len(res) - len(res.rstrip("\\"))
        if double and tail % 2 == 1:
            res = res[:-1] + "\n" * blank + content
        else:
            res = res.rstrip(" \t") + ("\n" * blank if blank else " ") + content
        blank = 0
    return res


class _Flow:
    """A flow collection or scalar: [a, b], {k: v}, "x", 'y', plain."""

    def __init__(self, text: str):
        self.s, self.i = text, 0

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t\n\r":
            self.i += 1

    def node(self):
        self.ws()
        c = self.s[self.i] if self.i < len(self.s) else ""
        if c == "!":
            m = re.match(r"!([A-Za-z:]+)\s*", self.s[self.i:])
            self.i += m.end()
            return _tagged(m.group(1), self.node())
        if c == "[":
            self.i += 1
            items = []
            while True:
                self.ws()
                if self.s[self.i] == "]":
                    self.i += 1
                    return items
                items.append(self.pair_or_node())
                self.ws()
                if self.s[self.i] == ",":
                    self.i += 1
        if c == "{":
            self.i += 1
            m = {}
            while True:
                self.ws()
                if self.s[self.i] == "}":
                    self.i += 1
                    return m
                k = self.scalar(key=True)
                self.ws()
                v = None
                if self.i < len(self.s) and self.s[self.i] == ":":
                    self.i += 1
                    self.ws()
                    if self.s[self.i] not in ",}":
                        v = self.node()
                m[k] = v
                self.ws()
                if self.s[self.i] == ",":
                    self.i += 1
        return self.scalar()

    def pair_or_node(self):
        start = self.i
        v = self.node()
        self.ws()
        if self.i < len(self.s) and self.s[self.i] == ":" and isinstance(v, (str, int, float)):
            self.i += 1
            return {v: self.node()}
        if self.i == start:
            raise YamlError("flow")
        return v

    def scalar(self, key=False):
        s = self.s
        if s[self.i] == '"':
            j = self.i + 1
            while s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            raw = s[self.i + 1:j]
            self.i = j + 1
            return _unquote_double(_fold_quoted(raw, True))
        if s[self.i] == "'":
            j = self.i + 1
            while True:
                if s[j] == "'" and j + 1 < len(s) and s[j + 1] == "'":
                    j += 2
                    continue
                if s[j] == "'":
                    break
                j += 1
            raw = s[self.i + 1:j]
            self.i = j + 1
            return _fold_quoted(raw, False).replace("''", "'")
        j = self.i
        while j < len(s) and s[j] not in ",]}" and not (s[j] == ":" and (j + 1 == len(s) or s[j + 1] in " \n,]}")):
            j += 1
        raw = s[self.i:j]
        self.i = j
        return _plain(" ".join(raw.split()))


def _tagged(tag: str, value):
    tag = tag.removeprefix("!")
    if tag in ("Ref", "Condition"):
        return {"Ref": value}
    if tag == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag}": value}


_KEY = re.compile(r"""^(?:"((?:[^"\\]|\\.)*)"|'((?:[^']|'')*)'|([^\s#'"\[\]{}!&*|>%@`,][^#]*?|[^\s#'"\[\]{}!&*|>%@`,-]))\s*:(?:\s+|$)""")


class Yaml:
    def __init__(self, text: str):
        self.lines = text.replace("\t", "    ").split("\n")
        self.pos = 0

    @classmethod
    def load(cls, text: str):
        y = cls(text)
        y.skip()
        if y.pos < len(y.lines) and y.content(y.pos).startswith("---"):
            rest = y.content(y.pos)[3:].strip()
            y.pos += 1
            if rest:
                return _plain(rest)
        v = y.node(-1)
        return v

    def content(self, i: int) -> str:
        return _strip_comment(self.lines[i]).strip()

    def indent(self, i: int) -> int:
        ln = self.lines[i]
        return len(ln) - len(ln.lstrip(" "))

    def skip(self):
        while self.pos < len(self.lines):
            c = self.content(self.pos)
            if c == "" or c.startswith("%"):
                self.pos += 1
            elif c in ("---", "..."):
                self.pos += 1
            else:
                return
        return

    def node(self, parent_indent: int):
        self.skip()
        if self.pos >= len(self.lines):
            return None
        ind = self.indent(self.pos)
        if ind <= parent_indent:
            return None
        c = self.content(self.pos)
        if c == "-" or c.startswith("- "):
            return self.seq(ind)
        if _KEY.match(c):
            return self.mapping(ind)
        line = self.pos
        self.pos += 1
        return self.inline(c, ind, line, parent_indent)

    def seq(self, ind: int):
        items = []
        while True:
            self.skip()
            if self.pos >= len(self.lines) or self.indent(self.pos) != ind:
                return items
            c = self.content(self.pos)
            if not (c == "-" or c.startswith("- ")):
                return items
            rest = c[1:].lstrip()
            if rest == "":
                self.pos += 1
                items.append(self.node(ind))
                continue
            # The item's content stands at its own column: re-read the line from there.
            col = ind + (len(c) - len(rest))
            self.lines[self.pos] = " " * col + self.lines[self.pos].lstrip(" ")[len(c) - len(rest):]
            items.append(self.node(ind))

    def mapping(self, ind: int):
        m = {}
        while True:
            self.skip()
            if self.pos >= len(self.lines) or self.indent(self.pos) != ind:
                return m
            c = self.content(self.pos)
            k = _KEY.match(c)
            if not k:
                return m
            if k.group(1) is not None:
                key = _unquote_double(k.group(1))
            elif k.group(2) is not None:
                key = k.group(2).replace("''", "'")
            else:
                key = _plain(k.group(3))
                if isinstance(key, float) or key is None or isinstance(key, bool):
                    key = k.group(3).strip()
            rest = c[k.end():].strip()
            line = self.pos
            self.pos += 1
            if rest == "":
                self.skip()
                if (self.pos < len(self.lines) and self.indent(self.pos) == ind
                        and (self.content(self.pos) == "-" or self.content(self.pos).startswith("- "))):
                    m[key] = self.seq(ind)
                else:
                    m[key] = self.node(ind)
            else:
                m[key] = self.inline(rest, ind, line, ind)

    def inline(self, rest: str, ind: int, line: int, parent_indent: int):
        """A value that starts on a line (after `key:` or `- `)."""
        if rest.startswith("!"):
            m = re.match(r"!([A-Za-z:]+)\s*", rest)
            tag, after = m.group(1), rest[m.end():]
            if after == "":
                return _tagged(tag, self.node_or_seq(parent_indent))
            return _tagged(tag, self.inline(after, ind, line, parent_indent))
        if rest.startswith("&"):  # anchors: not used by the corpora; read past the name
            rest = rest.split(None, 1)[1] if " " in rest else ""
            if rest == "":
                return self.node(parent_indent)
        if rest[0] in "|>":
            return self.block_scalar(rest, parent_indent)
        if rest[0] in "[{\"'":
            text = self._gather(rest, line)
            f = _Flow(text)
            v = f.node()
            return v
        # A plain scalar, possibly continued on more indented lines.
        parts = [rest]
        while self.pos < len(self.lines):
            c = self.content(self.pos)
            if c == "":
                break
            if self.indent(self.pos) <= parent_indent or _KEY.match(c) or c.startswith("- "):
                break
            parts.append(c)
            self.pos += 1
        return _plain(" ".join(parts))

    def node_or_seq(self, parent_indent):
        self.skip()
        if (self.pos < len(self.lines) and self.indent(self.pos) == parent_indent
                and self.content(self.pos).startswith("- ")):
            return self.seq(parent_indent)
        return self.node(parent_indent)

    def _gather(self, rest: str, line: int) -> str:
        """A flow collection or quoted scalar may go on over several lines."""
        text = rest
        while not self._complete(text):
            if self.pos >= len(self.lines):
                raise YamlError(f"unclosed flow value at line {line + 1}")
            text += "\n" + self.lines[self.pos].strip()
            self.pos += 1
        return text

    @staticmethod
    def _complete(text: str) -> bool:
        depth, quote, i = 0, None, 0
        while i < len(text):
            c = text[i]
            if quote == '"':
                if c == "\\":
                    i += 1
                elif c == '"':
                    quote = None
            elif quote == "'":
                if c == "'":
                    quote = None
            elif c in "\"'" and (i == 0 or text[i - 1] in " \t\n[{,:"):
                quote = c
            elif c in "[{":
                depth += 1
            elif c in "]}":
                depth -= 1
            elif c == "#" and (i == 0 or text[i - 1] in " \t\n"):
                nl = text.find("\n", i)
                text = text[:i] + (text[nl:] if nl >= 0 else "")
                continue
            i += 1
        return depth <= 0 and quote is None

    def block_scalar(self, header: str, parent_indent: int) -> str:
        style, chomp = header[0], "clip"
        if "-" in header:
            chomp = "strip"
        elif "+" in header:
            chomp = "keep"
        lines = []
        block_indent = None
        while self.pos < len(self.lines):
            raw = self.lines[self.pos]
            if raw.strip() == "":
                lines.append("")
                self.pos += 1
                continue
            ind = self.indent(self.pos)
            if ind <= parent_indent:
                break
            if block_indent is None:
                block_indent = ind
            if ind < block_indent:
                break
            lines.append(raw[block_indent:])
            self.pos += 1
        trailing = 0
        while lines and lines[-1] == "":
            lines.pop()
            trailing += 1
        if style == "|":
            body = "\n".join(lines)
        else:
            body, prev_blank = "", True
            for ln in lines:
                if ln == "":
                    body += "\n"
                    prev_blank = True
                elif ln.startswith(" "):
                    body += ("\n" if not prev_blank else "") + ln
                    prev_blank = False
                else:
                    body += ("" if prev_blank else " ") + ln
                    prev_blank = False
        if chomp == "strip" or not lines:
            return body
        if chomp == "keep":
            return body + "\n" * (1 + trailing)
        return body + "\n"


# ----------------------------------------------------------------------------------------------
# CloudFormation: resolve intrinsics in a template's definition; find state machines.


def _cfn_resolve(v):
    """Resolves intrinsics as deployment would, with `${Name}` for what only AWS knows."""
    if isinstance(v, list):
        return [_cfn_resolve(x) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) == 1:
        (k, a), = v.items()
        if k == "Ref":
            return "${%s}" % a
        if k == "Fn::GetAtt":
            return "${%s}" % (".".join(a) if isinstance(a, list) else a)
        if k == "Fn::Sub":
            if isinstance(a, list):
                text, mapping = a[0], (a[1] if len(a) > 1 else {}) or {}
                mapping = {n: _cfn_resolve(x) for n, x in mapping.items()}
                for name, val in mapping.items():
                    if isinstance(val, str) and not val.startswith("${"):
                        text = text.replace("${%s}" % name, val)
                return text
            return a
        if k == "Fn::Join":
            sep, items = a
            items = _cfn_resolve(items)
            if not isinstance(items, list):
                return "${Join}"
            return sep.join(x if isinstance(x, str) else json.dumps(x) for x in items)
        if k.startswith("Fn::"):
            return "${%s}" % k[4:]
    return {k: _cfn_resolve(x) for k, x in v.items()}


_PLACEHOLDER_VALUE = re.compile(r'(?<=[:\[,])(\s*)\$\{[A-Za-z0-9_.:-]+\}(?=\s*[,}\]])')


def _json_with_placeholders(text: str):
    """Parses JSON text; `${X}` standing where a value is expected becomes 60. (value, note)."""
    try:
        return json.loads(text), ""
    except json.JSONDecodeError:
        pass
    fixed, n = _PLACEHOLDER_VALUE.subn(r"\g<1>60", text)
    if n:
        try:
            return json.loads(fixed), f"{n} unquoted ${{...}} placeholder(s) replaced by 60"
        except json.JSONDecodeError:
            pass
    return None, ""


NUMERIC_FIELDS = {"Seconds", "TimeoutSeconds", "HeartbeatSeconds", "IntervalSeconds", "MaxAttempts",
                  "BackoffRate", "MaxDelaySeconds", "MaxConcurrency", "ToleratedFailurePercentage",
                  "ToleratedFailureCount", "MaxItems", "MaxItemsPerBatch", "MaxInputBytesPerBatch"}


def _numeric_placeholders(v) -> int:
    """In YAML, `Seconds: ${Timeout}` is a number once substituted, but reads as a string: such a
    placeholder under a numeric ASL field becomes 60. Returns how many were replaced."""
    n = 0
    if isinstance(v, dict):
        for k, x in v.items():
            if k in NUMERIC_FIELDS and isinstance(x, str) and re.fullmatch(r"\$\{[^}]+\}", x):
                v[k] = 60
                n += 1
            else:
                n += _numeric_placeholders(x)
    elif isinstance(v, list):
        n += sum(_numeric_placeholders(x) for x in v)
    return n


def _is_definition(v) -> bool:
    return isinstance(v, dict) and "StartAt" in v and "States" in v


def _template_definitions(doc):
    """(resource name, definition value, note) for each state machine in a template."""
    out = []
    resources = doc.get("Resources") if isinstance(doc, dict) else None
    if not isinstance(resources, dict):
        return out
    for name, res in resources.items():
        if not isinstance(res, dict) or res.get("Type") not in (
                "AWS::StepFunctions::StateMachine", "AWS::Serverless::StateMachine"):
            continue
        props = res.get("Properties") or {}
        if "Definition" in props:
            d = _cfn_resolve(props["Definition"])
            out.append((name, d, "Definition (template) with intrinsics resolved"))
        elif "DefinitionString" in props:
            s = _cfn_resolve(props["DefinitionString"])
            if isinstance(s, str):
                d, note = _json_with_placeholders(s)
                out.append((name, d if d is not None else s,
                            "DefinitionString (template) with intrinsics resolved" + (f"; {note}" if note else "")))
    return out


# ----------------------------------------------------------------------------------------------
# The corpora.


def _rel(root: Path, p: Path) -> str:
    return p.relative_to(root).as_posix()


def asl_validator(root: Path):
    d = root / "src/__tests__/definitions"
    for p in sorted(d.glob("*.json")):
        m = re.match(r"^(valid|invalid)-(.+)\.json$", p.name)
        if m:
            yield Case("asl-validator", _rel(root, p), m.group(1), p.read_text())


def statelint_ruby(root: Path):
    expected = {}
    for spec in sorted((root / "spec").glob("*.rb")):
        pending = []
        for line in spec.read_text().splitlines():
            m = re.search(r'File\.read[ (]*"(test/[^"]+)"', line)
            if m:
                pending.append(m.group(1))
            m = re.search(r"expect\(problems\.size\)\.to eq\((\d+)\)", line)
            if m and pending:
                f = pending.pop()
                pending.clear()
                expected[f] = "valid" if int(m.group(1)) == 0 else "invalid"
    for p in sorted((root / "test").glob("*.json")):
        rel = _rel(root, p)
        yield Case("statelint-ruby", rel, expected.get(rel, "?"), p.read_text(),
                   "" if rel in expected else "no spec reads this file")


class _Recorded(Exception):
    pass


def statelint_python(root: Path):
    """Runs the port's test modules with stand-ins and records each definition and verdict."""
    records = []  # (test id, arg, config, expected)
    current = {"id": ""}

    class Recorder:
        def __init__(self, arg, config):
            self.arg, self.config = arg, config

        def __eq__(self, other):
            records.append((current["id"], self.arg, self.config,
                            "valid" if other == [] else "invalid"))
            return True

        def __hash__(self):
            return 0

    class Linter:
        @staticmethod
        def validate(arg, config=None):
            return Recorder(arg, config)

        def __init__(self, *a, **k):
            pass

    class Config:
        def __init__(self, *a, **k):
            self.args = (a, k)

    class _Any:
        def __init__(self, *a, **k):
            raise _Recorded("stand-in")

        def __getattr__(self, n):
            raise _Recorded("stand-in")

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name == "statelint" or name.startswith("statelint.") or name == "pytest":
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
            return None

        def create_module(self, spec):
            return None

        def exec_module(self, mod):
            mod.__path__ = []
            if mod.__name__ == "statelint.linter":
                mod.Linter = Linter
            elif mod.__name__ == "statelint.config":
                mod.Config = Config
            elif mod.__name__ == "pytest":
                mod.mark = types.SimpleNamespace(parametrize=_parametrize)
                mod.raises = _Raises
                mod.fixture = lambda *a, **k: (a[0] if a and callable(a[0]) else (lambda f: f))
                mod.param = lambda *values, **k: values
            else:
                mod.__getattr__ = lambda n: _Any

    def _parametrize(names, values, **_):
        def deco(f):
            f.__dict__.setdefault("_params", []).insert(0, ([n.strip() for n in names.split(",")] if isinstance(names, str) else list(names), values))
            return f
        return deco

    class _Raises:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return True

    finder = Finder()
    saved = {k: v for k, v in sys.modules.items() if k == "pytest" or k.split(".")[0] in ("statelint", "tests")}
    for k in saved:
        del sys.modules[k]
    sys.meta_path.insert(0, finder)
    sys.path.insert(0, str(root))
    skipped = 0
    try:
        for test in sorted((root / "tests").rglob("test_*.py")):
            modname = ".".join(test.relative_to(root).with_suffix("").parts)
            try:
                mod = __import__(modname, fromlist=["*"])
            except Exception:  # noqa: BLE001 - a module the stand-ins cannot import
                skipped += 1
                continue
            for fname, f in sorted(vars(mod).items()):
                if not (fname.startswith("test") and callable(f)):
                    continue
                combos = [({}, "")]
                for names, values in f.__dict__.get("_params", []):
                    new = []
                    for base, label in combos:
                        for idx, v in enumerate(values):
                            vals = v if len(names) > 1 else (v,)
                            new.append(({**base, **dict(zip(names, vals))}, f"{label}[{idx}]"))
                    combos = new
                for kwargs, label in combos:
                    current["id"] = f"{test.relative_to(root).as_posix()}::{fname}{label}"
                    try:
                        f(**kwargs)
                    except Exception:  # noqa: BLE001 - tests of single fields or nodes
                        skipped += 1
    finally:
        sys.meta_path.remove(finder)
        sys.path.remove(str(root))
        for k in [k for k in sys.modules if k == "pytest" or k.split(".")[0] in ("statelint", "tests")]:
            del sys.modules[k]
        sys.modules.update(saved)
    seen = {}
    for tid, arg, config, expected in records:
        if config is not None:
            continue
        note = ""
        value = None
        if isinstance(arg, str) and os.path.isfile(arg):
            p = Path(arg)
            note = f"file {_rel(root, p)}"
            if p.suffix in (".yaml", ".yml"):
                value = Yaml.load(p.read_text())
                text = json.dumps(value)
                note += " (YAML, converted)"
            else:
                text = p.read_text()
        elif isinstance(arg, str):
            text = arg
            note = "JSON text"
        else:
            value = arg
            text = json.dumps(arg)
        key = hashlib.sha1(text.encode()).hexdigest()[:8]
        if (key, expected) in seen:
            continue
        seen[(key, expected)] = tid
        yield Case("statelint-python", tid, expected, text, note, value)
    print(f"statelint-python: {len(records)} validate() calls recorded, {skipped} tests/modules skipped", file=sys.stderr)


def _cook_template_literal(s: str) -> str:
    esc = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
    return re.sub(r"\\(u\{?[0-9a-fA-F]+\}?|.)", lambda m: (
        chr(int(m.group(1)[1:].strip("{}"), 16)) if m.group(1).startswith("u") and len(m.group(1)) > 1
        else esc.get(m.group(1), m.group(1))), s, flags=re.S)


def _matching(text: str, start: int) -> int:
    """The index just past the bracket that closes the one at `start` (strings skipped)."""
    depth, i, quote = 0, start, None
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


def asl_language_service(root: Path):
    strings = (root / "src/tests/json-strings/validationStrings.ts").read_text()
    docs = {m.group(1): _cook_template_literal(m.group(2))
            for m in re.finditer(r"export const (\w+)\s*=\s*`((?:[^`\\]|\\.)*)`", strings, re.S)}
    test = (root / "src/tests/validation.test.ts").read_text()
    out = {}
    for m in re.finditer(r"testValidations\(\s*\{", test):
        body = test[m.end() - 1:_matching(test, m.end() - 1)]
        j = re.search(r"json:\s*([\w.]+)\s*,", body)
        if not j:
            continue
        name = j.group(1)
        dm = re.search(r"diagnostics:\s*\[", body)
        diags = body[dm.end() - 1:_matching(body, dm.end() - 1)] if dm else "[]"
        empty = re.fullmatch(r"\[\s*\]", diags) is not None
        filtered = "filterMessages" in body
        expected = "invalid" if not empty else ("?" if filtered else "valid")
        note = "diagnostics hidden by filterMessages" if (empty and filtered) else ""
        names = [name]
        if name not in docs:
            # A loop variable: the array of documents the test iterates over, just before.
            before = test[:m.start()]
            arr = list(re.finditer(r"=\s*\[([\w\s,]+)\]", before))
            if not arr:
                continue
            names = [n.strip() for n in arr[-1].group(1).split(",") if n.strip()]
            if not all(n in docs for n in names):
                continue
        for n in names:
            prev = out.get(n)
            if prev and prev.expected != expected:
                prev.expected, prev.note = "?", "tests disagree"
                continue
            out[n] = Case("asl-language-service", f"src/tests/json-strings/validationStrings.ts#{n}",
                          expected, docs[n], note)
    yield from out.values()


def workflows_collection(root: Path):
    for p in sorted(root.rglob("*")):
        if not p.is_file() or "node_modules" in p.parts or "cdk.out" in p.parts:
            continue
        name = p.name.lower()
        if not (name.endswith((".json", ".asl", ".yaml", ".yml"))):
            continue
        rel = _rel(root, p)
        try:
            text = p.read_text()
        except UnicodeDecodeError:
            continue
        is_yaml = name.endswith((".yaml", ".yml"))
        if is_yaml:
            if "StartAt" not in text and "StateMachine" not in text:
                continue
            try:
                doc = Yaml.load(text)
            except Exception as e:  # noqa: BLE001
                yield Case("workflows-collection", rel, "valid", "", f"YAML reader failed: {e}")
                continue
            note0 = "YAML, converted"
        else:
            if "StartAt" not in text:
                continue
            doc, note0 = _json_with_placeholders(text)
            if doc is None:
                yield Case("workflows-collection", rel, "valid", text, "not JSON even with placeholders replaced")
                continue
        if _is_definition(doc):
            if is_yaml:
                n = _numeric_placeholders(doc)
                note = note0 + (f"; {n} ${{...}} placeholder(s) under numeric fields replaced by 60" if n else "")
                yield Case("workflows-collection", rel, "valid", json.dumps(doc), note, doc)
            elif note0:
                yield Case("workflows-collection", rel, "valid", json.dumps(doc), note0, doc)
            else:
                yield Case("workflows-collection", rel, "valid", text,
                           "${...} placeholders kept" if "${" in text else "", doc)
            continue
        for res, d, note in _template_definitions(doc):
            note = note + ("; YAML" if is_yaml else "")
            if isinstance(d, str):
                yield Case("workflows-collection", f"{rel}#{res}", "valid", d, note + "; not JSON")
            elif _is_definition(d):
                n = _numeric_placeholders(d) if is_yaml else 0
                if n:
                    note += f"; {n} ${{...}} placeholder(s) under numeric fields replaced by 60"
                yield Case("workflows-collection", f"{rel}#{res}", "valid", json.dumps(d), note, d)


HANDLERS = {
    "asl-validator": asl_validator,
    "statelint-ruby": statelint_ruby,
    "statelint-python": statelint_python,
    "asl-language-service": asl_language_service,
    "workflows-collection": workflows_collection,
}


# ----------------------------------------------------------------------------------------------
# Running sluice.


def run_sluice(cmd, timeout):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", f"timeout after {timeout} s"
    return p.returncode, p.stdout, p.stderr


def classify(rc, out, err, ok_codes):
    if rc is None:
        return "crash", err
    if "panicked" in err or rc not in ok_codes:
        first = next((ln for ln in err.splitlines() if ln.strip()), "")
        return "crash", f"exit {rc}: {first}"
    return None, ""


def task_names(v, out):
    if isinstance(v, dict):
        states = v.get("States")
        if isinstance(states, dict):
            for n, s in states.items():
                if isinstance(s, dict):
                    if s.get("Type") == "Task":
                        out.add(n)
                    for b in s.get("Branches") or []:
                        task_names(b, out)
                    for k in ("ItemProcessor", "Iterator"):
                        task_names(s.get(k), out)
    return out


def state_types(v, out):
    if isinstance(v, dict):
        states = v.get("States")
        if isinstance(states, dict):
            for s in states.values():
                if isinstance(s, dict):
                    out.add(s.get("Type"))
                    for b in s.get("Branches") or []:
                        state_types(b, out)
                    for k in ("ItemProcessor", "Iterator"):
                        state_types(s.get(k), out)
    return out


# Each category of disagreement: (how to recognise it, who the documentation supports and where).
# Matched in order against every problem sluice printed; the first whose pattern matches any
# problem (every problem, for "@all:"; the file's name, for "@file:") wins.
CATEGORIES = [
    ("JSONata definitions (QueryLanguage JSONata, Arguments/Output/Items)",
     r"JSONata", "counted only: JSONata support is separate work (issue #18)"),
    ("Task Resource is not an ARN (foo:bar, arn:x, InvalidArn)",
     r'@all:"Resource" ".*" (is not an ARN|is a malformed)',
     "engine: Developer Guide, 'Task workflow state' (the Resource field is the ARN of the task "
     "type: arn:partition:service:region:account:task_type:name) and the API Reference's "
     "ValidateStateMachineDefinition diagnostics (INVALID_RESOURCE); the ASL spec only asks for a URI"),
    ("ItemReader Resource is not an S3 reader",
     r'"ItemReader.Resource" must be',
     "engine: Developer Guide, 'ItemReader (Map)' (Resource is arn:aws:states:::s3:getObject or "
     "s3:listObjectsV2); the ASL spec leaves the URI open"),
    ("Map 'Parameters' that is not a JSON object",
     r'"Parameters" of a Map state must be an object',
     "engine: ASL spec, 'Payload Template' ('A Payload Template MUST be a JSON object') and "
     "'Map State' (ItemSelector, formerly Parameters, is a Payload Template)"),
    ("custom error names starting with 'States.'",
     r"is not a predefined error name",
     "engine: ASL spec, 'Errors' (names beginning 'States.' are the predefined ones; 'States MAY "
     "report errors with other names, which MUST NOT begin with the prefix States.'). The AWS "
     "service deploys such samples: there the name simply never matches"),
    ("unquoted string in a JSONPath filter ([?(@.x==fr)])",
     r"in the filter|expected @, a path, a number",
     "engine: ASL spec, 'Paths' (the syntax is Jayway JsonPath, whose filter literals are quoted "
     "strings, numbers, true/false/null, paths, JSON or /regex/; an unquoted word is a parse error)"),
    ("JSONPath script expression ($[(@.length-1)])",
     r"is not an integer index in '\[\(",
     "engine: ASL spec, 'Paths' (Jayway JsonPath has no [(expression)] script subscripts; use [-1])"),
    ("reads a variable no state assigns ($field2)",
     r"reads the variable \$",
     "engine: ASL spec, 'Variable Scope' ('A variable exists in a scope if any state in the scope "
     "assigns a value to it'; a state may reference variables of its scope)"),
    ("Credentials without RoleArn",
     r'"Credentials" (needs|takes only)',
     "engine: Developer Guide, 'Task workflow state' (Credentials: RoleArn or RoleArn.$); the ASL "
     "spec leaves Credentials to the interpreter"),
    ("Resource given as a CloudFormation intrinsic object (Fn::GetAtt, Ref)",
     r'"Resource" must be a non-empty string',
     "engine: ASL spec, 'Task State' (Resource MUST be a URI, a string); the intrinsic belongs to "
     "the template, resolved before Step Functions sees the definition"),
    ("intrinsic function in InputPath",
     r"\"InputPath\": invalid path 'States\.",
     "engine: ASL spec, 'Input and Output Processing' (InputPath MUST be a Path); awslabs/statelint's "
     "own spec expects 1 problem for this file, the Python port's older copy expects none"),
    ("Choice rule with And, Or and Not together",
     r"a Choice rule has exactly one operator",
     "engine (spec not explicit): ASL spec, 'Choice Rules' (a rule is either a Boolean expression "
     "- a field named And, Or or Not - or a data-test expression)"),
    ("definition that is JSON null",
     r"must be a JSON object with StartAt and States",
     "engine: ASL spec, 'Structure of a State Machine' (a state machine is a JSON object)"),
    ("MaxConcurrency above 99,999,999",
     r'"MaxConcurrency" must be',
     "undecided: no document gives a maximum for MaxConcurrency; the engine applies the 99,999,999 "
     "bound of the other integer fields"),
    ("Parallel with no branches",
     r'"Branches" must be a non-empty array',
     "engine (spec silent): the AWS Toolkit's schema (amazon-states-language-service, "
     "parallel_state.json) has minItems 1; the Developer Guide's Parallel state page describes "
     "Branches as the state machines to run"),
    ("state names repeated across Parallel branches",
     r"the name is already used",
     "engine: ASL spec, 'States' ('The state name MUST be unique within the scope of the entire "
     "state machine')"),
    ("sample that is not JSON",
     r"not valid JSON",
     "engine: the file is not JSON (the sample's bug)"),
    ("TimeoutSeconds of exactly 99,999,999",
     r"@file:test_positive_int_fields\[3\]",
     "engine (boundary): Developer Guide, 'Wait workflow state' (Seconds 0 to 99999999, inclusive) "
     "and the 99999999-second default task timeout; statelint's j2119 says 'less than 99999999'"),
    ("ResultWriter.WriterConfig without OutputType",
     r"@file:documentMapResultWriterMissingOutputType",
     "undecided: the Developer Guide's 'ResultWriter (Map)' lists Transformation and OutputType "
     "without saying both are required; the AWS Toolkit's schema requires OutputType"),
]


def category(file: str, expected: str, ours: str, problems: list[str]) -> str:
    if ours == "crash":
        return "crash"
    for name, pattern, _ in CATEGORIES:
        if pattern.startswith("@file:"):
            if re.search(pattern[6:], file):
                return name
        elif pattern.startswith("@all:"):
            if problems and all(re.search(pattern[5:], p) for p in problems):
                return name
        elif any(re.search(pattern, p) for p in problems):
            return name
    return "other"


def cmd_lint(args):
    root = Path(args.corpora)
    sluice = str(Path(args.sluice).resolve())
    work = Path(tempfile.mkdtemp(prefix="sluice-corpora-"))
    rows, crashes, exec_rows = [], [], []
    for corpus in CORPORA:
        if args.only and corpus not in args.only:
            continue
        d = root / corpus
        if not d.is_dir():
            print(f"{corpus}: not exported ({d} missing), skipped", file=sys.stderr)
            continue
        for i, case in enumerate(HANDLERS[corpus](d)):
            f = work / corpus / f"{i:04d}.asl.json"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(case.text)
            rc, out, err = run_sluice([sluice, "statemachine", "lint", str(f)], args.timeout)
            crash, why = classify(rc, out, err, (0, 1))
            if crash:
                ours, first = "crash", why
                crashes.append((corpus, case.file, "lint", why))
            else:
                ours = "valid" if rc == 0 else "invalid"
                first, problems = "", []
                if rc == 1:
                    prefix = str(f) + ": "
                    problems = [ln[len(prefix):] if ln.startswith(prefix) else ln
                                for ln in out.splitlines()[:-1]]
                    first = problems[0] if problems else ""
            agree = "" if case.expected == "?" else ("yes" if ours == case.expected else "no")
            cat = category(case.file, case.expected, ours, problems) if agree == "no" else ""
            rows.append((corpus, case.file, case.expected, ours, agree, cat, case.note, first))
            if args.exec and corpus == "workflows-collection" and case.value is not None \
                    and state_types(case.value, set()) <= STATE_TYPES:
                resp = work / corpus / f"{i:04d}.responder.json"
                resp.write_text(json.dumps({n: [{"output": {}}] for n in sorted(task_names(case.value, set()))}))
                rc, out, err = run_sluice([sluice, "statemachine", "exec", str(f), "--input", "{}",
                                           "--responder", str(resp), "--fast", "--json"], args.timeout)
                crash, why = classify(rc, out, err, (0, 1, 2))
                if crash:
                    crashes.append((corpus, case.file, "exec", why))
                    status = "crash"
                elif rc == 2:
                    status = "refused: " + next((ln for ln in err.splitlines() if ln.strip()), "")[:200]
                else:
                    try:
                        res = json.loads(out)
                        status = res.get("status", "?") + (f" {res.get('error')}" if res.get("error") else "") \
                            + (f": {res.get('cause')}"[:300] if res.get("cause") else "")
                    except json.JSONDecodeError:
                        status = f"exit {rc}"
                exec_rows.append((case.file, status))
    with open(args.out, "w") as fh:
        fh.write("corpus\tfile\texpected\tours\tagree\tcategory\tnote\tfirst problem\n")
        for r in rows:
            fh.write("\t".join(str(x).replace("\t", " ").replace("\n", " ") for x in r) + "\n")
    if exec_rows and args.exec_out:
        with open(args.exec_out, "w") as fh:
            fh.write("file\texec result\n")
            for r in exec_rows:
                fh.write("\t".join(str(x).replace("\t", " ").replace("\n", " ") for x in r) + "\n")
    print(f"{'corpus':24} {'defs':>5} {'judged':>6} {'agree':>6} {'rate':>7}  exp-valid/ours-invalid  exp-invalid/ours-valid  crash")
    tot = [0, 0, 0, 0, 0, 0]
    for corpus in CORPORA:
        rs = [r for r in rows if r[0] == corpus]
        if not rs:
            continue
        judged = [r for r in rs if r[2] != "?"]
        agree = sum(1 for r in judged if r[4] == "yes")
        strict = sum(1 for r in judged if r[2] == "valid" and r[3] == "invalid")
        lax = sum(1 for r in judged if r[2] == "invalid" and r[3] == "valid")
        cr = sum(1 for r in rs if r[3] == "crash")
        for k, v in enumerate((len(rs), len(judged), agree, strict, lax, cr)):
            tot[k] += v
        rate = f"{100 * agree / len(judged):.1f}%" if judged else "-"
        print(f"{corpus:24} {len(rs):5} {len(judged):6} {agree:6} {rate:>7}  {strict:22}  {lax:22}  {cr:5}")
    rate = f"{100 * tot[2] / tot[1]:.1f}%" if tot[1] else "-"
    print(f"{'overall':24} {tot[0]:5} {tot[1]:6} {tot[2]:6} {rate:>7}  {tot[3]:22}  {tot[4]:22}  {tot[5]:5}")
    cats = {}
    for r in rows:
        if r[4] == "no":
            cats.setdefault(r[5], {}).setdefault(r[0], 0)
            cats[r[5]][r[0]] += 1
    if cats:
        print("\nremaining disagreements by category (count per corpus); who is right: see CATEGORIES in run.py")
        for c in sorted(cats, key=lambda c: -sum(cats[c].values())):
            per = ", ".join(f"{k} {v}" for k, v in sorted(cats[c].items()))
            print(f"  {sum(cats[c].values()):4}  {c}  ({per})")
    if exec_rows:
        kinds = {}
        for _, s in exec_rows:
            k = s.split(" ")[0].rstrip(":")
            kinds[k] = kinds.get(k, 0) + 1
        print("exec on the workflows collection:", ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    for c in crashes:
        print("CRASH", *c, sep="\t")
    print(f"table: {args.out}" + (f"; exec results: {args.exec_out}" if exec_rows and args.exec_out else ""))
    return 1 if crashes else 0


def cmd_export(args):
    dest = Path(args.dest)
    for spec in args.repos:
        name, _, gitdir = spec.partition("=")
        if name not in CORPORA:
            sys.exit(f"unknown corpus {name!r} (one of {', '.join(CORPORA)})")
        out = dest / name
        out.mkdir(parents=True, exist_ok=True)
        commit = subprocess.run(["git", "-C", gitdir, "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        # Blob by blob (not `git archive`): a snapshot may lack its largest files; those are skipped.
        tree = subprocess.run(["git", "-C", gitdir, "ls-tree", "-r", "-z", "HEAD"], capture_output=True,
                              check=True).stdout.decode().split("\0")
        blobs = []
        for entry in tree:
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            mode, kind, sha = meta.split()
            if kind == "blob" and mode != "120000":
                blobs.append((sha, path))
        batch = subprocess.Popen(["git", "-C", gitdir, "cat-file", "--batch"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE)
        written = missing = 0
        for sha, path in blobs:
            batch.stdin.write(sha.encode() + b"\n")
            batch.stdin.flush()
            header = batch.stdout.readline().split()
            if header[-1] == b"missing":
                missing += 1
                continue
            data = batch.stdout.read(int(header[2]))
            batch.stdout.read(1)
            target = out / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written += 1
        batch.stdin.close()
        batch.wait()
        (out / ".corpus-commit").write_text(commit + "\n")
        print(f"{name}: {commit} -> {out} ({written} files, {missing} missing from the snapshot)")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="export corpora (git directories) to a folder")
    e.add_argument("--dest", required=True)
    e.add_argument("repos", nargs="+", metavar="NAME=GITDIR")
    l = sub.add_parser("lint", help="lint every definition of the exported corpora")
    l.add_argument("--corpora", required=True)
    l.add_argument("--sluice", default="target/debug/sluice")
    l.add_argument("--out", default="corpora-results.tsv")
    l.add_argument("--exec", action="store_true", help="also run the workflows collection's definitions")
    l.add_argument("--exec-out", default=None, help="where to write the exec results (TSV)")
    l.add_argument("--timeout", type=float, default=10.0, help="seconds per sluice call")
    l.add_argument("--only", nargs="*", help="only these corpora")
    args = ap.parse_args(argv)
    return cmd_export(args) if args.cmd == "export" else cmd_lint(args)


if __name__ == "__main__":
    sys.exit(main())
