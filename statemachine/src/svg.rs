//! Draws a definition as an SVG graph, for pages that colour each state by what it did in a run (the
//! web UI's run page, like the Step Functions console's graph view).
//!
//! Layout: each machine (the top level, every Parallel branch, a Map's item processor) is drawn in
//! layers from its StartAt downwards, a state one layer below the lowest state that leads to it
//! (loops ignored), states of a layer side by side, ordered by where their predecessors are. A
//! Parallel or Map state is a frame holding its branches side by side. Next, Choice and Default edges
//! are solid arrows, Catch edges dashed; an edge back up (a loop) goes round the right side.
//!
//! Every state is a `<g class="state" data-state="NAME" data-type="Task">` (state names are unique
//! across a definition), so a page colours it with a class; nothing in the SVG depends on a run.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::model::{Branch, State, StateMachine, States, Transition};

const NODE_H: f64 = 34.0;
const MIN_W: f64 = 110.0;
const CHAR_W: f64 = 7.0;
const PAD_X: f64 = 14.0;
const GAP_X: f64 = 22.0;
const GAP_Y: f64 = 38.0;
const FRAME_TITLE: f64 = 24.0;
const FRAME_PAD: f64 = 12.0;
const MARGIN: f64 = 16.0;
/// Room on the right of a machine for edges that go back up.
const LOOP_ROOM: f64 = 24.0;

/// The whole definition as a standalone `<svg>` element (sized by its viewBox; scales to its box).
pub fn render_svg(sm: &StateMachine) -> String {
    let layout = lay_out(&sm.states, &sm.start_at);
    let (w, h) = (layout.w + 2.0 * MARGIN, layout.h + 2.0 * MARGIN + 30.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="statemachine" viewBox="0 0 {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}" role="img" aria-label="State machine graph">"#
    );
    out.push_str(concat!(
        r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">"#,
        r#"<path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>"#
    ));
    // The start marker, above StartAt.
    let start = layout
        .nodes
        .iter()
        .find(|n| n.name == sm.start_at)
        .map(|n| (MARGIN + n.x + n.w / 2.0, MARGIN + 30.0 + n.y));
    if let Some((x, y)) = start {
        let _ = write!(
            out,
            r#"<circle class="start" cx="{x:.1}" cy="{:.1}" r="7"/><line class="edge" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" marker-end="url(#arrow)"/>"#,
            MARGIN + 7.0,
            MARGIN + 14.0,
            y - 2.0
        );
    }
    emit(&mut out, &layout, MARGIN, MARGIN + 30.0);
    out.push_str("</svg>");
    out
}

/// A machine laid out, positions relative to its top-left corner.
struct Layout {
    w: f64,
    h: f64,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

struct Node {
    name: String,
    kind: &'static str,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    layer: usize,
    /// Parallel branches or a Map's item processor, with their offsets inside the frame.
    inner: Vec<(f64, f64, Layout)>,
}

struct Edge {
    from: usize,
    to: usize,
    catch: bool,
}

fn kind(state: &State) -> &'static str {
    match state {
        State::Task(_) => "Task",
        State::Pass(_) => "Pass",
        State::Choice(_) => "Choice",
        State::Wait(_) => "Wait",
        State::Succeed(_) => "Succeed",
        State::Fail(_) => "Fail",
        State::Parallel(_) => "Parallel",
        State::Map(_) => "Map",
    }
}

/// The states a state leads to, with whether the edge is a Catch.
fn successors(state: &State) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    if let Some(Transition::Next(n)) = state.transition() {
        out.push((n, false));
    }
    if let State::Choice(c) = state {
        for rule in &c.choices {
            out.push((rule.next.as_str(), false));
        }
        if let Some(d) = &c.default {
            out.push((d.as_str(), false));
        }
    }
    for catcher in state.catchers() {
        out.push((catcher.next.as_str(), true));
    }
    out
}

fn branches(state: &State) -> Vec<&Branch> {
    match state {
        State::Parallel(p) => p.branches.iter().collect(),
        State::Map(m) => vec![&m.item_processor],
        _ => Vec::new(),
    }
}

