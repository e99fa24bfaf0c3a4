//! Draws a definition as a Mermaid flowchart (`flowchart TD`).
//!
//! States are nodes whose shape tells their type (Task rectangle, Pass parallelogram, Choice
//! rhombus, Wait flag, Succeed/Fail rounded and coloured); Parallel states are subgraphs holding
//! one subgraph per branch, Map states a subgraph holding the item processor. Next edges are
//! plain arrows, Choice rules arrows labelled with the rule, Default arrows labelled "Default",
//! Catch edges dashed arrows labelled with the error names. A start marker points at StartAt and
//! every `End: true` / Succeed state points at the end marker. Node ids are generated (`n1`,
//! `n2`...), so state names may hold any character; labels are escaped.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::model::{Branch, State, StateMachine, States, Transition};

/// The longest Choice rule label drawn before it is shortened with an ellipsis.
const MAX_RULE_LABEL: usize = 60;

/// Renders the whole definition.
pub fn render(sm: &StateMachine) -> String {
    let mut r = Renderer {
        out: String::new(),
        next_id: 0,
    };
    r.line(0, "flowchart TD");
    if let Some(c) = &sm.comment {
        r.line(1, &format!("%% {}", c.replace('\n', " ")));
    }
    r.line(1, "__start((\"Start\"))");
    r.line(1, "__end(((\"End\")))");
    let ids = r.machine(&sm.states, 1, true);
    if let Some(first) = ids.get(sm.start_at.as_str()) {
        r.line(1, &format!("__start --> {first}"));
    }
    r.line(1, "classDef succeed fill:#d9f2d9,stroke:#2e7d32");
    r.line(1, "classDef fail fill:#f9d6d5,stroke:#c62828");
    r.line(1, "classDef wait fill:#fff4d6,stroke:#b28704");
    r.out
}

struct Renderer {
    out: String,
    next_id: usize,
}

impl Renderer {
    fn line(&mut self, indent: usize, text: &str) {
        let _ = writeln!(self.out, "{}{text}", "    ".repeat(indent));
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("n{}", self.next_id)
    }

    /// Draws the states of one machine; returns their node ids by name. Only the top-level
    /// machine draws edges to the end marker (a branch simply ends).
    fn machine<'a>(
        &mut self,
        states: &'a States,
        indent: usize,
        top: bool,
    ) -> HashMap<&'a str, String> {
        let mut ids = HashMap::new();
        for (name, _) in states.iter() {
            let id = self.id();
            ids.insert(name, id);
        }
        for (name, state) in states.iter() {
            let id = ids[name].clone();
            self.node(&id, name, state, indent);
        }
        for (name, state) in states.iter() {
            let from = ids[name].clone();
            self.edges(&from, state, &ids, indent, top);
        }
        ids
    }

    fn node(&mut self, id: &str, name: &str, state: &State, indent: usize) {
        let label = escape(name);
        match state {
            State::Task(_) => self.line(indent, &format!("{id}[\"{label}\"]")),
            State::Pass(_) => self.line(indent, &format!("{id}[/\"{label}\"/]")),
            State::Choice(_) => self.line(indent, &format!("{id}{{\"{label}\"}}")),
            State::Wait(_) => self.line(indent, &format!("{id}>\"{label}\"]:::wait")),
            State::Succeed(_) => self.line(indent, &format!("{id}([\"{label}\"]):::succeed")),
            State::Fail(_) => self.line(indent, &format!("{id}([\"{label}\"]):::fail")),
            State::Parallel(p) => {
                self.line(indent, &format!("subgraph {id}[\"{label} (Parallel)\"]"));
                self.line(indent + 1, "direction TB");
                for (i, branch) in p.branches.iter().enumerate() {
                    let bid = format!("{id}_b{}", i + 1);
                    self.line(indent + 1, &format!("subgraph {bid}[\"Branch {}\"]", i + 1));
                    self.branch(branch, indent + 2);
                    self.line(indent + 1, "end");
                }
                self.line(indent, "end");
            }
            State::Map(m) => {
                self.line(indent, &format!("subgraph {id}[\"{label} (Map)\"]"));
                self.line(indent + 1, "direction TB");
                self.branch(&m.item_processor, indent + 1);
                self.line(indent, "end");
            }
        }
    }

    fn branch(&mut self, b: &Branch, indent: usize) {
        self.machine(&b.states, indent, false);
    }

    fn edges(
        &mut self,
        from: &str,
        state: &State,
        ids: &HashMap<&str, String>,
        indent: usize,
        top: bool,
    ) {
        let target = |name: &str| ids.get(name).cloned();
        match state.transition() {
            Some(Transition::Next(n)) => {
                if let Some(to) = target(n) {
                    self.line(indent, &format!("{from} --> {to}"));
                }
            }
            Some(Transition::End) if top => self.line(indent, &format!("{from} --> __end")),
            _ => {}
        }
        match state {
            State::Choice(c) => {
                for rule in &c.choices {
                    if let Some(to) = target(&rule.next) {
                        let label = shorten(&rule.condition.describe());
                        self.line(indent, &format!("{from} -->|\"{}\"| {to}", escape(&label)));
                    }
                }
                if let Some(to) = c.default.as_deref().and_then(target) {
                    self.line(indent, &format!("{from} -->|\"Default\"| {to}"));
                }
            }
            State::Succeed(_) if top => self.line(indent, &format!("{from} --> __end")),
            _ => {}
        }
        for catcher in state.catchers() {
            if let Some(to) = target(&catcher.next) {
                let label = escape(&catcher.error_equals.join(", "));
                self.line(indent, &format!("{from} -.->|\"{label}\"| {to}"));
            }
        }
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_RULE_LABEL {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_RULE_LABEL - 1).collect();
    out.push('…');
    out
}

