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

/// The problem inside a [`math_prompt`], or `None` when `prompt` is not one.
pub fn question_of(prompt: &str) -> Option<&str> {
    prompt
        .strip_prefix("Question: ")?
        .strip_suffix("\nPlease reason step by step, and put your final answer within \\boxed{}.")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_question_comes_back_out_of_its_prompt() {
        let q = "Find x if 2x = \\frac{1}{2}.\nGive x.";
        assert_eq!(super::question_of(&super::math_prompt(q)), Some(q));
        assert_eq!(super::question_of("What is 1+1?"), None);
    }

    #[test]
    fn the_papers_wording() {
        assert_eq!(
            super::math_prompt(" What is 1+1? "),
            "Question: What is 1+1?\nPlease reason step by step, and put your final answer within \\boxed{}."
        );
    }
}
