//! The paper's zero-shot math prompt, used to solve generated problems and to evaluate.

/// Bumped whenever [`math_prompt`]'s wording changes: it enters the identity of every solve and
/// evaluate output built on it.
pub const VERSION: u32 = 1;

/// `Question: {problem}\nPlease reason step by step, and put your final answer within \boxed{}.`
pub fn math_prompt(problem: &str) -> String {
    format!(
        "Question: {}\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
        problem.trim()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_papers_wording() {
        assert_eq!(
            super::math_prompt(" What is 1+1? "),
            "Question: What is 1+1?\nPlease reason step by step, and put your final answer within \\boxed{}."
        );
    }
}