/// Escapes text for a quoted Mermaid label (entity codes, so quotes and brackets cannot end it).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(json: &str) -> String {
        render(&StateMachine::parse(json).unwrap())
    }

    #[test]
    fn shapes_edges_and_markers() {
        let out = draw(
            r#"{"Comment": "demo", "StartAt": "Load \"data\"", "States": {
                "Load \"data\"": {"Type": "Task", "Resource": "r", "Next": "Check <size>",
                    "Catch": [{"ErrorEquals": ["Sluice.InvalidInput", "States.Timeout"], "Next": "Oops"}]},
                "Check <size>": {"Type": "Choice", "Choices": [
                    {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Pause #1"}], "Default": "Copy"},
                "Pause #1": {"Type": "Wait", "Seconds": 1, "Next": "Copy"},
                "Copy": {"Type": "Pass", "Next": "Done"},
                "Done": {"Type": "Succeed"},
                "Oops": {"Type": "Fail", "Error": "E"}
            }}"#,
        );
        let expected = [
            "flowchart TD",
            "    %% demo",
            "    n1[\"Load #quot;data#quot;\"]",
            "    n2{\"Check #lt;size#gt;\"}",
            "    n3>\"Pause #35;1\"]:::wait",
            "    n4[/\"Copy\"/]",
            "    n5([\"Done\"]):::succeed",
            "    n6([\"Oops\"]):::fail",
            "    n1 --> n2",
            "    n1 -.->|\"Sluice.InvalidInput, States.Timeout\"| n6",
            "    n2 -->|\"$.n #gt; 10\"| n3",
            "    n2 -->|\"Default\"| n4",
            "    n3 --> n4",
            "    n4 --> n5",
            "    n5 --> __end",
            "    __start --> n1",
        ];
        for line in expected {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
    }

    #[test]
    fn parallel_and_map_are_subgraphs() {
        let out = draw(
            r#"{"StartAt": "Fan out", "States": {
                "Fan out": {"Type": "Parallel", "Next": "Each", "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}]},
                "Each": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "Next": "J"}, "J": {"Type": "Succeed"}}}}
            }}"#,
        );
        for line in [
            "    subgraph n1[\"Fan out (Parallel)\"]",
            "        subgraph n1_b1[\"Branch 1\"]",
            "            n3[/\"A\"/]",
            "        subgraph n1_b2[\"Branch 2\"]",
            "    subgraph n2[\"Each (Map)\"]",
            "        n5 --> n6",
            "    n1 --> n2",
            "    n2 --> __end",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        // Inside a branch, ending is implicit: no edge to the end marker from a nested state.
        assert!(
            !out.contains("n3 --> __end") && !out.contains("n6 --> __end"),
            "{out}"
        );
    }

    #[test]
    fn long_rules_are_shortened() {
        let s = "x".repeat(100);
        assert_eq!(shorten(&s).chars().count(), MAX_RULE_LABEL);
        assert!(shorten(&s).ends_with('…'));
    }
}
