//! Synthetic problems for the dedup and embedding benchmarks, from seeded choices.

/// A synthetic competition-style problem from seeded choices.
pub fn synthetic_problem(rng: &mut u64) -> String {
    let mut next = |n: usize| {
        *rng = vs_core::seeds::mix(*rng, 0x9e37);
        (*rng % n as u64) as usize
    };
    const SUBJECTS: [&str; 8] = [
        "triangle ABC",
        "sequence a_n",
        "polynomial P(x)",
        "set S",
        "integer n",
        "circle O",
        "function f",
        "grid of squares",
    ];
    const CONDS: [&str; 6] =
        ["satisfies", "is divisible by", "has exactly", "is tangent to", "sums to", "is congruent to"];
    const ASKS: [&str; 6] = [
        "Find the smallest possible value of",
        "Compute the number of",
        "Determine the sum of all",
        "What is the largest",
        "How many distinct values of",
        "Find the remainder when",
    ];
    format!(
        "Let the {} be such that it {} {} and {} {}. {} {} modulo {}?",
        SUBJECTS[next(8)],
        CONDS[next(6)],
        next(1000),
        CONDS[next(6)],
        next(100_000),
        ASKS[next(6)],
        SUBJECTS[next(8)],
        next(997) + 3
    )
}

/// A word problem of 40 to 100 words in the register of competition problems, from a
/// vocabulary large enough that unrelated problems share little beyond function words.
pub fn math_like_problem(rng: &mut u64) -> String {
    let mut next = |n: usize| {
        *rng = vs_core::seeds::mix(*rng, 0x7f4a);
        (*rng % n as u64) as usize
    };
    const NAMES: [&str; 16] = [
        "Alice", "Bob", "Carmen", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kofi",
        "Lena", "Mateo", "Nadia", "Omar", "Priya",
    ];
    const THINGS: [&str; 16] = [
        "marbles", "coins", "cards", "tiles", "beads", "stamps", "tokens", "pebbles", "chips", "shells",
        "ribbons", "candles", "blocks", "buttons", "keys", "dice",
    ];
    const SHAPES: [&str; 10] = [
        "triangle",
        "square",
        "regular hexagon",
        "circle",
        "trapezoid",
        "rectangle",
        "rhombus",
        "pentagon",
        "parallelogram",
        "kite",
    ];
    const COLORS: [&str; 8] = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple"];
    let mut sentences: Vec<String> = Vec::new();
    let parts = 3 + next(4);
    for _ in 0..parts {
        let (a, b, c) = (next(900) + 2, next(90) + 2, next(50) + 2);
        let sentence = match next(12) {
            0 => format!(
                "{} has {a} {} and gives {b} of them to {}.",
                NAMES[next(16)],
                THINGS[next(16)],
                NAMES[next(16)]
            ),
            1 => format!("A {} has side lengths {a}, {b} and {c}.", SHAPES[next(10)]),
            2 => format!("Let $f(x) = {a}x^2 + {b}x + {c}$ for every real number $x$."),
            3 => format!("The sum of the first {b} terms of an arithmetic sequence is {a}."),
            4 => format!(
                "Each {} costs {c} cents more than each {}.",
                &THINGS[next(16)][..4],
                THINGS[next(16)]
            ),
            5 => format!("Points $P$ and $Q$ lie on the {} so that $PQ = {b}$.", SHAPES[next(10)]),
            6 => format!(
                "A box contains {a} {} {}, {b} {} ones and {c} {} ones.",
                COLORS[next(8)],
                THINGS[next(16)],
                COLORS[next(8)],
                COLORS[next(8)]
            ),
            7 => format!("The polynomial $x^3 - {a}x^2 + {b}x - {c}$ has roots $r$, $s$ and $t$."),
            8 => format!(
                "{} walks {a} meters north, then {b} meters east, then {c} meters south.",
                NAMES[next(16)]
            ),
            9 => format!("A positive integer $n$ leaves remainder {c} when divided by {b}."),
            10 => format!("In a class of {a} students, {b} play chess and {c} play both chess and go."),
            _ => format!("The radius of the {} inscribed in the {} is {c}.", SHAPES[3], SHAPES[next(10)]),
        };
        sentences.push(sentence);
    }
    let (m, k) = (next(997) + 3, next(40) + 2);
    let question = match next(8) {
        0 => format!(
            "What is the probability that {} draws two {} of the same color?",
            NAMES[next(16)],
            THINGS[next(16)]
        ),
        1 => format!("Find the remainder when the answer is divided by {m}."),
        2 => format!("How many ordered pairs $(a, b)$ of positive integers satisfy $a + {k}b \\le {m}$?"),
        3 => format!("Compute the area of the {}.", SHAPES[next(10)]),
        4 => format!("Find the smallest possible value of $r^2 + s^2 + t^2 + {k}$."),
        5 => format!("How many {} does {} have at the end?", THINGS[next(16)], NAMES[next(16)]),
        6 => format!("Determine the largest such $n$ below {m}."),
        _ => format!("Express the distance from the start in simplest radical form, times {k}."),
    };
    sentences.push(question);
    sentences.join(" ")
}

/// A near copy: `share` of the words (at least one) substituted, deleted or inserted.
pub fn perturb(text: &str, share: f64, rng: &mut u64) -> String {
    const FILLERS: [&str; 12] = [
        "exactly", "then", "also", "all", "distinct", "new", "each", "only", "again", "total", "real",
        "whole",
    ];
    let mut words: Vec<String> = text.split(' ').map(str::to_owned).collect();
    let edits = ((words.len() as f64 * share).round() as usize).max(1);
    for _ in 0..edits {
        *rng = vs_core::seeds::mix(*rng, 0x51);
        let at = (*rng >> 8) as usize % words.len();
        let filler = FILLERS[(*rng >> 40) as usize % FILLERS.len()].to_owned();
        match *rng % 3 {
            0 => words[at] = filler,
            1 if words.len() > 2 => {
                words.remove(at);
            }
            _ => words.insert(at, filler),
        }
    }
    words.join(" ")
}
