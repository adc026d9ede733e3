//! Setting an answer in a response the way models write them: a `\boxed{}` after some work,
//! `$..$` or `\[..\]` at the end, Minerva's "Final Answer: The final answer is X. I hope it is
//! correct.", a plain last line, a draft box corrected by a later one, or several boxes that
//! together are the answer. The work before the answer has numbers and math of its own (a
//! grader must not take those) but never the word "answer".

use super::rewrite::{Form, Variant};
use super::rng::Rng;

const PROSE: &[&str] = &[
    "",
    "We set up the equation and simplify step by step.\n",
    "There are 3 cases; case 2 gives nothing new, since $2 + 2 = 4$ is already counted.\n",
    "Substituting $t = 1$ and simplifying, we obtain the value below.\n",
    "Let me think. First, 12 of the 30 options fail, so we look at the rest.\n\n",
];

/// `(response, wrapper name)`.
pub(super) fn response(rng: &mut Rng, variant: &Variant) -> (String, &'static str) {
    let prose = rng.pick(PROSE).copied().unwrap_or("");
    let a = variant.answer.as_str();
    if let Form::Pieces(items) = &variant.form {
        return pieces(rng, prose, items);
    }
    let plain = matches!(variant.form, Form::Plain | Form::Text);
    // (wrapper, weight); plain-text lines only for answers that can stand outside math, and
    // only those for text that cannot stand inside it.
    let mut choices: Vec<(&'static str, u32)> = if variant.form == Form::Text {
        vec![("minerva", 15)]
    } else {
        vec![("boxed", 30), ("inline", 15), ("display", 10), ("minerva", 15), ("draft-box", 8)]
    };
    if plain {
        choices.extend([("answer-line", 12), ("last-line", 6), ("bare", 4)]);
    }
    let total: u32 = choices.iter().map(|c| c.1).sum();
    let mut roll = rng.below(total as usize) as u32;
    let wrapper = choices
        .iter()
        .find(|(_, w)| {
            if roll < *w {
                true
            } else {
                roll -= w;
                false
            }
        })
        .map_or("boxed", |c| c.0);
    let text = match wrapper {
        "boxed" => match rng.below(3) {
            0 => format!("{prose}So the final answer is $\\boxed{{{a}}}$."),
            1 => format!("{prose}Hence \\boxed{{{a}}}"),
            _ => format!("{prose}Therefore, the result is $\\boxed{{{a}}}$."),
        },
        "inline" => format!("{prose}So we get ${a}$."),
        "display" => format!("{prose}Putting it together,\n\\[\n{a}\n\\]"),
        "minerva" if variant.form == Form::Text || (plain && rng.chance(0.5)) => {
            format!("{prose}Final Answer: The final answer is {a}. I hope it is correct.")
        }
        "minerva" => format!("{prose}Final Answer: The final answer is ${a}$. I hope it is correct."),
        "draft-box" => format!(
            "{prose}At first I got $\\boxed{{0}}$, but that misses a case.\nRechecking, the result is $\\boxed{{{a}}}$."
        ),
        "answer-line" => format!("{prose}The answer is {a}."),
        "last-line" => format!("{prose}So the total comes to {a}"),
        _ => a.to_owned(),
    };
    (text, wrapper)
}

fn pieces(rng: &mut Rng, prose: &str, items: &[String]) -> (String, &'static str) {
    let (last, first) = items.split_last().map_or((String::new(), &[][..]), |(l, f)| (l.clone(), f));
    if rng.chance(0.5) {
        let head: Vec<String> = first.iter().map(|i| format!("$\\boxed{{{i}}}$")).collect();
        (format!("{prose}The solutions are {} and $\\boxed{{{last}}}$.", head.join(", ")), "boxes")
    } else {
        let head: Vec<String> = first.iter().map(|i| format!("${i}$")).collect();
        (format!("{prose}The solutions are {} and ${last}$.", head.join(", ")), "spans")
    }
}