fn lay_out(states: &States, start_at: &str) -> Layout {
    let names: Vec<&str> = states.iter().map(|(n, _)| n).collect();
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut edges = Vec::new();
    for (i, (_, state)) in states.iter().enumerate() {
        for (to, catch) in successors(state) {
            if let Some(&j) = index.get(to) {
                edges.push(Edge {
                    from: i,
                    to: j,
                    catch,
                });
            }
        }
    }
    // Back edges: those that close a loop in a depth-first walk from StartAt (then from the rest).
    let n = names.len();
    let mut back = vec![false; edges.len()];
    let mut mark = vec![0u8; n]; // 0 new, 1 on the stack, 2 done
    let mut roots: Vec<usize> = index.get(start_at).copied().into_iter().collect();
    roots.extend(0..n);
    for root in roots {
        if mark[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        mark[root] = 1;
        while let Some((v, next_edge)) = stack.pop() {
            let out: Vec<usize> = (0..edges.len()).filter(|&e| edges[e].from == v).collect();
            if let Some(&e) = out.get(next_edge) {
                stack.push((v, next_edge + 1));
                let w = edges[e].to;
                match mark[w] {
                    0 => {
                        mark[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => back[e] = true,
                    _ => {}
                }
            } else {
                mark[v] = 2;
            }
        }
    }
    // Layers: longest path over the forward edges.
    let mut layer = vec![0usize; n];
    let mut indegree = vec![0usize; n];
    for (e, edge) in edges.iter().enumerate() {
        if !back[e] {
            indegree[edge.to] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
    // StartAt first, so an unreachable state does not push it down.
    ready.sort_by_key(|&v| (Some(&v) != index.get(start_at), v));
    let mut queue = std::collections::VecDeque::from(ready);
    while let Some(v) = queue.pop_front() {
        for (e, edge) in edges.iter().enumerate() {
            if edge.from == v && !back[e] {
                layer[edge.to] = layer[edge.to].max(layer[v] + 1);
                indegree[edge.to] -= 1;
                if indegree[edge.to] == 0 {
                    queue.push_back(edge.to);
                }
            }
        }
    }
    // Sizes, frames laid out first.
    let mut nodes: Vec<Node> = states
        .iter()
        .enumerate()
        .map(|(i, (name, state))| {
            let text_w = name.chars().count() as f64 * CHAR_W + 2.0 * PAD_X;
            let subs: Vec<Layout> = branches(state)
                .into_iter()
                .map(|b| lay_out(&b.states, &b.start_at))
                .collect();
            let (mut w, mut h) = (text_w.max(MIN_W), NODE_H);
            let mut inner = Vec::new();
            if !subs.is_empty() {
                let mut x = FRAME_PAD;
                let mut tallest: f64 = 0.0;
                for sub in subs {
                    tallest = tallest.max(sub.h);
                    let sw = sub.w;
                    inner.push((x, FRAME_TITLE + FRAME_PAD, sub));
                    x += sw + GAP_X;
                }
                w = w.max(x - GAP_X + FRAME_PAD);
                h = FRAME_TITLE + 2.0 * FRAME_PAD + tallest;
            }
            Node {
                name: name.to_string(),
                kind: kind(state),
                x: 0.0,
                y: 0.0,
                w,
                h,
                layer: layer[i],
                inner,
            }
        })
        .collect();
    // Order within a layer by the mean position of the predecessors (one pass, top down).
    let mut by_layer: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        by_layer.entry(node.layer).or_default().push(i);
    }
    let mut rank = vec![0.0f64; n];
    let mut y = 0.0;
    let mut width: f64 = 0.0;
    let mut rows: Vec<(Vec<usize>, f64)> = Vec::new();
    for members in by_layer.values() {
        let mut members = members.clone();
        let key = |v: usize| {
            let preds: Vec<f64> = edges
                .iter()
                .enumerate()
                .filter(|(e, edge)| {
                    edge.to == v && !back[*e] && nodes[edge.from].layer < nodes[v].layer
                })
                .map(|(_, edge)| rank[edge.from])
                .collect();
            if preds.is_empty() {
                f64::MAX
            } else {
                preds.iter().sum::<f64>() / preds.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize)> = members.iter().map(|&v| (key(v), v)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        members = keyed.into_iter().map(|(_, v)| v).collect();
        let row_w: f64 =
            members.iter().map(|&v| nodes[v].w).sum::<f64>() + GAP_X * (members.len() as f64 - 1.0);
        let row_h = members.iter().map(|&v| nodes[v].h).fold(0.0, f64::max);
        let mut x = 0.0;
        for &v in &members {
            nodes[v].x = x;
            nodes[v].y = y;
            rank[v] = x + nodes[v].w / 2.0;
            x += nodes[v].w + GAP_X;
        }
        width = width.max(row_w);
        rows.push((members, row_w));
        y += row_h + GAP_Y;
    }
    // Centre each row.
    for (members, row_w) in rows {
        let shift = (width - row_w) / 2.0;
        for v in members {
            nodes[v].x += shift;
        }
    }
    let has_loop = back.iter().any(|b| *b);
    Layout {
        w: width + if has_loop { LOOP_ROOM } else { 0.0 },
        h: (y - GAP_Y).max(NODE_H),
        nodes,
        edges,
    }
}

fn emit(out: &mut String, layout: &Layout, ox: f64, oy: f64) {
    let right = ox + layout.w;
    for edge in &layout.edges {
        let (a, b) = (&layout.nodes[edge.from], &layout.nodes[edge.to]);
        let class = if edge.catch { "edge catch" } else { "edge" };
        let path = if b.layer > a.layer {
            let (x1, y1) = (ox + a.x + a.w / 2.0, oy + a.y + a.h);
            let (x2, y2) = (ox + b.x + b.w / 2.0, oy + b.y);
            let my = (y1 + y2) / 2.0;
            format!(
                "M{x1:.1},{y1:.1} C{x1:.1},{my:.1} {x2:.1},{my:.1} {x2:.1},{:.1}",
                y2 - 1.0
            )
        } else {
            // Back up (or sideways): out of the right side, round the machine's right edge.
            let (x1, y1) = (ox + a.x + a.w, oy + a.y + a.h / 2.0);
            let (x2, y2) = (ox + b.x + b.w, oy + b.y + b.h / 2.0);
            let rx = right - 4.0;
            format!(
                "M{x1:.1},{y1:.1} C{rx:.1},{y1:.1} {rx:.1},{y2:.1} {:.1},{y2:.1}",
                x2 + 1.0
            )
        };
        let _ = write!(
            out,
            r#"<path class="{class}" d="{path}" marker-end="url(#arrow)"/>"#
        );
    }
    for node in &layout.nodes {
        let (x, y) = (ox + node.x, oy + node.y);
        let name = escape_xml(&node.name);
        let _ = write!(
            out,
            r#"<g class="state" data-state="{name}" data-type="{}"><title>{name} ({})</title>"#,
            node.kind, node.kind
        );
        if node.inner.is_empty() {
            let rx = match node.kind {
                "Succeed" | "Fail" => 17.0,
                "Choice" => 10.0,
                _ => 5.0,
            };
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" rx="{rx}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" dominant-baseline="central">{name}</text></g>"#,
                node.w,
                node.h,
                x + node.w / 2.0,
                y + node.h / 2.0
            );
        } else {
            let _ = write!(
                out,
                r#"<rect class="frame" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" rx="6"/><text class="frame-title" x="{:.1}" y="{:.1}">{name} ({})</text>"#,
                node.w,
                node.h,
                x + FRAME_PAD,
                y + FRAME_TITLE / 2.0 + 5.0,
                node.kind
            );
            for (dx, dy, sub) in &node.inner {
                let _ = write!(
                    out,
                    r#"<rect class="branch" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="4"/>"#,
                    x + dx - 4.0,
                    y + dy - 4.0,
                    sub.w + 8.0,
                    sub.h + 8.0
                );
                emit(out, sub, x + dx, y + dy);
            }
            out.push_str("</g>");
        }
    }
}

/// Text for XML (and HTML) content and attribute values; control characters become spaces.
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(json: &str) -> String {
        render_svg(&StateMachine::parse(json).unwrap())
    }

    /// The (x, y) of a state's box in the drawing.
    fn position(svg: &str, name: &str) -> (f64, f64) {
        let at = svg
            .find(&format!(r#"data-state="{name}""#))
            .unwrap_or_else(|| panic!("{name} not drawn"));
        let rect = &svg[at..];
        let rect = &rect[rect.find("<rect").unwrap()..];
        let num = |attr: &str| -> f64 {
            let i = rect.find(&format!(" {attr}=\"")).unwrap() + attr.len() + 3;
            rect[i..rect[i..].find('"').unwrap() + i].parse().unwrap()
        };
        (num("x"), num("y"))
    }

    #[test]
    fn every_state_is_drawn_once_in_flow_order_with_its_type() {
        let svg = draw(
            r#"{"StartAt": "A <first>", "States": {
                "A <first>": {"Type": "Task", "Resource": "r", "Next": "B",
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Oops"}]},
                "B": {"Type": "Choice", "Choices": [{"Variable": "$.n", "IsPresent": true, "Next": "C"}], "Default": "A <first>"},
                "C": {"Type": "Succeed"},
                "Oops": {"Type": "Fail"}
            }}"#,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        for (name, ty) in [
            ("A &lt;first&gt;", "Task"),
            ("B", "Choice"),
            ("C", "Succeed"),
            ("Oops", "Fail"),
        ] {
            assert_eq!(
                svg.matches(&format!(r#"data-state="{name}" data-type="{ty}""#))
                    .count(),
                1,
                "{name}"
            );
        }
        let (a, b, c) = (
            position(&svg, "A &lt;first&gt;"),
            position(&svg, "B"),
            position(&svg, "C"),
        );
        assert!(
            a.1 < b.1 && b.1 < c.1,
            "layers go down the flow: {a:?} {b:?} {c:?}"
        );
        assert!(
            position(&svg, "Oops").1 > a.1,
            "a catcher's target is below the task"
        );
        assert_eq!(svg.matches(r#"class="edge catch""#).count(), 1);
        // B -> A goes back up: drawn, and the loop does not push A down.
        assert_eq!(svg.matches(r#"<path class="edge""#).count(), 3);
    }

    #[test]
    fn parallel_branches_are_frames_holding_their_states() {
        let svg = draw(
            r#"{"StartAt": "P", "States": {
                "P": {"Type": "Parallel", "Next": "Done", "Branches": [
                    {"StartAt": "L1", "States": {"L1": {"Type": "Pass", "Next": "L2"}, "L2": {"Type": "Pass", "End": true}}},
                    {"StartAt": "R1", "States": {"R1": {"Type": "Pass", "End": true}}}]},
                "Done": {"Type": "Succeed"}
            }}"#,
        );
        let p_at = svg.find(r#"data-state="P""#).unwrap();
        let done_at = svg.find(r#"data-state="Done""#).unwrap();
        let l1_at = svg.find(r#"data-state="L1""#).unwrap();
        assert!(p_at < l1_at, "branch states are inside P's group");
        let (p, l1, r1) = (
            position(&svg, "P"),
            position(&svg, "L1"),
            position(&svg, "R1"),
        );
        assert!(
            l1.0 > p.0 && l1.1 > p.1 && r1.0 > l1.0,
            "{p:?} {l1:?} {r1:?}"
        );
        assert!(position(&svg, "Done").1 > position(&svg, "L2").1);
        assert!(done_at > 0);
    }

    #[test]
    fn the_pipeline_definition_draws() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.asl.json"))
                .unwrap();
        let sm = StateMachine::parse(&text).unwrap();
        let svg = render_svg(&sm);
        for name in [
            "Validate rows",
            "Partition rows",
            "Draw plots",
            "Run succeeded",
            "Send failure alert",
        ] {
            assert!(svg.contains(&format!(r#"data-state="{name}""#)), "{name}");
        }
    }
}
