//! Few-shot exemplars for base models.
//!
//! The *problems* are the standard published ones, used here as facts:
//! * GSM8K 8-shot: the eight chain-of-thought exemplar problems of Wei et al. 2022, "Chain-of-
//!   Thought Prompting Elicits Reasoning in Large Language Models", Table 20 (also DeepSeek-Math's
//!   `few_shot_prompts/cot_gsm_8_shot.py`). Format `Q: ...\nA: ... The answer is N.`
//! * MATH 4-shot: the four Minerva exemplar problems of Lewkowycz et al. 2022, "Solving
//!   Quantitative Reasoning Problems with Language Models", Appendix D.2 (DeepSeek-Math's
//!   `cot_minerva_math_4_shot.py`). Format `Problem:\n...\n\nSolution:\n...\nFinal Answer: The
//!   final answer is $X$. I hope it is correct.`
//!
//! The worked solutions below are written by us (same final answers). The two multiple-choice
//! exemplars are our own problems in the Minerva format.

/// One exemplar: question, worked solution, final answer.
pub struct Exemplar {
    /// The problem.
    pub question: &'static str,
    /// Our worked solution (without the final-answer sentence).
    pub solution: &'static str,
    /// The final answer.
    pub answer: &'static str,
}

/// The eight GSM8K chain-of-thought exemplars.
pub const GSM8K_8SHOT: [Exemplar; 8] = [
    Exemplar {
        question: "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
        solution: "The grove starts with 15 trees and ends with 21 trees. The difference is what was planted: 21 - 15 = 6.",
        answer: "6",
    },
    Exemplar {
        question: "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
        solution: "3 cars are already there and 2 more come, so there are 3 + 2 = 5 cars.",
        answer: "5",
    },
    Exemplar {
        question: "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
        solution: "Together they had 32 + 42 = 74 chocolates. After eating 35 of them, 74 - 35 = 39 are left.",
        answer: "39",
    },
    Exemplar {
        question: "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
        solution: "Jason went from 20 lollipops to 12, so he gave away 20 - 12 = 8.",
        answer: "8",
    },
    Exemplar {
        question: "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
        solution: "His mom and dad gave him 2 toys each, which is 2 + 2 = 4 new toys. With the 5 he had, he now has 5 + 4 = 9 toys.",
        answer: "9",
    },
    Exemplar {
        question: "There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
        solution: "Monday to Thursday is 4 days, and 5 computers were added each day, so 4 * 5 = 20 were added. The room now has 9 + 20 = 29 computers.",
        answer: "29",
    },
    Exemplar {
        question: "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
        solution: "After Tuesday he had 58 - 23 = 35 golf balls. After losing 2 more on Wednesday he had 35 - 2 = 33.",
        answer: "33",
    },
    Exemplar {
        question: "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        solution: "Five bagels at $3 each cost 5 * 3 = 15 dollars. She is left with 23 - 15 = 8 dollars.",
        answer: "8",
    },
];

/// The four Minerva MATH exemplars.
pub const MINERVA_4SHOT: [Exemplar; 4] = [
    Exemplar {
        question: "Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.",
        solution: "The numerator needs $x-2 \\ge 0$, that is $x \\ge 2$. The denominator needs $5-x \\ge 0$ for the root to exist and $5-x \\ne 0$ so that we do not divide by zero, so $x < 5$. Together, $2 \\le x < 5$, which is the interval $[2,5)$.",
        answer: "[2,5)",
    },
    Exemplar {
        question: "If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
        solution: "The determinant is multiplicative: $\\det(\\mathbf{A}\\mathbf{B}) = \\det \\mathbf{A} \\cdot \\det \\mathbf{B} = 2 \\cdot 12 = 24$.",
        answer: "24",
    },
    Exemplar {
        question: "Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many times must Terrell lift them in order to lift the same total weight?",
        solution: "Each usual lift moves $2 \\cdot 20 = 40$ pounds, so 12 lifts move $12 \\cdot 40 = 480$ pounds. With the lighter weights each lift moves $2 \\cdot 15 = 30$ pounds, so he needs $480 / 30 = 16$ lifts.",
        answer: "16",
    },
    Exemplar {
        question: "If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has a solution $(x, y)$ where $x$ and $y$ are both nonzero, find $\\frac{a}{b},$ assuming $b$ is nonzero.",
        solution: "Notice that $6y - 9x = -\\frac{3}{2}(6x - 4y)$. Hence $b = -\\frac{3}{2}a$, and dividing gives $\\frac{a}{b} = -\\frac{2}{3}$.",
        answer: "-\\frac{2}{3}",
    },
];

/// Two multiple-choice exemplars (ours) in the Minerva format; the answer is a letter.
pub const CHOICE_2SHOT: [Exemplar; 2] = [
    Exemplar {
        question: "What is the remainder when $2^{10}$ is divided by $7$?\nAnswer Choices: (A) 1 (B) 2 (C) 4 (D) 6",
        solution: "Powers of 2 modulo 7 repeat with period 3: $2^1 \\equiv 2$, $2^2 \\equiv 4$, $2^3 \\equiv 1$. Since $10 = 3 \\cdot 3 + 1$, $2^{10} \\equiv 2^1 = 2$. That is choice (B).",
        answer: "B",
    },
    Exemplar {
        question: "Which of the following is the derivative of $x^3$?\nAnswer Choices: (A) $x^2$ (B) $3x$ (C) $3x^2$ (D) $x^4/4$",
        solution: "By the power rule, $\\frac{d}{dx} x^3 = 3x^{2}$, which is choice (C).",
        answer: "C",
    },
];
